"""The judge run pages: list, start form (estimate, missing key, cap), run page (progress,
errors by kind, results, raw output), and the cancel / resume / retry buttons.

Each page gets the STYLE.md 9 block (works for owner and editor, labeller 403, bad id 404,
wrong method 405; outsiders are swept in tests/test_url_sweep.py). Model output is shown as
escaped text inside hx-disable containers.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from apps.judging.models import (
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunKind,
    RunStatus,
)
from apps.judging.planning import RunSettings, judge_run_start
from tests.judging.helpers import make_pointwise

HTMX = {"HTTP_HX_REQUEST": "true"}
FAKE_BASE = "http://127.0.0.1:9/v1"  # never called: no batch runs in these tests
SCRIPT = "<script>alert('rationale')</script><img src=x onerror=alert('img')>"
HX_RAW = '<div hx-get="/p/acme/runs/new/" hx-trigger="load" hx-target="body">boom</div>'


def url(name: str, run=None, **kwargs) -> str:
    kwargs = {"slug": "acme", **kwargs}
    if run is not None:
        kwargs["run_id"] = run.pk
    return reverse(name, kwargs=kwargs)


def start_run(personas, version, dataset, **overrides) -> JudgeRun:
    settings = {"model": "openai/fake-judge", "api_base": FAKE_BASE, **overrides}
    return judge_run_start(project=personas.project, version=version, dataset=dataset,
                           run_settings=RunSettings(**settings))


@pytest.fixture
def world(personas):
    return make_pointwise(personas.project, items=3)


@pytest.fixture
def active_run(personas, world):
    version, dataset = world
    return start_run(personas, version, dataset)


@pytest.fixture
def finished_run(personas, world):
    """A completed run: done judgments with hostile rationales, one invalid, one failed."""
    version, dataset = world
    run = start_run(personas, version, dataset)
    judgments = list(Judgment.objects.filter(run=run).select_related("item").order_by("id"))
    for judgment in judgments:
        judgment.status, judgment.value = JudgmentStatus.DONE, "3"
        judgment.rationale, judgment.raw_output = SCRIPT, HX_RAW
        judgment.attempts = 1
    judgments[0].status, judgments[0].value = JudgmentStatus.INVALID, ""
    judgments[0].error_kind = "invalid_scale"
    judgments[0].error_message = "'<img src=x onerror=alert(3)>' is outside the scale"
    judgments[1].status, judgments[1].value = JudgmentStatus.FAILED, ""
    judgments[1].error_kind, judgments[1].error_message = "server", "500 from the provider"
    judgments[1].raw_output = ""
    Judgment.objects.bulk_update(judgments, ["status", "value", "rationale", "raw_output",
                                             "attempts", "error_kind", "error_message"])
    JudgeRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    run.refresh_from_db()
    return run


class _Tree(HTMLParser):
    """Records, for each piece of text, whether an enclosing element carries hx-disable."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.texts: list[tuple[str, bool]] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append("hx-disable" in dict(attrs))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if data.strip():
            self.texts.append((data, any(self.stack)))


def parse(response) -> _Tree:
    tree = _Tree()
    tree.feed(response.content.decode())
    return tree


def assert_shown_as_text_inside_hx_disable(response, text: str) -> None:
    tree = parse(response)
    places = [disabled for data, disabled in tree.texts if text in data]
    assert places, f"{text!r} is not shown as text"
    assert all(places), f"{text!r} is shown outside an hx-disable container"
    # No element came out of the model's text.
    for tag, attrs in tree.tags:
        assert tag != "script" or "src" in attrs
        assert "onerror" not in attrs
        assert attrs.get("hx-get") != "/p/acme/runs/new/"


# -- run list ---------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owner_and_editor_see_the_run_list(personas, active_run, who):
    response = personas.client(who).get(url("run_list"))
    assert response.status_code == 200
    assert f"#{active_run.pk}" in response.content.decode()
    assert url("run_start") in response.content.decode()


