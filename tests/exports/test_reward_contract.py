"""reward.py's contract with a trainer, run as the trainer runs it (a fresh interpreter with only
litellm) against a scripted judge (issue: rewards a trainer can trust, §2-§6):

- an odd answer (a 5,000-digit value, NaN, nesting, an array, NUL, a lone surrogate, 10 MB) is
  an invalid answer, asked again once, never a crash;
- verl and OpenRLHF get the same keys whether the judge succeeded or failed;
- a pairwise judge never compares with a missing or empty reference, on any entry point;
- special tokens are stripped only when RUBRICLAB_STRIP_TOKENS says so;
- a bundle api_base gets RUBRICLAB_API_KEY, never the trainer's OPENAI_API_KEY;
- `reward.py check` reports a missing key.
"""

from __future__ import annotations

import json
import math
import re
import subprocess

import pytest

from tests.exports.helpers import (
    fresh_env,
    last_json,
    litellm_only_python,
    quick_bundle,
    run_in_bundle,
)
from tests.exports.scripted import ScriptedJudge, verdict
from tests.judging.helpers import PAIRWISE

pytestmark = pytest.mark.django_db

ODD = [
    '{"value": ' + "4" * 5000 + "}",  # Python refuses to read ints over 4,300 digits
    '{"value": NaN}', '{"value": Infinity}', '{"value": [[[3]]]}', '[{"value": 3}]',
    '{"value": "3\u0000"}', "\u0000\u0000", '{"value": "\ud800"}', "[" * 100_000,
    '{"value": 3, "rationale": "' + "x" * 10_000_000 + '"',  # 10 MB, never closed
    "", '{"value": {"level": 3}}',
]


def answer(text: str, n: int) -> str:
    """FAIL -> garbage; ODD-k -> ODD[k]; a pairwise question -> A; else VALUE-v or 3."""
    if "FAIL" in text:
        return "I cannot decide."
    odd = re.search(r"ODD-(\d+)", text)
    if odd:
        return ODD[int(odd.group(1))]
    if 'Allowed values: ["A", "B", "tie"]' in text:
        return verdict("A")
    value = re.search(r"VALUE-(\d)", text)
    return verdict(int(value.group(1)) if value else 3)


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    return litellm_only_python(tmp_path_factory.mktemp("contract") / "venv")


@pytest.fixture
def scripted():
    judge = ScriptedJudge(answer)
    yield judge
    judge.close()


