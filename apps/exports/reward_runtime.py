# ruff: noqa
# The judge of a generated reward.py (see apps/exports/bundle.py), followed in it by
# reward_processes.py, reward_adapters.py and reward_serve.py. Not imported by the app: the
# bundle builder copies these below the embedded judge modules. Standard library + litellm only.

BUNDLE_DIR = os.path.dirname(os.path.abspath(__file__))
JUDGE_JSON = os.environ.get("RUBRICLAB_JUDGE_JSON") or os.path.join(BUNDLE_DIR, "judge.json")
_TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
              "ServiceUnavailableError", "BadGatewayError", "APIError")
_PERMANENT = ("AuthenticationError", "PermissionDeniedError", "NotFoundError",
              "BadRequestError", "ContextWindowExceededError")
# A self-hosted OpenAI-compatible server often needs no key, but the client insists on one.
_PLACEHOLDER_KEY = "no-key-needed"
STATUS = "CALIBRATED" if CALIBRATED else "UNCALIBRATED"
STATUS_LINE = f"RubricLab judge {REWARD_NAME}: {STATUS} ({STATUS_REASON})"


class BundleError(RuntimeError):
    """The bundle cannot be used as it is (a missing or altered file), or was called in a way
    it cannot judge (no reference for a pairwise judge, no prompt, a malformed request)."""


class JudgeFailure(RuntimeError):
    """The judge could not give a verdict (after retries), or gave one that does not parse."""


def load_spec(path=JUDGE_JSON):
    """judge.json, refused unless it is exactly the file this module was built with."""
    if not os.path.exists(path):
        raise BundleError(f"RubricLab bundle: {path} is missing; keep judge.json next to "
                          "reward.py (or set RUBRICLAB_JUDGE_JSON to its path).")
    with open(path, "rb") as fh:
        raw = fh.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != JUDGE_SHA256:
        raise BundleError(f"RubricLab bundle: {path} does not match this reward.py (sha256 "
                          f"{digest[:12]}… instead of {JUDGE_SHA256[:12]}…): the judge was "
                          "edited or files of two bundles were mixed. Export the bundle again.")
    return json.loads(raw.decode("utf-8"))


# Refused when loaded: a trainer that imports a bundle with a missing or altered judge.json
# stops at once with the reason, not at its first reward.
try:
    SPEC = load_spec()
except BundleError as _error:
    if __name__ == "__main__":
        sys.stderr.write(f"error: {_error}\n")
        raise SystemExit(2) from None
    raise

# The judge's status, once, where the trainer's log shows it (not from the judge processes a
# bundle starts for itself: they are this module again).
if not (__name__ == "__main__" and sys.argv[1:2] == ["_worker"]):
    sys.stderr.write(STATUS_LINE + "\n")


_LITELLM = None


def _litellm():
    """litellm, imported on the first call (it takes seconds), told to keep prompts to itself."""
    global _LITELLM
    if _LITELLM is None:
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.turn_off_message_logging = True
        # As in the app (apps/judging/provider.py): a sampling parameter the model does not take
        # is dropped, not an error that would fail every call of the bundle but none of the run.
        litellm.drop_params = True
        _LITELLM = litellm
    return _LITELLM


def api_base():
    """Where the judge is called: RUBRICLAB_API_BASE, else the model's own api_base ("" for
    the provider's public address)."""
    return os.environ.get("RUBRICLAB_API_BASE") or SPEC["model"].get("api_base") or ""


def missing_keys():
    """The key variables the judge needs and the environment lacks. A server of the user's own
    (an api_base) gets RUBRICLAB_API_KEY only, never the provider's key."""
    if api_base():
        return [] if os.environ.get("RUBRICLAB_API_KEY") else ["RUBRICLAB_API_KEY"]
    try:
        report = _litellm().validate_environment(model=SPEC["model"]["model"])
    except Exception:  # an unknown provider prefix: the first call will say so
        return []
    return list(report.get("missing_keys") or [])


