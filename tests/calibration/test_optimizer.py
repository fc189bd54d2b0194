"""The optimizer, end to end with the scripted fake model (its verdicts follow the word threshold
the anchors state, and it answers a rewrite request with a threshold fitted to the examples):
a better rubric measurably raises development agreement, is kept and offered, and once
published it is better on the test items nobody tuned on. The test split never enters the
optimizer; the budget is a hard stop; model output of any shape is a recorded reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.calibration import optimizer as opt
from apps.calibration.models import OptimizerJob, OptimizerStatus, Proposal
from apps.calibration.report import calibration_report, load_inputs
from apps.calibration.scoring import JudgeSettings
from apps.judging.executor import run_batch
from apps.judging.models import JudgeBatch, JudgeRun, RunStatus
from apps.judging.planning import RunSettings, judge_run_start
from apps.rubrics.models import RubricNote
from apps.rubrics.selectors import current_draft, version_content
from apps.rubrics.services import rubric_publish, rubric_update
from tests.calibration.worlds import length_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _settings(fake, model="openai/fake-judge") -> JudgeSettings:
    return JudgeSettings(model=model, api_base=fake.url, concurrency=20, timeout_s=10.0)


def _start(world, fake, *, rounds=1, model="openai/fake-judge"):
    return opt.optimizer_start(rubric=world.version.rubric, dataset=world.dataset,
                               settings=_settings(fake, model), rounds=rounds, limit=None,
                               user=None)


def _run_all(run: JudgeRun) -> JudgeRun:
    for number in list(JudgeBatch.objects.filter(run=run).values_list("number", flat=True)):
        run_batch(run.pk, number)
    run.refresh_from_db()
    return run


def _test_kappa(world, version, fake) -> float:
    run = _run_all(judge_run_start(
        project=world.project, version=version, dataset=world.dataset,
        run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url, concurrency=20,
                                 timeout_s=10.0)))
    assert run.status == RunStatus.COMPLETED
    report = calibration_report(version=version, dataset=world.dataset, run=run)
    assert report["items"]["part"] == "test" and report["items"]["decides_gate"]
    return report["criteria"]["long"]["kappa"]


def test_a_better_rubric_is_found_kept_and_better_on_test(personas, fake):
    fake.control(script="length")
    world = length_world(personas.project, n=240)
    view = load_inputs(world.version, world.dataset, None).split
    before_test = _test_kappa(world, world.version, fake)

    job = _start(world, fake, rounds=2)
    assert set(job.item_ids) <= view.dev_ids and not set(job.item_ids) & view.test_ids
    fake_requests_before = len(fake.requests(100000))
    assert opt.optimizer_run(job) == OptimizerStatus.IMPROVED
    job.refresh_from_db()
    assert job.status == OptimizerStatus.IMPROVED and job.finished_at is not None
    assert 0 < job.calls_used <= job.budget_calls
    rewrite = job.proposals.get(round=1, kind="rewrite")
    assert rewrite.kept and rewrite.score > rewrite.best_before + 0.3
    assert "Fitted word thresholds" in rewrite.note
    assert rewrite.scores["long"] > job.baseline["long"]
    examples = job.proposals.get(round=1, kind="examples")
    assert not examples.kept  # the scripted judge ignores examples: no gain, not offered
    assert opt.best_proposal(job).score == max(p.score for p in job.proposals.all()
                                               if p.score is not None)
    # The test split never entered the optimizer: none of its items' texts was sent.
    sent = "\n".join(str(r) for r in fake.requests(100000)[fake_requests_before:])
    assert "Question number" in sent
    for item in world.items:
        if item.pk in view.test_ids:
            assert f"Question number {world.items.index(item)} about" not in sent

    # The user makes the best proposal the draft, publishes it, and checks it on test.
    best = opt.best_proposal(job)
    opt.proposal_apply(proposal=best, user=personas.editor)
    draft = current_draft(world.version.rubric)
    assert version_content(draft)["criteria"][0]["scale"]["levels"][1]["anchor"] == (
        best.content["criteria"][0]["scale"]["levels"][1]["anchor"])
    assert RubricNote.objects.filter(source__startswith=f"optimizer job #{job.pk}").exists()
    published = rubric_publish(rubric=world.version.rubric, user=personas.editor,
                               note="Optimizer proposal")
    after_test = _test_kappa(world, published, fake)
    assert after_test > before_test + 0.3  # the gain holds on items nobody tuned on


def test_the_budget_is_a_hard_stop(personas, fake):
    fake.control(script="length")
    world = length_world(personas.project, n=120)
    job = _start(world, fake, rounds=3)
    limit = len(job.item_ids) + 5  # the baseline and hardly more
    OptimizerJob.objects.filter(pk=job.pk).update(budget_calls=limit)
    job.refresh_from_db()
    before = fake.stats()["requests"]
    assert opt.optimizer_run(job) == OptimizerStatus.BUDGET
    job.refresh_from_db()
    assert job.status == OptimizerStatus.BUDGET and job.calls_used == limit
    assert fake.stats()["requests"] - before <= limit


def test_a_permanent_error_fails_the_job_with_its_reason(personas, fake):
    world = length_world(personas.project, n=60)
    job = _start(world, fake, model="openai/does-not-exist")
    assert opt.optimizer_run(job) == OptimizerStatus.FAILED
    job.refresh_from_db()
    assert "does-not-exist" in job.error_message and job.finished_at is not None


def test_an_answer_that_is_not_a_rewrite_is_a_recorded_reason(personas, fake):
    world = length_world(personas.project, n=60)  # no script: verdict-shaped answers
    job = _start(world, fake)
    status = opt.optimizer_run(job)
    rewrite = job.proposals.get(kind="rewrite")
    assert rewrite.error.startswith('no "anchors" mapping') and not rewrite.kept
    assert status in (OptimizerStatus.NO_GAIN, OptimizerStatus.IMPROVED)


def test_a_cancelled_or_finished_job_does_not_run_again(personas, fake):
    world = length_world(personas.project, n=30)
    job = _start(world, fake)
    assert opt.optimizer_cancel(job) is True
    assert opt.optimizer_run(job) == "not queued"
    assert not job.proposals.exists()


def test_applying_refuses_a_draft_edited_since_the_start(personas, fake):
    fake.control(script="length")
    world = length_world(personas.project, n=120)
    job = _start(world, fake)
    opt.optimizer_run(job)
    rubric_update(rubric=world.version.rubric, name="Length", description="My own edit.",
                  pass_threshold=0.5)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="draft has changed since the optimizer started"):
        opt.proposal_apply(proposal=opt.best_proposal(job), user=None)
    not_kept = Proposal.objects.filter(job=job, kept=False).first()
    with pytest.raises(ValidationError, match="Only a proposal that beat the draft"):
        opt.proposal_apply(proposal=not_kept, user=None)


def test_the_optimizer_views(personas, fake):
    fake.control(script="length")
    world = length_world(personas.project, n=60)
    slug = world.project.slug
    page = personas.client("editor").get(reverse("workbench", args=[slug, "len"])).content.decode()
    assert "Suggest a better rubric</button>" in page
    assert "1 round: at most" in page and "5 rounds: at most" in page
    start = reverse("workbench_optimize", args=[slug, "len"])
    assert personas.client("labeller").post(start, {}).status_code == 403
    assert personas.client("outsider").post(start, {}).status_code == 404
    assert personas.client("editor").get(start).status_code == 405
    editor = personas.client("editor")
    response = editor.post(start, {"dataset": world.dataset.pk, "rounds": "9",
                                   "model": "openai/fake-judge", "api_base": fake.url})
    assert "From 1 to 5 rounds" in editor.get(response["Location"]).content.decode()
    personas.client("editor").post(start, {"dataset": world.dataset.pk, "rounds": "1",
                                           "model": "openai/fake-judge", "api_base": fake.url})
    job = OptimizerJob.objects.get()
    section = reverse("workbench_optimizer", args=[slug, "len"]) + f"?dataset={world.dataset.pk}"
    polled = personas.client("editor").get(section).content.decode()
    assert 'hx-trigger="every 2s"' in polled and f"of {job.budget_calls:,} calls" in polled
    assert personas.client("labeller").get(section).status_code == 403
    opt.optimizer_run(job)
    done = personas.client("editor").get(section).content.decode()
    assert "Make this proposal the draft" in done and 'hx-trigger="every 2s"' not in done
    apply = reverse("workbench_proposal_apply", args=[slug, "len", job.pk])
    assert personas.client("labeller").post(apply, {}).status_code == 403
    assert personas.client("editor").post(apply, {"proposal": "x"}).status_code == 404
    best = opt.best_proposal(job)
    assert personas.client("editor").post(apply, {"proposal": best.pk}).status_code == 302
    best.refresh_from_db()
    assert best.applied_at is not None
    cancel = reverse("workbench_optimizer_cancel", args=[slug, "len", job.pk])
    assert personas.client("labeller").post(cancel).status_code == 403
    assert personas.client("editor").post(cancel).status_code == 302  # already ended: says so


@pytest.mark.slow
def test_the_job_runs_on_a_real_worker(personas, fake, start_worker):
    from tests.judging.helpers import wait_for

    worker = start_worker()
    fake.control(script="length")
    world = length_world(personas.project, n=80)
    job = _start(world, fake)
    wait_for(lambda: OptimizerJob.objects.get(pk=job.pk).status not in (
        OptimizerStatus.QUEUED, OptimizerStatus.RUNNING), timeout=120, what="the optimizer",
        worker=worker)
    job.refresh_from_db()
    assert job.status == OptimizerStatus.IMPROVED, job.error_message
