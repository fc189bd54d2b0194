"""The README.md inside a bundle: what the judge is, its calibration in two lines, and how to plug
it into each trainer."""

from __future__ import annotations

from apps.judging import provider


def _calls_per_item(judge: dict) -> int:
    k = int(judge["model"]["samples_asked"])
    weighted = [c for c in judge["criteria"] if c["weight"] > 0]
    orders = 2 if judge["rubric"]["mode"] == "pairwise" else 1
    return len(weighted) * k * orders


def render_readme(*, run, report, model: dict, name: str, status, judge: dict) -> str:
    version = run.rubric_version
    t = report["thresholds"]
    pairwise = judge["rubric"]["mode"] == "pairwise"
    column = judge["pairwise"]["reference_column"]
    keys = provider.missing_keys(model["model"]) if not model.get("api_base") else []
    key_line = (f"`{'`, `'.join(keys)}`" if keys else
                "the variable your provider needs (litellm's names, e.g. `OPENAI_API_KEY`)")
    if model.get("api_base"):
        key_line = (f"`RUBRICLAB_API_KEY` for the server at {model['api_base']} (a "
                    "placeholder is sent when it is not set; the provider's own key never is)")
    per_call = _calls_per_item(judge)
    lines = [
        f"# {name}: {version.rubric.name} v{version.number} — {status.state}",
        "",
        f"A reward function made by RubricLab: the rubric **{version.rubric.name}** (version "
        f"{version.number}, content hash `{version.content_hash[:12]}`) judged by "
        f"`{model['model']}` (temperature {model['temperature']}, K = "
        f"{judge['model']['samples_asked']} sample(s) asked). The reward is the weighted mean "
        "of the criterion scores, in [0, 1], computed exactly.",
        "",
        "## Calibration",
        "",
        f"**{status.state}**: {status.reason}.",
        "",
        f"Gate thresholds used (project settings): on every criterion that carries weight, "
        f"n >= {t['min_n']}, kappa >= {t['min_kappa']} and the lower bound of its 95% "
        f"interval >= {t['min_kappa_lower']}; where several people labelled, their own "
        f"agreement (Krippendorff's alpha) >= {t['min_human_alpha']}. CALIBRATED also needs "
        "the evidence to match this bundle: verdicts from a run made in RubricLab with the "
        "same model, the same rubric version (so the same prompt) and the same sampling.",
        "",
    ]
    if not status.calibrated:
        lines += ["**UNCALIBRATED: its rewards have not been shown to agree with people.** "
                  "Importing `reward.py` prints the status line to stderr; `reward.py serve` "
                  "prints it at start.", ""]
    for warning in status.warnings:
        lines += [f"Note: {warning}", ""]
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
    lines += probe_lines(report.get("probes"))
    lines += [
        "", "The full report is `calibration.json` (with the dataset's content hash); the judge "
        "itself is `judge.json` (prompts, criteria, scales, weights, model settings, status); "
        "`rubric.yaml` imports into RubricLab.",
        "",
        "## Set-up",
        "",
        "```sh",
        "pip install litellm",
        "python reward.py check        # judge.json, settings and key (exit 2 or 3 if not)",
        "```",
        "",
        f"The key comes from the environment: {key_line}. "
        "Optional: `RUBRICLAB_API_BASE` (the same model at another address; it gets "
        "`RUBRICLAB_API_KEY`, never the provider's key), "
        "`RUBRICLAB_CONCURRENCY` (calls in flight, default "
        f"{model['concurrency']}), `RUBRICLAB_TIMEOUT_S`, `RUBRICLAB_MAX_ATTEMPTS` (attempts "
        "of a call on 429 / 5xx / timeouts, default 5), `RUBRICLAB_REWARD_FALLBACK` (the "
        "reward on a judge failure; default: None for TRL, 0.0 for verl and OpenRLHF), "
        "`RUBRICLAB_PROCESSES` (judge processes sharing the calls of a batch, default 1: "
        "litellm needs a few ms of CPU per call, so one process serves about 200 calls a "
        "second; 2 or more for large GRPO batches), `RUBRICLAB_STRIP_TOKENS` (comma-separated "
        "special tokens such as `<|im_end|>` removed from completions before judging; nothing "
        "is removed unless set). Failures are counted in `reward.get_judge().stats`.",
        "",
        "Partial failures: an unreadable answer is asked again once; a sample that still has "
        "no verdict (or whose call failed after its retries) is left out, and the completion "
        "is scored from the samples that remain, as RubricLab does. Only a completion with a "
        "weighted criterion left without any valid sample is a judge failure.",
        "",
        f"Cost: {per_call} judge call(s) per completion"
        + (" (each criterion asked in both orders)." if pairwise else "."),
        "",
    ]
    if pairwise:
        lines += [
            "## Two ways to reward with a preference judge",
            "",
            f"- **Against a reference** (default): each completion is compared with the "
            f"dataset column `{column}` (e.g. the supervised answer), in both orders: win 1, "
            f"tie 0.5, loss 0. {per_call} calls per completion. A missing or empty reference "
            "is refused with an error on every entry point: the judge never compares with "
            "nothing.",
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
        f"`{name}/judge_failures` and, once, the status as `{name}/calibrated` (1 or 0). Works "
        "with standard (strings) and conversational (message lists) datasets; extra dataset "
        "columns arrive as keyword arguments"
        + (f" (the reference column is `{column}`)." if pairwise else ".")
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
        "`compute_score(data_source, solution_str, ground_truth, extra_info=None)` returns the "
        "same keys on every call: `{\"score\": float, \"judge_failed\": bool, "
        "\"criterion/<key>\": float}` (the criterion's score in [0, 1]; NaN when it has no "
        "verdict; `score` is the fallback, 0.0 by default, on a judge failure). The prompt is "
        "required: put it in `extra_info[\"prompt\"]` when you build the parquet files"
        + ("; `ground_truth` is the reference response (required)." if pairwise else "."),
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
        "`{\"rewards\", \"scores\", \"extra_logs\": {\"judge_failures\": share}}`, as "
        "tensors when torch is installed. Each query must start with its prompt (an error "
        "otherwise); set `RUBRICLAB_STRIP_TOKENS` to remove the chat template's end tokens "
        "from the response. The HTTP server speaks OpenRLHF's remote reward protocol: POST "
        "`/get_reward` with `{\"query\": [...], \"prompts\": [...], \"labels\": [...]}`.",
        "",
        "## HTTP",
        "",
        "`python reward.py serve [--host 127.0.0.1] [--port 5000]`: `GET /health`, "
        "`POST /get_reward` (OpenRLHF), and `POST /score` with "
        "`{\"items\": [{\"prompt\", \"completion\", \"reference\"}]}` returning "
        "`{\"rewards\": [...], \"details\": [...]}`. It listens on 127.0.0.1 unless "
        "`--host` says otherwise; with `RUBRICLAB_SERVE_TOKEN` set, POSTs need "
        "`Authorization: Bearer <token>`. Requests that arrive within "
        "`RUBRICLAB_BATCH_WINDOW_MS` (default 5) of each other are judged as one batch.",
        "",
    ]
    return "\n".join(lines)


