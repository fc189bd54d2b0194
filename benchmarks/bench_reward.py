"""The exported reward.py under load, against the fake provider through the real litellm client.
Not a test; run ``.venv/bin/python -m benchmarks.bench_reward``.

A bundle is exported by the app (a throwaway SQLite database in a temporary folder: one ordinal
criterion, so one judge call per completion), then measured in a process that imports only the
bundle, as a trainer would.

Figures (BENCH lines):
- reward_1000_s: reward_func over 1,000 distinct completions, fake latency 500 ms (+- 50 ms, as
  in bench_judge), concurrency 100, with RUBRICLAB_PROCESSES=2 (the calls made by two judge
  processes, 50 in flight each; BENCH_REWARD_PROCESSES=N to try another number).
  Bound 1000 x 0.5 / 100 = 5 s (the time the calls take back to back at that concurrency).
- reward_1000_one_process_s: the same with the default, every call in the trainer's process
  (litellm's ~4.5 ms of CPU per call queue on one core: a bare asyncio loop over litellm needs
  about 1.2x the bound).
- reward_cached_per_s: the same completions again, every answer from the in-process cache:
  rewards per second, bound 20,000; ratio = bound / value (below 1 is better).
- reward_http_overhead_ms: p95 latency of POST /score for one cached completion through
  `python reward.py serve`, minus the p95 of the same direct reward_func call. Bound 10 ms.
- reward_openrlhf_burst_256_s: 256 single-completion POST /get_reward requests sent as
  OpenRLHF sends them (all at once, each on a fresh connection) to `reward.py serve`, fake
  latency 500 ms, concurrency 100, the server's calls made by RUBRICLAB_PROCESSES=2 judge
  processes. Bound 256 x 0.5 / 100 = 1.28 s; target ratio <= 2. Printed beside it: the number
  of judge batches the server made of them (micro-batching).
- reward_openrlhf_burst_256_one_process_s: the same with every call in the server's process.
- reward_partial_failure_void_share: share of completions left without a reward when 2 % of
  the judge's answers are garbage (fakellm rate_malformed 0.02), HANNA-like: 6 ordinal
  criteria x K = 3 at temperature 0.7 = 18 calls per completion, 300 completions. Bound 0.01.
  Printed beside it: the share the old rule (any unreadable answer voids the completion) would
  give, 1 - 0.98^18 = 0.31.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_MS = 500
JITTER_MS = 50  # 500 ms on average, as in bench_judge
COMPLETIONS = 1000
CONCURRENCY = 100
CACHED_ROUNDS = 20
HTTP_REQUESTS = 400
PROCESSES = int(os.environ.get("BENCH_REWARD_PROCESSES", "2"))
RUBRIC = {
    "rubric": "bench-reward", "name": "Bench reward", "mode": "pointwise",
    "description": "Answers to arithmetic questions.",
    "criteria": [{"key": "correct", "weight": 1, "scale": {"type": "ordinal", "levels": [
        {"value": i, "anchor": f"level {i}"} for i in range(1, 6)]}}],
}


def bench(name: str, value: float, unit: str, bound: float, ratio: float | None = None) -> None:
    ratio = value / bound if ratio is None else ratio
    print(f"BENCH {name} value={value:.3f} unit={unit} bound={bound:g} ratio={ratio:.3f}",
          flush=True)


HANNA_LIKE = {
    "rubric": "bench-hanna", "name": "Bench HANNA-like", "mode": "pointwise",
    "description": "Short stories, six criteria as in HANNA.",
    "criteria": [{"key": key, "weight": 1, "scale": {"type": "ordinal", "levels": [
        {"value": i, "anchor": f"{key} level {i}"} for i in range(1, 6)]}}
        for key in ("relevance", "coherence", "empathy", "surprise", "engagement",
                    "complexity")],
}
VOID_COMPLETIONS = 300
BURST = 256


def export_bundle(folder: Path, api_base: str) -> Path:
    """Export the bundles with the app, into folder/<name>/; returns the one-criterion bundle's
    folder (the HANNA-like one is beside it, as folder/hanna)."""
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["CELERY_BROKER_URL"] = f"filesystem://{folder / 'broker'}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.datasets.models import Dataset, Kind
    from apps.exports.services import judge_export, unpack
    from apps.judging.models import JudgeRun, RunKind, RunStatus
    from apps.projects.models import Project
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import

    project = Project.objects.create(slug="bench-reward", name="Bench reward")
    _, version, _ = rubric_import(project=project, content=content_mod.validate(RUBRIC),
                                  publish=True, note="bench")
    dataset = Dataset.objects.create(project=project, name="bench", kind=Kind.POINTWISE)
    run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                  name="fake-judge", kind=RunKind.LIVE,
                                  status=RunStatus.COMPLETED, model="openai/fake-judge",
                                  api_base=api_base, concurrency=CONCURRENCY, timeout_s=30)
    export = judge_export(run=run, fmt="bundle", force=True)  # no labels: not calibrated
    bundle = folder / export.filename.removesuffix(".zip")
    bundle.mkdir()
    for name, data in unpack(export).items():
        (bundle / name).write_bytes(data)
    _, version, _ = rubric_import(project=project, content=content_mod.validate(HANNA_LIKE),
                                  publish=True, note="bench")
    hanna = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                    name="fake-judge-k3", kind=RunKind.LIVE,
                                    status=RunStatus.COMPLETED, model="openai/fake-judge",
                                    api_base=api_base, concurrency=CONCURRENCY, timeout_s=30,
                                    samples=3, temperature=0.7)
    export = judge_export(run=hanna, fmt="bundle", force=True)
    (folder / "hanna").mkdir()
    for name, data in unpack(export).items():
        (folder / "hanna" / name).write_bytes(data)
    return bundle


def server_port(server: subprocess.Popen) -> int:
    """The port `reward.py serve` prints after its status line."""
    for _ in range(5):
        line = server.stdout.readline()
        if "reward server" in line:
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError("reward.py serve did not print its address")


async def openrlhf_burst(port: int, n: int) -> list[float]:
    """n single-completion /get_reward requests at once, each on a fresh connection."""
    import asyncio

    async def one(i: int) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        prompt = f"Burst question {i}: what is {i} + {i}?"
        body = json.dumps({"query": [prompt + f" It is {2 * i}."], "prompts": [prompt],
                           "labels": [""]}).encode()
        writer.write(b"POST /get_reward HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200", raw[:300]
        return json.loads(payload)["rewards"][0]

    return await asyncio.gather(*(one(i) for i in range(n)))


def measure_burst(bundle: str, control, processes: int, name: str) -> None:
    """reward_openrlhf_burst_256_s: OpenRLHF's way of calling a remote reward server."""
    import asyncio
    import urllib.request

    control.post("/_control", json={"latency_ms": 0, "jitter_ms": 0})
    server = subprocess.Popen([sys.executable, "reward.py", "serve", "--port", "0"], cwd=bundle,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "RUBRICLAB_PROCESSES": str(processes)})
    try:
        port = server_port(server)
        asyncio.run(openrlhf_burst(port, 4))  # warm: litellm's first client
        control.post("/_control", json={"latency_ms": LATENCY_MS, "jitter_ms": 0})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
            before = json.loads(response.read())["batches"]
        began = time.perf_counter()
        rewards = asyncio.run(openrlhf_burst(port, BURST))
        elapsed = time.perf_counter() - began
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
            batches = json.loads(response.read())["batches"] - before
        assert all(r is not None for r in rewards)
        print(f"openrlhf burst over {processes} judge process(es): {BURST} requests in "
              f"{elapsed:.2f}s as {batches} judge batch(es)", flush=True)
        bench(name, elapsed, "s", BURST * LATENCY_MS / 1000 / CONCURRENCY)
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure_void_share(hanna: str, control) -> None:
    """reward_partial_failure_void_share: 2 % garbage answers, 6 criteria x K = 3."""
    code = f"""
import json, sys
sys.path.insert(0, {hanna!r})
import reward
prompts = [f"Story {{n}}: a dragon learns to cook." for n in range({VOID_COMPLETIONS})]
stories = [f"Once upon a time, dragon {{n}} burnt the soup." for n in range({VOID_COMPLETIONS})]
out = reward.reward_func(prompts=prompts, completions=stories)
print(json.dumps({{"void": sum(r is None for r in out), "stats": reward.get_judge().stats}}))
"""
    control.post("/_control", json={"latency_ms": 0, "jitter_ms": 0, "rate_malformed": 0.02,
                                    "seed": 12})
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=hanna, capture_output=True,
                              text=True, env={**os.environ, "RUBRICLAB_PROCESSES": "2"})
    finally:
        control.post("/_control", json={"rate_malformed": 0.0})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    share = got["void"] / VOID_COMPLETIONS
    calls_per = 6 * 3
    print(f"partial failures: {got['void']} of {VOID_COMPLETIONS} completions without reward; "
          f"stats {got['stats']}; the old rule would void about {1 - 0.98 ** calls_per:.2f}",
          flush=True)
    bench("reward_partial_failure_void_share", share, "share", 0.01)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def measure(bundle: str, control_url: str) -> None:
    """Runs in a process of its own that imports only the bundle (and litellm)."""
    import http.client

    import httpx

    sys.path.insert(0, bundle)
    import reward

    control = httpx.Client(base_url=control_url, timeout=10)
    prompts = [f"Question {n}: what is {n} + {n}?" for n in range(COMPLETIONS)]
    completions = [f"It is {2 * n}." for n in range(COMPLETIONS)]

    # Warm up: litellm's import and its first client, outside the timing.
    control.post("/_control", json={"latency_ms": 0, "jitter_ms": 0})
    assert reward.reward_func(prompts=["warm-up"], completions=["warm-up"]) != [None]
    control.post("/_control", json={"latency_ms": LATENCY_MS, "jitter_ms": JITTER_MS})

    began = time.perf_counter()
    rewards = reward.reward_func(prompts=prompts, completions=completions)
    elapsed = time.perf_counter() - began
    failed = sum(1 for r in rewards if r is None)
    print(f"reward_1000: {elapsed:.2f}s, {failed} failures, stats {reward.get_judge().stats}",
          flush=True)
    assert failed == 0
    bench("reward_1000_one_process_s", elapsed, "s",
          COMPLETIONS * LATENCY_MS / 1000 / CONCURRENCY)

    calls_before = reward.get_judge().stats["calls"]
    began = time.perf_counter()
    for _ in range(CACHED_ROUNDS):
        again = reward.reward_func(prompts=prompts, completions=completions)
    elapsed = time.perf_counter() - began
    assert again == rewards and reward.get_judge().stats["calls"] == calls_before
    per_s = CACHED_ROUNDS * COMPLETIONS / elapsed
    bench("reward_cached_per_s", per_s, "rewards/s", 20000, ratio=20000 / per_s)

    # HTTP: the server answers from its own cache, warmed by one batch first.
    control.post("/_control", json={"latency_ms": 0, "jitter_ms": 0})
    server = subprocess.Popen([sys.executable, "reward.py", "serve", "--host", "127.0.0.1",
                               "--port", "0"], cwd=bundle, stdout=subprocess.PIPE, text=True)
    try:
        port = server_port(server)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post(items):
            body = json.dumps({"items": items})
            connection.request("POST", "/score", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            assert response.status == 200, data
            return json.loads(data)["rewards"]

        n = HTTP_REQUESTS
        assert post([{"prompt": p, "completion": c}
                     for p, c in zip(prompts[:n], completions[:n], strict=True)]) == rewards[:n]
        direct, through_http = [], []
        for p, c, expected in zip(prompts[:n], completions[:n], rewards[:n], strict=True):
            began = time.perf_counter()
            assert reward.reward_func(prompts=[p], completions=[c]) == [expected]
            direct.append(time.perf_counter() - began)
            began = time.perf_counter()
            assert post([{"prompt": p, "completion": c}]) == [expected]
            through_http.append(time.perf_counter() - began)
        added_ms = (p95(through_http) - p95(direct)) * 1000
        print(f"http: p95 {p95(through_http) * 1000:.2f} ms, direct p95 "
              f"{p95(direct) * 1000:.2f} ms", flush=True)
        bench("reward_http_overhead_ms", added_ms, "ms", 10)
    finally:
        server.terminate()
        server.wait(timeout=10)

    measure_burst(bundle, control, 1, "reward_openrlhf_burst_256_one_process_s")
    measure_burst(bundle, control, PROCESSES, "reward_openrlhf_burst_256_s")
    measure_void_share(str(Path(bundle).parent / "hanna"), control)

    # The same 1,000 calls over PROCESSES judge processes (RUBRICLAB_PROCESSES), the same
    # concurrency in all: litellm's CPU per call no longer queues on one core.
    os.environ["RUBRICLAB_PROCESSES"] = str(PROCESSES)
    reward._JUDGE = None
    assert reward.reward_func(prompts=["warm-up"], completions=["warm-up"]) != [None]
    control.post("/_control", json={"latency_ms": LATENCY_MS, "jitter_ms": JITTER_MS})
    fresh = [f"The sum is {2 * n}." for n in range(COMPLETIONS)]
    began = time.perf_counter()
    spread = reward.reward_func(prompts=prompts, completions=fresh)
    elapsed = time.perf_counter() - began
    failed = sum(1 for r in spread if r is None)
    print(f"reward_1000 over {PROCESSES} processes: {elapsed:.2f}s, {failed} failures, "
          f"stats {reward.get_judge().stats}", flush=True)
    assert failed == 0
    bench("reward_1000_s", elapsed, "s", COMPLETIONS * LATENCY_MS / 1000 / CONCURRENCY)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3])
        return 0
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    from tools.fakellm.runner import running_fakellm

    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp, \
            running_fakellm(latency_ms=0) as fake:
        bundle = export_bundle(Path(tmp), fake.url)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "DATABASE_URL"))}
        env["PYTHONPATH"] = ""
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_reward", "--measure",
                               str(bundle), fake.base_url], cwd=ROOT, env=env)
        return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
