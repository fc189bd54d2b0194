"""Hostile rubric YAML becomes field errors, never a 500 or a traceback (issue 13 §3): nesting
50,000 deep (flow and block style), an alias bomb, a NUL in a name (escaped and raw), a lone
surrogate. On the import page and in `rubric_import` (a subprocess: the real command line)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from apps.rubrics.models import Rubric
from tests.rubrics.test_views import POINTWISE

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _with_name(name_yaml: str) -> str:
    body = copy.deepcopy(POINTWISE)
    body.pop("name", None)
    return f"name: {name_yaml}\n" + yaml.safe_dump(body)


BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"]
                 + [f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
                    for p, c in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"
CASES = {
    "flow": ("rubric: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested more than"),
    "block": ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 1000)),
              "nested more than"),
    "mapping": ("rubric: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n", "nested more than"),
    "nul-escaped": (_with_name('"Help\\0ful"'), "name: contains a NUL character"),
    "nul-raw": (_with_name("Help\x00ful"), "contains a NUL character"),
    "surrogate": (_with_name('"Help\\ud800ful"'), "name: contains an unpaired surrogate"),
    "bomb": (BOMB, "unknown field"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_import_page_shows_a_field_error(personas, case):
    from django.core.files.uploadedfile import SimpleUploadedFile

    text, expected = CASES[case]
    url = reverse("rubric_import", args=[personas.project.slug])
    client = personas.client("owner")
    as_file = client.post(url, {"file": SimpleUploadedFile("r.yaml", text.encode())})
    assert as_file.status_code == 422
    assert expected in as_file.content.decode()
    pasted = client.post(url, {"text": text})
    assert pasted.status_code == 422
    # Pasted text with a raw NUL is stopped earlier, by the form field itself.
    assert (expected if case != "nul-raw" else "Null characters are not allowed") in (
        pasted.content.decode())
    assert not Rubric.objects.exists()


@pytest.mark.django_db(transaction=True)  # the command runs in its own process
@pytest.mark.parametrize("case", ["flow", "mapping", "nul-escaped", "nul-raw"])
def test_the_command_says_one_line_without_a_traceback(personas, case, tmp_path):
    from tests.realparts import process_env

    text, expected = CASES[case]
    path = tmp_path / "rubric.yaml"
    path.write_bytes(text.encode("utf-8"))
    result = subprocess.run(
        [sys.executable, "manage.py", "rubric_import", str(path), "--project",
         personas.project.slug], cwd=ROOT, env=process_env(os.environ), capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: ") and expected in last and "nothing imported" in last
    assert not Rubric.objects.exists()
