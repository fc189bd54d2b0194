"""The workbench's disagreement view and bulk actions: development items only, strongest first,
filters, every label and verdict beside the texts, escaped; labelling, "unclear" marks and
few-shot examples; the draft editor; the per-view permission block."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.calibration.models import ItemMark, Rescore
from apps.calibration.report import load_inputs
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.models import GoldLabel, HumanLabel
from apps.rubrics.models import RubricNote
from apps.rubrics.selectors import current_draft, version_content
from tests.calibration.worlds import length_world, words_of

pytestmark = pytest.mark.django_db


def _judge(world, threshold=10, *, rationale="{} words", kind=RunKind.IMPORTED):
    run = JudgeRun.objects.create(project=world.project, rubric_version=world.version,
                                  dataset=world.dataset, name="judge", kind=kind,
                                  status=RunStatus.COMPLETED, model="openai/fake-judge")
    Verdict.objects.bulk_create(
        Verdict(run=run, item=item, criterion_key="long",
                value=str(int(words_of(k) >= threshold)),
                rationale=rationale.format(words_of(k)))
        for k, item in enumerate(world.items))
    return run


def _url(world, name="workbench", **query):
    url = reverse(name, args=[world.project.slug, "len"])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


@pytest.fixture
def world(personas):
    world = length_world(personas.project)
    world.run = _judge(world)
    world.split = load_inputs(world.version, world.dataset, world.run).split
    return world


def _expected_disagreements(world) -> set[int]:
    return {item.pk for k, item in enumerate(world.items)
            if 10 <= words_of(k) < 40 and item.pk in world.split.dev_ids}


def test_the_view_lists_development_disagreements_only(personas, world):
    html = personas.client("editor").get(_url(world)).content.decode()
    expected = _expected_disagreements(world)
    assert f"({len(expected)} on development items)" in html
    shown = {int(v.split(":")[0]) for v in re.findall(r'name="pick" value="([^"]+)"', html)}
    assert shown and shown <= expected  # the first page, all development items
    test_ids = world.split.test_ids
    assert not shown & test_ids
    for pk in test_ids:
        item = next(i for i in world.items if i.pk == pk)
        assert f">Item {item.external_id}<" not in html
    # Beside the texts: each annotator's label and the judge's rationale.
    assert "<strong>ann1</strong>: 0" in html and "<strong>ann2</strong>: 0" in html
    assert "People: <strong>0</strong> · judge: <strong>1</strong>" in html


def test_rows_are_sorted_by_strength_and_filters_narrow_them(personas, world):
    from apps.calibration.workbench import Filters, disagreements, open_workbench

    # An ordinal criterion would sort by levels apart; here: every miss is 1, ties by item.
    bench = open_workbench(rubric=world.version.rubric, dataset=world.dataset, run=world.run,
                           user=None)
    rows = disagreements(data=bench.data, run=world.run, rubric=world.version.rubric,
                         orders={}, filters=Filters(), page=1)["rows"]
    assert [r.item.pk for r in rows] == sorted(r.item.pk for r in rows)
    client = personas.client("editor")
    none = client.get(_url(world, judge_value="0")).content.decode()
    assert "No disagreement on development items with these filters" in none
    ones = client.get(_url(world, judge_value="1", human_value="0", annotator="ann1",
                           criterion="long")).content.decode()
    assert f"({len(_expected_disagreements(world))} on development items)" in ones
    nobody = client.get(_url(world, annotator="someone-else")).content.decode()
    assert "(0 on development items)" in nobody


def test_the_filters_answer_htmx_with_the_fragment(personas, world):
    response = personas.client("editor").get(
        _url(world, judge_value="1"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="disagreements")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="disagreements"')


def test_pairwise_strength_counts_both_orders():
    from apps.calibration.workbench import strength

    scale = {"type": "pairwise", "levels": []}
    assert strength(scale, "A", "B", [("B", "B")]) == 2.0  # wrong whichever comes first
    assert strength(scale, "A", "tie", [("B", "A")]) == 1.0  # flips with the order
    assert strength(scale, "A", "tie", None) == 0.5
    ordinal = {"type": "ordinal", "levels": [{"value": v} for v in range(1, 6)]}
    assert strength(ordinal, 1, 5, None) == 4.0


def test_everything_a_model_or_a_person_wrote_is_escaped(personas, world):
    Verdict.objects.filter(run=world.run).update(rationale='<script>alert("r")</script>')
    HumanLabel.objects.filter(annotator="ann1").update(comment="<img src=x onerror=alert(1)>")
    item = next(i for i in world.items if i.pk in _expected_disagreements(world))
    item.prompt = '<div hx-get="/evil" hx-trigger="load">x</div>'
    item.save()
    GoldLabel.objects.create(item=item, criterion_key="long", value="0", note="<b>gold</b>",
                             scale_signature=HumanLabel.objects.first().scale_signature)
    html = personas.client("editor").get(_url(world)).content.decode()
    assert "<script>alert(" not in html and "<img src=x" not in html
    assert 'hx-get="/evil"' not in html and "<b>gold</b>" not in html
    assert "&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt;" in html
    assert "<div hx-disable>" in html


def test_datasets_without_texts_say_so(personas, world):
    world.dataset.texts_available = False
    world.dataset.save()
    html = personas.client("editor").get(_url(world)).content.decode()
    assert "are not distributed with it" in html
    assert "<h4>Prompt</h4>" not in html
    item_page = personas.client("editor").get(reverse(
        "item_detail", args=[world.project.slug, world.dataset.pk, world.items[0].pk]))
    assert "are not distributed with it" in item_page.content.decode()


def _picks(world, n=2):
    return [f"{pk}:long" for pk in sorted(_expected_disagreements(world))[:n]]


def _post(client, world, **data):
    return client.post(reverse("workbench_bulk", args=[world.project.slug, "len"]),
                       {"dataset": world.dataset.pk, "judge": world.run.pk, **data})


def test_send_to_labelling_prefills_a_session_with_the_items(personas, world):
    response = _post(personas.client("editor"), world, action="label", pick=_picks(world))
    assert response.status_code == 302
    assert response["Location"].startswith(f"/p/{world.project.slug}/labelling/new/?mode=items")
    form = personas.client("editor").get(response["Location"]).content.decode()
    names = [i.external_id for i in world.items if f"{i.pk}:long" in _picks(world)]
    assert re.search(r'<textarea name="items"[^>]*>\s*' + re.escape("\n".join(names)), form)


def test_marking_unclear_needs_a_note_and_reaches_the_rubrics_notes(personas, world):
    client = personas.client("editor")
    _post(client, world, action="unclear", pick=_picks(world), note="  ")
    assert not ItemMark.objects.exists()
    _post(client, world, action="unclear", pick=_picks(world), note="What counts as a word?")
    assert ItemMark.objects.count() == 2
    note = RubricNote.objects.get(text="What counts as a word?")
    assert note.criterion_key == "long" and "unclear on item(s)" in note.source
    html = client.get(_url(world)).content.decode()
    assert "Marked unclear: What counts as a word?" in html


def test_few_shot_examples_come_from_development_items_only(personas, world):
    client = personas.client("editor")
    _post(client, world, action="example", pick=_picks(world, 1))
    draft = current_draft(world.version.rubric)
    examples = draft.criteria.get(key="long").examples
    picked = next(i for i in world.items if f"{i.pk}:long" == _picks(world, 1)[0])
    assert len(examples) == 1 and examples[0]["value"] == 0
    assert examples[0]["response"] == picked.response
    assert examples[0]["source"] == f"item {picked.external_id} of answers"
    # A test item sent by a tampered form is refused, and nothing is added.
    test_pk = sorted(world.split.test_ids)[0]
    response = _post(client, world, action="example", pick=[f"{test_pk}:long"])
    follow = client.get(response["Location"]).content.decode()
    assert "not development items" in follow
    assert len(draft.criteria.get(key="long").examples) == 1


def test_an_item_with_a_test_items_text_cannot_become_an_example(personas, world):
    from apps.calibration.workbench import add_examples, open_workbench

    test_item = next(i for i in world.items if i.pk in world.split.test_ids)
    dev_item = next(i for i in world.items if i.pk in _expected_disagreements(world))
    # A twin drawn into development by hand (the split never does this) is still refused.
    dev_item.prompt, dev_item.response = test_item.prompt, test_item.response
    dev_item.save()
    bench = open_workbench(rubric=world.version.rubric, dataset=world.dataset, run=world.run,
                           user=None)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="same text as a test item"):
        add_examples(rubric=world.version.rubric, dataset=world.dataset, view=bench.split,
                     data=bench.data, picks=[(dev_item.pk, "long")])


def test_bad_bulk_input_is_a_message_not_a_crash(personas, world):
    client = personas.client("editor")
    for picks in (["x:long"], ["12"], ["1:" + "k" * 61], ["\x00:long"]):
        response = _post(client, world, action="unclear", pick=picks, note="n")
        assert response.status_code == 302
    assert not ItemMark.objects.exists()
    assert _post(client, world, action="explode", pick=_picks(world)).status_code == 302
    assert _post(client, world, action="example", pick=[]).status_code == 302
    assert client.post(reverse("workbench_bulk", args=[world.project.slug, "len"]),
                       {"dataset": "x", "judge": world.run.pk}).status_code == 404


def test_the_draft_editor_changes_anchors_and_the_task(personas, world):
    client = personas.client("editor")
    response = client.post(reverse("workbench_edit", args=[world.project.slug, "len"]), {
        "dataset": world.dataset.pk, "task": "Answers; at least forty words is long.",
        "c-long-description": "Is it long?", "c-long-anchor-0": "Fewer than 40 words.",
        "c-long-anchor-1": "The answer has at least 40 words."})
    assert response.status_code == 302 and response["Location"].endswith("#editor")
    content = version_content(current_draft(world.version.rubric))
    assert content["description"] == "Answers; at least forty words is long."
    levels = content["criteria"][0]["scale"]["levels"]
    assert [lv["anchor"] for lv in levels] == ["Fewer than 40 words.",
                                               "The answer has at least 40 words."]
    # The published version is untouched.
    assert version_content(world.version)["criteria"][0]["scale"]["levels"][1]["anchor"] == (
        "The answer has at least 10 words.")
    # An anchor that the rubric's rules refuse is a message; nothing is saved.
    client.post(reverse("workbench_edit", args=[world.project.slug, "len"]), {
        "dataset": world.dataset.pk, "task": "x", "c-long-description": "d",
        "c-long-anchor-0": "", "c-long-anchor-1": "y"})
    assert version_content(current_draft(world.version.rubric))["description"] == (
        "Answers; at least forty words is long.")


def test_editing_is_refused_while_a_rescore_runs(personas, world):
    from apps.calibration.rescore import rescore_start
    from apps.judging.planning import RunSettings

    rescore_start(rubric=world.version.rubric, dataset=world.dataset, base_run=world.run,
                  run_settings=RunSettings(model="openai/fake-judge",
                                           api_base="http://127.0.0.1:9/v1"), user=None)
    client = personas.client("editor")
    response = client.post(reverse("workbench_edit", args=[world.project.slug, "len"]), {
        "dataset": world.dataset.pk, "task": "changed", "c-long-description": "d",
        "c-long-anchor-0": "a", "c-long-anchor-1": "b"})
    assert "A re-score of the draft is running" in client.get(response["Location"]).content.decode()
    assert version_content(current_draft(world.version.rubric))["description"] != "changed"


def test_a_rescore_judges_the_draft_on_development_items_only(personas, world):
    from apps.calibration.rescore import rescore_start
    from apps.judging.models import Judgment
    from apps.judging.planning import RunSettings

    rescore = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                            base_run=world.run, user=personas.editor, limit=None,
                            run_settings=RunSettings(model="openai/fake-judge",
                                                     api_base="http://127.0.0.1:9/v1"))
    judged = set(Judgment.objects.filter(run=rescore.run).values_list("item_id", flat=True))
    assert judged == world.split.dev_ids and not judged & world.split.test_ids
    assert rescore.run.rubric_version.published_at is None  # the draft
    assert rescore.item_count == len(world.split.dev_ids)
    assert rescore.content_hash and rescore.content["criteria"][0]["key"] == "long"
    # It lives in the workbench, not among the judges a report or an export offers.
    from apps.calibration.report import judges_for

    assert rescore.run not in judges_for(rescore.run.rubric_version, world.dataset)
    limited = Rescore.objects.count()
    assert limited == 1


VIEWS = [("workbench", "get"), ("workbench_bulk", "post"), ("workbench_edit", "post"),
         ("workbench_example_remove", "post"), ("workbench_rule", "post"),
         ("workbench_rescore", "post")]


@pytest.mark.parametrize("name,method", VIEWS)
def test_every_workbench_view_applies_the_project_access_rules(personas, world, name, method):
    url = reverse(name, args=[world.project.slug, "len"])
    data = {"dataset": world.dataset.pk, "judge": world.run.pk}

    def call(who, target=url):
        client = personas.client(who)
        return client.get(target) if method == "get" else client.post(target, data)

    assert call("outsider").status_code == 404
    assert call("labeller").status_code == 403
    assert call(None).status_code == 302
    assert call("owner").status_code in (200, 302)
    assert call("editor").status_code in (200, 302)
    wrong = (personas.client("editor").post(url, data) if method == "get"
             else personas.client("editor").get(url))
    assert wrong.status_code == 405
    missing = reverse(name, args=[world.project.slug, "no-such-rubric"])
    assert call("editor", missing).status_code == 404
    if method == "post":
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(personas.editor)
        assert strict.post(url, data).status_code == 403


def test_rescore_status_and_cancel_views(personas, world):
    from apps.calibration.rescore import rescore_start
    from apps.judging.planning import RunSettings

    rescore = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                            base_run=world.run, user=None,
                            run_settings=RunSettings(model="openai/fake-judge",
                                                     api_base="http://127.0.0.1:9/v1"))
    status = reverse("workbench_rescore_status", args=[world.project.slug, "len", rescore.pk])
    cancel = reverse("workbench_rescore_cancel", args=[world.project.slug, "len", rescore.pk])
    page = personas.client("editor").get(status).content.decode()
    assert 'hx-trigger="every 1s"' in page and "<progress" in page  # polled while it runs
    assert personas.client("outsider").get(status).status_code == 404
    assert personas.client("labeller").get(status).status_code == 403
    assert personas.client("labeller").post(cancel).status_code == 403
    assert personas.client("editor").post(status).status_code == 405
    assert personas.client("editor").get(cancel).status_code == 405
    assert personas.client("editor").get(reverse(
        "workbench_rescore_status", args=[world.project.slug, "len", 10**6])).status_code == 404
    assert personas.client("editor").post(cancel).status_code == 302
    rescore.run.refresh_from_db()
    assert rescore.run.status == RunStatus.CANCELLED
    after = personas.client("editor").get(status).content.decode()
    assert 'hx-trigger="every 1s"' not in after and "Re-score the draft</button>" in after


def test_the_workbench_page_query_count_is_pinned(personas, world, django_assert_max_num_queries):
    client = personas.client("editor")
    client.get(_url(world))
    with django_assert_max_num_queries(25):
        assert client.get(_url(world)).status_code == 200


def test_a_rescore_of_a_draft_cannot_be_exported(personas, world):
    from django.core.exceptions import ValidationError

    from apps.calibration.rescore import rescore_start
    from apps.exports.services import judge_export
    from apps.judging.planning import RunSettings

    rescore = rescore_start(rubric=world.version.rubric, dataset=world.dataset,
                            base_run=world.run, user=None,
                            run_settings=RunSettings(model="openai/fake-judge",
                                                     api_base="http://127.0.0.1:9/v1"))
    JudgeRun.objects.filter(pk=rescore.run.pk).update(status=RunStatus.COMPLETED)
    rescore.run.refresh_from_db()
    with pytest.raises(ValidationError, match="judged a draft"):
        judge_export(run=rescore.run, fmt="json", force=True)
