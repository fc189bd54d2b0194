"""Safe to put on a network (issue 13): closed by default, spend bounded by the operator, no key
leaves for a URL a member typed, and no piece of a key comes back in what we store or show.

The URL sweep with the four personas is tests/test_url_sweep.py; this module pins the rules
that sit on top of it: sign-up, the api_base policy, key redaction, and the operator's caps.
"""

from __future__ import annotations

import base64
import socket

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.judging import egress
from apps.judging.models import Judgment, JudgmentStatus, RunStatus
from apps.judging.planning import RunSettings, judge_run_start
from apps.projects.services import project_update_settings
from tests.judging.helpers import make_pointwise
from tests.judging.test_executor_inprocess import chat_requests, run_all

pytestmark = pytest.mark.django_db
KEY = "sk-proj-Zq8Yx7Wv6Ut5Sr4Qp3On2Ml1Kj0Ih9Gf8Ed7Cb6Aa5"
STRONG = "correct-horse-battery-staple-42"


# -- sign-up ------------------------------------------------------------------------------------

def test_a_stranger_cannot_sign_up_by_default(client):
    assert client.get(reverse("signup")).status_code == 404
    response = client.post(reverse("signup"), {"username": "mallory", "password1": STRONG,
                                               "password2": STRONG})
    assert response.status_code == 404
    assert not get_user_model().objects.filter(username="mallory").exists()
    assert reverse("signup") not in client.get(reverse("login")).content.decode()


def test_the_operator_can_open_sign_up(client, settings):
    settings.ALLOW_SIGNUP = True
    response = client.post(reverse("signup"), {"username": "ada", "password1": STRONG,
                                               "password2": STRONG})
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="ada").exists()


# -- api_base policy ----------------------------------------------------------------------------

@pytest.fixture
def policy(settings):
    settings.ALLOWED_API_BASES = ["https://llm.internal.example/v1", "http://127.0.0.1:8231/"]
    settings.ALLOW_UNLISTED_API_BASES = True
    egress._resolved.clear()
    yield settings
    egress._resolved.clear()


@pytest.mark.parametrize("url,kind", [
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://[fd00:ec2::254]/latest", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("http://2852039166/", "metadata"),              # 169.254.169.254 as one number
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://169.254.1.1:8000/v1", "link-local"),
    ("http://[fe80::1]:8000/v1", "link-local"),
    ("http://127.0.0.1:6379/", "loopback"),          # not the listed port
    ("http://127.0.0.2:8231/", "loopback"),
    ("http://localhost:8000/v1", "loopback"),
    ("http://[::1]:8000/v1", "loopback"),
    ("http://0.0.0.0:8000/v1", "unspecified"),
])
def test_unlisted_internal_addresses_are_refused(policy, url, kind):
    error = egress.api_base_error(url)
    assert error and kind in error and "ALLOWED_API_BASES" in error


@pytest.mark.parametrize("url", [
    "https://llm.internal.example/v1", "https://llm.internal.example/v1/chat",
    "http://127.0.0.1:8231/v1",
])
def test_listed_bases_are_allowed_and_get_the_rubriclab_key(policy, monkeypatch, url):
    monkeypatch.setenv("RUBRICLAB_API_KEY", KEY)
    assert egress.api_base_error(url) is None
    assert egress.key_for(url) == KEY


@pytest.mark.parametrize("url", [
    "https://llm.internal.example/v10",               # a prefix, but not at a boundary
    "https://llm.internal.example/v1.evil.example/",
    "http://127.0.0.1:82310/",
    "https://llm.internal.example@8.8.8.8/v1",        # user-info trick
])
def test_look_alikes_of_listed_bases_are_not_listed(policy, monkeypatch, url):
    monkeypatch.setenv("RUBRICLAB_API_KEY", KEY)
    assert not egress.is_listed(url)
    assert egress.key_for(url) == egress.NO_KEY


def test_an_unlisted_public_base_is_allowed_but_never_gets_a_key(policy, monkeypatch):
    monkeypatch.setenv("RUBRICLAB_API_KEY", KEY)
    monkeypatch.setattr(egress, "_addresses", lambda host: [__import__("ipaddress")
                                                           .ip_address("93.184.216.34")])
    assert egress.api_base_error("https://gpu.example.org/v1") is None
    assert egress.key_for("https://gpu.example.org/v1") == egress.NO_KEY


def test_the_operator_can_refuse_every_unlisted_base(policy):
    policy.ALLOW_UNLISTED_API_BASES = False
    assert "ALLOWED_API_BASES" in egress.api_base_error("https://gpu.example.org/v1")
    assert egress.api_base_error("https://llm.internal.example/v1") is None