def _classify(exc):
    """(kind, transient, retry_after) for an exception raised by litellm."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    retry_after = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        retry_after = float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        retry_after = None
    if retry_after is not None and not 0 <= retry_after <= 3600:
        retry_after = None  # NaN, negative or absurd: our own backoff instead
    for name in _PERMANENT:
        if name in names:
            return name, False, retry_after
    for name in _TRANSIENT:
        if name in names:
            return name, True, retry_after
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return type(exc).__name__, True, None
    return type(exc).__name__, False, retry_after


def _guard_setting(given):
    """The runtime guard (trivial completions get the minimum reward without a model call):
    on unless the argument or RUBRICLAB_GUARD says 0 / false / no / off."""
    raw = given if given is not None else os.environ.get("RUBRICLAB_GUARD", "")
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("", "1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BundleError(f"RUBRICLAB_GUARD must be 1 or 0 (on or off), not {raw!r}")


def _setting(name, given, default, kind, minimum):
    """A number from the argument, else the environment variable `name`, else the default
    (None stays None); a value that is not a number (or is below `minimum`) stops with the
    variable's name."""
    raw = given if given is not None else os.environ.get(name) or default
    if raw is None:
        return None
    try:
        value = kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise BundleError(f"{name} must be a number, not {raw!r}") from None
    if isinstance(value, float) and value != value:
        raise BundleError(f"{name} must be a number, not {raw!r}")
    if minimum is not None and value < minimum:
        raise BundleError(f"{name} must be at least {minimum}, not {raw!r}")
    return value


