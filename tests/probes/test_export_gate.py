"""The gate with probes, at export: a judge that agrees with people passes until a probe run
shows that a master key fools it; then the export is refused with the probe's reason, unless
the probe is accepted as out of scope; calibration.json and the README carry every probe."""

from __future__ import annotations

import json

import pytest

from apps.calibration.report import calibration_report
from apps.exports.services import GateRefused, judge_export, unpack
from apps.judging.models import JudgeRun
from apps.probes.services import probe_run_start
from apps.projects.models import Project
from tests.probes.worlds import gullible_world, run_all

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(personas, fake):
    world = gullible_world(personas.project, fake)
    # Every answer is long enough, and both annotators say so: the judge agrees with them.
    world.labels([(k, "long", who, 1) for k in range(60) for who in ("ann1", "ann2")])
    return world


def test_a_fooled_judge_is_refused_at_export_until_the_probe_is_accepted(world):
    before = calibration_report(version=world.version, dataset=world.dataset, run=world.base,
                                with_bias=False)
    assert before["gate"]["passed"], before["gate"]["reasons"]
    assert before["probes"]["status"] == "not run"
    probed = run_all(probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                                     judge="fake-judge").run)
    assert probed.status == "completed"
    with pytest.raises(GateRefused, match="probes: master_key_reasoning: fooled on"):
        judge_export(run=world.base, fmt="bundle")
    Project.objects.filter(pk=world.project.pk).update(
        gate_probes_accepted="master_key_reasoning")
    export = judge_export(run=JudgeRun.objects.get(pk=world.base.pk), fmt="bundle")
    assert export.calibrated
    files = unpack(export)
    calibration = json.loads(files["calibration.json"])
    probes = calibration["report"]["probes"]
    assert set(probes["probes"]) == set(probes["worst_first"]) and len(probes["probes"]) == 14
    assert probes["gate"]["passed"] is True
    readme = files["README.md"].decode()
    assert "## Reward-hacking probes" in readme
    for name in probes["probes"]:
        assert f"| `{name}` |" in readme
    assert "Not gated: `master_key_reasoning` (accepted as out of scope)" in readme


def test_a_project_that_requires_probes_refuses_a_judge_never_probed(world):
    Project.objects.filter(pk=world.project.pk).update(gate_probes_required=True)
    with pytest.raises(GateRefused, match="probes: this judge has not been probed"):
        judge_export(run=JudgeRun.objects.get(pk=world.base.pk), fmt="bundle")
