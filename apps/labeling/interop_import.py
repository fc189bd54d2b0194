"""Labels from other labelling tools: a Label Studio JSON export or Argilla records, mapped to
a rubric's criteria by a small mapping file, stored as human labels of an existing dataset's
items. All or nothing: any problem is reported with the record and field, and nothing is stored.

The life of an import:

1. The mapping file (YAML or JSON) is read and checked against the rubric: which tool question
   feeds which criterion, how the tool's answers translate to the criterion's levels, where each
   record names its item, and (optionally) who the tool's user ids are.
2. The export is read whole (a JSON array, as both tools write it), with the same refusals as
   dataset files: NaN / Infinity, numbers too long to read, nesting too deep, NUL and unpaired
   surrogates in any text that would be stored.
3. Each record becomes labels: (item, annotator, criterion, value, comment). Label Studio:
   every annotation that is not cancelled, its `choices` / `rating` results (and a `textarea`
   as the comment); Argilla: every response of a mapped question, per user (the v2 record form
   `responses: {question: [{value, user_id}]}`, and the v1 form `responses: [{user_id, values,
   status}]`, submitted ones only).
4. Labels are inserted as imported labels of their tool. An annotator who already has a label
   of the item on a criterion is refused, unless the import is told to store a new round
   (`new_round`), which then becomes their next round (docs/decisions/0009-label-rounds.md).

Formats as documented by the tools: Label Studio "JSON" export (task format:
labelstud.io/guide/task_format), Argilla `Dataset.records.to_json` / `to_list(flatten=False)`.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import dataclass, field

import yaml
from django.db import transaction
from django.db.models import Max

from apps.datasets.models import Dataset, Item
from apps.datasets.rows import RowProblem, json_text_problem
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics import scales

FORMATS = ("labelstudio", "argilla")
SOURCE = {"labelstudio": LabelSource.LABEL_STUDIO, "argilla": LabelSource.ARGILLA}
MAX_PROBLEMS = 50
MAX_NAME = 150
# Argilla user ids of annotators exported by RubricLab: uuid5 of their name in this namespace,
# so an export read back finds its names again (interop_export.py writes them).
ARGILLA_NAMESPACE = uuid.UUID("6f1c1a8e-6d55-4a39-9d1e-2f0c8b7e5a10")


class MappingError(ValueError):
    """The mapping file is wrong; the message says where."""


def argilla_user_id(name: str) -> str:
    return str(uuid.uuid5(ARGILLA_NAMESPACE, name))


def labelstudio_user_id(name: str) -> int:
    """A stable Label Studio user number for an annotator, from their name: above the range of
    real user ids (so a real Label Studio export's ids never read as one of ours), the same for
    the same name."""
    return 1_000_000_000 + zlib.crc32(name.encode("utf-8")) % 1_000_000_000


# -- the mapping ------------------------------------------------------------------------------

@dataclass
class CriterionMap:
    key: str
    source: str  # Label Studio from_name / Argilla question name
    values: dict[str, object] | None  # tool answer (as text) -> level value; None: as is


@dataclass
class Mapping:
    format: str
    criteria: list[CriterionMap]
    item_id: str = "id"  # Label Studio: a key of task data; Argilla: "id" or metadata.K / fields.K
    comment: str = ""  # a text question / textarea whose text becomes the comment
    annotators: dict[str, str] = field(default_factory=dict)  # tool user id (text) -> name


def read_mapping(text: str, *, criteria: dict[str, dict], fmt: str | None = None) -> Mapping:
    """Parse and check a mapping file against the rubric's criteria (key -> content)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MappingError(f"mapping: not YAML or JSON{where}") from None
    except RecursionError:
        raise MappingError("mapping: nested too deeply") from None
    if not isinstance(raw, dict):
        raise MappingError("mapping: must be an object with format and criteria")
    fmt = fmt or raw.get("format")
    if fmt not in FORMATS:
        raise MappingError(f"mapping.format: one of {', '.join(FORMATS)}")
    if raw.get("format") not in (None, fmt):
        raise MappingError(f"mapping.format: the file says {raw.get('format')!r}, "
                           f"the import was told {fmt!r}")
    items = raw.get("criteria")
    if not isinstance(items, dict) or not items:
        raise MappingError("mapping.criteria: an object of criterion key -> {from, values}")
    mapped = []
    for key, spec in items.items():
        where = f"mapping.criteria.{key}"
        if key not in criteria:
            raise MappingError(f"{where}: the rubric has no criterion {key!r}; its criteria: "
                               f"{', '.join(criteria)}")
        if isinstance(spec, str):
            spec = {"from": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("from"), str) or not spec[
                "from"].strip():
            raise MappingError(f"{where}.from: the tool's question name (Label Studio "
                               "from_name, Argilla question)")
        values = spec.get("values")
        if values is not None:
            if not isinstance(values, dict) or not values:
                raise MappingError(f"{where}.values: an object of tool answer -> level")
            checked = {}
            for answer, level in values.items():
                try:
                    checked[str(answer)] = scales.coerce_value(criteria[key]["scale"], level)
                except ValueError as exc:
                    raise MappingError(f"{where}.values[{answer!r}]: {exc}") from None
            values = checked
        mapped.append(CriterionMap(key=key, source=spec["from"].strip(), values=values))
    sources = [m.source for m in mapped]
    if len(set(sources)) != len(sources):
        raise MappingError("mapping.criteria: two criteria read the same tool question")
    annotators = raw.get("annotators") or {}
    if not isinstance(annotators, dict) or not all(
            isinstance(v, str) and v.strip() and len(v) <= MAX_NAME and "\x00" not in v
            for v in annotators.values()):
        raise MappingError("mapping.annotators: an object of tool user id -> annotator name "
                           f"(1-{MAX_NAME} characters)")
    item_id = raw.get("item_id", "id")
    comment = raw.get("comment", "")
    if not isinstance(item_id, str) or not item_id.strip():
        raise MappingError("mapping.item_id: where a record names its item, e.g. id")
    if not isinstance(comment, str):
        raise MappingError("mapping.comment: the name of a text question, or leave it out")
    return Mapping(format=fmt, criteria=mapped, item_id=item_id.strip(), comment=comment.strip(),
                   annotators={str(k): v.strip() for k, v in annotators.items()})


# -- reading the export ------------------------------------------------------------------------

class _Refused(ValueError):
    pass


def _no_constants(name: str):
    raise _Refused(f"{name} is not a JSON value")


def read_export(data: bytes) -> list:
    """The tool's export as a list of records; raises ValueError with a reason."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"file: not UTF-8 (byte {exc.start})") from None
    try:
        records = json.loads(text, parse_constant=_no_constants)
    except _Refused as exc:
        raise ValueError(f"file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"file: invalid JSON: {exc.msg} (line {exc.lineno}, column "
                         f"{exc.colno})") from None
    except RecursionError:
        raise ValueError("file: nested too deeply") from None
    except ValueError as exc:  # an integer too long to read
        raise ValueError(f"file: a number too long to read ({str(exc)[:60]})") from None
    if isinstance(records, dict) and isinstance(records.get("records"), list):
        records = records["records"]  # an object that wraps the list
    if not isinstance(records, list):
        raise ValueError("file: must be a JSON array of records (tasks), as the tool exports")
    return records


# -- records -> labels -------------------------------------------------------------------------

@dataclass
class Found:
    record: int  # 1-based position in the file
    item_ref: str
    annotator: str
    key: str
    value: object
    comment: str = ""


@dataclass
class Parsed:
    labels: list[Found] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    skipped: int = 0  # cancelled annotations, unsubmitted responses

    def problem(self, record: int, where: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(RowProblem(record, where, message))


def _level(m: CriterionMap, criterion: dict, answer):
    """A tool answer as a level of the criterion, or ValueError saying why not."""
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise ValueError(f"{answer!r} is not an answer this import reads")
    if m.values is not None:
        text = str(answer)
        if text not in m.values:
            raise ValueError(f"{text!r} is not in the mapping's values ("
                             f"{', '.join(m.values)})")
        return m.values[text]
    return scales.coerce_value(criterion["scale"], answer)


def _item_ref(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        return None
    return str(value).strip()[:200]


def _name(mapping: Mapping, known: dict[str, str], tool_id, fallback: str) -> str | None:
    if tool_id is None or isinstance(tool_id, bool | float | list | dict):
        return None
    text = str(tool_id).strip()
    if not text:
        return None
    return (mapping.annotators.get(text) or known.get(text) or f"{fallback}-{text}")[:MAX_NAME]


def _storable(out: Parsed, n: int, record, what: str) -> bool:
    """A record is an object whose texts can all be stored; else a problem of record n."""
    if not isinstance(record, dict):
        out.problem(n, "", f"a {what} must be an object")
        return False
    problem = json_text_problem(record)
    if problem:
        out.problem(n, "", problem)
    return problem is None


def _labelstudio(records: list, mapping: Mapping, criteria: dict, known: dict) -> Parsed:
    out = Parsed()
    by_source = {m.source: m for m in mapping.criteria}
    for n, task in enumerate(records, start=1):
        if not _storable(out, n, task, "task"):
            continue
        data = task.get("data")
        ref = _item_ref(data.get(mapping.item_id)) if isinstance(data, dict) else None
        if ref is None:
            out.problem(n, f"data.{mapping.item_id}", "missing: the task does not name its item "
                        "(set item_id in the mapping)")
            continue
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            out.problem(n, "annotations", "must be a list")
            continue
        for a_index, annotation in enumerate(annotations):
            where = f"annotations[{a_index}]"
            if not isinstance(annotation, dict):
                out.problem(n, where, "must be an object")
                continue
            if annotation.get("was_cancelled") is True:
                out.skipped += 1
                continue
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("id") if who.get("id") is not None else who.get("email")
            annotator = _name(mapping, known, who, "labelstudio")
            if annotator is None:
                out.problem(n, f"{where}.completed_by", "missing: who made this annotation")
                continue
            results = annotation.get("result", [])
            if not isinstance(results, list):
                out.problem(n, f"{where}.result", "must be a list")
                continue
            comment, values = "", {}
            for r_index, result in enumerate(results):
                rwhere = f"{where}.result[{r_index}]"
                if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
                    out.problem(n, rwhere, "must be an object with a value")
                    continue
                source, value = result.get("from_name"), result["value"]
                if mapping.comment and source == mapping.comment:
                    text = value.get("text")
                    comment = "\n".join(t for t in text if isinstance(t, str)) if isinstance(
                        text, list) else (text if isinstance(text, str) else "")
                    continue
                m = by_source.get(source)
                if m is None:
                    continue  # a control the mapping does not use
                if "choices" in value:
                    chosen = value["choices"]
                    if not isinstance(chosen, list) or len(chosen) != 1:
                        out.problem(n, f"{rwhere}.value.choices",
                                    "one choice per criterion (a single-choice control)")
                        continue
                    answer = chosen[0]
                elif "rating" in value:
                    answer = value["rating"]
                else:
                    out.problem(n, f"{rwhere}.value", "a choices or rating result is read; "
                                f"this is {result.get('type')!r}")
                    continue
                try:
                    values[m.key] = _level(m, criteria[m.key], answer)
                except ValueError as exc:
                    out.problem(n, f"{rwhere} ({source})", str(exc))
            for key, value in values.items():
                out.labels.append(Found(n, ref, annotator, key, value, comment[:5000]))
    return out


def _argilla_ref(record: dict, item_id: str):
    if item_id == "id":
        return record.get("id")
    part, _, key = item_id.partition(".")
    holder = record.get(part)
    return holder.get(key) if isinstance(holder, dict) and key else None


def _argilla(records: list, mapping: Mapping, criteria: dict, known: dict) -> Parsed:
    out = Parsed()
    by_source = {m.source: m for m in mapping.criteria}
    for n, record in enumerate(records, start=1):
        if not _storable(out, n, record, "record"):
            continue
        ref = _item_ref(_argilla_ref(record, mapping.item_id))
        if ref is None:
            out.problem(n, mapping.item_id, "missing: the record does not name its item "
                        "(set item_id in the mapping, e.g. metadata.id)")
            continue
        responses = record.get("responses") or {}
        # (user, question) -> value, from either record form.
        answers: dict[tuple[str, str], object] = {}
        if isinstance(responses, dict):  # Argilla 2: {question: [{value, user_id}]}
            for question, given in responses.items():
                if not isinstance(given, list):
                    out.problem(n, f"responses.{question}", "must be a list")
                    continue
                for r in given:
                    if isinstance(r, dict) and r.get("status") not in (None, "submitted"):
                        out.skipped += 1
                        continue
                    if not isinstance(r, dict) or "value" not in r:
                        out.problem(n, f"responses.{question}", "each must be {value, user_id}")
                        continue
                    answers[(str(r.get("user_id")), question)] = r["value"]
        elif isinstance(responses, list):  # Argilla 1: [{user_id, values: {q: {value}}, status}]
            for i, r in enumerate(responses):
                if not isinstance(r, dict) or not isinstance(r.get("values"), dict):
                    out.problem(n, f"responses[{i}]", "must be {user_id, values, status}")
                    continue
                if r.get("status", "submitted") != "submitted":
                    out.skipped += 1
                    continue
                for question, v in r["values"].items():
                    answers[(str(r.get("user_id")), question)] = (
                        v.get("value") if isinstance(v, dict) else v)
        else:
            out.problem(n, "responses", "must be an object (or a list, Argilla 1)")
            continue
        users = sorted({user for user, _ in answers})
        for user in users:
            annotator = _name(mapping, known, None if user == "None" else user, "argilla")
            if annotator is None:
                out.problem(n, "responses", "a response without user_id")
                continue
            comment = answers.get((user, mapping.comment), "") if mapping.comment else ""
            for source, m in by_source.items():
                if (user, source) not in answers:
                    continue
                try:
                    value = _level(m, criteria[m.key], answers[(user, source)])
                except ValueError as exc:
                    out.problem(n, f"responses.{source}", str(exc))
                    continue
                out.labels.append(Found(n, ref, annotator, m.key, value,
                                        comment[:5000] if isinstance(comment, str) else ""))
    return out


# -- storing -----------------------------------------------------------------------------------

@dataclass
class ForeignImport:
    labels: int = 0
    items: int = 0
    annotators: list[str] = field(default_factory=list)
    skipped: int = 0
    new_rounds: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.ok:
            return f"{len(self.problems)} problem(s); nothing was stored"
        more = f", {self.new_rounds} of them as a new round" if self.new_rounds else ""
        skipped = f"; {self.skipped} cancelled or unsubmitted left out" if self.skipped else ""
        return (f"Imported {self.labels} labels{more} of {len(self.annotators)} annotator(s) on "
                f"{self.items} items{skipped}")


def known_annotators(dataset: Dataset) -> dict[str, str]:
    """Tool user ids that RubricLab's own exports give (see interop_export.py) -> names: the
    stable ids of the project's members and of every annotator of the project. Never a member's
    database id: a real Label Studio export's user 10 is not our user 10."""
    from apps.projects.models import Membership

    known: dict[str, str] = {}
    names = set(HumanLabel.objects.filter(item__dataset__project_id=dataset.project_id)
                .order_by().values_list("annotator", flat=True).distinct())
    names |= set(Membership.objects.filter(project_id=dataset.project_id).values_list(
        "user__username", flat=True))
    for name in names:
        known[str(labelstudio_user_id(name))] = name
        known[argilla_user_id(name)] = name
    return known


def labels_import(*, dataset: Dataset, version, data: bytes, mapping_text: str,
                  fmt: str | None = None, new_round: bool = False) -> ForeignImport:
    """Import a tool's export into `dataset` with the criteria of rubric version `version`."""
    from apps.rubrics.selectors import version_content

    result = ForeignImport()
    criteria = {c["key"]: c for c in version_content(version)["criteria"]}
    if version.rubric.mode != dataset.kind:
        result.problems.append(RowProblem(0, "rubric", f"the rubric is {version.rubric.mode}, "
                                                       f"the dataset {dataset.kind}"))
        return result
    try:
        mapping = read_mapping(mapping_text, criteria=criteria, fmt=fmt)
        records = read_export(data)
    except ValueError as exc:
        result.problems.append(RowProblem(0, "", str(exc)))
        return result
    reader = _labelstudio if mapping.format == "labelstudio" else _argilla
    parsed = reader(records, mapping, criteria, known_annotators(dataset))
    result.problems, result.skipped = parsed.problems, parsed.skipped
    if result.problems:
        return result
    refs = {f.item_ref for f in parsed.labels}
    items = dict(Item.objects.filter(dataset=dataset, external_id__in=refs).values_list(
        "external_id", "id"))
    for f in parsed.labels:
        if f.item_ref not in items:
            result.problems.append(RowProblem(f.record, mapping.item_id,
                                              f"item {f.item_ref!r} is not in '{dataset.name}'"))
            if len(result.problems) >= MAX_PROBLEMS:
                break
    seen: dict[tuple, int] = {}
    for f in parsed.labels:
        pair = (f.item_ref, f.annotator, f.key)
        if pair in seen and not result.problems:
            result.problems.append(RowProblem(
                f.record, f.key, f"{f.annotator!r} labelled item {f.item_ref!r} on {f.key!r} "
                f"twice in this file (record {seen[pair]} too)"))
        seen.setdefault(pair, f.record)
    if result.problems:
        return result
    with transaction.atomic():
        _store(dataset, parsed.labels, items, criteria, result, new_round=new_round,
               source=SOURCE[mapping.format])
        if result.problems:
            transaction.set_rollback(True)
            result.labels = result.new_rounds = 0
    return result


def _store(dataset, found: list[Found], items: dict, criteria: dict, result: ForeignImport, *,
           new_round: bool, source: str) -> None:
    signatures = {key: scales.scale_signature(c["scale"]) for key, c in criteria.items()}
    item_ids = {items[f.item_ref] for f in found}
    earlier: dict[tuple, int] = {}
    rows = (HumanLabel.objects.filter(item_id__in=item_ids,
                                      annotator__in={f.annotator for f in found})
            .values("item_id", "annotator", "criterion_key", "scale_signature")
            .annotate(top=Max("round")))
    for row in rows:
        if signatures.get(row["criterion_key"]) == row["scale_signature"]:
            earlier[(row["item_id"], row["annotator"], row["criterion_key"])] = row["top"]
    labels = []
    for f in found:
        item_id = items[f.item_ref]
        top = earlier.get((item_id, f.annotator, f.key), 0)
        if top and not new_round:
            result.problems.append(RowProblem(
                f.record, f.key, f"{f.annotator!r} already has a label of item {f.item_ref!r} "
                f"on {f.key!r} (round {top}); import with --new-round to store this one as "
                "their next round"))
            if len(result.problems) >= MAX_PROBLEMS:
                return
            continue
        result.new_rounds += bool(top)
        labels.append(HumanLabel(
            item_id=item_id, criterion_key=f.key, scale_signature=signatures[f.key],
            annotator=f.annotator, value=scales.value_to_text(f.value), comment=f.comment,
            source=source, round=top + 1))
    if result.problems:
        return
    HumanLabel.objects.bulk_create(labels, batch_size=2000)
    result.labels = len(labels)
    result.items = len({label.item_id for label in labels})
    result.annotators = sorted({label.annotator for label in labels})