def test_reward_py_score_with_a_5000_digit_value_is_an_invalid_answer(personas, scripted,
                                                                     python, tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    proc = subprocess.run([str(python), "-I", "reward.py", "score", "--prompt", "Sum?",
                           "--completion", "It is 4. ODD-0"], cwd=bundle, env=fresh_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # no reward, and no crash
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["reward"] is None and out["detail"]["judge_failed"] is True
    assert "unreadable verdict, asked twice" in out["detail"]["error"]
    assert "is not one of the levels" in out["detail"]["error"]
    assert out["stats"]["reasked"] == 2  # both criteria, once each
    assert len(scripted.texts) == 4


def test_every_odd_answer_is_an_invalid_answer_never_a_crash(personas, scripted, python,
                                                             tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    proc = run_in_bundle(python, bundle, f"""
import json, reward
completions = [f"Answer ODD-{{k}}" for k in range({len(ODD)})] + ["Fine. VALUE-5"] * 3
out = reward.reward_func(prompts=["Q"] * len(completions), completions=completions)
print(json.dumps({{"rewards": out, "stats": reward.get_judge().stats}}))
""", timeout=300)
    got = last_json(proc)
    assert got["rewards"] == [None] * len(ODD) + [1.0] * 3
    assert got["stats"]["failures"] == len(ODD)
    # The repeated completion is judged once in its batch (GRPO repeats completions).
    assert got["stats"]["scored"] == 1 and got["stats"]["cache_hits"] == 2
    assert got["stats"]["reasked"] == 2 * len(ODD)
    assert "Traceback" not in proc.stderr


def test_verl_and_openrlhf_get_the_same_keys_on_success_and_failure(personas, scripted, python,
                                                                    tmp_path):
    # K = 3 at temperature 0 is asked once (the export warned): 2 calls per completion.
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url, samples=3,
                          temperature=0.0)
    proc = run_in_bundle(python, bundle, """
import json, reward
ok = reward.compute_score("src", "Good. VALUE-5", None, {"prompt": "Q1"})
bad = reward.compute_score("src", "FAIL", None, {"prompt": "Q2"})
fine = reward.reward_func(["Q3Good. VALUE-4", "Q4Good. VALUE-2"], ["Q3", "Q4"], None)
half = reward.reward_func(["Q5Good. VALUE-4", "Q6FAIL"], ["Q5", "Q6"], None)
metrics = []
trl = [reward.reward_func(prompts=["Q7"], completions=["FAIL"],
                          log_metric=lambda k, v: metrics.append([k, v])) for _ in range(2)]
print(json.dumps({"ok": ok, "bad": bad, "fine": fine, "half": half, "metrics": metrics,
                  "calls": reward.get_judge().stats["calls"]}))
""")
    got = last_json(proc)
    ok, bad = got["ok"], got["bad"]
    assert set(ok) == set(bad) == {"score", "judge_failed", "criterion/correct",
                                   "criterion/clear"}
    assert ok == {"score": 1.0, "judge_failed": False, "criterion/correct": 1.0,
                  "criterion/clear": 1.0}
    assert bad["score"] == 0.0 and bad["judge_failed"] is True
    assert math.isnan(bad["criterion/correct"]) and math.isnan(bad["criterion/clear"])
    assert got["fine"] == {"rewards": [0.75, 0.25], "scores": [0.75, 0.25],
                           "extra_logs": {"judge_failures": 0.0}}
    assert got["half"]["extra_logs"] == {"judge_failures": 0.5}  # a share, not a count
    assert got["half"]["rewards"] == [0.75, 0.0]
    name = bundle.name
    # TRL: the status once, the failure share every batch.
    assert got["metrics"] == [[f"{name}/calibrated", 0.0], [f"{name}/judge_failures", 1.0],
                              [f"{name}/judge_failures", 1.0]]
    # 7 distinct completions x 2 criteria x 1 sample, plus one re-ask per garbage answer
    # (FAIL twice for Q2, Q6, Q7: 3 completions x 2 criteria); the second TRL call from memo
    # only for successes, so Q7 is asked again.
    assert got["calls"] == 7 * 2 + 3 * 2 + 2 * 2
    assert proc.stderr.splitlines()[0].startswith(f"RubricLab judge {name}: UNCALIBRATED (")


def test_a_pairwise_judge_never_scores_against_nothing(personas, scripted, python, tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url,
                          content=PAIRWISE)
    proc = run_in_bundle(python, bundle, """
import json, reward
calls = {
    "trl without the column": lambda: reward.reward_func(prompts=["p"], completions=["c"]),
    "trl with an empty reference": lambda: reward.reward_func(
        prompts=["p", "q"], completions=["c", "d"], reference=["r", " "]),
    "verl without ground_truth": lambda: reward.compute_score("s", "c", None, {"prompt": "p"}),
    "verl with an empty ground_truth": lambda: reward.compute_score("s", "c", "", {"prompt": "p"}),
    "openrlhf without labels": lambda: reward.reward_func(["pc"], ["p"], None),
    "openrlhf with empty labels": lambda: reward.reward_func(["pc"], ["p"], [""]),
    "verl without a prompt": lambda: reward.compute_score("s", "c", "ref", {}),
    "openrlhf query without its prompt": lambda: reward.reward_func(["xc"], ["p"], ["r"]),
}
out = {}
for name, call in calls.items():
    try:
        out[name] = ["returned", repr(call())]
    except reward.BundleError as exc:
        out[name] = ["refused", str(exc)]
ok = reward.reward_func(prompts=["p"], completions=["c"], reference=["r"])
print(json.dumps({"out": out, "ok": ok, "calls": reward.get_judge().stats["calls"]}))
""")
    got = last_json(proc)
    refusal = "compares each completion with a reference"
    for name, (what, message) in got["out"].items():
        assert what == "refused", name
        if "prompt" not in name:
            assert refusal in message and "RUBRICLAB_PAIRWISE_MODE=group" in message, name
    assert "'reference' column" in got["out"]["trl without the column"][1]
    assert "completion(s) 1" in got["out"]["trl with an empty reference"][1]
    assert "extra_info['prompt']" in got["out"]["verl without a prompt"][1]
    assert "does not start with prompts[0]" in \
        got["out"]["openrlhf query without its prompt"][1]
    # Only the last call reached the judge (it answers "A" in both orders: inconsistent, a tie).
    assert got["ok"] == [0.5] and got["calls"] == 2


def test_special_tokens_are_stripped_only_when_asked(personas, scripted, python, tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    run_in_bundle(python, bundle, """
import os, reward
prompt = "<|im_start|>user\\nSum?<|im_end|>\\n<|im_start|>assistant\\n"
reward.reward_func([prompt + "Four.<|im_end|><|endoftext|>"], [prompt], None)
os.environ["RUBRICLAB_STRIP_TOKENS"] = "<|im_end|>, <|endoftext|>"
reward.reward_func([prompt + "Five.<|im_end|><|endoftext|>"], [prompt], None)
""")
    kept = [t for t in scripted.texts if "Four." in t]
    stripped = [t for t in scripted.texts if "Five." in t]
    assert kept and all("Four.<|im_end|><|endoftext|>" in t for t in kept)
    assert stripped and all(re.search(r"Five\.\n<<<END RESPONSE", t) for t in stripped)


def test_an_api_base_gets_rubriclab_api_key_never_the_trainers_openai_key(
        personas, scripted, python, tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    run_in_bundle(python, bundle, """
import os, reward
reward.Judge().rewards_sync(["p1"], ["c1"])
os.environ["RUBRICLAB_API_KEY"] = "rk-for-my-server"
reward.Judge().rewards_sync(["p2"], ["c2"])
""", env=fresh_env(OPENAI_API_KEY="sk-trainer-secret-0123456789"))
    assert scripted.authorizations == ["Bearer no-key-needed"] * 2 + \
        ["Bearer rk-for-my-server"] * 2
    assert not any("sk-trainer" in str(a) for a in scripted.authorizations)


def test_check_reports_a_missing_key(personas, python, tmp_path, scripted):
    provider = quick_bundle(personas.project, tmp_path / "provider", api_base="",
                            model="openai/gpt-4o-mini")
    run = [str(python), "-I", "reward.py", "check"]
    missing = subprocess.run(run, cwd=provider, env=fresh_env(), capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 3
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "needs OPENAI_API_KEY" in missing.stderr and "ok" not in missing.stdout
    given = subprocess.run(run, cwd=provider, env=fresh_env(OPENAI_API_KEY="sk-x"),
                           capture_output=True, text=True, timeout=120)
    assert given.returncode == 0 and given.stdout.startswith("ok: ")
    assert "UNCALIBRATED (" in given.stdout
    own = quick_bundle(personas.project, tmp_path / "own", api_base=scripted.url,
                       content={**PAIRWISE, "rubric": "own"})
    served = subprocess.run(run, cwd=own, env=fresh_env(), capture_output=True, text=True,
                            timeout=120)
    assert served.returncode == 0 and "RUBRICLAB_API_KEY is not set" in served.stderr
    assert scripted.texts == []  # check never calls the model
