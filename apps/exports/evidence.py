"""What an export may call CALIBRATED: the gate passed, on evidence that matches what the bundle
runs (docs/decisions/0007).

Agreement measured for one judge says nothing about another. An export is CALIBRATED only when
1. the calibration report passed the project's gate, and
2. its verdicts came from a run made here (imported verdicts were produced by someone else's
   prompt and pipeline, so they are no evidence for the model the bundle calls), and
3. the bundle calls the same model, with the same rendered prompt (the run's rubric version,
   whose content hash is in both files) and the same sampling (temperature, max_tokens, the
   verdict schema, K) as the run.
Otherwise it is UNCALIBRATED, with the reasons, and is refused unless forced, like a judge
that fails the gate.
"""

from __future__ import annotations

import hashlib
import json

from apps.datasets.models import Dataset, Item
from apps.judging.models import JudgeRun, RunKind
from apps.rubrics import prompting

SAMPLING = ("temperature", "max_tokens", "use_schema")


def evidence_reasons(*, run: JudgeRun, settings: dict, report: dict) -> list[str]:
    """Why the calibration evidence is not evidence for this export (empty when it is)."""
    reasons = []
    if run.kind == RunKind.IMPORTED:
        reasons.append(f"verdicts were imported ('{run.name}' judged outside RubricLab, with "
                       "its own prompt), so they are no evidence for the model this bundle "
                       "calls")
    elif settings["model"] != run.model:
        reasons.append(f"model differs from the calibrated run (the bundle calls "
                       f"{settings['model']}; the verdicts came from {run.model})")
    if run.kind == RunKind.LIVE:
        for name in SAMPLING:
            if settings[name] != getattr(run, name):
                reasons.append(f"sampling differs from the calibrated run ({name} "
                               f"{settings[name]} instead of {getattr(run, name)})")
        if settings["samples"] != run.samples:
            reasons.append(f"sampling differs from the calibrated run (K = "
                           f"{settings['samples']} instead of {run.samples})")
    if report.get("version_hash") != run.rubric_version.content_hash:
        reasons.append("the report is not about the rubric version this bundle asks with")
    return reasons


def samples_asked(model: dict) -> int:
    """K, except at temperature 0: K identical questions get one answer K times, so the
    bundle asks once (export_warnings says so)."""
    k = max(1, int(model["samples"]))
    return k if float(model["temperature"]) > 0 else 1


def export_warnings(run: JudgeRun) -> list[str]:
    """What the user should know about an export that is not a reason to refuse it."""
    warnings = []
    if run.samples > 1 and run.temperature == 0:
        warnings.append(
            f"K = {run.samples} samples at temperature 0 ask the same question {run.samples} "
            "times and get the same answer: the bundle asks once. For K independent samples, "
            "run the judge at a temperature above 0.")
    return warnings


def status_reason(*, calibrated: bool, report: dict, evidence: list[str]) -> str:
    """The one reason in the status line (`RubricLab judge <name>: <STATUS> (<reason>)`)."""
    if calibrated:
        t = report["thresholds"]
        n = min((c["n"] for c in report["criteria"].values() if c["gate"]["applies"]),
                default=0)
        return (f"gate passed on '{report['dataset']}': every weighted criterion has kappa >= "
                f"{t['min_kappa']}, its 95% lower bound >= {t['min_kappa_lower']}, n >= "
                f"{t['min_n']} (smallest n {n}); same model, prompt and sampling")
    reasons = list(evidence)
    if not report["gate"]["passed"]:
        gate = report["gate"]["reasons"]
        reasons.append("did not pass the gate: " + "; ".join(gate[:3])
                       + (f"; {len(gate) - 3} more" if len(gate) > 3 else ""))
    return "; ".join(reasons)[:600]


def prompt_sha256(judge: dict, model: dict) -> str:
    """A fingerprint of what every question is rendered from: templates, criteria, the fence
    notice and the output instructions, and whether the verdict schema is sent."""
    material = {"judge": judge, "fence_notice": prompting.FENCE_NOTICE,
                "instructions": [prompting.output_instruction(c) for c in judge["criteria"]],
                "use_schema": bool(model.get("use_schema"))}
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


DATASET_HASH_RECIPE = ("sha256 over the items in position order, each one line: the JSON "
                       "array [id, prompt, response, response_a, response_b, reference] "
                       "(ensure_ascii false, separators ',' and ':') and a newline")


def dataset_content_sha256(dataset: Dataset) -> str:
    """The dataset's content hash (DATASET_HASH_RECIPE), so a trainer can tell which items the
    evidence was measured on."""
    digest = hashlib.sha256()
    fields = ("external_id", "prompt", "response", "response_a", "response_b", "reference")
    items = Item.objects.filter(dataset=dataset).order_by("position", "id")
    start, step = 0, 2000
    while True:  # slices, not a server-side cursor (a connection pooler may sit in between)
        rows = list(items.values_list(*fields)[start:start + step])
        for row in rows:
            line = json.dumps(list(row), ensure_ascii=False, separators=(",", ":")) + "\n"
            digest.update(line.encode("utf-8"))
        if len(rows) < step:
            return digest.hexdigest()
        start += step
