"""Starting a probe run: the judge under test, judged on items the probe suite generated.

The life of a probe run:
1. The judge is named as a run (its id, or the name of a run of the rubric on the dataset) or
   as a judge config of the rubric; its model and sampling become the run's settings. Imported
   verdicts cannot be probed: a probe run asks the model.
2. A seeded sample of the dataset's items goes through apps/probes/generate.py; the probed
   items and the untouched originals are written as items of a hidden dataset of their own
   (Dataset.purpose "probes"), each with a ProbeItem saying which probe and original made it.
3. A judge run over that dataset starts through judge_run_start: the same estimate, caps,
   batches, Celery workers, call cache and progress page as any run (an original the judge
   already judged comes from the cache). Everything is written in one transaction, so a
   refused start (a cap, a bad setting) leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import random
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.datasets.models import Dataset, Item, Purpose
from apps.judging.models import JudgeConfig, JudgeRun, RunKind
from apps.judging.planning import RunSettings, judge_run_start
from apps.probes import generate
from apps.probes.models import ProbeItem, ProbeRun
from apps.rubrics.models import Rubric, RubricVersion
from apps.rubrics.selectors import version_content

TEXT_FIELDS = ("prompt", "response", "response_a", "response_b", "reference")


@dataclasses.dataclass
class JudgeUnderTest:
    name: str
    version: RubricVersion
    settings: RunSettings
    base_run: JudgeRun | None


def _settings(source) -> RunSettings:
    return RunSettings(model=source.model, api_base=source.api_base,
                       temperature=source.temperature, max_tokens=source.max_tokens,
                       samples=source.samples, concurrency=source.concurrency,
                       timeout_s=source.timeout_s, use_cache=True)


def resolve_judge_under_test(rubric: Rubric, dataset: Dataset, judge: str) -> JudgeUnderTest:
    """A run id ("12" or "#12"), the name of a run of the rubric on the dataset (its latest),
    or the name of a judge config of the rubric (its latest version's)."""
    text = str(judge or "").strip()
    if not text or "\x00" in text:
        raise ValidationError({"judge": "Name the judge under test: a run id or a judge name."})
    runs = (JudgeRun.objects.filter(rubric_version__rubric=rubric, dataset=dataset,
                                    rescore__isnull=True)
            .select_related("rubric_version").order_by("-created_at", "-id"))
    run = None
    if text.lstrip("#").isdigit() and len(text) < 19:
        run = runs.filter(pk=int(text.lstrip("#"))).first()
    run = run or runs.filter(name=text).first()
    if run is not None:
        if run.kind == RunKind.IMPORTED or not run.model:
            raise ValidationError({"judge": (
                f"'{run.name}' is imported verdicts: a probe run asks the model, so run this "
                "judge here first (judge_run) and probe that run.")})
        return JudgeUnderTest(run.name, run.rubric_version, _settings(run), run)
    config = (JudgeConfig.objects.filter(rubric_version__rubric=rubric, name=text)
              .select_related("rubric_version").order_by("-rubric_version__number").first())
    if config is not None:
        return JudgeUnderTest(config.name, config.rubric_version, _settings(config), None)
    names = sorted(set(runs.values_list("name", flat=True)[:50]))
    raise ValidationError({"judge": (
        f"No judge '{text}' for rubric '{rubric.slug}' on '{dataset.name}'; judges: "
        f"{', '.join(names) or 'none'}.")})


def rubric_words(version: RubricVersion) -> str:
    """The rubric's own words (names, descriptions, anchors): filler a judge may reward."""
    words = []
    for criterion in version_content(version)["criteria"]:
        words += [criterion.get("name") or "", criterion.get("description") or ""]
        words += [level.get("anchor") or "" for level in criterion["scale"].get("levels", [])]
    return " ".join(w.strip() for w in words if w and w.strip())[:2000]


def _candidates(dataset: Dataset, per_probe: int, seed: int) -> list[dict]:
    """A seeded slice of the dataset's items, large enough for every probe's sample (a probe
    skips items it does not apply to), without reading a large dataset's texts whole."""
    ids = list(Item.objects.filter(dataset=dataset).order_by("position")
               .values_list("pk", flat=True))
    random.Random(seed).shuffle(ids)
    chosen = ids[: max(per_probe * 4, 200)]
    rows = Item.objects.filter(pk__in=chosen).values("pk", "external_id", *TEXT_FIELDS)
    by_pk = {row["pk"]: row for row in rows}
    return [{"key": str(pk), **by_pk[pk]} for pk in chosen if pk in by_pk]


def probe_run_start(*, rubric: Rubric, dataset: Dataset, judge: str, probes=None,
                    per_probe: int = generate.DEFAULT_PER_PROBE, seed: int = 0,
                    concurrency: int | None = None, user=None) -> ProbeRun:
    """Generate the probed items and start the judge run over them (see the module doc)."""
    if dataset.purpose != Purpose.DATA or dataset.project_id != rubric.project_id:
        raise ValidationError({"dataset": "Choose a dataset of this project."})
    if rubric.mode != dataset.kind:
        raise ValidationError({"dataset": f"A {rubric.mode} rubric needs a {rubric.mode} "
                                          "dataset."})
    under_test = resolve_judge_under_test(rubric, dataset, judge)
    pairwise = dataset.is_pairwise
    try:
        names = generate.parse_probes(probes, dataset.kind)
        items = _candidates(dataset, per_probe if isinstance(per_probe, int) else 1, seed)
        cases = generate.generate(items, pairwise=pairwise, probes=names,
                                  per_probe=per_probe, seed=seed,
                                  rubric_words=rubric_words(under_test.version))
    except generate.ProbeError as exc:
        raise ValidationError({"probes": str(exc)}) from None
    if not any(c.probe != generate.ORIGINAL for c in cases):
        raise ValidationError({"dataset": "No item of this dataset can be probed (no texts)."})
    run_settings = under_test.settings
    if concurrency is not None:
        run_settings = dataclasses.replace(run_settings, concurrency=concurrency)
    with transaction.atomic():
        token = secrets.token_hex(4)
        probe_set = Dataset.all_objects.create(
            project=rubric.project, name=f"probes {token} of {dataset.name}"[:120],
            kind=dataset.kind, purpose=Purpose.PROBES, item_count=len(cases),
            description=f"Items generated by the probe suite from '{dataset.name}'.",
            created_by=user)
        rows = [Item(dataset=probe_set, external_id=f"{n}:{case.probe}", position=n,
                     metadata={"probe": case.probe, "variant": case.variant[:500],
                               "original": case.original},
                     **{name: case.fields.get(name, "") for name in TEXT_FIELDS})
                for n, case in enumerate(cases)]
        created = Item.objects.bulk_create(rows, batch_size=1000)
        run = judge_run_start(project=rubric.project, version=under_test.version,
                              dataset=probe_set, run_settings=run_settings,
                              name=f"{under_test.name.removesuffix(' (probes)')} (probes)"[:120],
                              user=user)
        probe_run = ProbeRun.objects.create(
            project=rubric.project, rubric_version=under_test.version, dataset=dataset,
            probe_dataset=probe_set, run=run, judge=under_test.name[:120],
            base_run=under_test.base_run, probes=names, per_probe=per_probe, seed=seed,
            created_by=user)
        ProbeItem.objects.bulk_create(
            [ProbeItem(probe_run=probe_run, item=item, probe=case.probe,
                       variant=case.variant[:2000], original_id=int(case.original))
             for item, case in zip(created, cases, strict=True)], batch_size=1000)
    return probe_run
