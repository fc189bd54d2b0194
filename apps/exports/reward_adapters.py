# ruff: noqa
# The trainer adapters of a generated reward.py (see apps/exports/bundle.py): TRL, verl and
# OpenRLHF, after reward_processes.py and before reward_serve.py. Not imported by the app.
# Standard library + litellm only.

_JUDGE = None
_JUDGE_LOCK = threading.Lock()


def get_judge():
    global _JUDGE
    with _JUDGE_LOCK:
        if _JUDGE is None:
            _JUDGE = Judge()
        return _JUDGE


def _text(value):
    """A prompt or completion as text: plain strings, or chat messages (conversational). NUL
    and lone surrogates become U+FFFD, as in the app's stored items (a lone surrogate cannot
    even be sent to the model)."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        content = value.get("content")
        if isinstance(content, list):  # OpenAI content parts: their text, in order
            content = "\n".join(part["text"] for part in content
                                if isinstance(part, dict) and isinstance(part.get("text"), str))
        text = content if isinstance(content, str) else ""
    elif isinstance(value, (list, tuple)):
        parts = [m for m in value if isinstance(m, dict)]
        if len(parts) == 1:
            text = _text(parts[0])
        else:
            text = "\n\n".join(f"{m.get('role', 'user')}: {_text(m)}" for m in parts)
    else:
        text = str(value)
    return verdicts.storable(text)


def strip_tokens():
    """RUBRICLAB_STRIP_TOKENS: the trainer's special tokens (e.g. "<|im_end|>,<|endoftext|>")
    removed from every completion before it is judged. Nothing is removed unless it is set."""
    raw = os.environ.get("RUBRICLAB_STRIP_TOKENS") or ""
    return [token for token in (t.strip() for t in raw.split(",")) if token]


def _completion(value, tokens=None):
    text = _text(value)
    for token in strip_tokens() if tokens is None else tokens:
        text = text.replace(token, "")
    return text


def _completions(values):
    tokens = strip_tokens()
    return [_completion(v, tokens) for v in values]


def _references(kwargs, n):
    column = kwargs.get(REFERENCE_COLUMN)
    if column is None:
        return None
    return [_text(r) for r in column][:n]


def _failure_share(results):
    return (sum(1 for _, detail in results if detail.get("judge_failed")) / len(results)
            if results else 0.0)


# -- TRL and OpenRLHF share the name reward_func ------------------------------------------
def reward_func(*args, **kwargs):
    """TRL: reward_func(prompts=..., completions=..., **columns) -> one float (None on a judge
    failure) per completion. OpenRLHF: reward_func(queries, prompts, labels) ->
    {"rewards", "scores", "extra_logs"}. TRL passes keywords, OpenRLHF three positionals."""
    if "queries" in kwargs or (len(args) == 3 and "completions" not in kwargs):
        names = ("queries", "prompts", "labels")
        values = dict(zip(names, args))
        values.update({k: v for k, v in kwargs.items() if k in names})
        return reward_func_openrlhf(values["queries"], values.get("prompts"),
                                    values.get("labels"))
    prompts = kwargs.pop("prompts") if "prompts" in kwargs else args[0]
    completions = kwargs.pop("completions") if "completions" in kwargs else args[1]
    return reward_func_trl(prompts, completions, **kwargs)


_TRL_STATUS_LOGGED = set()


def _log_trl(kwargs, results, name):
    """TRL passes log_metric: the share of judge failures in the batch is logged beside the
    reward (as <name>/judge_failures), and the judge's status once (<name>/calibrated, 1 or
    0), so the run's own logs say whether its reward was calibrated."""
    log_metric = kwargs.get("log_metric")
    if not callable(log_metric):
        return
    if name not in _TRL_STATUS_LOGGED:
        _TRL_STATUS_LOGGED.add(name)
        log_metric(f"{name}/calibrated", 1.0 if CALIBRATED else 0.0)
    if results:
        log_metric(f"{name}/judge_failures", _failure_share(results))


def reward_func_trl(prompts, completions, **kwargs):
    """TRL reward function: one float (or None on a judge failure) per completion."""
    references = _references(kwargs, len(completions))
    results = get_judge().rewards_sync([_text(p) for p in prompts], _completions(completions),
                                       references)
    _log_trl(kwargs, results, REWARD_NAME)
    return [reward for reward, _ in results]