def test_a_name_that_resolves_to_metadata_is_refused(policy, monkeypatch):
    real = socket.getaddrinfo

    def fake_dns(host, *args, **kwargs):
        if host == "rebind.example.org":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    assert "metadata" in egress.api_base_error("http://rebind.example.org/v1")


def test_starting_a_run_at_the_metadata_service_is_a_field_error(personas, policy):
    version, dataset = make_pointwise(personas.project, items=2)
    with pytest.raises(ValidationError) as caught:
        judge_run_start(project=personas.project, version=version, dataset=dataset,
                        run_settings=RunSettings(model="openai/x",
                                                 api_base="http://169.254.169.254/v1"))
    assert "metadata" in caught.value.message_dict["api_base"][0]
    assert not Judgment.objects.exists()


def test_the_start_page_refuses_a_loopback_base_that_is_not_listed(personas, policy):
    version, dataset = make_pointwise(personas.project, items=2)
    response = personas.client("editor").post(
        reverse("run_start", args=[personas.project.slug]),
        {"version": version.pk, "dataset": dataset.pk, "model": "openai/x",
         "api_base": "http://127.0.0.1:6379/", "temperature": "0", "max_tokens": "100",
         "samples": "1", "concurrency": "2", "timeout_s": "10", "subset": "all"})
    assert response.status_code == 422
    assert "loopback" in response.content.decode()


@pytest.mark.django_db(transaction=True)  # batches write from their own thread
def test_workers_check_the_policy_again_before_each_call(personas, fake, settings):
    """A run planned while its base was allowed, then the operator narrowed the list: the worker
    refuses to call (a permanent error, the run fails), and the server receives nothing."""
    version, dataset = make_pointwise(personas.project, items=2)
    run = judge_run_start(project=personas.project, version=version, dataset=dataset,
                          run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url,
                                                   timeout_s=5))
    settings.ALLOWED_API_BASES = ["https://llm.internal.example/v1"]
    egress._resolved.clear()
    run_all(run)
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith("policy: ") and "loopback" in run.error_message
    assert chat_requests(fake) == []
    assert Judgment.objects.filter(run=run, status=JudgmentStatus.PENDING).count() == 4


@pytest.mark.django_db(transaction=True)  # batches write from their own thread
def test_a_listed_base_receives_rubriclab_api_key(personas, fake, monkeypatch):
    monkeypatch.setenv("RUBRICLAB_API_KEY", KEY)
    fake.control(api_key=KEY)  # the fake answers 401 to any other key
    version, dataset = make_pointwise(personas.project, items=1)
    run = judge_run_start(project=personas.project, version=version, dataset=dataset,
                          run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url,
                                                   timeout_s=5))
    run_all(run)
    assert run.status == RunStatus.COMPLETED


# -- redaction ----------------------------------------------------------------------------------

def _b64(text: str, *, pad: bytes = b"") -> str:
    return base64.b64encode(pad + text.encode()).decode()


@pytest.mark.parametrize("echo", [
    KEY, KEY.upper(), KEY.lower(), KEY.swapcase(),
    KEY[len("sk-proj-"):], KEY[len("sk-"):],                 # without its prefix
    KEY[5:17], KEY[-12:], KEY[10:30].upper(),               # any 12+ character piece
    _b64(KEY), _b64("Bearer " + KEY), _b64("x:" + KEY, pad=b"zz"),
    base64.urlsafe_b64encode(KEY.encode()).decode(),
])
def test_every_form_of_the_key_is_redacted(monkeypatch, echo):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    text = f'{{"error": {{"message": "Incorrect API key provided: {echo}. See docs"}}}}'
    redacted = egress.redact(text)
    assert "***" in redacted
    lowered = redacted.lower()
    for i in range(len(KEY) - 11):
        assert KEY[i: i + 12].lower() not in lowered
    for form in egress._forms(KEY):
        for i in range(0, len(form) - 11, 3):
            assert form[i: i + 12].lower() not in lowered
    assert redacted.startswith('{"error": {"message": "Incorrect API key provided: ')
    assert redacted.endswith('. See docs"}}')


