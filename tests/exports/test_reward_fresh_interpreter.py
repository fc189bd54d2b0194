"""reward.py in a trainer's interpreter: a real virtual environment whose only packages are
litellm and its dependencies (tests/exports/helpers.py `litellm_only_python`), run with `-I`
in the bundle's folder, so neither Django nor the app nor torch can be imported.

Each adapter is called the way its trainer calls it, against the fake provider, and gives the
rewards the app computed from its own run of the same judge on the same items.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from apps.exports.services import judge_export
from apps.projects.models import Project
from tests.exports.helpers import (
    app_rewards,
    fresh_env,
    hashed_pairwise,
    hashed_pointwise,
    last_json,
    litellm_only_python,
    run_in_bundle,
    server_url,
    unzip,
)
from tests.factories import ProjectFactory

# Marked so that pytest-django sets up the test database even when this module runs alone (the
# module fixture below writes outside any test's transaction).
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def judged(tmp_path_factory, django_db_setup, django_db_blocker, fakellm):
    """A pointwise and a pairwise live run on the fake, exported as bundles (committed once for
    the module: run_batch writes from a thread of its own)."""
    from django.db import connection

    folder = tmp_path_factory.mktemp("fresh")
    with django_db_blocker.unblock():
        assert "test" in str(connection.settings_dict["NAME"]), "not the test database"
        project = ProjectFactory(slug="fresh-bundles")
        try:
            out = {"python": litellm_only_python(folder / "venv")}
            for kind, make in (("pointwise", hashed_pointwise), ("pairwise", hashed_pairwise)):
                run = make(project, fakellm, items=6)
                items = list(run.dataset.items.order_by("position"))
                export = judge_export(run=run, fmt="bundle", force=True)
                rewards = app_rewards(run)
                out[kind] = {
                    "bundle": unzip(bytes(export.artifact), folder / kind),
                    "name": export.filename.removesuffix(".zip"),
                    "prompts": [i.prompt for i in items],
                    "completions": [i.response_a if kind == "pairwise" else i.response
                                    for i in items],
                    "references": [i.response_b if kind == "pairwise" else i.reference
                                   for i in items],
                    "expected": [rewards[i.pk] for i in items],
                }
            yield out
        finally:
            Project.objects.filter(pk=project.pk).delete()


def call(judged, kind: str, code: str, **env):
    """Run `code` in the fresh interpreter with the rows of `kind` as JSON globals."""
    rows = judged[kind]
    setup = (f"import json, reward\nP = {json.dumps(rows['prompts'])}\n"
             f"C = {json.dumps(rows['completions'])}\nR = {json.dumps(rows['references'])}\n")
    proc = run_in_bundle(judged["python"], rows["bundle"], setup + code,
                         env=fresh_env(**env) if env else None)
    return last_json(proc)


def test_the_interpreter_has_litellm_and_nothing_of_the_app(judged):
    proc = run_in_bundle(judged["python"], judged["pointwise"]["bundle"], """
import importlib.util as u, json, sys
print(json.dumps({m: u.find_spec(m) is not None
                  for m in ("litellm", "django", "apps", "config", "torch", "celery")}))
""")
    assert last_json(proc) == {"litellm": True, "django": False, "apps": False,
                               "config": False, "torch": False, "celery": False}


def test_trl_keywords_with_strings_extra_columns_and_logging_hooks(judged):
    got = call(judged, "pointwise", """
metrics = []
out = reward.reward_func(prompts=P, completions=C, completion_ids=[[1, 2, 3]] * len(C),
                         reference=R, topic=["x"] * len(C), trainer_state=object(),
                         log_extra=lambda k, v: None, log_metric=lambda k, v: metrics.append(k))
print(json.dumps({"rewards": out, "name": reward.reward_func.__name__}))
""")
    assert got["rewards"] == pytest.approx(judged["pointwise"]["expected"])
    assert got["name"] == judged["pointwise"]["name"]


def test_trl_conversational_message_lists_give_the_same_rewards(judged):
    got = call(judged, "pointwise", """
prompts = [[{"role": "user", "content": p}] for p in P]
completions = [[{"role": "assistant", "content": c}] for c in C]
out = reward.reward_func(prompts=prompts, completions=completions, reference=R,
                         completion_ids=[[7]] * len(C), trainer_state=None,
                         log_extra=None, log_metric=None)
print(json.dumps(out))
""")
    assert got == pytest.approx(judged["pointwise"]["expected"])


def test_async_variant_on_the_callers_event_loop(judged):
    got = call(judged, "pointwise", """