async def async_reward_func(prompts, completions, **kwargs):
    """The same, as a coroutine: GRPOTrainer runs async reward functions concurrently."""
    references = _references(kwargs, len(completions))
    judge = get_judge()
    texts = [_text(p) for p in prompts], _completions(completions), references
    results = judge.cached(*texts) or await judge.rewards(*texts)
    _log_trl(kwargs, results, REWARD_NAME + "_async")
    return [reward for reward, _ in results]


reward_func.__name__ = REWARD_NAME
reward_func_trl.__name__ = REWARD_NAME
async_reward_func.__name__ = REWARD_NAME + "_async"


# -- verl ---------------------------------------------------------------------------------
def verl_result(judge, reward, detail):
    """verl takes the keys of its first result for the whole batch: every result has the same
    keys, numbers where verl averages. score: the reward (the fallback, else 0.0, on a
    failure); judge_failed; criterion/<key>: the criterion's score in [0, 1], NaN without a
    verdict."""
    out = {"score": float(reward) if reward is not None else float(judge.fallback or 0.0),
           "judge_failed": bool(detail.get("judge_failed"))}
    values = detail.get("criteria") or {}
    for criterion in judge.criteria:
        value = values.get(criterion["key"])
        out["criterion/" + criterion["key"]] = (
            float("nan") if value is None else scales.level_score(criterion["scale"], value))
    return out


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl custom reward function. The prompt comes from extra_info["prompt"] (or
    ["question"]) and is required; ground_truth is the reference (required for a pairwise
    judge)."""
    extra = extra_info if isinstance(extra_info, dict) else {}
    prompt = _text(extra.get("prompt") or extra.get("question"))
    if not prompt.strip():
        raise BundleError("compute_score needs the prompt the completion answers: put it in "
                          "extra_info['prompt'] when you write the parquet files")
    judge = get_judge()
    if judge.mode() == "group":
        raise BundleError("RUBRICLAB_PAIRWISE_MODE=group needs every completion of a prompt "
                          "at once; verl's compute_score sees one: use the reference mode")
    reference = None if ground_truth is None else [_text(ground_truth)]
    [(reward, detail)] = judge.rewards_sync([prompt], [_completion(solution_str)], reference)
    return verl_result(judge, reward, detail)


# -- OpenRLHF -----------------------------------------------------------------------------
def openrlhf_inputs(queries, prompts, labels):
    """(prompts, responses, references) from OpenRLHF's query = prompt + response. A query
    that does not start with its prompt is refused: judging the whole query would judge the
    prompt as the answer."""
    if not isinstance(queries, (list, tuple)):
        raise BundleError("queries: a list of strings (prompt + response)")
    if not isinstance(prompts, (list, tuple)) or len(prompts) != len(queries):
        raise BundleError("prompts: a list with one prompt per query (OpenRLHF sends them)")
    if labels is not None and (not isinstance(labels, (list, tuple))
                               or len(labels) != len(queries)):
        raise BundleError("labels: a list with one label per query, or none")
    tokens = strip_tokens()
    texts, responses = [], []
    for n, (query, prompt) in enumerate(zip(queries, prompts)):
        if not isinstance(query, str) or not isinstance(prompt, str):
            raise BundleError(f"queries[{n}] and prompts[{n}] must be strings")
        if not query.startswith(prompt):
            raise BundleError(f"queries[{n}] does not start with prompts[{n}]: OpenRLHF sends "
                              "the prompt followed by the response; check the prompt and "
                              "the chat template")
        texts.append(_text(prompt))
        responses.append(_completion(query[len(prompt):], tokens))
    references = [_text(x) for x in labels] if labels is not None else None
    return texts, responses, references


def openrlhf_output(judge, results):
    """{"rewards", "scores", "extra_logs": {"judge_failures": share}}: the same keys on every
    return path; a failed reward is the fallback (else 0.0)."""
    fallback = float(judge.fallback or 0.0)
    rewards = [float(r) if r is not None else fallback for r, _ in results]
    return {"rewards": rewards, "scores": list(rewards),
            "extra_logs": {"judge_failures": _failure_share(results)}}


def reward_func_openrlhf(queries, prompts, labels):
    """OpenRLHF reward function: queries are prompt + response; tensors when torch is there."""
    judge = get_judge()
    results = judge.rewards_sync(*openrlhf_inputs(queries, prompts, labels))
    out = openrlhf_output(judge, results)
    try:
        import torch
    except ImportError:
        return out
    return {"rewards": torch.tensor(out["rewards"]), "scores": torch.tensor(out["scores"]),
            "extra_logs": {k: torch.tensor(v) for k, v in out["extra_logs"].items()}}