def test_redaction_leaves_other_text_alone(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    text = "The answer is correct and complete: 4 of 5. " * 20
    assert egress.redact(text) == text
    assert egress.redact("") == ""


def test_a_short_secret_is_redacted_whole_in_any_case(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "Hunter2!x")
    assert egress.redact("login failed for HUNTER2!X today") == "login failed for *** today"


@pytest.mark.django_db(transaction=True)  # batches write from their own thread
def test_a_provider_error_body_is_stored_redacted(personas, fake, monkeypatch):
    """The fake answers 401 quoting the key it was sent, in pieces and base64 too (as real
    providers do with "Incorrect API key provided: sk-...abcd"): the run's error shows none."""
    monkeypatch.setenv("RUBRICLAB_API_KEY", KEY)
    fake.control(api_key="sk-the-right-key-0123456789")
    version, dataset = make_pointwise(personas.project, items=1)
    run = judge_run_start(project=personas.project, version=version, dataset=dataset,
                          run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url,
                                                   timeout_s=5))
    run_all(run)
    assert run.status == RunStatus.FAILED and run.error_message.startswith("auth: ")
    stored = [run.error_message] + [str(v) for v in Judgment.objects.filter(run=run)
                                    .values_list("error_message", "raw_output")]
    for text in stored:
        for i in range(len(KEY) - 11):
            assert KEY[i: i + 12].lower() not in text.lower()


# -- the operator's caps --------------------------------------------------------------------------

def test_owners_cannot_raise_the_queued_calls_cap_above_the_ceiling(personas, settings):
    settings.MAX_QUEUED_CALLS_LIMIT = 1000
    with pytest.raises(ValidationError) as caught:
        project_update_settings(project=personas.project, max_queued_calls=2_000_000_000)
    assert "MAX_QUEUED_CALLS_LIMIT" in caught.value.message_dict["max_queued_calls"][0]
    personas.project.refresh_from_db()
    assert personas.project.max_queued_calls != 2_000_000_000


@pytest.mark.parametrize("field", ["gate_min_kappa_lower", "gate_min_kappa",
                                   "gate_min_human_alpha"])
def test_gate_thresholds_stay_within_zero_and_one(personas, field):
    for value in (-1, -0.01, 1.01, 2):
        with pytest.raises(ValidationError):
            project_update_settings(project=personas.project, **{field: value})
    project_update_settings(project=personas.project, **{field: 0.0})
    project_update_settings(project=personas.project, **{field: 1.0})


def test_a_cap_stored_before_the_ceiling_was_lowered_does_not_outlive_it(personas, settings):
    version, dataset = make_pointwise(personas.project, items=10)  # 20 calls
    type(personas.project).objects.filter(pk=personas.project.pk).update(max_queued_calls=10**9)
    settings.MAX_QUEUED_CALLS_LIMIT = 15
    with pytest.raises(ValidationError) as caught:
        judge_run_start(project=personas.project, version=version, dataset=dataset,
                        run_settings=RunSettings(model="openai/x",
                                                 api_base="http://127.0.0.1:9/v1"))
    assert "cap of 15" in caught.value.message_dict["subset"][0]
    settings.MAX_QUEUED_CALLS_LIMIT = 20
    judge_run_start(project=personas.project, version=version, dataset=dataset,
                    run_settings=RunSettings(model="openai/x", api_base="http://127.0.0.1:9/v1"))


def test_the_monthly_cost_ceiling_refuses_a_run_that_would_pass_it(personas, settings):
    version, dataset = make_pointwise(personas.project, items=10)
    priced = RunSettings(model="openai/gpt-4.1-mini", api_base="http://127.0.0.1:9/v1")
    settings.MONTHLY_COST_LIMIT_USD = 0.000001
    with pytest.raises(ValidationError) as caught:
        judge_run_start(project=personas.project, version=version, dataset=dataset,
                        run_settings=priced)
    assert "monthly ceiling" in caught.value.message_dict["subset"][0]
    assert not Judgment.objects.exists()
    settings.MONTHLY_COST_LIMIT_USD = 100.0
    judge_run_start(project=personas.project, version=version, dataset=dataset,
                    run_settings=priced)


def test_a_project_ceiling_below_the_servers_applies(personas, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x" * 8)
    version, dataset = make_pointwise(personas.project, items=10)
    settings.MONTHLY_COST_LIMIT_USD = 100.0
    project_update_settings(project=personas.project, monthly_cost_limit_usd="0.00")
    with pytest.raises(ValidationError) as caught:
        judge_run_start(project=personas.project, version=version, dataset=dataset,
                        run_settings=RunSettings(model="openai/gpt-4.1-mini"))
    assert "$0.00" in caught.value.message_dict["subset"][0]


def test_an_unpriced_provider_model_cannot_start_under_a_ceiling(personas, settings,
                                                                monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x" * 8)
    version, dataset = make_pointwise(personas.project, items=2)
    settings.MONTHLY_COST_LIMIT_USD = 100.0
    with pytest.raises(ValidationError) as caught:
        judge_run_start(project=personas.project, version=version, dataset=dataset,
                        run_settings=RunSettings(model="openai/no-such-priced-model"))
    assert "cannot be bounded" in caught.value.message_dict["subset"][0]