import asyncio
async def main():
    # Twice on one loop, as GRPOTrainer does step after step, and once more on a new loop.
    first = await reward.async_reward_func(prompts=P, completions=C, reference=R, extra=[1]*len(C))
    second = await reward.async_reward_func(prompts=P, completions=C, reference=R)
    return first, second
a, b = asyncio.run(main())
c = asyncio.run(reward.async_reward_func(prompts=P, completions=C, reference=R))
print(json.dumps({"a": a, "b": b, "c": c, "name": reward.async_reward_func.__name__,
                  "is_coroutine": asyncio.iscoroutinefunction(reward.async_reward_func)}))
""")
    expected = judged["pointwise"]["expected"]
    assert got["a"] == pytest.approx(expected)
    assert got["b"] == got["a"] and got["c"] == got["a"]
    assert got["is_coroutine"] and got["name"] == judged["pointwise"]["name"] + "_async"


def test_verl_positional_compute_score(judged):
    got = call(judged, "pointwise", """
out = [reward.compute_score("rubriclab/test", c, r, {"prompt": p, "index": i})
       for i, (p, c, r) in enumerate(zip(P, C, R))]
print(json.dumps(out))
""")
    assert [o["score"] for o in got] == pytest.approx(judged["pointwise"]["expected"])
    for o in got:
        assert o["judge_failed"] is False
        assert set(o) == {"score", "judge_failed", "criterion/correct", "criterion/clear"}
        assert o["criterion/correct"] in (0.0, 0.25, 0.5, 0.75, 1.0)  # the level's score


def test_openrlhf_positional_lists(judged):
    got = call(judged, "pointwise", """
queries = [p + c for p, c in zip(P, C)]
out = reward.reward_func(queries, P, R)
print(json.dumps(out))
""")
    assert got["rewards"] == pytest.approx(judged["pointwise"]["expected"])
    assert got["scores"] == got["rewards"]
    assert got["extra_logs"] == {"judge_failures": 0.0}


def test_pairwise_against_a_reference_through_every_adapter(judged):
    got = call(judged, "pairwise", """
import asyncio
trl = reward.reward_func(prompts=P, completions=C, reference=R)
trl_async = asyncio.run(reward.async_reward_func(prompts=P, completions=C, reference=R))
verl = [reward.compute_score("src", c, r, {"prompt": p})["score"] for p, c, r in zip(P, C, R)]
openrlhf = reward.reward_func([p + c for p, c in zip(P, C)], P, R)["rewards"]
print(json.dumps({"trl": trl, "async": trl_async, "verl": verl, "openrlhf": openrlhf,
                  "calls": reward.get_judge().stats["calls"]}))
""")
    expected = judged["pairwise"]["expected"]
    for adapter in ("trl", "async", "verl", "openrlhf"):
        assert got[adapter] == pytest.approx(expected), adapter
    # One criterion asked in both orders: two calls per completion, the rest from the cache.
    assert got["calls"] == 2 * len(expected)


def test_pairwise_within_the_group_is_a_win_rate(judged):
    got = call(judged, "pairwise", """
prompts = ["Task 0"] * 3 + ["Task 1"] * 3
completions = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
out = reward.reward_func(prompts=prompts, completions=completions)
print(json.dumps({"rewards": out, "calls": reward.get_judge().stats["calls"]}))
""", RUBRICLAB_PAIRWISE_MODE="group")
    rewards = got["rewards"]
    assert len(rewards) == 6 and all(0.0 <= r <= 1.0 for r in rewards)
    # Win rates of a round robin sum to half the number of pairs per member, per group.
    assert sum(rewards[:3]) == pytest.approx(1.5) and sum(rewards[3:]) == pytest.approx(1.5)
    # G = 3: 3 pairs x 2 orders per prompt.
    assert got["calls"] == 2 * 3 * 2


def test_a_pairwise_judge_without_a_reference_says_which_column_it_needs(judged):
    proc = run_in_bundle(judged["python"], judged["pairwise"]["bundle"], """
