"""judge_export: the gate, then the artifact, then the stored record (STYLE.md 3)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

from django.core.exceptions import ValidationError

from apps.calibration.report import Thresholds, calibration_report
from apps.exports import examples
from apps.exports.bundle import ExportStatus, build_bundle, reward_name
from apps.exports.evidence import evidence_reasons, export_warnings, status_reason
from apps.exports.models import Export, ExportFormat
from apps.exports.openai_grader import build_graders, grader_problems, grader_uses_reference
from apps.judging.models import FINISHED_STATUSES, JudgeRun, RunKind
from apps.rubrics.selectors import judge_spec


class GateRefused(Exception):
    """The judge is not calibrated for this export (it failed the gate, or its evidence does
    not match what the export runs) and the export was not forced."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# What a bundle may name. Both are written into generated files a trainer runs (reward.py,
# train_trl.py), so anything beyond these characters is refused rather than escaped: a litellm
# model name ("openai/gpt-4o-mini", "ollama/llama3:8b", "vertex_ai/gemini-1.5-pro@001") and a
# dataset column name.
_MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+\-]{0,199}")
_COLUMN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,79}")


def export_input_errors(*, model: str, reference_column: str) -> dict[str, str]:
    """Field -> reason for a model or reference column a bundle cannot carry."""
    errors = {}
    if not _MODEL_RE.fullmatch(model):
        errors["model"] = (f"'{model[:80]}' is not a litellm model name (letters, digits and "
                           "_ . : / @ + -, e.g. openai/gpt-4o-mini); give the model the bundle "
                           "should call")
    if not _COLUMN_RE.fullmatch(reference_column):
        errors["reference_column"] = (f"'{reference_column[:80]}' is not a column name "
                                      "(a letter or _, then letters, digits, _ . -; at most 80)")
    return errors


def model_settings(run: JudgeRun, model: str = "") -> dict:
    """The judge's model and sampling as the bundle will call it."""
    name = model.strip() or run.model or run.name
    if run.kind == RunKind.IMPORTED and not model.strip() and "/" not in name:
        name = f"openai/{name}" if name.startswith(("gpt-", "o1", "o3", "o4")) else name
    return {
        "model": name, "api_base": run.api_base or "", "temperature": run.temperature,
        "max_tokens": run.max_tokens, "samples": run.samples,
        "concurrency": max(1, min(run.concurrency, 256)), "timeout_s": run.timeout_s,
        "use_schema": bool(run.use_schema),
    }


def export_status(*, run: JudgeRun, report: dict, settings: dict) -> ExportStatus:
    """CALIBRATED only when the gate passed on evidence that matches the export."""
    evidence = evidence_reasons(run=run, settings=settings, report=report)
    calibrated = bool(report["gate"]["passed"]) and not evidence
    reasons = evidence + [f"gate: {r}" for r in report["gate"]["reasons"]]
    return ExportStatus(calibrated=calibrated,
                        reason=status_reason(calibrated=calibrated, report=report,
                                             evidence=evidence),
                        reasons=reasons, warnings=export_warnings(run))


