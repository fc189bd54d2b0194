"""dataset_file_import: stream a JSONL or CSV file into a dataset, all or nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from apps.datasets.ingest import clean_item_row, existing_ids, infer_kind, items_insert
from apps.datasets.models import Dataset
from apps.datasets.rows import RowProblem, iter_rows
from apps.judging.ingest import ImportedRuns, clean_judgments, verdicts_insert
from apps.labeling.ingest import clean_labels, labels_insert
from apps.projects.models import Project
from apps.rubrics.models import RubricVersion
from apps.rubrics.selectors import version_content, version_for_import, why_no_rubric

log = logging.getLogger(__name__)
BATCH = 2000


@dataclass
class ImportResult:
    dataset_name: str
    dataset: Dataset | None = None
    items: int = 0
    labels: int = 0
    verdicts: int = 0
    judges: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    stopped_early: bool = False
    rubric_version: RubricVersion | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.ok:
            more = " (stopped at the cap; there may be more)" if self.stopped_early else ""
            return f"{len(self.problems)} problem(s){more}; nothing was stored"
        parts = [f"{self.items} items"]
        if self.labels:
            parts.append(f"{self.labels} human labels")
        if self.verdicts:
            parts.append(f"{self.verdicts} verdicts of {', '.join(self.judges)}")
        return f"Imported {', '.join(parts)} into '{self.dataset_name}'"


class _Rollback(Exception):
    pass


@dataclass
class _Pending:
    line: int
    item: dict
    labels: list[dict]
    verdicts: list[dict]


class _Import:
    def __init__(self, *, project, dataset_name, kind, rubric_slug, version, user, description):
        self.project = project
        self.user = user
        self.description = description
        self.kind = kind
        self.rubric_slug = rubric_slug
        self.version = version
        self.result = ImportResult(dataset_name=dataset_name)
        # Built inside the import's transaction: the row lock makes a second import into the
        # same dataset wait, so two appends cannot both take positions from the same item_count.
        self.dataset = (
            Dataset.objects.select_for_update().filter(project=project, name=dataset_name).first()
        )
        self.cap = settings.IMPORT_MAX_ERRORS
        # Ids read since the last flush, with their lines. Older ids are in the database and
        # are found there (existing_ids), so memory stays one batch whatever the file's length.
        self.batch_ids: dict[str, int] = {}
        self.batch: list[_Pending] = []
        self.criteria: dict[str, dict] | None = None
        self.asked_for_rubric = False
        self.runs: ImportedRuns | None = None
        self.position = self.dataset.item_count if self.dataset else 0
        self.first_position = self.position  # positions from here on come from this file
        self.started = False

    # -- problems -------------------------------------------------------------------------
    def problem(self, problem: RowProblem) -> None:
        if len(self.result.problems) < self.cap:
            self.result.problems.append(problem)
        else:
            self.result.stopped_early = True

    @property
    def full(self) -> bool:
        return self.result.stopped_early

    # -- setup on the first row -----------------------------------------------------------
    def _ensure_dataset(self, row: dict, line: int) -> bool:
        if self.dataset is not None:
            if self.kind and self.kind != self.dataset.kind:
                self.problem(RowProblem(
                    0, "", f"dataset '{self.dataset.name}' is {self.dataset.kind}, not {self.kind}"
                ))
                self.kind = None
                return False
            self.kind = self.dataset.kind
            return True
        self.kind = self.kind or infer_kind(row)
        self.dataset = Dataset.objects.create(
            project=self.project, name=self.result.dataset_name, kind=self.kind,
            description=self.description, created_by=self.user,
        )
        return True

    def _criteria(self, line: int) -> dict[str, dict] | None:
        if self.criteria is not None:
            return self.criteria
        if self.version is None:
            self.version = version_for_import(
                self.project, mode=self.kind, rubric_slug=self.rubric_slug
            )
        if self.version is None:
            if not self.asked_for_rubric:
                self.asked_for_rubric = True
                why = why_no_rubric(self.project, mode=self.kind, rubric_slug=self.rubric_slug)
                self.problem(RowProblem(line, "labels",
                                        f"rows carry labels or verdicts, but {why}"))
            return None
        if self.version.rubric.mode != self.kind:
            if not self.asked_for_rubric:
                self.asked_for_rubric = True
                self.problem(RowProblem(
                    line, "labels",
                    f"rubric '{self.version.rubric.slug}' is {self.version.rubric.mode}, "
                    f"the dataset is {self.kind}",
                ))
            return None
        content = version_content(self.version)
        self.criteria = {c["key"]: c for c in content["criteria"]}
        self.runs = ImportedRuns(dataset=self.dataset, version=self.version, user=self.user)
        self.result.rubric_version = self.version
        return self.criteria

    # -- rows -----------------------------------------------------------------------------
    def row(self, line: int, row: dict) -> None:
        if not self.started:
            self.started = True
            if not self._ensure_dataset(row, line):
                return
        if self.kind is None:
            return  # the dataset could not be set up; its problem is already reported
        item, problems = clean_item_row(row, kind=self.kind, line=line)
        item_id = item["external_id"]
        if item_id:
            if item_id in self.batch_ids:
                problems.append(RowProblem(line, "id", f"duplicate id {item_id!r} in this file"))
            else:
                self.batch_ids[item_id] = line
        labels: list[dict] = []
        verdicts: list[dict] = []
        if row.get("labels") or row.get("judgments"):
            criteria = self._criteria(line)
            if criteria is not None:
                labels, more = clean_labels(row.get("labels"), criteria=criteria, line=line)
                problems += more
                verdicts, more = clean_judgments(row.get("judgments"), criteria=criteria, line=line)
                problems += more
        for p in problems:
            self.problem(p)
        if self.result.problems:
            self.batch.clear()  # nothing more will be stored; keep reading only to report
        else:
            self.batch.append(_Pending(line, item, labels, verdicts))
        if len(self.batch_ids) >= BATCH:
            self.flush()

    def _check_ids(self) -> None:
        """Report ids of this batch that the database already holds for the dataset.

        Trade-off for bounded memory: after the first problem nothing more is inserted, so an
        id that repeats one of a batch that was never inserted is found only within its own
        batch. Such a file fails anyway; the repeat is reported once the other problems are
        fixed.
        """
        if self.position == 0 or not self.batch_ids:
            return  # nothing of this dataset is in the database yet
        clashes = existing_ids(self.dataset, list(self.batch_ids))
        for item_id, position in sorted(clashes.items(), key=lambda c: self.batch_ids[c[0]]):
            if position >= self.first_position:
                message = f"duplicate id {item_id!r} in this file"
            else:
                message = f"id {item_id!r} is already in the dataset"
            self.problem(RowProblem(self.batch_ids[item_id], "id", message))

    def flush(self) -> None:
        self._check_ids()
        self.batch_ids.clear()
        if not self.batch or self.result.problems:
            self.batch.clear()
            return
        riders = any(p.labels or p.verdicts for p in self.batch)
        ids = items_insert(
            self.dataset, [p.item for p in self.batch], first_position=self.position,
            need_ids=riders,
        )
        self.position += len(self.batch)
        self.result.items += len(self.batch)
        if riders:
            self.result.labels += labels_insert(
                [(pk, p.labels) for pk, p in zip(ids, self.batch, strict=True) if p.labels]
            )
            if self.runs is not None:
                self.result.verdicts += verdicts_insert(
                    [(pk, p.verdicts) for pk, p in zip(ids, self.batch, strict=True)
                     if p.verdicts],
                    runs=self.runs,
                )
        self.batch.clear()
        if settings.DEBUG and not connection.force_debug_cursor:
            # With DEBUG on (make run), Django keeps the SQL of the last 9,000 queries, and each
            # batch INSERT carries its rows' text: memory would grow with the file. Test query
            # counters set force_debug_cursor and keep their log.
            connection.queries_log.clear()

    def finish(self) -> None:
        self.flush()
        if self.result.problems:
            # Duplicates found in the database come at a batch's end: report in file order.
            self.result.problems.sort(key=lambda p: p.line)
            return
        if self.dataset is None:
            self.problem(RowProblem(0, "", "the file has no rows"))
            return
        Dataset.objects.filter(pk=self.dataset.pk).update(item_count=self.position)
        self.dataset.item_count = self.position
        self.result.dataset = self.dataset
        if self.runs is not None:
            self.result.judges = sorted(run.name for run in self.runs.runs)


def dataset_file_import(
    *,
    project: Project,
    dataset_name: str,
    stream: IO[bytes],
    fmt: str,
    size: int | None = None,
    kind: str | None = None,
    rubric_slug: str | None = None,
    rubric_version: RubricVersion | None = None,
    user=None,
    description: str = "",
) -> ImportResult:
    """Import a file of rows into a dataset (created if new). Stores everything or nothing."""
    dataset_name = dataset_name.strip()
    limit = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
    result = ImportResult(dataset_name=dataset_name)
    if not dataset_name:
        result.problems.append(RowProblem(0, "dataset", "a dataset needs a name"))
        return result
    if size is not None and size > limit:
        result.problems.append(RowProblem(
            0, "", f"the file is {size / 1048576:.1f} MB; the limit is "
            f"{settings.DATASET_MAX_UPLOAD_MB} MB (DATASET_MAX_UPLOAD_MB)",
        ))
        return result
    try:
        with transaction.atomic():
            job = _Import(
                project=project, dataset_name=dataset_name, kind=kind, rubric_slug=rubric_slug,
                version=rubric_version, user=user, description=description,
            )
            for line, row in iter_rows(stream, fmt,
                                       max_line=settings.IMPORT_MAX_LINE_MB * 1024 * 1024):
                if isinstance(row, RowProblem):
                    job.problem(row)
                else:
                    job.row(line, row)
                if job.full:
                    break
            job.finish()
            if job.result.problems:
                raise _Rollback
    except _Rollback:
        job.result.dataset = None
        job.result.items = job.result.labels = job.result.verdicts = 0
    except IntegrityError:
        # Expected only from a concurrent import: the same new dataset name, created by another
        # upload between our look-up and our insert. Everything of this import rolled back.
        log.warning("dataset import into %r clashed with a concurrent import", dataset_name,
                    exc_info=True)
        result.problems.append(RowProblem(
            0, "dataset", f"another import created or changed '{dataset_name}' at the same "
            "time; nothing was stored, try again",
        ))
        return result
    return job.result