import reward
reward.reward_func(prompts=["p"], completions=["c"])
""", check=False)
    assert proc.returncode != 0
    assert "pass the 'reference' column" in proc.stderr
    assert "RUBRICLAB_PAIRWISE_MODE=group" in proc.stderr


def test_http_server_get_reward_score_and_health(judged):
    rows = judged["pointwise"]
    server = subprocess.Popen(
        [str(judged["python"]), "-I", "reward.py", "serve", "--host", "127.0.0.1", "--port",
         "0"], cwd=rows["bundle"], env=fresh_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        base = server_url(server)

        def post(path, body):
            request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())

        with urllib.request.urlopen(base + "/health", timeout=10) as response:
            status, health = response.status, json.loads(response.read())
        assert status == 200 and health["status"] == "ok"
        assert health["judge"] == rows["name"] and health["calibrated"] is False

        queries = [p + c for p, c in zip(rows["prompts"], rows["completions"], strict=True)]
        status, body = post("/get_reward", {"query": queries, "prompts": rows["prompts"],
                                            "labels": rows["references"]})
        assert status == 200
        assert body["rewards"] == pytest.approx(rows["expected"])
        assert body["scores"] == body["rewards"]
        assert body["extra_logs"] == {"judge_failures": 0.0}

        items = [{"prompt": p, "completion": c, "reference": r} for p, c, r
                 in zip(rows["prompts"], rows["completions"], rows["references"], strict=True)]
        status, body = post("/score", {"items": items})
        assert status == 200
        assert body["rewards"] == pytest.approx(rows["expected"])
        assert set(body["details"][0]["criteria"]) == {"correct", "clear"}
        assert body["details"][0]["judge_failed"] is False

        bad = urllib.request.Request(base + "/score", data=b"{not json",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(bad, timeout=10)
        assert error.value.code == 400
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_judge_failures_give_none_or_the_fallback_and_are_counted(judged, fake):
    fake.control(rate_500=1.0)
    got = call(judged, "pointwise", """
trl = reward.reward_func(prompts=P[:2], completions=["new one", "new two"])
verl = reward.compute_score("src", "new three", "", {"prompt": P[0]})
print(json.dumps({"trl": trl, "verl": verl, "stats": reward.get_judge().stats}))
""", RUBRICLAB_MAX_ATTEMPTS="2")
    assert got["trl"] == [None, None]
    assert got["verl"]["score"] == 0.0 and got["verl"]["judge_failed"] is True
    assert got["stats"]["failures"] == 3 and got["stats"]["retries"] >= 3
    fake.control(rate_500=1.0)
    got = call(judged, "pointwise", """
print(json.dumps(reward.reward_func(prompts=P[:1], completions=["new four"])))
""", RUBRICLAB_MAX_ATTEMPTS="1", RUBRICLAB_REWARD_FALLBACK="0.25")
    assert got == [0.25]


def test_check_accepts_the_bundle_as_exported(judged):
    proc = subprocess.run([str(judged["python"]), "-I", "reward.py", "check"],
                          cwd=judged["pointwise"]["bundle"], env=fresh_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ") and "UNCALIBRATED" in proc.stdout


def _copy(bundle, target):
    import shutil

    shutil.copytree(bundle, target)
    return target


def test_a_missing_judge_json_is_refused_when_loaded(judged, tmp_path):
    bundle = _copy(judged["pointwise"]["bundle"], tmp_path / "b")
    (bundle / "judge.json").unlink()
    check = subprocess.run([str(judged["python"]), "-I", "reward.py", "check"], cwd=bundle,
                           env=fresh_env(), capture_output=True, text=True, timeout=60)
    assert check.returncode != 0
    message = check.stderr.strip().splitlines()
    assert len(message) == 1 and "judge.json is missing" in message[0], check.stderr
    imported = run_in_bundle(judged["python"], bundle, "import reward", check=False)
    assert imported.returncode != 0
    assert "BundleError" in imported.stderr and "judge.json is missing" in imported.stderr


def test_an_edited_judge_json_is_refused_when_loaded(judged, tmp_path):
    bundle = _copy(judged["pointwise"]["bundle"], tmp_path / "b")
    spec = json.loads((bundle / "judge.json").read_text())
    spec["criteria"][0]["weight"] = 5  # a quiet change of the reward
    (bundle / "judge.json").write_text(json.dumps(spec, indent=2))
    started = time.monotonic()
    check = subprocess.run([str(judged["python"]), "-I", "reward.py", "check"], cwd=bundle,
                           env=fresh_env(), capture_output=True, text=True, timeout=60)
    assert check.returncode != 0
    message = check.stderr.strip().splitlines()
    assert len(message) == 1 and "does not match this reward.py" in message[0], check.stderr
    assert time.monotonic() - started < 30
    imported = run_in_bundle(judged["python"], bundle, "import reward", check=False)
    assert imported.returncode != 0 and "does not match this reward.py" in imported.stderr


def test_a_server_that_needs_a_key_gets_rubriclab_api_key(judged, fake):
    fake.control(api_key="sk-bundle-test-0123456789abcdef")
    refused = call(judged, "pointwise", """
