"""Judged worlds for export tests: real runs on the fake provider, executed in this process
(executor.run_batch), so a bundle can be compared with what the app measured.

`run_batch` writes from a database thread of its own, which must see committed rows: tests that
use these helpers are transactional.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from apps.calibration.data import attach_judge, load_criteria
from apps.calibration.report import _item_scores
from apps.exports.services import judge_export
from apps.judging.executor import run_batch
from apps.judging.models import JudgeBatch, JudgeRun, RunStatus
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics import scales
from tests.judging.helpers import expected_level, make_pairwise, make_pointwise, start

ROOT = Path(__file__).resolve().parents[2]


def run_all(run: JudgeRun, *, ends: tuple = (RunStatus.COMPLETED,)) -> JudgeRun:
    """Every batch of the run, in order, in this process; the run must end in one of `ends`
    (completed, unless the test says otherwise)."""
    numbers = list(JudgeBatch.objects.filter(run=run).order_by("number")
                   .values_list("number", flat=True))
    for number in numbers:
        run_batch(run.pk, number)
    run.refresh_from_db()
    assert run.status in ends, (run.status, run.error_message)
    return run


def label_all(dataset, version, value_of) -> None:
    """One annotator's label on every criterion of every item: value_of(position)."""
    criteria = list(version.criteria.all())
    HumanLabel.objects.bulk_create(
        HumanLabel(item=item, criterion_key=c.key, scale_signature=c.scale_signature,
                   annotator="ann", value=str(value_of(item.position)),
                   source=LabelSource.IMPORT)
        for item in dataset.items.all() for c in criteria
    )


def calibrated_pointwise(project, fake, *, items: int = 60) -> JudgeRun:
    """A judge that agrees with the human on every item: each response carries FAKE_VERDICT
    equal to the human label, so the live run's kappa is 1 on n = items."""
    version, dataset = make_pointwise(project, items=items, directive=True)
    label_all(dataset, version, expected_level)
    return run_all(start(project, version, dataset, fake))


def hashed_pointwise(project, fake, *, items: int = 12, samples: int = 1) -> JudgeRun:
    """Two weighted ordinal criteria, verdicts chosen by the fake's hash of the messages (so
    any difference in the messages shows up as another verdict)."""
    version, dataset = make_pointwise(project, items=items, directive=False)
    label_all(dataset, version, expected_level)
    return run_all(start(project, version, dataset, fake, samples=samples))


def hashed_pairwise(project, fake, *, items: int = 12) -> JudgeRun:
    version, dataset = make_pairwise(project, items=items)
    label_all(dataset, version, lambda n: scales.PAIRWISE_VALUES[n % 3])
    return run_all(start(project, version, dataset, fake))


def imported_pairwise(project) -> JudgeRun:
    """A pairwise rubric with an imported judge on an empty dataset (for exports that need no
    verdicts: forced, UNCALIBRATED)."""
    from apps.judging.models import RunKind
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import
    from tests.factories import DatasetFactory
    from tests.judging.helpers import PAIRWISE

    _, version, _ = rubric_import(project=project, content=content_mod.validate(PAIRWISE),
                                  publish=True, note="v1")
    dataset = DatasetFactory(project=project, name="pairs", kind="pairwise")
    return JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                   name="gpt-4.1-mini", kind=RunKind.IMPORTED,
                                   status=RunStatus.COMPLETED, model="gpt-4.1-mini")


def quick_bundle(project, folder: Path, *, api_base: str, content: dict | None = None,
                 model: str = "openai/scripted", **run_fields) -> Path:
    """A bundle of a finished live run that made no calls (nothing to calibrate: forced,
    UNCALIBRATED), calling `model` at `api_base`: for tests of reward.py itself."""
    from apps.judging.models import RunKind
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import
    from tests.factories import DatasetFactory
    from tests.judging.helpers import POINTWISE

    content = content or POINTWISE
    _, version, _ = rubric_import(project=project, content=content_mod.validate(content),
                                  publish=True, note="v1")
    dataset = DatasetFactory(project=project, name=f"{content['rubric']}-data",
                             kind=content["mode"])
    fields = {"concurrency": 64, "timeout_s": 10.0, **run_fields}
    run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                  name="scripted", kind=RunKind.LIVE, status=RunStatus.COMPLETED,
                                  model=model, api_base=api_base, **fields)
    export = judge_export(run=run, fmt="bundle", force=True)
    return unzip(bytes(export.artifact), folder)


