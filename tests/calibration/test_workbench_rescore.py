"""Edit and re-score, executed: the draft's judge run on development items through the real
litellm client and the fake model in its scripted mode (verdicts follow the word threshold the
anchors state), batches run in this process; before / after and the flipped items; the cache
makes unchanged prompts free; a re-score is evidence only for the text it judged; no test item
reaches a prompt. (The browser test runs the same loop on a real worker.)"""

from __future__ import annotations

import pytest

from apps.calibration.report import load_inputs
from apps.calibration.rescore import before_after, rescore_start, rescore_state
from apps.calibration.workbench import draft_edit
from apps.judging.executor import run_batch
from apps.judging.models import JudgeBatch, JudgeRun, RunStatus
from apps.judging.planning import RunSettings, judge_run_start
from apps.judging.progress import run_progress
from apps.rubrics.services import rubric_update
from tests.calibration.worlds import length_world, words_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _run_all(run: JudgeRun) -> JudgeRun:
    for number in list(JudgeBatch.objects.filter(run=run).order_by("number")
                       .values_list("number", flat=True)):
        run_batch(run.pk, number)
    run.refresh_from_db()
    return run


def _settings(fake) -> RunSettings:
    return RunSettings(model="openai/fake-judge", api_base=fake.url, concurrency=20,
                       timeout_s=10.0)


@pytest.fixture
def judged(personas, fake):
    fake.control(script="length")
    world = length_world(personas.project, n=80)
    base = _run_all(judge_run_start(project=world.project, version=world.version,
                                    dataset=world.dataset, run_settings=_settings(fake)))
    assert base.status == RunStatus.COMPLETED
    world.base = base
    world.split = load_inputs(world.version, world.dataset, base).split
    return world


def _edit_threshold(world, threshold: int) -> None:
    draft_edit(rubric=world.version.rubric, task="Answers to questions.", criteria={
        "long": {"description": "", "anchors": ["The answer is too short.",
                                                 f"The answer has at least {threshold} words."]}})


def test_an_anchor_edit_rescored_shows_the_gain_and_the_flipped_items(judged, fake):
    world = judged
    # Unchanged draft: every prompt is in the cache; nothing is asked.
    first = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                          base_run=world.base, run_settings=_settings(fake), user=None)
    requests_before = fake.stats()["requests"]
    _run_all(first.run)
    assert fake.stats()["requests"] == requests_before
    progress = run_progress(first.run)
    assert progress.cached == progress.planned == len(world.split.dev_ids)
    same = before_after(first)["criteria"][0]
    assert same["delta"] == 0 and same["better"] == same["worse"] == []

    # The anchor now says what the people apply: 40 words.
    _edit_threshold(world, 40)
    fake.reset()
    fake.control(script="length")
    second = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                           base_run=world.base, run_settings=_settings(fake), user=None)
    assert second.previous == first
    _run_all(second.run)
    assert run_progress(second.run).cached == 0  # a changed anchor: new prompts, asked anew
    assert rescore_state(second)["evidence"] == "current"
    result = before_after(second)
    entry = result["criteria"][0]
    assert result["before"] == first.run
    assert entry["after"] == 1.0 and entry["before"] < 0.7 and entry["delta"] > 0.3
    flipped = {name for name, *_ in entry["better"]}
    expected = {item.external_id for k, item in enumerate(world.items)
                if 10 <= words_of(k) < 40 and item.pk in world.split.dev_ids}
    assert flipped == expected and entry["worse"] == []
    # No test item reached a prompt: their questions are never in what the fake received.
    sent = "\n".join(str(r) for r in fake.requests(10000))
    for item in world.items:
        if item.pk in world.split.test_ids:
            assert item.prompt not in sent


def test_a_rescore_is_evidence_only_for_the_text_it_judged(judged, fake):
    world = judged
    _edit_threshold(world, 40)
    rescore = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                            base_run=world.base, run_settings=_settings(fake), user=None)
    # Someone edits the draft on the rubric page while the re-score runs.
    rubric_update(rubric=world.version.rubric, name="Length", description="Edited meanwhile.",
                  pass_threshold=0.5)
    _run_all(rescore.run)
    state = rescore_state(rescore)
    assert state["evidence"] == "mixed" and "changed while this re-score ran" in state["sentence"]

    later = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                          base_run=world.base, run_settings=_settings(fake), user=None)
    _run_all(later.run)
    assert rescore_state(later)["evidence"] == "current"
    _edit_threshold(world, 30)
    state = rescore_state(later)
    assert state["evidence"] == "stale" and later.content_hash[:12] in state["sentence"]


def test_the_rescore_page_shows_progress_then_before_and_after(judged, fake, personas):
    world = judged
    _edit_threshold(world, 40)
    client = personas.client("editor")
    url = f"/p/{world.project.slug}/calibration/len/workbench/"
    response = client.post(url + "rescores/", {
        "dataset": world.dataset.pk, "judge": world.base.pk, "model": "openai/fake-judge",
        "api_base": fake.url, "concurrency": "10", "limit": "30"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Re-scoring the draft on 30 development items." in page
    assert 'hx-trigger="every 1s"' in page
    from apps.calibration.models import Rescore

    rescore = Rescore.objects.get()
    _run_all(rescore.run)
    status = client.get(f"{url}rescores/{rescore.pk}/").content.decode()
    assert "Before and after, on the same development items" in status
    assert "<strong class=\"verdict-pass\">+" in status
    assert 'hx-trigger="every 1s"' not in status



def test_no_test_item_reaches_a_rendered_prompt(judged, fake):
    """Few-shot examples from the workbench, then a re-score: across every prompt sent, no test
    item's id, and no fenced text whose content is a test item's text."""
    import re

    from apps.calibration.splits import item_content_hash
    from apps.calibration.workbench import add_examples, open_workbench

    world = judged
    bench = open_workbench(rubric=world.version.rubric, dataset=world.dataset, run=world.base,
                           user=None)
    dev_missed = sorted(i for d in bench.data for i, v in d.judge.items()
                        if d.reference().get(i) not in (None, v))[:3]
    assert add_examples(rubric=world.version.rubric, dataset=world.dataset, view=bench.split,
                        data=bench.data, picks=[(i, "long") for i in dev_missed]) == 3
    fake.reset()
    fake.control(script="length")
    rescore = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                            base_run=world.base, run_settings=_settings(fake), user=None)
    _run_all(rescore.run)
    bodies = [r for r in fake.requests(10000) if isinstance(r, dict) and "messages" in r]
    assert len(bodies) == rescore.item_count  # every prompt changed: the examples are in it
    test_items = [i for i in world.items if i.pk in world.split.test_ids]
    test_hashes = {item_content_hash(i.fields()) for i in test_items}
    for body in bodies:
        text = "\n".join(m["content"] for m in body["messages"])
        assert "Examples that people judged" in text
        for item in test_items:
            assert not re.search(rf"\b{re.escape(item.external_id)}\b", text)
            assert item.prompt not in text
        # The example texts shown, regrouped as items, are never a test item's texts.
        prompts = re.findall(r"<<<EXAMPLE_PROMPT \w+>>>\n(.*?)\n<<<END", text, re.S)
        responses = re.findall(r"<<<EXAMPLE_RESPONSE \w+>>>\n(.*?)\n<<<END", text, re.S)
        assert len(prompts) == len(responses) == 3
        for prompt, response in zip(prompts, responses, strict=True):
            assert item_content_hash({"prompt": prompt, "response": response}) not in test_hashes
