"""Labels to and from other tools: Label Studio's JSON export and Argilla's records, mapped to
a rubric's criteria by a small mapping file (files in tests/labeling/files, written from each
tool's documented format); a session exported in both formats and read back the same."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.datasets.models import Dataset, Item, Kind
from apps.labeling.interop_export import mapping_for
from apps.labeling.interop_import import labels_import
from apps.labeling.models import HumanLabel
from apps.labeling.selectors import session_criteria
from tests.labeling.helpers import label_one, make_dataset, make_session, make_version, url

pytestmark = pytest.mark.django_db
FILES = Path(__file__).parent / "files"


@pytest.fixture
def target(personas):
    """A published pointwise rubric and a dataset whose items are q1, q2."""
    version = make_version(personas.project)
    dataset = Dataset.objects.create(project=personas.project, name="faq", kind=Kind.POINTWISE,
                                     item_count=2)
    Item.objects.bulk_create(Item(dataset=dataset, external_id=f"q{n}", position=n - 1,
                                  prompt=f"p{n}", response=f"r{n}") for n in (1, 2))
    return version, dataset


def _stored(dataset):
    return sorted(HumanLabel.objects.filter(item__dataset=dataset).values_list(
        "item__external_id", "annotator", "criterion_key", "value", "comment", "source",
        "round"))


def _run(target, export: str | bytes, mapping: str, **kw):
    version, dataset = target
    data = (FILES / export).read_bytes() if isinstance(export, str) else export
    text = (FILES / mapping).read_text() if mapping.endswith(".yaml") else mapping
    return labels_import(dataset=dataset, version=version, data=data, mapping_text=text, **kw)


def test_a_label_studio_export_becomes_labels(target):
    result = _run(target, "labelstudio_export.json", "labelstudio_mapping.yaml")
    assert result.ok, [str(p) for p in result.problems]
    assert (result.labels, result.items, result.skipped) == (6, 2, 1)  # one cancelled
    assert _stored(target[1]) == [
        ("q1", "kim", "correct", "3", "clear and right", "labelstudio", 1),
        ("q1", "kim", "safe", "1", "clear and right", "labelstudio", 1),
        ("q1", "lee", "correct", "2", "", "labelstudio", 1),  # completed_by as an object
        ("q1", "lee", "safe", "0", "", "labelstudio", 1),
        ("q2", "kim", "correct", "1", "", "labelstudio", 1),
        ("q2", "kim", "safe", "0", "", "labelstudio", 1),
    ]


def test_argilla_records_become_labels_in_both_record_forms(target):
    result = _run(target, "argilla_records.json", "argilla_mapping.yaml")
    assert result.ok, [str(p) for p in result.problems]
    stored = _stored(target[1])
    assert ("q1", "kim", "correct", "3", "fine", "argilla", 1) in stored
    assert ("q1", "argilla-c1d2e3f4-0000-4aaa-8bbb-123456789abc", "safe", "0", "", "argilla",
            1) in stored  # a user id the mapping does not name keeps its id
    assert len(stored) == 6
    HumanLabel.objects.all().delete()
    mapping = (FILES / "argilla_mapping.yaml").read_text().replace("item_id: id",
                                                                   "item_id: metadata.id")
    old = _run(target, "argilla_v1_records.json", mapping)
    assert old.ok, [str(p) for p in old.problems]
    assert old.skipped == 1  # a discarded response
    assert [row[:4] for row in _stored(target[1])] == [("q1", "kim", "correct", "3"),
                                                       ("q1", "kim", "safe", "1")]


def test_an_annotator_who_labelled_before_is_refused_unless_told_to_add_a_round(target):
    assert _run(target, "labelstudio_export.json", "labelstudio_mapping.yaml").ok
    again = _run(target, "labelstudio_export.json", "labelstudio_mapping.yaml")
    assert not again.ok and "already has a label of item 'q1'" in again.problems[0].message
    assert "--new-round" in again.problems[0].message
    assert len(_stored(target[1])) == 6
    newer = _run(target, "labelstudio_export.json", "labelstudio_mapping.yaml", new_round=True)
    assert newer.ok and newer.new_rounds == 6
    assert sorted({row[-1] for row in _stored(target[1])}) == [1, 2]


@pytest.mark.parametrize("mapping, said", [
    ("format: labelstudio\ncriteria: {nope: {from: quality}}", "has no criterion 'nope'"),
    ("format: prodigy\ncriteria: {correct: quality}", "mapping.format: one of"),
    ("format: labelstudio\ncriteria: {correct: {from: quality, values: {great: 7}}}",
     "mapping.criteria.correct.values['great']"),
    ("format: labelstudio\ncriteria: {correct: quality, safe: quality}", "the same tool question"),
    ("format: labelstudio\ncriteria: []", "mapping.criteria"),
    ("[1, 2]", "mapping: must be an object"),
    ("format: labelstudio\ncriteria: {correct: quality}\nannotators: {1: ''}",
     "mapping.annotators"),
    ("a: [", "mapping: not YAML or JSON"),
    ("[" * 100_000, "mapping:"),
])
def test_a_bad_mapping_is_refused_with_where(target, mapping, said):
    result = _run(target, "labelstudio_export.json", mapping)
    assert not result.ok and said in result.problems[0].message
    assert not HumanLabel.objects.exists()


def _task(**annotation):
    base = {"completed_by": 10, "was_cancelled": False,
            "result": [{"from_name": "quality", "type": "rating", "value": {"rating": 2}}]}
    return {"id": 1, "data": {"id": "q1"}, "annotations": [{**base, **annotation}]}


MAPPING = "format: labelstudio\ncriteria: {correct: quality}\n"


@pytest.mark.parametrize("body, said", [
    (b"", "invalid JSON"),
    (b'{"tasks": 1}', "must be a JSON array"),
    (b"[NaN]", "NaN is not a JSON value"),
    (b"[" + b"9" * 5000 + b"]", "a number too long to read"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"\xff\xfe", "not UTF-8"),
    (json.dumps([_task(completed_by="k\u0000m")]).encode(), "NUL"),
    (b'[{"id": 1, "data": {"id": "q1"}, "annotations": [{"completed_by": "\\ud800", '
     b'"result": []}]}]', "unpaired surrogate"),
    (json.dumps([[1, 2]]).encode(), "a task must be an object"),
    (json.dumps([{"data": {}}]).encode(), "does not name its item"),
    (json.dumps([{"data": {"id": "zz"}, "annotations": [_task()["annotations"][0]]}]).encode(),
     "item 'zz' is not in 'faq'"),
    (json.dumps([_task(result=[{"from_name": "quality", "value": {"rating": 9}}])]).encode(),
     "9"),
    (json.dumps([_task(result=[{"from_name": "quality", "value": {"rating": True}}])]).encode(),
     "is not an answer"),
    (json.dumps([_task(result=[{"from_name": "quality", "value": {"choices": ["1", "2"]}}])]
                ).encode(), "one choice per criterion"),
    (json.dumps([_task(result=[{"from_name": "quality", "value": {"x": 1}}])]).encode(),
     "a choices or rating result"),
    (json.dumps([_task(result={"from_name": "quality"})]).encode(), "must be a list"),
    (json.dumps([_task(completed_by=None)]).encode(), "who made this annotation"),
    (json.dumps([_task(), _task()]).encode(), "twice in this file"),
    (json.dumps([_task(completed_by="x" * 10_000_000)]).encode(), None),  # a 10 MB name
])
def test_odd_label_studio_files_are_problems_not_crashes(target, body, said):
    result = _run(target, body, MAPPING)
    if said is None:  # a long name is cut to the field's length, not refused
        assert result.ok and len(HumanLabel.objects.get().annotator) == 150
        return
    assert not result.ok, "expected a problem"
    assert any(said in p.message for p in result.problems), [str(p) for p in result.problems]
    assert not HumanLabel.objects.exists()


@pytest.mark.parametrize("responses, said", [
    ({"correctness": {"value": 1}}, "must be a list"),
    ({"correctness": [1]}, "each must be {value, user_id}"),
    ({"correctness": [{"value": 7, "user_id": "u"}]}, "7"),
    ({"correctness": [{"value": [1], "user_id": "u"}]}, "is not an answer"),
    ([{"values": 3}], "must be {user_id, values, status}"),
    ("yes", "must be an object"),
])
def test_odd_argilla_records_are_problems_not_crashes(target, responses, said):
    body = json.dumps([{"id": "q1", "fields": {}, "responses": responses}]).encode()
    result = _run(target, body, "format: argilla\ncriteria: {correct: correctness}\n")
    assert not result.ok and any(said in p.message for p in result.problems), [
        str(p) for p in result.problems]
    assert not HumanLabel.objects.exists()


# -- a session out, and back in --------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["labelstudio", "argilla"])
def test_a_session_exported_in_a_tools_format_reads_back_the_same(personas, fmt):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=3, overlap=2)
    label_one(session, personas.labeller, {"correct": 1, "safe": 0}, comment='says "no"')
    label_one(session, personas.editor, {"correct": 3, "safe": 1})
    label_one(session, personas.labeller, {"correct": 2, "safe": 1})
    response = personas.client("owner").get(url("session_export", session) + f"?format={fmt}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].endswith(f'.{fmt}.json"')
    body = b"".join(response.streaming_content)
    records = json.loads(body)
    assert len(records) == 2
    if fmt == "labelstudio":
        first = records[0]
        assert first["data"]["id"] == "i0" and {"prompt", "response"} <= set(first["data"])
        from apps.labeling.interop_import import labelstudio_user_id

        mine = next(a for a in first["annotations"]
                    if a["completed_by"] == labelstudio_user_id("labeller"))
        kinds = {r["from_name"]: r["type"] for r in mine["result"]}
        assert kinds == {"correct": "rating", "safe": "choices", "comment": "textarea"}
    else:
        assert records[0]["responses"]["correct"][0]["value"] in (1, 3)
        assert set(records[0]) == {"id", "fields", "metadata", "suggestions", "responses",
                                   "vectors", "_server_id"}
    copy = make_dataset(personas.project, items=3, name="copy")
    result = labels_import(dataset=copy, version=session.rubric_version, data=body,
                           mapping_text=mapping_for(fmt, session_criteria(session)))
    assert result.ok, [str(p) for p in result.problems]

    def labels(dataset):
        return sorted(HumanLabel.objects.filter(item__dataset=dataset).values_list(
            "item__external_id", "annotator", "criterion_key", "value", "comment"))
    assert labels(copy) == labels(session.dataset) and len(labels(copy)) == 6


def test_a_pairwise_session_in_label_studio_keeps_item_terms(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=1,
                           pairwise=True)
    label_one(session, personas.labeller, {"overall": "B"})
    records = json.loads(b"".join(personas.client("owner").get(
        url("session_export", session) + "?format=labelstudio").streaming_content))
    result = records[0]["annotations"][0]["result"][0]
    assert result["type"] == "choices" and result["value"] == {"choices": ["B"]}
    assert {"response_a", "response_b"} <= set(records[0]["data"])


def test_a_labeller_exports_only_their_own_labels_in_a_tools_format(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=2, overlap=2)
    label_one(session, personas.labeller)
    label_one(session, personas.editor)
    records = json.loads(b"".join(personas.client("labeller").get(
        url("session_export", session) + "?format=argilla").streaming_content))
    users = {r["user_id"] for rows in records[0]["responses"].values() for r in rows}
    assert len(users) == 1
    dataset_url = url("dataset_labels_export", dataset_id=session.dataset_id)
    refused = personas.client("owner").get(dataset_url + "?format=labelstudio")
    assert refused.status_code == 400 and "format=jsonl or format=csv" in refused.content.decode()


# -- the command ----------------------------------------------------------------------------

def test_the_command_imports_and_says_what_it_did(personas, target, tmp_path):
    out = io.StringIO()
    call_command("labels_import", str(FILES / "labelstudio_export.json"), "--project", "acme",
                 "--dataset", "faq", "--mapping", str(FILES / "labelstudio_mapping.yaml"),
                 "--json", stdout=out)
    said = json.loads(out.getvalue())
    assert said["labels"] == 6 and said["annotators"] == ["kim", "lee"] and said["skipped"] == 1
    err = io.StringIO()
    with pytest.raises(CommandError, match="problem"):
        call_command("labels_import", str(FILES / "labelstudio_export.json"), "--project",
                     "acme", "--dataset", "faq", "--mapping",
                     str(FILES / "labelstudio_mapping.yaml"), stderr=err)
    assert "record 1, correct: 'kim' already has a label" in err.getvalue()
    with pytest.raises(CommandError, match="no such file"):
        call_command("labels_import", str(tmp_path / "nope.json"), "--project", "acme",
                     "--dataset", "faq", "--mapping", str(FILES / "labelstudio_mapping.yaml"))
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("labels_import", str(FILES / "labelstudio_export.json"), "--project",
                     "acme", "--dataset", "nope", "--mapping",
                     str(FILES / "labelstudio_mapping.yaml"))


def test_the_command_names_the_rubrics_when_it_cannot_choose(personas, target):
    from tests.world import POINTWISE

    make_version(personas.project, {**POINTWISE, "rubric": "helpful-two"})
    with pytest.raises(CommandError, match=r"2 pointwise rubrics \(helpful, helpful-two\)"):
        call_command("labels_import", str(FILES / "labelstudio_export.json"), "--project",
                     "acme", "--dataset", "faq", "--mapping",
                     str(FILES / "labelstudio_mapping.yaml"))


# -- the page ---------------------------------------------------------------------------------

def _form(target, export: bytes, mapping: str, **extra) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    version, dataset = target
    return {"dataset": dataset.pk, "version": version.pk, "mapping": mapping,
            "export": SimpleUploadedFile("export.json", export), **extra}


def test_a_real_label_studio_user_id_is_never_read_as_a_members_database_id(personas, target):
    body = json.dumps([_task(completed_by=personas.owner.pk)]).encode()
    assert _run(target, body, MAPPING).ok
    assert HumanLabel.objects.get().annotator == f"labelstudio-{personas.owner.pk}"


def test_the_import_page_stores_labels_and_says_so(personas, target):
    from django.urls import reverse

    page = reverse("labels_import", args=["acme"])
    owner = personas.client("owner")
    assert "format: labelstudio" in owner.get(page).content.decode()  # an example mapping
    response = owner.post(page, _form(target, (FILES / "labelstudio_export.json").read_bytes(),
                                      (FILES / "labelstudio_mapping.yaml").read_text()),
                          follow=True)
    assert response.status_code == 200
    assert "Imported 6 labels of 2 annotator(s) on 2 items" in response.content.decode()
    assert len(_stored(target[1])) == 6


def test_the_import_page_lists_problems_escaped_and_stores_nothing(personas, target):
    from django.urls import reverse

    bad = json.dumps([{"data": {"id": "<script>x</script>"}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "quality", "value": {"rating": 2}}]}]}])
    response = personas.client("editor").post(reverse("labels_import", args=["acme"]), _form(
        target, bad.encode(), MAPPING))
    assert response.status_code == 422
    body = response.content.decode()
    assert "record 1, id: item &#x27;&lt;script&gt;x&lt;/script&gt;&#x27; is not in" in body
    assert "<script>x" not in body and not HumanLabel.objects.exists()
    blank = personas.client("owner").post(reverse("labels_import", args=["acme"]),
                                          {"dataset": target[1].pk})
    assert blank.status_code == 422 and not HumanLabel.objects.exists()


def test_who_may_import_labels(personas, target):
    from django.urls import reverse

    page = reverse("labels_import", args=["acme"])
    assert personas.client("labeller").get(page).status_code == 403
    assert personas.client("labeller").post(page, _form(
        target, b"[]", MAPPING)).status_code == 403
    assert personas.client("outsider").get(page).status_code == 404
    assert personas.client(None).get(page).status_code == 302  # to sign in
    assert personas.client("owner").put(page).status_code == 405
    other = personas.client("owner").post(page, {**_form(target, b"[]", MAPPING),
                                                 "dataset": 10**9})
    assert other.status_code == 422  # not a dataset of this project: a form error