def test_labeller_gets_403_on_the_run_list(personas, active_run):
    assert personas.client("labeller").get(url("run_list")).status_code == 403


def test_the_run_list_takes_only_get(personas):
    assert personas.client("owner").post(url("run_list")).status_code == 405


def test_the_run_list_filters_by_rubric(personas, active_run):
    client = personas.client("owner")
    assert f"#{active_run.pk}" in client.get(url("run_list") + "?rubric=quality").content.decode()
    other = client.get(url("run_list") + "?rubric=nope").content.decode()
    assert f"#{active_run.pk}<" not in other


def test_the_run_list_query_count_does_not_grow_with_runs(personas, world,
                                                          django_assert_max_num_queries):
    version, dataset = world
    for _ in range(6):
        start_run(personas, version, dataset)
    client = personas.client("owner")
    # Session, user, membership, runs (with rubric and dataset joined).
    with django_assert_max_num_queries(4):
        response = client.get(url("run_list"))
    assert response.content.decode().count('class="status status-queued"') == 6


# -- run page -----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owner_and_editor_see_the_run_page(personas, finished_run, who):
    response = personas.client(who).get(url("run_detail", finished_run))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Run #{finished_run.pk}" in page
    assert "openai/fake-judge" in page
    assert "Retry failed (2)" in page
    assert "Completed" in page


def test_labeller_gets_403_on_the_run_page(personas, finished_run):
    client = personas.client("labeller")
    assert client.get(url("run_detail", finished_run)).status_code == 403
    assert client.get(url("run_progress", finished_run)).status_code == 403


def test_an_unknown_run_is_404(personas, finished_run):
    client = personas.client("owner")
    assert client.get(url("run_detail", run_id=987654)).status_code == 404
    assert client.get(url("run_progress", run_id=987654)).status_code == 404


def test_the_run_pages_take_only_get(personas, finished_run):
    client = personas.client("owner")
    assert client.post(url("run_detail", finished_run)).status_code == 405
    assert client.post(url("run_progress", finished_run)).status_code == 405


def test_the_run_page_shows_errors_grouped_by_kind_with_an_example(personas, finished_run):
    response = personas.client("owner").get(url("run_detail", finished_run))
    page = response.content.decode()
    assert "Errors by kind" in page
    assert "<code>invalid_scale</code>" in page and "<code>server</code>" in page
    assert "500 from the provider" in page
    example = Judgment.objects.get(run=finished_run, error_kind="server")
    assert url("judgment_raw", finished_run, judgment_id=example.pk) in page
    assert_shown_as_text_inside_hx_disable(response, "<img src=x onerror=alert(3)>")


