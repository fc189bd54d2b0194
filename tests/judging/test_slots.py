"""The run-wide concurrency cap and the per-model request rate (apps/judging/slots.py), and the
run page's warning when the coordinator is silent. Database only; the worker processes that
share a cap are in test_two_workers.py."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.judging.coordinator import coordinate
from apps.judging.models import Heartbeat, JudgeSession
from apps.judging.slots import rate_take, slots_claim, slots_release
from tests.judging.helpers import make_pointwise, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(personas, fake):
    version, dataset = make_pointwise(personas.project, items=3)
    return start(personas.project, version, dataset, fake, concurrency=100)


def held(run) -> int:
    return sum(JudgeSession.objects.filter(run=run).values_list("held", flat=True))


def test_one_session_gets_half_the_cap_then_the_whole_and_no_more(run):
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="a", in_flight=50, demand=500) == 100
    assert slots_claim(run_id=run.pk, lease="a", in_flight=100, demand=500) == 100


def test_two_sessions_arriving_at_once_share_from_the_start(run):
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="a", in_flight=50, demand=100) == 50


def test_a_second_session_waits_for_slots_to_drain_then_both_hold_half(run):
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="a", in_flight=50, demand=100) == 100
    # B arrives while A has 100 in flight: nothing is free yet.
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 0
    # A is held to its fair share, but keeps counting what it still has in flight.
    assert slots_claim(run_id=run.pk, lease="a", in_flight=100, demand=100) == 50
    assert held(run) == 100
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 0
    # A's calls drain to 60: B may take 40 now, and 50 once A is down to its share.
    assert slots_claim(run_id=run.pk, lease="a", in_flight=60, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 40
    assert held(run) == 100
    assert slots_claim(run_id=run.pk, lease="a", in_flight=50, demand=100) == 50
    assert slots_claim(run_id=run.pk, lease="b", in_flight=40, demand=100) == 50
    assert held(run) == 100


def test_a_session_that_wants_little_leaves_the_rest_to_the_other(run):
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=10) == 10
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 50  # first claim
    assert slots_claim(run_id=run.pk, lease="b", in_flight=50, demand=100) == 90
    slots_release(run_id=run.pk, lease="a")
    assert slots_claim(run_id=run.pk, lease="b", in_flight=90, demand=100) == 100


@override_settings(JUDGE_SLOT_LEASE_S=5)
def test_a_dead_sessions_slots_come_back_when_its_lease_expires(run):
    slots_claim(run_id=run.pk, lease="dead", in_flight=0, demand=100)
    assert slots_claim(run_id=run.pk, lease="dead", in_flight=50, demand=100) == 100
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 0
    JudgeSession.objects.filter(lease="dead").update(
        beat_at=timezone.now() - timezone.timedelta(seconds=6))
    assert slots_claim(run_id=run.pk, lease="b", in_flight=0, demand=100) == 100
    assert not JudgeSession.objects.filter(lease="dead").exists()


def test_odd_claims_are_clamped(run):
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=-5) == 0
    assert slots_claim(run_id=run.pk, lease="a", in_flight=0, demand=10**9) == 100  # not new
    assert slots_claim(run_id=10**9, lease="a", in_flight=0, demand=10) == 0  # no such run


@override_settings(JUDGE_MODEL_RPM={"openai/fake-judge": 30, "*": 1000})
def test_requests_per_minute_are_shared_by_every_taker():
    assert rate_take(model="openai/fake-judge", want=20)[0] == 20
    assert rate_take(model="openai/fake-judge", want=20)[0] == 10  # another worker, same minute
    taken, wait = rate_take(model="openai/fake-judge", want=5)
    assert taken == 0 and 0 < wait <= 60
    assert rate_take(model="other/model", want=500)[0] == 500  # the "*" limit
    assert rate_take(model="other/model", want=0)[0] == 0


@override_settings(JUDGE_MODEL_RPM={})
def test_without_a_limit_every_request_may_go():
    assert rate_take(model="openai/fake-judge", want=10**6) == (10**6, 0.0)


def test_the_rpm_setting_is_read_loudly():
    from django.core.exceptions import ImproperlyConfigured

    from config.settings.rubriclab import _model_rpm

    assert _model_rpm(["600"]) == {"*": 600}
    assert _model_rpm(["openai/gpt-4.1-mini=500", "a=b=7"]) == {
        "openai/gpt-4.1-mini": 500, "a=b": 7}
    for bad in ("0", "x=", "=5", "m=-1", "m=1.5", "lots"):
        with pytest.raises(ImproperlyConfigured, match="JUDGE_MODEL_RPM"):
            _model_rpm([bad])


def test_the_run_page_warns_when_no_coordinator_was_seen_for_three_intervals(personas, run,
                                                                            settings):
    from django.urls import reverse

    page = reverse("run_detail", args=[personas.project.slug, run.pk])
    client = personas.client("owner")
    assert "No run coordinator" in client.get(page).content.decode()  # never ran
    coordinate()
    assert "No run coordinator" not in client.get(page).content.decode()
    Heartbeat.objects.filter(name="coordinator").update(
        at=timezone.now() - timezone.timedelta(
            seconds=3 * settings.CELERY_COORDINATOR_INTERVAL_S + 1))
    assert "No run coordinator" in client.get(page).content.decode()
