"""The README.md inside a bundle: what the judge is, its calibration in two lines, and how to plug
it into each trainer."""

from __future__ import annotations

from apps.judging import provider


def _calls_per_item(judge: dict) -> int:
    k = int(judge["model"]["samples"])
    weighted = [c for c in judge["criteria"] if c["weight"] > 0]
    orders = 2 if judge["rubric"]["mode"] == "pairwise" else 1
    return len(weighted) * k * orders


def render_readme(*, run, report, model: dict, name: str, calibrated: bool,
                  judge: dict) -> str:
    version = run.rubric_version
    status = "CALIBRATED" if calibrated else "UNCALIBRATED"
    keys = provider.missing_keys(model["model"]) if not model.get("api_base") else []
    key_line = (f"`{'`, `'.join(keys)}`" if keys else
                "the variable your provider needs (litellm's names, e.g. `OPENAI_API_KEY`)")
    per_call = _calls_per_item(judge)
    lines = [
        f"# {name}: {version.rubric.name} v{version.number} — {status}",
        "",
        f"A reward function made by RubricLab: the rubric **{version.rubric.name}** (version "
        f"{version.number}, content hash `{version.content_hash[:12]}`) judged by "
        f"`{model['model']}` (temperature {model['temperature']}, K = {model['samples']} "
        "samples). The reward is the weighted mean of the criterion scores, in [0, 1].",
        "",
        "## Calibration",
        "",
    ]
    if not calibrated:
        lines += ["**UNCALIBRATED: this judge did not pass the gate and was exported anyway.** "
                  "Its rewards have not been shown to agree with people.", ""]
    for key, c in report["criteria"].items():
        if c["kappa"] is None:
            lines.append(f"- `{key}`: no items with both a human reference and a verdict.")
            continue
        low, high = c["kappa_ci95"]
        ceiling = (f"; the humans agree among themselves at alpha {c['human_alpha']:.2f}"
                   if c.get("human_alpha") is not None else "")
        lines.append(f"- `{key}`: kappa {c['kappa']:.2f} ({c['kappa_words']}), 95% interval "
                     f"{low:.2f} to {high:.2f}, n = {c['n']} on '{report['dataset']}'{ceiling}.")
    if report["gate"]["reasons"]:
        lines += ["", "Gate: " + "; ".join(report["gate"]["reasons"]) + "."]
    lines += [
        "", "The full report is `calibration.json`; the judge itself is `judge.json` (prompts, "
        "criteria, scales, weights, model settings); `rubric.yaml` imports into RubricLab.",
        "",
        "## Set-up",
        "",
        "```sh",
        "pip install litellm",
        "python reward.py check        # verifies judge.json against reward.py (exit 2 if not)",
        "```",
        "",
        f"The key comes from the environment: {key_line}. "
        "Optional: `RUBRICLAB_API_BASE` (the same model at another address), "
        "`RUBRICLAB_CONCURRENCY` (calls in flight, default "
        f"{model['concurrency']}), `RUBRICLAB_TIMEOUT_S`, `RUBRICLAB_MAX_ATTEMPTS` (retries of "
        "429 / 5xx / timeouts), `RUBRICLAB_REWARD_FALLBACK` (the reward on a judge failure; "
        "default: None for TRL, 0.0 for verl and OpenRLHF), `RUBRICLAB_PROCESSES` (judge "
        "processes sharing the calls of a batch, default 1: litellm needs a few ms of CPU per "
        "call, so one process serves about 200 calls a second; 2 or more for large GRPO "
        "batches). Failures are counted in "
        "`reward.get_judge().stats`.",
        "",
        f"Cost: {per_call} judge call(s) per completion"
        + (" (each criterion asked in both orders)." if judge["rubric"]["mode"] == "pairwise"
           else "."),
        "",
    ]
    if judge["rubric"]["mode"] == "pairwise":
        lines += [
            "## Two ways to reward with a preference judge",
            "",
            f"- **Against a reference** (default): each completion is compared with the "
            f"dataset column `{judge['pairwise']['reference_column']}` (e.g. the supervised "
            "answer), in both orders: win 1, tie 0.5, loss 0. "
            f"{per_call} calls per completion.",
            "- **Within the group** (`RUBRICLAB_PAIRWISE_MODE=group`): each completion's win "
            "rate against the other completions of the same prompt, round robin in both orders; "
            f"suits GRPO's group-relative advantages. For G completions per prompt: "
            f"G(G-1)/2 x {per_call} calls per prompt.",
            "",
        ]
    lines += [
        "## TRL (GRPOTrainer)",
        "",
        "```python",
        "from reward import reward_func, async_reward_func",
        "trainer = GRPOTrainer(model=..., reward_funcs=[reward_func], args=GRPOConfig(...),",
        "                      train_dataset=dataset)",
        "```",
        "",
        f"Logged as `rewards/{name}/mean`, with the share of judge failures as "
        f"`{name}/judge_failures`. Works with standard (strings) and conversational "
        "(message lists) datasets; extra dataset columns arrive as keyword arguments"
        + (f" (the reference column is `{judge['pairwise']['reference_column']}`)."
           if judge["rubric"]["mode"] == "pairwise" else ".")
        + " `async_reward_func` is the same as a coroutine, run concurrently by GRPOTrainer. "
        "A judge failure gives None (no reward).",
        "",
        "## verl",
        "",
        "```yaml",
        "reward:                      # verl >= 0.9",
        "  custom_reward_function:",
        "    path: /path/to/bundle/reward.py",
        "    name: compute_score",
        "# before 0.9: custom_reward_function.path / custom_reward_function.name at the top level",
        "```",
        "",
        "`compute_score(data_source, solution_str, ground_truth, extra_info=None)` returns "
        "`{\"score\": float, \"criterion/<key>\": value, \"judge_failed\": bool}`. Put the "
        "prompt in `extra_info[\"prompt\"]` when you build the parquet files"
        + ("; `ground_truth` is the reference response." if judge["rubric"]["mode"] ==
           "pairwise" else "."),
        "",
        "## OpenRLHF",
        "",
        "```sh",
        "# as an HTTP reward server",
        "python reward.py serve --port 5000",
        "--reward.remote_url http://127.0.0.1:5000/get_reward   # older: --remote_rm_url",
        "# or as a Python reward function file",
        "--reward.remote_url /path/to/bundle/reward.py",
        "```",
        "",
        "`reward_func(queries, prompts, labels)` (OpenRLHF calls it with three positional "
        "arguments; TRL with keywords, and the same function serves both) returns "
        "`{\"rewards\", \"scores\", \"extra_logs\"}`, as tensors when torch is installed. "
        "The HTTP server speaks OpenRLHF's remote reward protocol: POST `/get_reward` with "
        "`{\"query\": [...], \"prompts\": [...], \"labels\": [...]}`.",
        "",
        "## HTTP",
        "",
        "`python reward.py serve --port N`: `GET /health`, `POST /get_reward` (OpenRLHF), and "
        "`POST /score` with `{\"items\": [{\"prompt\", \"completion\", \"reference\"}]}` "
        "returning `{\"rewards\": [...], \"details\": [...]}`.",
        "",
    ]
    return "\n".join(lines)