def test_the_run_page_shows_model_text_escaped_and_inert(personas, finished_run):
    response = personas.client("owner").get(url("run_detail", finished_run))
    page = response.content.decode()
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(" in page
    assert "<img src=x onerror" not in page
    assert_shown_as_text_inside_hx_disable(response, "<script>alert('rationale')")


def test_the_results_can_be_filtered_by_status(personas, finished_run):
    client = personas.client("owner")
    page = client.get(url("run_detail", finished_run) + "?status=failed").content.decode()
    results = page.split('id="results"', 1)[1]
    assert results.count("<tr>") == 2  # the header row and the one failed judgment
    assert "500 from the provider" in results


def test_the_results_partial_comes_alone_for_htmx(personas, finished_run):
    response = personas.client("owner").get(url("run_detail", finished_run),
                                            HTTP_HX_TARGET="results", **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<section id="results"')
    assert "<html" not in page


def test_the_run_page_query_count_does_not_grow_with_results(personas, world,
                                                             django_assert_max_num_queries):
    version, dataset = world
    run = start_run(personas, version, dataset, samples=10)  # 60 judgments, 50 on a page
    Judgment.objects.filter(run=run).update(status=JudgmentStatus.DONE, value="2",
                                            rationale="fine", attempts=1)
    Judgment.objects.filter(run=run, sample=0).update(
        status=JudgmentStatus.INVALID, value="", error_kind="invalid_json", error_message="x")
    client = personas.client("owner")
    # Session, user, membership, run; counts, totals, errors by kind; the coordinator's last
    # beat (the run is active); one page of results.
    with django_assert_max_num_queries(9):
        response = client.get(url("run_detail", run))
    assert response.content.decode().count("raw</a>") == 50


# -- progress partial ---------------------------------------------------------------------------
def test_the_progress_partial_polls_while_the_run_is_active(personas, active_run):
    response = personas.client("owner").get(url("run_progress", active_run), **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    section = next(attrs for tag, attrs in parse(response).tags if tag == "section")
    assert section["hx-get"] == url("run_progress", active_run)
    assert section["hx-trigger"] == "every 1s"
    assert "HX-Trigger" not in response
    assert "0 of 6 calls" in page
    assert url("run_cancel", active_run) in page
    assert "<html" not in page


def test_the_progress_partial_stops_polling_and_triggers_run_finished_when_done(
        personas, finished_run):
    response = personas.client("owner").get(url("run_progress", finished_run), **HTMX)
    assert response["HX-Trigger"] == "run-finished"
    section = next(attrs for tag, attrs in parse(response).tags if tag == "section")
    assert "hx-get" not in section and "hx-trigger" not in section
    assert "6 of 6 calls" in response.content.decode()


def test_the_results_reload_when_the_run_finishes(personas, finished_run):
    response = personas.client("owner").get(url("run_detail", finished_run))
    results = next(attrs for tag, attrs in parse(response).tags
                   if tag == "section" and attrs.get("id") == "results")
    assert results["hx-trigger"] == "run-finished from:body"


def test_an_unpriced_model_shows_unknown_cost(personas, finished_run):
    page = personas.client("owner").get(url("run_progress", finished_run)).content.decode()
    assert "unknown" in page
    assert "$0.0000" not in page


# -- raw output ---------------------------------------------------------------------------------
def test_raw_output_is_shown_on_demand_as_inert_text(personas, finished_run):
    judgment = Judgment.objects.filter(run=finished_run, status=JudgmentStatus.DONE).first()
    response = personas.client("editor").get(url("judgment_raw", finished_run,
                                                 judgment_id=judgment.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;div hx-get=" in page
    assert HX_RAW not in page
    assert_shown_as_text_inside_hx_disable(response, 'hx-get="/p/acme/runs/new/"')
    assert_shown_as_text_inside_hx_disable(response, "<script>alert('rationale')")


def test_the_raw_output_of_an_invalid_answer_is_kept_and_its_error_inert(personas, finished_run):
    judgment = Judgment.objects.get(run=finished_run, status=JudgmentStatus.INVALID)
    response = personas.client("owner").get(url("judgment_raw", finished_run,
                                                judgment_id=judgment.pk))
    assert "Invalid output" in response.content.decode()
    assert_shown_as_text_inside_hx_disable(response, "<img src=x onerror=alert(3)>")


def test_the_raw_output_page_block(personas, finished_run, world):
    judgment = Judgment.objects.filter(run=finished_run).first()
    owner = personas.client("owner")
    assert owner.post(url("judgment_raw", finished_run, judgment_id=judgment.pk)).status_code \
        == 405
    assert owner.get(url("judgment_raw", finished_run, judgment_id=987654)).status_code == 404
    other = start_run(personas, *world)
    # A judgment of another run, under this run's URL, is not found.
    assert owner.get(url("judgment_raw", other, judgment_id=judgment.pk)).status_code == 404
    labeller = personas.client("labeller")
    assert labeller.get(url("judgment_raw", finished_run,
                            judgment_id=judgment.pk)).status_code == 403


# -- start form ---------------------------------------------------------------------------------
def start_data(version, dataset, **overrides) -> dict:
    return {"version": str(version.pk), "dataset": str(dataset.pk), "name": "",
            "model": "openai/fake-judge", "api_base": FAKE_BASE, "temperature": "0",
            "max_tokens": "400", "samples": "1", "concurrency": "4", "timeout_s": "30",
            "use_cache": "on", "subset": "all", "sample_size": "", "seed": "0", **overrides}


@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owner_and_editor_get_the_start_form(personas, world, who):
    version, dataset = world
    response = personas.client(who).get(url("run_start") + f"?version={version.pk}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Quality v1" in page and "answers (pointwise, 3 items)" in page
    assert f'<option value="{version.pk}" selected>' in page


def test_labeller_gets_403_on_the_start_form(personas, world):
    version, dataset = world
    client = personas.client("labeller")
    assert client.get(url("run_start")).status_code == 403
    assert client.post(url("run_start"), start_data(version, dataset)).status_code == 403
    assert not JudgeRun.objects.exists()


def test_the_start_form_takes_get_and_post_only(personas):
    assert personas.client("owner").put(url("run_start")).status_code == 405


def test_starting_a_run_redirects_to_its_page(personas, world):
    version, dataset = world
    client = personas.client("editor")
    response = client.post(url("run_start"), start_data(version, dataset, samples="2"))
    run = JudgeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("run_detail", run)
    assert (run.planned_calls, run.samples, run.concurrency, run.created_by) == (
        12, 2, 4, personas.editor)
    page = client.get(response["Location"]).content.decode()
    assert f"Run #{run.pk} started: 12 calls." in page


def test_the_start_form_names_the_missing_key(personas, world, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(
        version, dataset, model="openai/gpt-4.1-mini", api_base=""))
    assert response.status_code == 422
    assert "openai/gpt-4.1-mini needs OPENAI_API_KEY" in response.content.decode()
    assert not JudgeRun.objects.exists()


def test_a_bad_setting_is_shown_at_its_field(personas, world):
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(
        version, dataset, api_base="gpu-box:8000/v1"))
    assert response.status_code == 422
    assert ("API base: An http:// or https:// URL, e.g. http://gpu-box:8000/v1."
            in response.content.decode())
    assert not JudgeRun.objects.exists()


def test_the_estimate_button_returns_the_estimate_partial(personas, world):
    version, dataset = world
    response = personas.client("owner").post(
        url("run_start"), start_data(version, dataset, samples="3", _estimate="1"), **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="estimate"')
    assert "<form" not in page
    assert "3 items x 2 criteria x 3 samples = 18 calls" in page
    assert "cost unknown (no price for this model)" in page
    assert not JudgeRun.objects.exists()


def test_the_estimate_of_a_priced_model_shows_dollars(personas, world):
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(
        version, dataset, model="openai/gpt-4.1-mini", _estimate="1"), **HTMX)
    assert "cost about $" in response.content.decode()


def test_the_estimate_also_names_the_missing_key(personas, world, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(
        version, dataset, model="openai/gpt-4.1-mini", api_base="", _estimate="1"), **HTMX)
    page = response.content.decode()
    assert "6 calls" in page
    assert "needs OPENAI_API_KEY" in page


def test_an_estimate_from_an_incomplete_form_says_what_is_missing(personas, world):
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(
        version, dataset, subset="sample", _estimate="1"), **HTMX)
    assert response.status_code == 422
    assert "Give the sample size." in response.content.decode()


def test_the_estimate_without_htmx_renders_the_whole_form(personas, world):
    version, dataset = world
    response = personas.client("owner").post(url("run_start"),
                                             start_data(version, dataset, _estimate="1"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<form" in page and "6 calls" in page


def test_the_cap_refusal_shows_the_estimate(personas, world):
    personas.project.max_queued_calls = 5
    personas.project.save()
    version, dataset = world
    response = personas.client("owner").post(url("run_start"), start_data(version, dataset))
    page = response.content.decode()
    assert response.status_code == 422
    assert "This run would queue 6 model calls" in page
    assert "3 items x 2 criteria x 1 samples = 6 calls" in page
    assert "cap of 5" in page
    assert not JudgeRun.objects.exists()


def test_a_version_of_another_project_cannot_be_chosen(personas, world):
    _, dataset = world
    foreign, _ = make_pointwise(personas.other_project, items=1)
    data = start_data(foreign, dataset)
    response = personas.client("owner").post(url("run_start"), data)
    assert response.status_code == 422
    assert not JudgeRun.objects.exists()


# -- cancel, resume, retry ---------------------------------------------------------------------
def test_cancel_stops_an_active_run(personas, active_run):
    client = personas.client("editor")
    response = client.post(url("run_cancel", active_run))
    assert response.status_code == 302
    assert response["Location"] == url("run_detail", active_run)
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.CANCELLED
    page = client.get(response["Location"]).content.decode()
    assert "Cancelled: no new calls start." in page
    assert "Resume (6 missing)" in page


def test_resume_runs_a_cancelled_run_again(personas, active_run):
    client = personas.client("owner")
    client.post(url("run_cancel", active_run))
    response = client.post(url("run_resume", active_run))
    assert response.status_code == 302
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.RUNNING
    assert "Resumed: 1 batch(es)" in client.get(response["Location"]).content.decode()


def test_resume_of_a_running_run_is_refused_with_a_message(personas, active_run):
    client = personas.client("owner")
    response = client.post(url("run_resume", active_run), follow=True)
    assert "The run is still going" in response.content.decode()
    active_run.refresh_from_db()
    assert active_run.status == RunStatus.QUEUED


def test_retry_failed_puts_failed_and_invalid_calls_back(personas, finished_run):
    client = personas.client("owner")
    response = client.post(url("run_retry_failed", finished_run), follow=True)
    assert "2 failed or invalid call(s) sent again." in response.content.decode()
    finished_run.refresh_from_db()
    assert finished_run.status == RunStatus.RUNNING
    assert Judgment.objects.filter(run=finished_run, status=JudgmentStatus.PENDING).count() == 2


@pytest.mark.parametrize("name", ["run_cancel", "run_resume", "run_retry_failed"])
def test_run_actions_block(personas, finished_run, name):
    assert personas.client("owner").get(url(name, finished_run)).status_code == 405
    assert personas.client("labeller").post(url(name, finished_run)).status_code == 403
    assert personas.client("owner").post(url(name, run_id=987654)).status_code == 404
    finished_run.refresh_from_db()
    assert finished_run.status == RunStatus.COMPLETED


@pytest.mark.parametrize("name", ["run_cancel", "run_resume", "run_retry_failed"])
def test_imported_runs_have_no_actions(personas, world, name):
    version, dataset = world
    imported = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                       dataset=dataset, name="external", kind=RunKind.IMPORTED,
                                       status=RunStatus.COMPLETED)
    assert personas.client("owner").post(url(name, imported)).status_code == 404
    page = personas.client("owner").get(url("run_detail", imported)).content.decode()
    assert "imported verdicts" in page
    assert url(name, imported) not in page


def test_a_run_saves_its_judge_and_the_form_can_start_from_it(personas, fake):
    from apps.judging.models import JudgeConfig
    from apps.judging.planning import RunSettings, judge_run_start
    from tests.judging.helpers import make_pointwise

    version, dataset = make_pointwise(personas.project, items=2)
    run = judge_run_start(project=personas.project, version=version, dataset=dataset,
                          name="careful", run_settings=RunSettings(
                              model="openai/fake-judge", api_base=fake.url, concurrency=7))
    config = JudgeConfig.objects.get(project=personas.project, name="careful")
    assert run.config_id == config.pk
    assert (config.model, config.concurrency) == ("openai/fake-judge", 7)
    page = personas.client("editor").get(reverse("run_start", args=[personas.project.slug])
                                         + f"?config={config.pk}")
    html = page.content.decode()
    assert 'value="careful"' in html and 'value="7"' in html
    assert "Start from a saved judge" in html
    outsider = personas.client("outsider").get(
        reverse("run_start", args=[personas.project.slug]) + f"?config={config.pk}")
    assert outsider.status_code == 404
