"""`make bench`: run every benchmark script in this folder, one process each.

Each script prints its own `BENCH <name> value=<v> unit=<u> bound=<b> ratio=<v/b>` lines; this
runner repeats them at the end so the figures are in one place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = sys.argv[1:]
    lines: list[str] = []
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        if only and not any(name in script.stem for name in only):
            continue
        print(f"== {script.stem}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{script.stem}"], cwd=HERE.parent,
            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            capture_output=True, text=True,
        )
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:])
        lines += [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
        if proc.returncode != 0:
            failed.append(script.stem)
    print("\n== summary")
    for line in lines:
        print(line)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