def _pct(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def probe_lines(probes: dict | None) -> list[str]:
    """Every probe's figures (docs/calibration.md, "Reward-hacking probes"), and the guard."""
    lines = ["", "## Reward-hacking probes", ""]
    if not probes or probes.get("status") == "not run":
        why = (probes or {}).get("sentence") or "this judge has not been probed"
        return lines + [f"Not measured: {why}.", ""] + GUARD_LINES
    gate = probes["gate"]
    lines += [f"{probes['sentence']} A probed item fools the judge when its reward reaches "
              f"the pass threshold ({probes['pass_threshold']}), or, for padding, formatting "
              "and injections, when it is rewarded above the untouched original. Gate: the "
              f"upper end of each gated probe's 95% (Wilson) interval <= {gate['max_fpr']}; "
              f"{'passed' if gate['passed'] else 'not passed'}.", "",
              "| probe | rule | n | fooled | FPR | 95% interval | failed | mean change |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in probes["worst_first"]:
        p = probes["probes"][name]
        low, high = p["fpr_ci95"]
        interval = "—" if low is None else f"{low:.2f} to {high:.2f}"
        lines.append(f"| `{name}` | {p['rule']} | {p['n']} | {p['fooled']} | {_pct(p['fpr'])} "
                     f"| {interval} | {p['failed']} | {_pct(p['mean_delta'])} |")
    for item in gate.get("not_gated", []):
        lines.append(f"\nNot gated: `{item['probe']}` ({item['why']}).")
    return lines + [""] + GUARD_LINES


GUARD_LINES = [
    "Runtime guard (on by default): an empty, whitespace-only, punctuation-only or "
    "master-key-only completion (\"Solution\", \"Let's solve this problem step by step.\", "
    "\":\", ...) gets the minimum reward, 0.0, without a model call; `detail[\"guarded\"]` "
    "says why. Turn it off with `RUBRICLAB_GUARD=0`.", ""]
