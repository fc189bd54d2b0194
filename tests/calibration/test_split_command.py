"""calibration_split: shows the split, draws it with the given seed, share and rule when the
labels were never used, and refuses what the lock forbids with a one-line reason."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.calibration.models import CalibrationSplit
from apps.calibration.report import calibration_report
from tests.calibration.worlds import make_world

pytestmark = pytest.mark.django_db


def _split(world, *args) -> dict:
    out = io.StringIO()
    call_command("calibration_split", "--project", world.project.slug, "--rubric", "r",
                 "--dataset", "d", *args, stdout=out)
    return json.loads(out.getvalue())


def test_the_split_is_drawn_with_the_given_seed_share_and_rule(personas):
    world = make_world(personas.project, n=100)
    world.labels([(k, "quality", "a", k % 3 + 1) for k in range(100)])
    out = _split(world, "--seed", "7", "--test-share", "0.4", "--rule", "median")
    assert out["created"] is True
    assert (out["split"]["seed"], out["split"]["test_share"]) == (7, 0.4)
    assert out["split"]["ordinal_reference"] == "median" and out["split"]["n_test"] == 40
    again = _split(world)
    assert again["created"] is False and again["split"] == out["split"]
    with pytest.raises(CommandError, match="drawn already and is locked"):
        _split(world, "--seed", "8")
    assert _split(world, "--rule", "majority")["split"]["ordinal_reference"] == "majority"
    calibration_report(version=world.version, dataset=world.dataset,
                       run=world.judge("j", {k: 1 for k in range(100)}))  # a look at test
    with pytest.raises(CommandError, match="locked with the split"):
        _split(world, "--rule", "median")
    assert CalibrationSplit.objects.get().ordinal_reference == "majority"


@pytest.mark.parametrize("args,message", [
    (["--test-share", "0.99"], "--test-share must be from 0.05 to 0.95"),
    (["--test-share", "nan"], "--test-share must be from 0.05 to 0.95"),
    (["--seed", "-1"], "--seed must be 0 or more"),
])
def test_bad_flags_are_one_line_errors(personas, args, message):
    world = make_world(personas.project, n=3)
    with pytest.raises(CommandError, match=message):
        _split(world, *args)


def test_nothing_labelled_means_no_split(personas):
    world = make_world(personas.project, n=3)
    with pytest.raises(CommandError, match="nothing of 'd' is labelled on r"):
        _split(world)
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("calibration_split", "--project", world.project.slug, "--rubric", "r",
                     "--dataset", "nope", stdout=io.StringIO())
