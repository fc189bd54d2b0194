"""CALIBRATED means this model, this prompt, this data (issue: rewards a trainer can trust, §5):
the evidence must be about what the bundle runs, or the export is UNCALIBRATED with the reason,
refused unless forced. The status is in judge.json, calibration.json, the README (with the
thresholds), reward.py's status line, the export page; calibration.json carries the dataset's
content hash."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from apps.exports.evidence import evidence_reasons, samples_asked
from apps.exports.services import GateRefused, judge_export, model_settings, unpack
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from tests.exports.helpers import calibrated_pointwise, label_all
from tests.exports.test_gate import run_command
from tests.factories import DatasetFactory
from tests.judging.helpers import expected_level, make_pointwise


def status_of(files: dict) -> tuple[dict, dict, str, str]:
    judge = json.loads(files["judge.json"])
    calibration = json.loads(files["calibration.json"])
    return judge, calibration, files["README.md"].decode(), files["reward.py"].decode()


@pytest.mark.django_db(transaction=True)
def test_calibrated_only_for_the_model_that_was_measured(personas, fake):
    run = calibrated_pointwise(personas.project, fake, items=60)
    export = judge_export(run=run, fmt="bundle")
    assert export.calibrated
    judge, calibration, readme, reward = status_of(unpack(export))
    assert judge["status"]["state"] == calibration["status"] == "CALIBRATED"
    assert judge["status"]["reasons"] == [] and "gate passed" in judge["status"]["reason"]
    assert f"STATUS_REASON = {judge['status']['reason']!r}" in reward
    assert "n >= 50, kappa >= 0.6 and the lower bound of its 95% interval >= 0.4" in readme
    assert calibration["evidence"]["verdicts"] == "live"
    assert calibration["evidence"]["model"] == calibration["evidence"]["bundle_model"]
    assert calibration["evidence"]["prompt_sha256"] == judge["prompt_sha256"]

    # The hash of the items in order, computed here from the recipe in the file.
    digest = hashlib.sha256()
    for item in run.dataset.items.order_by("position"):
        row = [item.external_id, item.prompt, item.response, item.response_a, item.response_b,
               item.reference]
        digest.update((json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                      .encode())
    assert calibration["dataset"]["content_sha256"] == digest.hexdigest()
    assert calibration["dataset"]["items"] == 60

    # Another model: the kappa was not measured on it.
    with pytest.raises(GateRefused) as refused:
        judge_export(run=run, fmt="bundle", model="openai/llama-3-8b-instruct")
    assert refused.value.reasons == [
        "model differs from the calibrated run (the bundle calls openai/llama-3-8b-instruct; "
        "the verdicts came from openai/fake-judge)"]
    forced = judge_export(run=run, fmt="bundle", model="openai/llama-3-8b-instruct",
                          force=True)
    assert not forced.calibrated and forced.forced
    judge, calibration, readme, reward = status_of(unpack(forced))
    assert judge["status"]["state"] == "UNCALIBRATED"
    assert judge["status"]["reason"].startswith("model differs from the calibrated run")
    assert readme.splitlines()[0].endswith("UNCALIBRATED")
    assert "**UNCALIBRATED**: model differs from the calibrated run" in readme
    assert "CALIBRATED = False" in reward
    page = personas.client("owner").get(reverse("export_detail", kwargs={
        "slug": personas.project.slug, "export_id": forced.pk})).content.decode()
    assert "model differs from the calibrated run" in page


@pytest.mark.django_db
def test_imported_verdicts_are_never_calibrated_evidence(personas, tmp_path):
    """Perfect agreement on 60 items passes the gate, but the verdicts came from elsewhere."""
    version, dataset = make_pointwise(personas.project, items=60)
    label_all(dataset, version, expected_level)
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="gpt-3.5-turbo", model="gpt-3.5-turbo",
                                  kind=RunKind.IMPORTED, status=RunStatus.COMPLETED)
    Verdict.objects.bulk_create(
        Verdict(run=run, item=item, criterion_key=key, value=str(expected_level(item.position)))
        for item in dataset.items.all() for key in ("correct", "clear"))
    with pytest.raises(GateRefused) as refused:
        judge_export(run=run, fmt="bundle", model="openai/gpt-3.5-turbo")
    assert len(refused.value.reasons) == 1
    assert refused.value.reasons[0].startswith("verdicts were imported")
    code, _, err = run_command("--project", personas.project.slug, "--rubric", "quality",
                               "--judge", "gpt-3.5-turbo", "--format", "bundle",
                               "--out", str(tmp_path / "b"))
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "is not calibrated for this export (verdicts were imported" in err
    export = judge_export(run=run, fmt="bundle", model="openai/gpt-3.5-turbo", force=True)
    assert export.report["gate"]["passed"] and not export.calibrated
    judge, calibration, readme, _ = status_of(unpack(export))
    assert calibration["status"] == "UNCALIBRATED" and calibration["evidence"]["verdicts"] == \
        "imported"
    assert judge["status"]["reason"].startswith("verdicts were imported")


@pytest.mark.django_db
@pytest.mark.parametrize("temperature, asked, warned", [(0.0, 1, True), (0.7, 3, False)])
def test_k_samples_at_temperature_zero_are_asked_once_with_a_warning(personas, tmp_path,
                                                                     temperature, asked,
                                                                     warned):
    version, _ = make_pointwise(personas.project, items=0)
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=DatasetFactory(project=personas.project, name="k"),
                                  name="k-judge", model="openai/k", kind=RunKind.LIVE,
                                  status=RunStatus.COMPLETED, samples=3,
                                  temperature=temperature)
    export = judge_export(run=run, fmt="bundle", force=True)
    judge, _, readme, _ = status_of(unpack(export))
    assert judge["model"]["samples"] == 3 and judge["model"]["samples_asked"] == asked
    assert bool(export.status.warnings) is warned
    assert ("asks once" in readme) is warned
    assert ("K = 1 sample(s) asked" if warned else "K = 3 sample(s) asked") in readme
    code, out, err = run_command("--project", personas.project.slug, "--rubric", "quality",
                                 "--judge", "k-judge", "--format", "json", "--force",
                                 "--out", str(tmp_path / "k.json"))
    assert code == 0, err
    assert ("warning: K = 3 samples at temperature 0" in err) is warned
    page = personas.client("owner").post(
        reverse("export_create", kwargs={"slug": personas.project.slug}),
        {"run": run.pk, "format": "bundle", "reference_column": "reference", "force": "on"},
        follow=True).content.decode()
    assert ("asks once" in page) is warned


@pytest.mark.django_db
def test_other_sampling_than_the_calibrated_run_is_a_reason(personas):
    version, _ = make_pointwise(personas.project, items=0)
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=DatasetFactory(project=personas.project, name="s"),
                                  name="s", model="openai/s", kind=RunKind.LIVE,
                                  status=RunStatus.COMPLETED, temperature=0.5, samples=2)
    settings = model_settings(run)
    report = {"version_hash": version.content_hash}
    assert evidence_reasons(run=run, settings=settings, report=report) == []
    changed = {**settings, "temperature": 1.0, "samples": 5}
    assert evidence_reasons(run=run, settings=changed, report=report) == [
        "sampling differs from the calibrated run (temperature 1.0 instead of 0.5)",
        "sampling differs from the calibrated run (K = 5 instead of 2)"]
    assert evidence_reasons(run=run, settings=settings, report={"version_hash": "other"}) == [
        "the report is not about the rubric version this bundle asks with"]
    assert samples_asked({"samples": 4, "temperature": 0}) == 1
    assert samples_asked({"samples": 4, "temperature": 0.2}) == 4
