"""Large imports in the background (docs/decisions/0008-uploads-and-background-imports.md).

1. The upload view (or the API) stores the file in ImportChunk rows, 1 MB each, and queues
   `run_import_job` when that transaction commits: the web worker is free again as soon as the
   bytes are in the database.
2. A worker takes the job (queued -> running, by a conditional UPDATE, so a second delivery of
   the same message finds it taken) and streams the chunks through the same all-or-nothing
   `dataset_file_import` that small uploads and `dataset_import` use.
3. While it reads, a helper thread writes the bytes read and a heartbeat on the job row through
   its own connection (the import's transaction would hide them until the end); the job page
   polls that row.
4. The job ends done or failed with the importer's summary and problems, and its chunks are
   deleted. A worker that died mid-import left nothing behind (one transaction): Celery
   redelivers the message (acks_late), and the job, silent for STALE_S, is taken over. An
   unexpected error marks the job failed instead of looping.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import IO

from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from apps.intake.models import ImportChunk, ImportJob, ImportStatus
from apps.intake.services import dataset_file_import
from apps.projects.models import Project

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
CHUNKS_PER_INSERT = 8
STALE_S = 60
PROGRESS_EVERY_S = 0.5


def import_job_create(*, project: Project, stream: IO[bytes], filename: str, dataset_name: str,
                      fmt: str, kind: str | None = None, rubric_slug: str | None = None,
                      description: str = "", user=None) -> ImportJob:
    """Store the file in the database and queue its import."""
    from apps.intake.tasks import run_import_job

    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project, dataset_name=dataset_name.strip(), filename=filename[:255],
            fmt=fmt, kind=kind or "", rubric_slug=rubric_slug or "", description=description,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        number = total = 0
        pending: list[ImportChunk] = []
        while True:
            block = stream.read(CHUNK)
            if not block:
                break
            pending.append(ImportChunk(job=job, number=number, data=block))
            number += 1
            total += len(block)
            if len(pending) >= CHUNKS_PER_INSERT:
                ImportChunk.objects.bulk_create(pending)
                pending = []
        ImportChunk.objects.bulk_create(pending)
        ImportJob.objects.filter(pk=job.pk).update(bytes_total=total)
        job.bytes_total = total
        run_import_job.delay_on_commit(job.pk)
    return job


class _Progress:
    """Writes bytes read and a heartbeat from its own thread (and so its own connection)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-progress")
        self.last = 0.0

    def report(self, bytes_read: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.pool.submit(self._write, bytes_read)

    def _write(self, bytes_read: int) -> None:
        try:
            ImportJob.objects.filter(pk=self.job_id).update(bytes_read=bytes_read,
                                                            heartbeat_at=timezone.now())
        except Exception:  # progress is best effort; the import's own outcome is what counts
            log.warning("import job %s: progress not written", self.job_id, exc_info=True)

    def close(self) -> None:
        self.pool.submit(connections.close_all)
        self.pool.shutdown(wait=True)


class _ChunkStream:
    """The stored file as a byte stream, one chunk in memory at a time."""

    def __init__(self, job: ImportJob, progress: _Progress) -> None:
        self.job_id = job.pk
        self.progress = progress
        self.number = 0
        self.buffer = b""
        self.offset = 0
        self.bytes_read = 0

    def _next_chunk(self) -> bool:
        data = (ImportChunk.objects.filter(job_id=self.job_id, number=self.number)
                .values_list("data", flat=True).first())
        if data is None:
            return False
        self.buffer, self.offset = bytes(data), 0
        self.number += 1
        self.bytes_read += len(self.buffer)
        self.progress.report(self.bytes_read)
        return True

    def read(self, size: int = -1) -> bytes:
        if self.offset >= len(self.buffer) and not self._next_chunk():
            return b""
        end = len(self.buffer) if size is None or size < 0 else self.offset + size
        piece = self.buffer[self.offset: end]
        self.offset += len(piece)
        return piece


def import_job_run(job_id: int) -> str:
    now = timezone.now()
    taken = ImportJob.objects.filter(pk=job_id).filter(
        Q(status=ImportStatus.QUEUED)
        | Q(status=ImportStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=STALE_S))
    ).update(status=ImportStatus.RUNNING, started_at=now, heartbeat_at=now, bytes_read=0)
    if not taken:
        return "taken"  # finished, or another worker is on it
    job = ImportJob.objects.select_related("project", "created_by").get(pk=job_id)
    progress = _Progress(job.pk)
    try:
        result = dataset_file_import(
            project=job.project, dataset_name=job.dataset_name,
            stream=_ChunkStream(job, progress), fmt=job.fmt, size=job.bytes_total,
            kind=job.kind or None, rubric_slug=job.rubric_slug or None, user=job.created_by,
            description=job.description,
        )
    except Exception:
        log.exception("import job %s stopped on an unexpected error", job.pk)
        _finish(job, ImportStatus.FAILED,
                summary="The import stopped on an unexpected error; nothing was stored.")
        raise
    finally:
        progress.close()
    problems = [{"line": p.line, "field": p.field, "message": p.message}
                for p in result.problems]
    _finish(job, ImportStatus.DONE if result.ok else ImportStatus.FAILED,
            summary=result.summary(), problems=problems, dataset=result.dataset)
    return "done" if result.ok else "failed"


def _finish(job: ImportJob, status: str, *, summary: str, problems=None, dataset=None) -> None:
    with transaction.atomic():
        fields = {"status": status, "summary": summary, "problems": problems or [],
                  "finished_at": timezone.now(), "dataset": dataset}
        if status == ImportStatus.DONE:
            fields["bytes_read"] = job.bytes_total
        ImportJob.objects.filter(pk=job.pk).update(**fields)
        ImportChunk.objects.filter(job_id=job.pk).delete()


def get_import_job_for_user(user, slug: str, job_id: int):
    """(access, job) for the job page and the API: editors and owners of the project."""
    from django.http import Http404

    from apps.projects.access import Need, get_project_for_user

    access = get_project_for_user(user, slug, need=Need.WRITE)
    job = ImportJob.objects.filter(project=access.project, pk=job_id).first()
    if job is None:
        raise Http404("No such import")
    return access, job
