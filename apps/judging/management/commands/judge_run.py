from __future__ import annotations

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.datasets.cli import dataset_or_error
from apps.judging.models import RunStatus
from apps.judging.planning import RunSettings, Subset, judge_run_start
from apps.judging.progress import batches_at_work, run_summary
from apps.projects.cli import RubricVersionFlag, project_or_error
from apps.rubrics.cli import rubric_or_error, version_or_error


class Command(RubricVersionFlag, BaseCommand):
    help = "Start a judge run on the workers; with --wait, block and print a JSON summary."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--model", required=True,
                            help="litellm model, e.g. openai/gpt-4.1-mini")
        parser.add_argument("--api-base", default="", help="OpenAI-compatible server URL")
        parser.add_argument("--version", type=int, dest="number",
                            help="rubric version (default: latest published)")
        parser.add_argument("--name", default="", help="judge name (default: the model)")
        parser.add_argument("--concurrency", type=int, default=16)
        parser.add_argument("--samples", type=int, default=1)
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--max-tokens", type=int, default=400)
        parser.add_argument("--timeout", type=float, default=60.0)
        parser.add_argument("--no-cache", action="store_true", help="do not use the call cache")
        parser.add_argument("--subset", default="all",
                            help="all | labelled | sample:N[:SEED]")
        parser.add_argument("--wait", action="store_true",
                            help="block until the run ends; exit 1 unless it completed")
        parser.add_argument("--accept-failures", action="store_true",
                            help="with --wait, also exit 0 when the run completed with failures")
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between checks")

    def handle(self, *args, **opts):
        if not 0 < opts["poll"] <= 60:  # checked before the run starts, not at the first sleep
            raise CommandError(f"--poll {opts['poll']}: give seconds, more than 0 and up to 60")
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        version = version_or_error(rubric, opts["number"], published_only=True)
        dataset = dataset_or_error(project, opts["dataset"])
        subset = _subset(opts["subset"])
        settings = RunSettings(
            model=opts["model"], api_base=opts["api_base"], temperature=opts["temperature"],
            max_tokens=opts["max_tokens"], samples=opts["samples"],
            concurrency=opts["concurrency"], timeout_s=opts["timeout"],
            use_cache=not opts["no_cache"],
        )
        try:
            run = judge_run_start(project=project, version=version, dataset=dataset,
                                  run_settings=settings, subset=subset, name=opts["name"])
        except ValidationError as exc:
            reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(_one_line(reasons)) from None
        if not opts["wait"]:
            self.stdout.write(json.dumps({"run": run.pk, "status": run.status,
                                          "planned_calls": run.planned_calls}))
            return
        try:
            while True:
                run.refresh_from_db(fields=["status"])
                if not run.is_active:
                    break
                time.sleep(opts["poll"])
            # A run that failed or was cancelled may still have answers in flight on other
            # batches: the summary counts them once they are written.
            while batches_at_work(run):
                time.sleep(opts["poll"])
        except KeyboardInterrupt:
            raise CommandError(f"stopped waiting; run {run.pk} goes on in the background") from None
        run.refresh_from_db()
        self.stdout.write(json.dumps(run_summary(run)))
        accepted = {RunStatus.COMPLETED}
        if opts["accept_failures"]:
            accepted.add(RunStatus.COMPLETED_WITH_FAILURES)
        if run.status not in accepted:
            raise CommandError(_one_line(f"run {run.pk} ended {run.status}"
                                         + (f": {run.error_message}" if run.error_message
                                            else "")))


def _one_line(text: str) -> str:
    # A provider's message can span lines; the reason a script reads is one line.
    return " ".join(text.split())


def _subset(text: str) -> Subset:
    if text in ("all", "labelled"):
        return Subset(kind=text)
    parts = text.split(":")
    if parts[0] == "sample" and len(parts) in (2, 3) and all(p.isdigit() for p in parts[1:]):
        seed = int(parts[2]) if len(parts) == 3 else 0
        return Subset(kind="sample", size=int(parts[1]), seed=seed)
    raise CommandError(f"--subset {text!r}: use all, labelled or sample:N[:SEED]")