class Judge:
    """The calibrated judge: same prompts, parsing and aggregation as RubricLab.

    Life of one completion's reward:
    1. Each weighted criterion is asked K times (pairwise: each time in both orders), through a
       bounded number of calls in flight; transient errors are retried with backoff (Retry-After
       honoured) up to RUBRICLAB_MAX_ATTEMPTS attempts; answers that parsed are cached.
    2. An unreadable answer is asked again, once; still unreadable, that sample has no verdict.
       A call that fails for good leaves its sample without a verdict too.
    3. The samples with a verdict are combined and the criteria weighted exactly as the app does
       (scoring.completion_reward). Only when a weighted criterion has no valid sample at all
       is the completion a judge failure: `fallback` (None by default: TRL's "no reward"),
       counted in `stats`, with the reason.
    """

    def __init__(self, spec=None, *, concurrency=None, max_attempts=None, timeout_s=None,
                 fallback=None, processes=None, cache_size=100_000, guard=None):
        self.spec = spec if spec is not None else SPEC
        model = self.spec["model"]
        self.concurrency = _setting("RUBRICLAB_CONCURRENCY", concurrency, model["concurrency"],
                                    int, 1)
        self.max_attempts = _setting("RUBRICLAB_MAX_ATTEMPTS", max_attempts, 5, int, 1)
        self.timeout_s = _setting("RUBRICLAB_TIMEOUT_S", timeout_s, model["timeout_s"], float, 0.1)
        # Judge processes beside this one (see _Processes): litellm costs milliseconds of CPU
        # per call, so one process serves about 200 calls a second however fast the model is.
        self.processes = _setting("RUBRICLAB_PROCESSES", processes, 1, int, 1)
        self.fallback = _setting("RUBRICLAB_REWARD_FALLBACK", fallback, None, float, None)
        # The cheapest reward hacks (empty, punctuation-only, master-key-only completions) get
        # the minimum reward, 0.0, without a model call (the embedded `guard` module).
        self.guard = _guard_setting(guard)
        self.criteria = scoring.weighted(self.spec["criteria"])
        # K as exported: one at temperature 0 (judge.json model.samples_asked).
        self.samples = max(1, int(model.get("samples_asked") or model["samples"]))
        self.pairwise = self.spec["rubric"]["mode"] == "pairwise"
        self.cache = collections.OrderedDict()
        self.cache_size = cache_size
        # Whole results by item: a completion scored once is not rendered, hashed and parsed
        # again (GRPO scores repeated completions; TRL may hand the same batch to a sync and an
        # async function). Only successes are kept, so a failure is asked again next time.
        self.memo = {}
        self.stats = {"calls": 0, "cache_hits": 0, "retries": 0, "reasked": 0,
                      "samples_dropped": 0, "failures": 0, "scored": 0, "guarded": 0}
        self._semaphores = {}
        self._lock = threading.Lock()
        self._settings = None
        self._pool = None

    # -- results: the same keys whether the judge succeeded or failed -------------------------
    def detail(self, values=None, error=None, dropped=0, guarded=None):
        """{"criteria": {key: value or None}, "judge_failed", "error", "samples_dropped",
        "guarded"} ("guarded": why the guard gave the minimum reward, else None)."""
        values = values or {}
        return {"criteria": {c["key"]: values.get(c["key"]) for c in self.criteria},
                "judge_failed": error is not None, "error": error,
                "samples_dropped": dropped, "guarded": guarded}

    def failed(self, error):
        """(fallback, detail) of a completion the judge could not score."""
        return self.fallback, self.detail(error=str(error)[:300])

    # -- one model call ------------------------------------------------------------------
    def _semaphore(self):
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
            return sem

    def _call_settings(self):
        """What every call sends besides the messages, as the app's provider client sends it:
        no retries inside litellm or the openai client (ours count and honour Retry-After)."""
        if self._settings is None:
            model = self.spec["model"]
            settings = {"model": model["model"], "temperature": model["temperature"],
                        "max_tokens": model["max_tokens"], "timeout": self.timeout_s,
                        "num_retries": 0, "max_retries": 0}
            base = os.environ.get("RUBRICLAB_API_BASE") or model.get("api_base")
            if base:
                # A server of the user's own (vLLM, Ollama, a proxy, the trainer's network) gets
                # RUBRICLAB_API_KEY, never the provider's key from the environment
                # (OPENAI_API_KEY would otherwise go to whatever URL the bundle names).
                settings["api_base"] = base
                settings["api_key"] = os.environ.get("RUBRICLAB_API_KEY") or _PLACEHOLDER_KEY
            self._settings = settings
        return self._settings

    async def _complete(self, messages, criterion, sample, fresh=False):
        """(cache key, answer text) of one call; `fresh` skips the cache (a re-ask)."""
        model = self.spec["model"]
        schema = model.get("use_schema")
        key = hashlib.sha256(json.dumps(
            [messages, model["model"], model.get("api_base") or "", model["temperature"],
             model["max_tokens"], bool(schema), sample], sort_keys=True).encode()).hexdigest()
        if not fresh and key in self.cache:
            self.cache.move_to_end(key)
            self.stats["cache_hits"] += 1
            return key, self.cache[key]
        litellm = _litellm()
        kwargs = {**self._call_settings(), "messages": messages}
        if schema:
            kwargs["response_format"] = prompting.response_schema(criterion)
        attempt = 0
        async with self._semaphore():
            while True:
                attempt += 1
                try:
                    self.stats["calls"] += 1
                    response = await litellm.acompletion(**kwargs)
                    content = response.choices[0].message.content
                    return key, content if isinstance(content, str) else ""
                except Exception as exc:  # classified: transient ones are retried
                    kind, transient, retry_after = _classify(exc)
                    if not transient or attempt >= self.max_attempts:
                        raise JudgeFailure(f"{kind}: {str(exc)[:300]}") from None
                    self.stats["retries"] += 1
                    delay = (retry_after + random.uniform(0, 0.25 * max(retry_after, 0.5))
                             if retry_after is not None
                             else random.uniform(0.5, min(30.0, 0.5 * 2 ** attempt)))
                    await asyncio.sleep(min(delay, 30.0))

    async def _answer(self, item, criterion, sample, swapped, problems):
        """One verdict, or None (its reason appended to `problems`): an unreadable answer is
        asked again once; a call that fails after its retries is not."""
        messages = prompting.build_messages(self.spec["judge"], criterion, item, swapped=swapped)
        for attempt in (1, 2):
            try:
                key, text = await self._complete(messages, criterion, sample, fresh=attempt > 1)
            except JudgeFailure as exc:
                problems.append(str(exc))
                return None
            try:
                value, _ = verdicts.parse_verdict(text, criterion, swapped=swapped)
            except verdicts.ParseError as exc:
                if attempt == 1:
                    self.stats["reasked"] += 1
                    continue
                problems.append(f"unreadable verdict, asked twice: {exc}")
                return None
            self.cache[key] = text
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
            return value

    async def criterion_samples(self, item, criterion, problems):
        """The K samples of one criterion, None for each sample without a verdict."""
        if self.pairwise:
            async def one(sample):
                ab, ba = await asyncio.gather(
                    self._answer(item, criterion, sample, False, problems),
                    self._answer(item, criterion, sample, True, problems))
                return scoring.pairwise_sample(ab, ba)
        else:
            async def one(sample):
                return await self._answer(item, criterion, sample, False, problems)
        return list(await asyncio.gather(*(one(s) for s in range(self.samples))))

    async def score_item(self, item):
        """(reward in [0, 1], detail); raises JudgeFailure when a weighted criterion has no
        valid sample."""
        problems = []
        samples = await asyncio.gather(*(self.criterion_samples(item, c, problems)
                                         for c in self.criteria))
        by_key = {c["key"]: s for c, s in zip(self.criteria, samples)}
        dropped = sum(1 for s in samples for value in s if value is None)
        self.stats["samples_dropped"] += dropped
        reward, values, missing = scoring.completion_reward(self.criteria, by_key)
        if reward is None:
            reason = problems[0] if problems else "no verdict"
            raise JudgeFailure(f"no valid verdict for {', '.join(missing)} "
                               f"({len(problems)} problem(s); first: {reason})")
        return float(reward), self.detail(values, dropped=dropped)

    def _remember(self, key, result):
        memo = self.memo
        if len(memo) >= self.cache_size:
            memo.pop(next(iter(memo), None), None)  # the oldest entry
        memo[key] = result

    def guarded(self, item):
        """Why this completion gets the minimum reward without a model call, or None."""
        if not self.guard:
            return None
        return guard.trivial_reason(item.get("response_a" if self.pairwise else "response"))

    async def _safe(self, item):
        """(reward, detail); a completion the judge cannot score gives failed(reason)."""
        reason = self.guarded(item)
        if reason is not None:
            self.stats["guarded"] += 1
            return 0.0, self.detail(guarded=reason)
        key = _item_key(item)
        hit = self.memo.get(key)
        if hit is not None:
            self.stats["cache_hits"] += 1
            return hit
        try:
            result = await self.score_item(item)
        except JudgeFailure as exc:
            self.stats["failures"] += 1
            return self.failed(exc)
        except Exception as exc:  # a bug of ours must cost one reward, never the batch
            self.stats["failures"] += 1
            return self.failed(f"{type(exc).__name__}: {exc}")
        self.stats["scored"] += 1
        self._remember(key, result)
        return result

    # -- the three ways to turn the judge into a reward ------------------------------------
    # Pointwise: the weighted rubric score of each completion. Pairwise against a reference:
    # each completion (as A) against its reference (as B), both orders, win 1, tie 0.5,
    # loss 0 (weighted over criteria); see `items`. Pairwise within the group: below.
    async def score_in_groups(self, prompts, completions):
        """Pairwise: each completion's win rate against the other completions of its prompt
        (round robin, both orders), for group-relative advantages (GRPO)."""
        groups = collections.OrderedDict()
        for index, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(index)
        def result(reward, comparisons, error=None):
            # The same keys as every other result; criteria stay empty (a win rate is over
            # whole comparisons).
            return reward, {"criteria": {}, "judge_failed": error is not None, "error": error,
                            "samples_dropped": 0, "comparisons": comparisons}

        out = [result(self.fallback, 0, "no other completion of this prompt to compare with")
               ] * len(prompts)
        pairs = {}
        for prompt, members in groups.items():
            if len(members) < 2:
                continue
            pairs[prompt] = [(i, j) for n, i in enumerate(members) for j in members[n + 1:]]
        flat = [(prompt, i, j) for prompt, its in pairs.items() for i, j in its]
        scored = iter(await self.score_many([{
            "prompt": prompt, "response_a": completions[i], "response_b": completions[j],
            "reference": ""} for prompt, i, j in flat]))
        for prompt, members in groups.items():
            if len(members) < 2:
                continue
            results = [next(scored) for _ in pairs[prompt]]
            wins = {i: [] for i in members}
            for (i, j), (score, detail) in zip(pairs[prompt], results):
                if detail.get("judge_failed"):
                    continue
                wins[i].append(score)
                wins[j].append(1.0 - score)
            for i in members:
                if wins[i]:  # summed exactly: the same wins in any order, the same reward
                    out[i] = result(float(sum(scales.exact(w) for w in wins[i]) / len(wins[i])),
                                    len(wins[i]))
                else:
                    out[i] = result(self.fallback, 0, "every comparison failed")
        return out

    def mode(self):
        """"pointwise", or for a pairwise judge "reference" or "group"."""
        if not self.pairwise:
            return "pointwise"
        mode = os.environ.get("RUBRICLAB_PAIRWISE_MODE") or self.spec["pairwise"]["default_mode"]
        if mode not in ("reference", "group"):
            raise BundleError(f"RUBRICLAB_PAIRWISE_MODE must be reference or group, not {mode!r}")
        return mode

    def items(self, prompts, completions, references=None):
        """The items judged for pointwise and against-a-reference rewards. A pairwise judge
        never compares with nothing: a missing or empty reference is refused."""
        if len(completions) != len(prompts):
            raise BundleError(f"{len(prompts)} prompts for {len(completions)} completions")
        if references is not None and len(references) != len(prompts):
            raise BundleError(f"{len(references)} references for {len(prompts)} completions")
        if not self.pairwise:
            references = references or [""] * len(prompts)
            return [{"prompt": p, "response": c, "reference": r or ""}
                    for p, c, r in zip(prompts, completions, references)]
        empty = ([] if references is None
                 else [n for n, r in enumerate(references) if not (r or "").strip()])
        if references is None or empty:
            where = ("it was not passed" if references is None else
                     "it is empty for completion(s) " + ", ".join(map(str, empty[:10]))
                     + (" …" if len(empty) > 10 else ""))
            raise BundleError(
                "this pairwise judge compares each completion with a reference, and "
                f"{where}: pass the '{REFERENCE_COLUMN}' column (verl: ground_truth; OpenRLHF: "
                "labels, --label_key), or set RUBRICLAB_PAIRWISE_MODE=group")
        return [{"prompt": p, "response_a": c, "response_b": r, "reference": r}
                for p, c, r in zip(prompts, completions, references)]

    def cached(self, prompts, completions, references=None):
        """The results when every item was scored before, without an event loop; else None."""
        if self.mode() == "group":
            return None
        memo = self.memo
        out = []
        for item in self.items(prompts, completions, references):
            hit = memo.get(_item_key(item))
            if hit is None:
                return None
            out.append(hit)
        self.stats["cache_hits"] += len(out)
        return out

    async def rewards(self, prompts, completions, references=None):
        """[(reward, detail)] per completion."""
        if self.mode() == "group":
            return await self.score_in_groups(prompts, completions)
        return await self.score_many(self.items(prompts, completions, references))

    async def score_many(self, items):
        """[(reward, detail)] per item: in this process, or spread over the judge processes
        (RUBRICLAB_PROCESSES > 1); known items come from the memo either way, and an item
        that appears twice in a batch (GRPO repeats completions) is judged once."""
        keys = [_item_key(item) for item in items]
        first = {}
        for n, key in enumerate(keys):
            first.setdefault(key, n)
        if len(first) < len(items):
            unique = sorted(first.values())
            results = await self.score_many([items[n] for n in unique])
            by_key = {keys[n]: result for n, result in zip(unique, results)}
            self.stats["cache_hits"] += len(items) - len(unique)
            return [by_key[key] for key in keys]
        if self.processes <= 1:
            return list(await asyncio.gather(*(self._safe(item) for item in items)))
        out, todo = [None] * len(items), []
        for n, item in enumerate(items):
            hit = self.memo.get(_item_key(item))
            if hit is not None:
                self.stats["cache_hits"] += 1
                out[n] = hit
            else:
                todo.append(n)
        if todo:
            with self._lock:
                if self._pool is None:
                    self._pool = _Processes(self)
            results = await _BACKGROUND.run_async(self._pool.score([items[n] for n in todo]))
            for n, result in zip(todo, results):
                out[n] = result
                if not result[1].get("judge_failed"):
                    self._remember(_item_key(items[n]), result)
        return out

    def rewards_sync(self, prompts, completions, references=None):
        """The same for synchronous callers: from the memo at once when it has them all,
        else on the background event loop."""
        return (self.cached(prompts, completions, references)
                or _BACKGROUND.run(self.rewards(prompts, completions, references)))


def _item_key(item):
    return tuple(item.get(name) or "" for name in prompting.ITEM_FIELDS)
