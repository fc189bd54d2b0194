"""Building an export: the judge as data (judge.json), its evidence (calibration.json), the rubric
(rubric.yaml), a self-contained reward.py and a README, zipped.

reward.py embeds the app's own prompt, scale and verdict modules (standard library only), so a
trainer renders, parses and aggregates exactly as the calibration measured.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from apps.exports.evidence import (
    DATASET_HASH_RECIPE,
    dataset_content_sha256,
    prompt_sha256,
    samples_asked,
)
from apps.exports.readme import render_readme
from apps.judging import scoring as scoring_module
from apps.judging import verdicts as verdicts_module
from apps.judging.models import JudgeRun
from apps.probes import keys as guard_module
from apps.rubrics import prompting as prompting_module
from apps.rubrics import scales as scales_module
from apps.rubrics import yaml_io
from apps.rubrics.selectors import judge_spec, version_content

FORMAT_VERSION = 1
# reward.py's own code after the embedded modules, in this order (the last one runs `_main`).
RUNTIME = [Path(__file__).with_name(name) for name in
           ("reward_runtime.py", "reward_processes.py", "reward_adapters.py",
            "reward_serve.py")]
_IMPORT_RE = re.compile(r"^from apps\.[\w.]+ import (\w+)\s*$", re.MULTILINE)


@dataclass
class ExportStatus:
    """CALIBRATED or not, and why (apps/exports/evidence.py)."""

    calibrated: bool
    reason: str
    reasons: list[str]
    warnings: list[str]

    @property
    def state(self) -> str:
        return "CALIBRATED" if self.calibrated else "UNCALIBRATED"


@dataclass
class Bundle:
    files: dict[str, bytes]
    name: str
    calibrated: bool

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for filename, data in sorted(self.files.items()):
                info = zipfile.ZipInfo(f"{self.name}/{filename}", date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return buffer.getvalue()

    def write_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for filename, data in self.files.items():
            (folder / filename).write_bytes(data)


def reward_name(version) -> str:
    slug = re.sub(r"[^a-z0-9_]", "_", version.rubric.slug.lower())
    return f"rubriclab_{slug}_v{version.number}"


def judge_document(*, run: JudgeRun, model: dict, reference_column: str,
                   status: ExportStatus) -> dict:
    """judge.json: everything needed to ask this judge the calibrated questions again, and
    whether its calibration is evidence for it (`status`)."""
    version = run.rubric_version
    content = version_content(version)
    spec = judge_spec(version)
    pairwise = version.rubric.mode == "pairwise"
    judge = {
        "description": spec["description"], "system_template": spec["system_template"],
        "user_template": spec["user_template"], "criteria": spec["criteria"],
        "fence_notice": prompting_module.FENCE_NOTICE,
    }
    return {
        "format": "rubriclab-judge",
        "format_version": FORMAT_VERSION,
        "status": {"state": status.state, "reason": status.reason,
                   "reasons": status.reasons, "warnings": status.warnings},
        "rubric": {
            "slug": version.rubric.slug, "name": version.rubric.name,
            "version": version.number, "content_hash": version.content_hash,
            "mode": version.rubric.mode, "pass_threshold": version.pass_threshold,
            "description": content["description"],
        },
        "judge": judge,
        "prompt_sha256": prompt_sha256(judge, model),
        "criteria": content["criteria"],
        "model": {**model, "samples_asked": samples_asked(model)},
        "output_schema": {c["key"]: prompting_module.response_schema(c)["json_schema"]["schema"]
                          for c in content["criteria"]},
        "aggregation": {
            "rule": "weighted mean of criterion scores over criteria with weight > 0",
            "weights": {c["key"]: c["weight"] for c in content["criteria"]},
            "criterion_score": "binary: the value; ordinal: (v - 1) / (N - 1); categories: the "
                               "level's score; pairwise: A 1, tie 0.5, B 0",
            "samples": "K samples combined: mean rounded to the nearest level (halves up) for "
                       "binary and ordinal, majority for categories and pairwise; a sample "
                       "without a verdict (asked twice, still unreadable, or failed) is left "
                       "out; at temperature 0 one sample is asked (samples_asked)",
            "exact": "weights and scores as written (0.1 is 1/10), summed as fractions",
            "failure": "no reward when a weighted criterion has no valid sample",
        },
        "pairwise": {
            "orders": ["AB", "BA"] if pairwise else [],
            "inconsistent": "counted as tie" if pairwise else None,
            "default_mode": "reference" if pairwise else None,
            "reference_column": reference_column,
        },
        "source": {"judge_run": run.pk, "judge_name": run.name, "run_kind": run.kind},
    }


def _module_source(module) -> str:
    """A judge module's source with its imports of other embedded modules removed: the runtime
    gives each module the others as globals."""
    return _IMPORT_RE.sub("", inspect.getsource(module))


def reward_source(*, judge_json: bytes, name: str, status: ExportStatus, reference_column: str,
                  docstring: str) -> str:
    embedded = {
        "scales": _module_source(scales_module),
        "prompting": _module_source(prompting_module),
        "verdicts": _module_source(verdicts_module),
        "scoring": _module_source(scoring_module),
        "guard": _module_source(guard_module),
    }
    # Names are user text: escaped, so no quote or backslash in them ends the docstring.
    docstring = docstring.replace("\\", "\\\\").replace('"', '\\"')
    header = f'''"""{docstring}"""
# Generated by RubricLab. Needs only the Python standard library and litellm.
from __future__ import annotations

import asyncio
import atexit
import collections
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import types

JUDGE_SHA256 = {hashlib.sha256(judge_json).hexdigest()!r}
REWARD_NAME = {name!r}
CALIBRATED = {status.calibrated!r}
STATUS_REASON = {status.reason!r}
REFERENCE_COLUMN = {reference_column!r}
_EMBEDDED = {json.dumps(embedded, indent=0)}


def _embed(name, **given):
    """The app's own module, loaded from the source above (so prompts, parsing and scoring
    are exactly those that were calibrated)."""
    module = types.ModuleType("rubriclab_" + name)
    module.__dict__.update(given)
    exec(compile(_EMBEDDED[name], "rubriclab/" + name + ".py", "exec"), module.__dict__)
    sys.modules.setdefault(module.__name__, module)
    return module


scales = _embed("scales")
prompting = _embed("prompting", scales=scales)
verdicts = _embed("verdicts", scales=scales)
scoring = _embed("scoring", scales=scales, verdicts=verdicts)
guard = _embed("guard")

'''
    parts = []
    for path in RUNTIME:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        while lines and lines[0].startswith("#"):
            lines.pop(0)  # the runtime files' own notes, not for the bundle
        parts.append("".join(lines))
    return header + "\n\n".join(parts)


def build_bundle(*, run: JudgeRun, report: dict, model: dict, forced: bool,
                 status: ExportStatus, reference_column: str = "reference") -> Bundle:
    version = run.rubric_version
    calibrated = status.calibrated
    name = reward_name(version)
    judge = judge_document(run=run, model=model, reference_column=reference_column,
                           status=status)
    judge_json = (json.dumps(judge, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    calibration = {
        "status": status.state,
        "status_reason": status.reason,
        "status_reasons": status.reasons,
        "exported_at": timezone.now().isoformat(),
        "exported_despite_gate": forced and not calibrated,
        "rubric": {"slug": version.rubric.slug, "version": version.number,
                   "content_hash": version.content_hash},
        "judge_run": {"id": run.pk, "name": run.name, "kind": run.kind,
                      "created_at": run.created_at.isoformat(),
                      "finished_at": run.finished_at.isoformat() if run.finished_at else None},
        "evidence": {
            "verdicts": run.kind, "model": run.model or None,
            "sampling": {"temperature": run.temperature, "max_tokens": run.max_tokens,
                         "use_schema": run.use_schema, "samples": run.samples},
            "rubric_content_hash": version.content_hash,
            "prompt_sha256": judge["prompt_sha256"],
            "bundle_model": model["model"],
        },
        "dataset": {"name": run.dataset.name, "items": run.dataset.item_count,
                    "content_sha256": dataset_content_sha256(run.dataset),
                    "content_sha256_recipe": DATASET_HASH_RECIPE},
        "note": ("The verdicts measured here were imported: they were produced outside "
                 "RubricLab, with that judge's own prompt. The bundle asks the model with this "
                 "rubric's prompt.") if run.kind == "imported" else "",
        "report": report,
    }
    calibration_json = (json.dumps(calibration, indent=2, ensure_ascii=False) + "\n").encode()
    summary = _summary(report)
    docstring = (f"RubricLab reward: {version.rubric.name} v{version.number} judged by "
                 f"{model['model']} — {status.state} ({status.reason}).\n\n{summary}\n\n"
                 "See README.md in this bundle.")
    reward = reward_source(judge_json=judge_json, name=name, status=status,
                           reference_column=reference_column, docstring=docstring)
    readme = render_readme(run=run, report=report, model=model, name=name, status=status,
                           judge=judge)
    files = {
        "judge.json": judge_json,
        "calibration.json": calibration_json,
        "rubric.yaml": yaml_io.dump(version_content(version)).encode("utf-8"),
        "reward.py": reward.encode("utf-8"),
        "README.md": readme.encode("utf-8"),
    }
    return Bundle(files=files, name=name, calibrated=calibrated)


def _summary(report: dict) -> str:
    lines = []
    for key, c in report["criteria"].items():
        if c["kappa"] is None:
            lines.append(f"{key}: no calibration data")
            continue
        low, high = c["kappa_ci95"] or (None, None)
        interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
        ceiling = (f", humans among themselves alpha {c['human_alpha']:.2f}"
                   if c.get("human_alpha") is not None else "")
        lines.append(f"{key}: kappa {c['kappa']:.2f}{interval} on n = {c['n']}{ceiling}")
    if not report["gate"]["passed"]:
        lines.append("Did not pass the gate: " + "; ".join(report["gate"]["reasons"][:4]))
    return "\n".join(lines)
