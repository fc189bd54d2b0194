"""A real TRL training run, offline, on the CPU: GRPOTrainer for two optimisation steps with the
bundle's sync and async reward functions, against the fake provider (trl_grpo_run.py, in a
process of its own so that torch never enters the pytest process).

TRL comes from the `trl` dependency group (`make test` installs it, torch pinned to the CPU
wheel). This test is never skipped: without TRL it fails and says how to install it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.exports.services import judge_export
from tests.exports.helpers import hashed_pointwise, unzip

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = Path(__file__).with_name("trl_grpo_run.py")


def test_grpo_trains_two_steps_with_the_bundles_sync_and_async_rewards(personas, fake,
                                                                        tmp_path):
    check = subprocess.run([sys.executable, "-c", "import trl, torch; print(trl.__version__, "
                            "torch.__version__)"], capture_output=True, text=True)
    assert check.returncode == 0, (
        "TRL is not installed: `pip install torch==2.13.0` (the CPU wheel) and then "
        "`pip install -c <torch pin> -e .[trl]`; `make test` does both.\n" + check.stderr[-2000:])
    print("trl, torch:", check.stdout.strip())
    run = hashed_pointwise(personas.project, fake, items=6)
    export = judge_export(run=run, fmt="trl", force=True)
    bundle = unzip(bytes(export.artifact), tmp_path / "bundle")
    out = tmp_path / "out.json"
    began = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), str(bundle), str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**_env(), "RUBRICLAB_CONCURRENCY": "8"})
    print(f"GRPO subprocess: {time.monotonic() - began:.1f}s")
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads(out.read_text())
    print("seconds:", result["seconds"])
    sync_name, async_name = result["names"]
    assert async_name == sync_name + "_async"

    # The steps ran.
    assert result["global_step"] == 2
    assert result["train_loss_finite"]

    # Both reward functions were called on every step, TRL's way: keywords only, with the
    # completions, their ids, the extra column and the trainer's hooks.
    by_name = {name: [c for c in result["calls"] if c["name"] == name]
               for name in (sync_name, async_name)}
    for name, calls in by_name.items():
        assert len(calls) == 2, (name, calls)
        for call in calls:
            assert call["positional"] == 0
            assert {"prompts", "completions", "completion_ids", "topic", "trainer_state",
                    "log_extra", "log_metric"} <= set(call["keys"]), call["keys"]
            assert call["n"] == 4 and len(call["rewards"]) == 4
            assert set(call["topic"]) <= {"arithmetic-0", "arithmetic-1"} and call["topic"]
            assert call["log_extra"] and call["log_metric"]
            assert all(r is not None and 0.0 <= r <= 1.0 for r in call["rewards"])
        assert [c["trainer_state_step"] for c in calls] == [0, 1]
    # Same completions, same judge: the two functions agree, and the second asks no model.
    assert [c["rewards"] for c in by_name[sync_name]] == \
        [c["rewards"] for c in by_name[async_name]]
    assert result["judge_stats"]["failures"] == 0
    assert result["judge_stats"]["cache_hits"] >= 8

    assert result["openrlhf_types"] == {"rewards": "Tensor", "scores": "Tensor",
                                        "extra_logs": {"judge_failures": "Tensor"}}

    # TRL logged the reward metrics under the functions' names, finite, at each step.
    steps = [entry for entry in result["history"] if "loss" in entry]
    assert len(steps) == 2
    for entry in steps:
        for name in (sync_name, async_name):
            value = entry[f"rewards/{name}/mean"]
            assert math.isfinite(value) and 0.0 <= value <= 1.0
            assert f"{name}/judge_failures" in entry
        assert math.isfinite(entry["reward"])
    # The judge's status, once: in the first step's metrics and one line on stderr.
    for name in (sync_name, async_name):
        assert steps[0][f"{name}/calibrated"] == 0.0
        assert f"{name}/calibrated" not in steps[1]
    assert proc.stderr.count(f"RubricLab judge {sync_name}: UNCALIBRATED (") == 1


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": ""}
