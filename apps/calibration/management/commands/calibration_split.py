from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.calibration.data import RULES, load_criteria
from apps.calibration.looks import looks_summary
from apps.calibration.selectors import NotFound, resolve_version
from apps.calibration.splits import ensure_split, find_split, split_set_reference_rule
from apps.datasets.cli import dataset_or_error
from apps.projects.cli import project_or_error
from apps.rubrics.cli import rubric_or_error


class Command(BaseCommand):
    help = ("Show a rubric's development / test split on a dataset, drawing it first if its labels "
            "were never used (with --seed, --test-share and --rule); --rule also changes the "
            "reference rule of a split whose test results nobody has looked at yet.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--seed", type=int, help="seed of a split drawn now")
        parser.add_argument("--test-share", type=float, dest="test_share",
                            help="share of test items of a split drawn now, e.g. 0.3")
        parser.add_argument("--rule", choices=list(RULES),
                            help="reference of ordinal criteria: majority or median")
        parser.add_argument("--format", choices=["json"], default="json")

    def handle(self, *args, **opts):
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        dataset = dataset_or_error(project, opts["dataset"])
        try:
            version = resolve_version(rubric, None)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        share = opts["test_share"]
        if share is not None and not 0.05 <= share <= 0.95:
            raise CommandError("--test-share must be from 0.05 to 0.95")
        if opts["seed"] is not None and opts["seed"] < 0:
            raise CommandError("--seed must be 0 or more")
        existing = find_split(version, dataset)
        if existing is not None and (share is not None or opts["seed"] is not None):
            raise CommandError("the split was drawn already and is locked: its seed and share "
                               "cannot change")
        view = ensure_split(version=version, dataset=dataset,
                            data=load_criteria(version, dataset), seed=opts["seed"],
                            test_share=share, rule=opts["rule"])
        if view is None:
            raise CommandError(f"nothing of '{dataset.name}' is labelled on {rubric.slug}: "
                               "there is no split to draw yet")
        if opts["rule"] and view.split.ordinal_reference != opts["rule"]:
            try:
                split_set_reference_rule(split=view.split, rule=opts["rule"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
        out = {"rubric": rubric.slug, "dataset": dataset.name, "created": view.created,
               "split": view.describe(), "test_looks": looks_summary(view.split)}
        self.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