def _artifact(fmt: str, run: JudgeRun, report: dict, model: dict, forced: bool,
              reference_column: str, status: ExportStatus) -> tuple[str, bytes]:
    name = reward_name(run.rubric_version)
    if fmt == ExportFormat.OPENAI:
        spec = judge_spec(run.rubric_version)
        graders = build_graders(spec, model, name=name,
                                uses_reference=grader_uses_reference(spec, run.dataset))
        problems = grader_problems(graders["grader"])
        if graders["label_grader"]:
            problems += grader_problems(graders["label_grader"], "label_grader")
        if problems:  # a bug of ours, never the user's: refuse rather than ship it
            raise ValidationError("; ".join(problems))
        document = {**graders, "rubriclab": {
            "status": status.state, "status_reason": status.reason,
            "warnings": status.warnings,
            "rubric": report["rubric"], "version": report["version"],
            "content_hash": report["version_hash"], "judge_run": run.pk,
            "gate": report["gate"],
            "usage": "Pass 'grader' as method.reinforcement.grader of a fine-tuning job; "
                     "'label_grader' (pairwise) suits evaluations.",
        }}
        return f"{name}.openai.json", (json.dumps(document, indent=2) + "\n").encode()
    bundle = build_bundle(run=run, report=report, model=model, forced=forced,
                          reference_column=reference_column, status=status)
    if fmt == ExportFormat.JSON:
        document = {"judge": json.loads(bundle.files["judge.json"]),
                    "calibration": json.loads(bundle.files["calibration.json"])}
        return f"{name}.json", (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    if fmt in (ExportFormat.TRL, ExportFormat.VERL, ExportFormat.OPENRLHF):
        bundle.files.update(examples.for_trainer(fmt, name=name, pairwise=run.is_pairwise,
                                                 reference_column=reference_column))
    return f"{name}-{fmt}.zip" if fmt != ExportFormat.BUNDLE else f"{name}.zip", bundle.zip_bytes()


def calibration_summary(report: dict) -> list[dict]:
    """Per criterion that carries weight: key, n, kappa and its 95% interval."""
    out = []
    for key, c in report["criteria"].items():
        if c["weight"] <= 0:
            continue
        low, high = c["kappa_ci95"] or (None, None)
        out.append({"key": key, "n": c["n"], "kappa": c["kappa"], "low": low, "high": high})
    return out


def judge_export(*, run: JudgeRun, fmt: str, user=None, force: bool = False, model: str = "",
                 reference_column: str = "reference") -> Export:
    """Export a judge, refusing one that is not calibrated for this export (it fails the gate,
    or its evidence is not about what the export runs) unless `force` (then UNCALIBRATED)."""
    if fmt not in ExportFormat.values:
        raise ValidationError({"format": f"one of {', '.join(ExportFormat.values)}"})
    if run.kind == RunKind.LIVE and run.status not in FINISHED_STATUSES:
        raise ValidationError({"run": f"run #{run.pk} is {run.status}; export a finished run"})
    if not run.rubric_version.is_published:
        # A workbench re-score judges a draft, whose text may still change: never a bundle.
        raise ValidationError({"run": f"run #{run.pk} judged a draft (a workbench re-score); "
                                      "publish the version and export a run of it"})
    settings = model_settings(run, model)
    problems = export_input_errors(model=settings["model"], reference_column=reference_column)
    if (not problems and reference_column != "reference"
            and run.rubric_version.rubric.mode != "pairwise"):
        problems["reference_column"] = (
            f"a reference column is chosen for pairwise rubrics; '{run.rubric_version.rubric.slug}'"
            " is pointwise (its prompt's reference, if any, is the 'reference' column)")
    if problems:
        raise ValidationError(problems)
    project = run.project
    report = calibration_report(version=run.rubric_version, dataset=run.dataset, run=run,
                                thresholds=Thresholds.for_project(project), with_bias=False)
    status = export_status(run=run, report=report, settings=settings)
    if not status.calibrated and not force:
        raise GateRefused(status.reasons)
    filename, data = _artifact(fmt, run, report, settings, force, reference_column, status)
    export = Export.objects.create(
        project=project, run=run, rubric_version=run.rubric_version, judge_name=run.name,
        model=settings["model"], format=fmt, calibrated=status.calibrated,
        forced=force and not status.calibrated,
        content_hash=run.rubric_version.content_hash, report=report,
        summary=calibration_summary(report), filename=filename,
        artifact=data, artifact_sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        created_by=user,
    )
    export.status = status  # not stored: the files carry it; callers show the warnings
    return export


def stored_status(export: Export) -> ExportStatus:
    """The status of a stored export, as it was decided (the report is stored; the evidence
    is the run's and the export's model, which do not change)."""
    if export.run is None:
        gate = export.report.get("gate", {})
        return ExportStatus(calibrated=export.calibrated, reason="; ".join(gate.get("reasons", [])),
                            reasons=[f"gate: {r}" for r in gate.get("reasons", [])], warnings=[])
    return export_status(run=export.run, report=export.report,
                         settings=model_settings(export.run, export.model))


def refusal_line(reasons: list[str]) -> str:
    """One line for a refused export (the command, the API)."""
    what = ("does not pass the gate" if any(r.startswith("gate: ") for r in reasons)
            else "is not calibrated for this export")
    return f"the judge {what} ({'; '.join(reasons)})"


def unpack(export: Export) -> dict[str, bytes]:
    """The files of a zip export (for tests and the command's --out folder)."""
    with zipfile.ZipFile(io.BytesIO(bytes(export.artifact))) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