print(json.dumps(reward.reward_func(prompts=["key?"], completions=["no key"])))
""", RUBRICLAB_MAX_ATTEMPTS="1")
    assert refused == [None]  # the placeholder key is refused by the server: a judge failure
    got = call(judged, "pointwise", """
print(json.dumps({"rewards": reward.reward_func(prompts=P, completions=C, reference=R),
                  "stats": reward.get_judge().stats}))
""", RUBRICLAB_API_KEY="sk-bundle-test-0123456789abcdef")
    assert got["rewards"] == pytest.approx(judged["pointwise"]["expected"])
    assert "sk-bundle" not in json.dumps(got)


def test_judge_processes_give_the_same_rewards_and_count_their_calls(judged):
    # RUBRICLAB_PROCESSES=2: the calls are made by two `reward.py _worker` processes.
    got = call(judged, "pointwise", """
import asyncio, os
out = reward.reward_func(prompts=P, completions=C, reference=R)
again = asyncio.run(reward.async_reward_func(prompts=P, completions=C, reference=R))
judge = reward.get_judge()
pids = [child.proc.pid for child in judge._pool.children]
solo = reward.Judge(processes=1)
alone = [r for r, _ in reward._BACKGROUND.run(solo.rewards(P, C, R))]
print(json.dumps({"rewards": out, "again": again, "stats": judge.stats, "solo": solo.stats,
                  "alone": alone, "pids": pids, "me": os.getpid()}))
""", RUBRICLAB_PROCESSES="2")
    expected = judged["pointwise"]["expected"]
    assert got["rewards"] == pytest.approx(expected)
    assert got["again"] == got["rewards"] and got["alone"] == got["rewards"]
    assert len(set(got["pids"])) == 2 and got["me"] not in got["pids"]
    # The workers' calls are counted in the caller's stats, as one process would count them.
    assert got["stats"]["calls"] == got["solo"]["calls"] > 0
    assert got["stats"]["scored"] == len(expected)
    assert got["stats"]["cache_hits"] == len(expected)  # the second time, from the memo


def test_judge_processes_score_pairwise_groups(judged):
    got = call(judged, "pairwise", """
prompts = ["Task 0"] * 3 + ["Task 1"] * 3
completions = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
out = reward.reward_func(prompts=prompts, completions=completions)
print(json.dumps({"rewards": out, "calls": reward.get_judge().stats["calls"]}))
""", RUBRICLAB_PAIRWISE_MODE="group", RUBRICLAB_PROCESSES="3")
    assert sum(got["rewards"][:3]) == pytest.approx(1.5)
    assert sum(got["rewards"][3:]) == pytest.approx(1.5)
    assert got["calls"] == 2 * 3 * 2


def test_a_judge_process_that_dies_fails_its_share_and_is_replaced(judged, fake):
    got = call(judged, "pointwise", """
import os, signal, threading, time, urllib.request
def latency(ms):
    urllib.request.urlopen(urllib.request.Request(
        FAKE + "/_control", data=json.dumps({"latency_ms": ms}).encode(),
        headers={"Content-Type": "application/json"}), timeout=5).read()
reward.reward_func(prompts=["warm"], completions=["warm"])  # both processes started
judge = reward.get_judge()
first = [child.proc.pid for child in judge._pool.children]
latency(3000)
box = {}
worker = threading.Thread(target=lambda: box.update(out=reward.reward_func(
    prompts=P[:4], completions=["d1", "d2", "d3", "d4"])))
worker.start()
time.sleep(1.0)
os.kill(first[0], signal.SIGKILL)  # holds the first two completions
worker.join(30)
latency(0)
after = reward.reward_func(prompts=P[:4], completions=["d1", "d2", "d3", "d4"])
second = [child.proc.pid for child in judge._pool.children]
print(json.dumps({"during": box["out"], "after": after, "stats": judge.stats,
                  "first": first, "second": second}))
""".replace("FAKE", repr(fake.base_url)), RUBRICLAB_PROCESSES="2")
    assert got["during"][:2] == [None, None]
    assert all(isinstance(r, float) for r in got["during"][2:])
    assert all(isinstance(r, float) for r in got["after"])
    assert got["stats"]["failures"] == 2
    assert not set(got["first"]) & set(got["second"])  # both started again


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_number_of_processes_is_refused_by_name(judged, value):
    proc = run_in_bundle(judged["python"], judged["pointwise"]["bundle"], """
import reward
reward.reward_func(prompts=["p"], completions=["c"])
""", check=False, env=fresh_env(RUBRICLAB_PROCESSES=value))
    assert proc.returncode != 0
    assert "RUBRICLAB_PROCESSES must be" in proc.stderr and repr(value) in proc.stderr