def app_rewards(run: JudgeRun) -> dict[int, float]:
    """The reward of each item as the app computes it from the run's verdicts
    (apps/calibration/report.py `_item_scores` for the judge)."""
    data = load_criteria(run.rubric_version, run.dataset)
    attach_judge(data, run)
    return {item: float(reward) for item, reward in _item_scores(data, "judge").items()}


def unzip(data: bytes, folder: Path) -> Path:
    """A bundle zip unpacked into folder/<bundle name>/; returns that folder."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
        top = {name.split("/", 1)[0] for name in archive.namelist()}
    assert len(top) == 1, top
    return folder / top.pop()


# -- a fresh interpreter with only litellm ------------------------------------------------
def _distribution_closure(root: str) -> list:
    """The installed distributions `root` needs: its requirements, recursively, with the extras
    that a requirement asks for (litellm needs httpx[http2]), markers evaluated for this
    interpreter."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[tuple[str, str], bool] = {}
    found: dict[str, object] = {}
    todo = [(root, "")]
    while todo:
        name, extra = todo.pop()
        key = (name.lower().replace("_", "-"), extra)
        if key in seen:
            continue
        seen[key] = True
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        found[key[0]] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            todo.append((req.name, ""))
            todo.extend((req.name, wanted) for wanted in req.extras)
    return list(found.values())


def litellm_only_python(folder: Path) -> Path:
    """A real virtual environment whose only packages are litellm and its dependencies.

    `python -m venv --without-pip`, then a site-packages of its own holding links to exactly the
    files of litellm's dependency closure (taken from this venv's RECORDs), named in a .pth
    file. Django, the app and torch are not there: importing them fails as in a trainer's venv.
    """
    python = folder / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    base = getattr(sys, "_base_executable", sys.executable)
    assert base  # the venv's interpreter is the base one, not this venv's
    packages = folder / "litellm-only"
    packages.mkdir()
    for dist in _distribution_closure("litellm"):
        for file in dist.files or []:
            parts = Path(str(file)).parts
            if not parts or parts[0] in ("..", "bin") or parts[0].endswith(".pth"):
                continue
            source = Path(dist.locate_file(parts[0]))
            target = packages / parts[0]
            if source.exists() and not target.exists():
                target.symlink_to(source)
    site = next((folder / "lib").glob("python3*/site-packages"))
    (site / "litellm-only.pth").write_text(str(packages) + "\n")
    return python


def fresh_env(**extra: str) -> dict[str, str]:
    """The environment of a trainer's process: no Django settings, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def run_in_bundle(python: Path, bundle: Path, code: str, *, timeout: float = 120,
                  env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `code` with `python -I` in the bundle's folder, the bundle importable as `reward`."""
    prelude = ("import sys; sys.path.insert(0, '.')\n"
               "import importlib.util as u\n"
               "assert u.find_spec('django') is None and u.find_spec('apps') is None, "
               "'not a fresh interpreter'\n")
    proc = subprocess.run([str(python), "-I", "-c", prelude + code], cwd=bundle,
                          env=env or fresh_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def last_json(proc: subprocess.CompletedProcess):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def server_url(server: subprocess.Popen) -> str:
    """The address `reward.py serve` prints after its status line."""
    lines = []
    for _ in range(5):
        line = server.stdout.readline()
        lines.append(line)
        if "reward server" in line:
            return "http://" + line.rsplit("http://", 1)[1].strip()
    raise AssertionError(f"no address in {lines!r}; stderr: "
                         f"{server.stderr.read() if server.poll() is not None else ''}")
