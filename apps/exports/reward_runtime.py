# ruff: noqa
# This file is the runtime half of a generated reward.py (see apps/exports/bundle.py). It is not
# imported by the app: the bundle builder copies it below the embedded judge modules. It must
# stay standard library + litellm only.

BUNDLE_DIR = os.path.dirname(os.path.abspath(__file__))
JUDGE_JSON = os.environ.get("RUBRICLAB_JUDGE_JSON") or os.path.join(BUNDLE_DIR, "judge.json")
_TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
              "ServiceUnavailableError", "BadGatewayError", "APIError")
_PERMANENT = ("AuthenticationError", "PermissionDeniedError", "NotFoundError",
              "BadRequestError", "ContextWindowExceededError")


class BundleError(RuntimeError):
    """The bundle cannot be used as it is: a missing or altered file."""


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


def _missing_keys(litellm, model, api_base):
    try:
        report = litellm.validate_environment(model=model, api_base=api_base or None)
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
    for name in _PERMANENT:
        if name in names:
            return name, False, retry_after
    for name in _TRANSIENT:
        if name in names:
            return name, True, retry_after
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return type(exc).__name__, True, None
    return type(exc).__name__, False, retry_after


def _setting(name, given, default, kind, minimum):
    """A number from the argument, else the environment variable `name`, else the default
    (None stays None); a value that is not a number (or is below `minimum`) stops with the
    variable's name."""
    raw = given if given is not None else os.environ.get(name) or default
    if raw is None:
        return None
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise BundleError(f"{name} must be a number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise BundleError(f"{name} must be at least {minimum}, not {raw!r}")
    return value


class Judge:
    """The calibrated judge: same prompts, parsing and aggregation as RubricLab.

    Concurrency is bounded, transient errors are retried with backoff (honouring Retry-After),
    answers are cached in-process, every call has a timeout. A judge failure gives `fallback`
    (None by default: TRL's "no reward") and is counted in `stats`.
    """

    def __init__(self, spec=None, *, concurrency=None, max_attempts=None, timeout_s=None,
                 fallback=None, processes=None, cache_size=100_000):
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
        self.criteria = [c for c in self.spec["criteria"] if c["weight"] > 0]
        self.pairwise = self.spec["rubric"]["mode"] == "pairwise"
        self.cache = collections.OrderedDict()
        self.cache_size = cache_size
        # Whole results by item: a completion scored once is not rendered, hashed and parsed
        # again (GRPO scores repeated completions; TRL may hand the same batch to a sync and an
        # async function). Only successes are kept, so a failure is asked again next time.
        self.memo = {}
        self.stats = {"calls": 0, "cache_hits": 0, "retries": 0, "failures": 0, "scored": 0}
        self._semaphores = {}
        self._lock = threading.Lock()
        self._settings = None
        self._pool = None

    # -- one model call ------------------------------------------------------------------
    def _semaphore(self):
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
            return sem

    def _call_settings(self, litellm):
        """What every call sends besides the messages, as the app's provider client sends it:
        no retries inside litellm or the openai client (ours count and honour Retry-After)."""
        if self._settings is None:
            model = self.spec["model"]
            settings = {"model": model["model"], "temperature": model["temperature"],
                        "max_tokens": model["max_tokens"], "timeout": self.timeout_s,
                        "num_retries": 0, "max_retries": 0}
            # The same model served at another address (the trainer's network).
            api_base = os.environ.get("RUBRICLAB_API_BASE") or model.get("api_base")
            if api_base:
                settings["api_base"] = api_base
                if os.environ.get("RUBRICLAB_API_KEY"):
                    settings["api_key"] = os.environ["RUBRICLAB_API_KEY"]
                elif _missing_keys(litellm, model["model"], api_base):
                    # A self-hosted OpenAI-compatible server often needs no key, but the client
                    # insists on one: a placeholder, never another provider's key.
                    settings["api_key"] = "no-key-needed"
            self._settings = settings
        return self._settings

    async def _complete(self, messages, criterion, sample):
        model = self.spec["model"]
        schema = model.get("use_schema")
        key = hashlib.sha256(json.dumps(
            [messages, model["model"], model.get("api_base") or "", model["temperature"],
             model["max_tokens"], bool(schema), sample], sort_keys=True).encode()).hexdigest()
        if key in self.cache:
            self.cache.move_to_end(key)
            self.stats["cache_hits"] += 1
            return key, self.cache[key]
        litellm = _litellm()
        kwargs = {**self._call_settings(litellm), "messages": messages}
        if schema:
            kwargs["response_format"] = prompting.response_schema(criterion)
        attempt = 0
        async with self._semaphore():
            while True:
                attempt += 1
                try:
                    self.stats["calls"] += 1
                    response = await litellm.acompletion(**kwargs)
                    return key, response.choices[0].message.content or ""
                except Exception as exc:  # classified: transient ones are retried
                    kind, transient, retry_after = _classify(exc)
                    if not transient or attempt >= self.max_attempts:
                        raise JudgeFailure(f"{kind}: {str(exc)[:300]}") from None
                    self.stats["retries"] += 1
                    delay = (retry_after + random.uniform(0, 0.25 * max(retry_after, 0.5))
                             if retry_after is not None
                             else random.uniform(0.5, min(30.0, 0.5 * 2 ** attempt)))
                    await asyncio.sleep(min(delay, 30.0))

    async def _value(self, item, criterion, sample, swapped):
        messages = prompting.build_messages(self.spec["judge"], criterion, item, swapped=swapped)
        key, text = await self._complete(messages, criterion, sample)
        try:
            value, _ = verdicts.parse_verdict(text, criterion, swapped=swapped)
        except verdicts.ParseError as exc:
            raise JudgeFailure(f"unreadable verdict: {exc}") from None
        self.cache[key] = text
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return value

    async def criterion_value(self, item, criterion):
        """The combined verdict over K samples (and both orders for pairwise), as the app."""
        k = int(self.spec["model"]["samples"])
        if self.pairwise:
            async def one(sample):
                ab, ba = await asyncio.gather(self._value(item, criterion, sample, False),
                                              self._value(item, criterion, sample, True))
                return verdicts.pairwise_sample_value(ab, ba)
        else:
            async def one(sample):
                return await self._value(item, criterion, sample, False)
        values = await asyncio.gather(*(one(s) for s in range(k)))
        value, _, _, _ = verdicts.combine(criterion["scale"], list(values))
        return value

    async def score_item(self, item):
        """(reward in [0, 1], {criterion: value}); raises JudgeFailure."""
        values = await asyncio.gather(*(self.criterion_value(item, c) for c in self.criteria))
        detail = {c["key"]: v for c, v in zip(self.criteria, values)}
        return float(scoring.weighted_reward(self.criteria, detail)), detail

    def _remember(self, key, result):
        memo = self.memo
        if len(memo) >= self.cache_size:
            memo.pop(next(iter(memo), None), None)  # the oldest entry
        memo[key] = result

    async def _safe(self, item):
        """(reward, detail); on a judge failure (fallback, {"judge_failed": True, "error"})."""
        key = _item_key(item)
        hit = self.memo.get(key)
        if hit is not None:
            self.stats["cache_hits"] += 1
            return hit
        try:
            result = await self.score_item(item)
            self.stats["scored"] += 1
            self._remember(key, result)
            return result
        except JudgeFailure as exc:
            self.stats["failures"] += 1
            return self.fallback, {"judge_failed": True, "error": str(exc)[:300]}

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
        out = [(self.fallback, {"judge_failed": True, "error": "no other completion of this "
                                 "prompt to compare with"})] * len(prompts)
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
                out[i] = (((sum(wins[i]) / len(wins[i])), {"comparisons": len(wins[i])})
                          if wins[i] else (self.fallback, {"judge_failed": True,
                                                           "error": "every comparison failed"}))
        return out

    def mode(self):
        """"pointwise", or for a pairwise judge "reference" or "group"."""
        if not self.pairwise:
            return "pointwise"
        return os.environ.get("RUBRICLAB_PAIRWISE_MODE") or self.spec["pairwise"]["default_mode"]

    def items(self, prompts, completions, references=None):
        """The items judged for pointwise and against-a-reference rewards."""
        if not self.pairwise:
            references = references or [""] * len(prompts)
            return [{"prompt": p, "response": c, "reference": r or ""}
                    for p, c, r in zip(prompts, completions, references)]
        if references is None:
            raise BundleError("this pairwise judge compares each completion with a reference: "
                              f"pass the '{REFERENCE_COLUMN}' column, or set "
                              "RUBRICLAB_PAIRWISE_MODE=group")
        return [{"prompt": p, "response_a": c, "response_b": r or "", "reference": r or ""}
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
        (RUBRICLAB_PROCESSES > 1); known items come from the memo either way."""
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


# -- a background event loop for the synchronous entry points ----------------------------
class _Background:
    """One event loop in a daemon thread: sync callers (TRL's reward_func, verl, OpenRLHF, the
    HTTP server) submit coroutines to it, so litellm keeps one client and its connections."""

    def __init__(self):
        self.loop = None
        self.lock = threading.Lock()

    def _started(self):
        with self.lock:
            if self.loop is None:
                self.loop = asyncio.new_event_loop()
                threading.Thread(target=self.loop.run_forever, name="rubriclab-judge",
                                 daemon=True).start()
        return self.loop

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._started()).result()

    async def run_async(self, coro):
        """Await `coro` on the background loop from any loop (the judge processes' pipes
        belong to it)."""
        loop = self._started()
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


_BACKGROUND = _Background()


# -- judge processes (RUBRICLAB_PROCESSES) ---------------------------------------------------
class _Child:
    def __init__(self, proc):
        self.proc = proc
        self.pending = {}
        self.stats = {}
        self.reader = None

    @property
    def alive(self):
        return self.proc.returncode is None and self.reader is not None and not self.reader.done()


class _Processes:
    """`python reward.py _worker` processes, each a Judge with its share of the concurrency,
    fed JSON lines over pipes. Items are split into one contiguous chunk per process; a process
    that dies fails its chunk (fallback rewards, counted) and is started again next time."""

    def __init__(self, judge):
        self.judge = judge
        self.children = []
        self.lock = None
        self.next_id = 0
        atexit.register(self.close)

    async def _start(self):
        judge = self.judge
        for child in self.children:
            if child.proc.returncode is None:
                child.proc.kill()
        share = -(-judge.concurrency // judge.processes)
        init = json.dumps({"spec": judge.spec, "concurrency": share,
                           "max_attempts": judge.max_attempts, "timeout_s": judge.timeout_s,
                           "fallback": judge.fallback}).encode() + b"\n"
        children = []
        for _ in range(judge.processes):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *(["-I"] if sys.flags.isolated else []),
                os.path.abspath(__file__), "_worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26)
            proc.stdin.write(init)
            children.append(_Child(proc))
        for child in children:
            await child.proc.stdin.drain()
        for child in children:  # each imports litellm first: seconds, once
            if not (await child.proc.stdout.readline()).startswith(b'{"ready"'):
                raise JudgeFailure("a judge process did not start (its error is above, on "
                                   "stderr)")
            child.reader = asyncio.ensure_future(self._read(child))
        self.children = children

    async def _read(self, child):
        try:
            while True:
                line = await child.proc.stdout.readline()
                if not line:
                    break
                message = json.loads(line)
                for key, value in message["stats"].items():
                    self.judge.stats[key] = (self.judge.stats.get(key, 0) + value
                                             - child.stats.get(key, 0))
                child.stats = message["stats"]
                future = child.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result([tuple(result) for result in message["results"]])
        finally:
            code = await child.proc.wait()
            for future in child.pending.values():
                if not future.done():
                    future.set_exception(JudgeFailure(f"a judge process exited (code {code})"))
            child.pending.clear()

    async def score(self, items):
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if not self.children or not all(child.alive for child in self.children):
                await self._start()
        size = -(-len(items) // len(self.children))
        sent = []
        for child, start in zip(self.children, range(0, len(items), size)):
            chunk = items[start:start + size]
            self.next_id += 1
            future = asyncio.get_running_loop().create_future()
            child.pending[self.next_id] = future
            try:
                child.proc.stdin.write(json.dumps({"id": self.next_id, "items": chunk}).encode()
                                       + b"\n")
                await child.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the reader fails the future when it sees the process gone
            sent.append((chunk, future))
        out = []
        for chunk, future in sent:
            try:
                out.extend(await future)
            except JudgeFailure as exc:
                self.judge.stats["failures"] += len(chunk)
                out.extend([(self.judge.fallback, {"judge_failed": True, "error": str(exc)})]
                           * len(chunk))
        return out

    def close(self):
        """At exit: end of input tells each process to finish and leave."""
        loop = _BACKGROUND.loop
        for child in self.children:
            if loop is not None and not loop.is_closed() and child.proc.returncode is None:
                try:
                    loop.call_soon_threadsafe(child.proc.stdin.close)
                except RuntimeError:
                    pass
        self.children = []


def _worker():
    """`python reward.py _worker`: one of the judge processes of RUBRICLAB_PROCESSES. Reads a
    settings line, then requests {"id", "items"}; answers {"id", "results", "stats"}."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else prints goes to stderr, never into the answers
    settings = json.loads(sys.stdin.readline())
    judge = Judge(settings["spec"], concurrency=settings["concurrency"],
                  max_attempts=settings["max_attempts"], timeout_s=settings["timeout_s"],
                  fallback=settings["fallback"], processes=1)
    _litellm()
    loop = asyncio.new_event_loop()
    lock = threading.Lock()

    def send(message):
        with lock:
            message["stats"] = dict(judge.stats)
            channel.write(json.dumps(message) + "\n")
            channel.flush()

    async def answer(request):
        try:
            results = await judge.score_many(request["items"])
        except Exception as exc:  # answered, never left waiting
            judge.stats["failures"] += len(request["items"])
            results = [(judge.fallback, {"judge_failed": True,
                                         "error": f"{type(exc).__name__}: {exc}"[:300]})
                       ] * len(request["items"])
        send({"id": request["id"], "results": results})

    def read():
        for line in sys.stdin:
            asyncio.run_coroutine_threadsafe(answer(json.loads(line)), loop)
        loop.call_soon_threadsafe(loop.stop)

    send({"ready": True})
    threading.Thread(target=read, daemon=True).start()
    loop.run_forever()
    return 0
_JUDGE = None


def get_judge():
    global _JUDGE
    if _JUDGE is None:
        _JUDGE = Judge()
    return _JUDGE


def _text(value):
    """A prompt or completion as text: plain strings, or chat messages (conversational)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("content") or "")
    if isinstance(value, (list, tuple)):
        parts = [m for m in value if isinstance(m, dict)]
        if len(parts) == 1:
            return str(parts[0].get("content") or "")
        return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in parts)
    return str(value)


def _references(kwargs, n):
    column = kwargs.get(REFERENCE_COLUMN)
    if column is None:
        return None
    return [_text(r) for r in column][:n]


# -- TRL and OpenRLHF share the name reward_func ------------------------------------------
def reward_func(*args, **kwargs):
    """TRL: reward_func(prompts=..., completions=..., **columns) -> one float (None on a judge
    failure) per completion. OpenRLHF: reward_func(queries, prompts, labels) ->
    {"rewards", "scores", "extra_logs"}. TRL passes keywords, OpenRLHF three positionals."""
    if "queries" in kwargs or (len(args) == 3 and "completions" not in kwargs):
        names = ("queries", "prompts", "labels")
        values = dict(zip(names, args))
        values.update({k: v for k, v in kwargs.items() if k in names})
        return reward_func_openrlhf(values["queries"], values.get("prompts") or [],
                                    values.get("labels"))
    prompts = kwargs.pop("prompts") if "prompts" in kwargs else args[0]
    completions = kwargs.pop("completions") if "completions" in kwargs else args[1]
    return reward_func_trl(prompts, completions, **kwargs)


def _failures(results):
    return sum(1 for _, detail in results if detail.get("judge_failed"))


def _log_failures(kwargs, results, name):
    """TRL passes log_metric: the share of judge failures in the batch is logged beside the
    reward (as <name>/judge_failures)."""
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and results:
        log_metric(f"{name}/judge_failures", _failures(results) / len(results))


def reward_func_trl(prompts, completions, **kwargs):
    """TRL reward function: one float (or None on a judge failure) per completion."""
    references = _references(kwargs, len(completions))
    results = get_judge().rewards_sync(
        [_text(p) for p in prompts], [_text(c) for c in completions], references)
    _log_failures(kwargs, results, REWARD_NAME)
    return [reward for reward, _ in results]


async def async_reward_func(prompts, completions, **kwargs):
    """The same, as a coroutine: GRPOTrainer runs async reward functions concurrently."""
    references = _references(kwargs, len(completions))
    judge = get_judge()
    texts = [_text(p) for p in prompts], [_text(c) for c in completions], references
    results = judge.cached(*texts) or await judge.rewards(*texts)
    _log_failures(kwargs, results, REWARD_NAME + "_async")
    return [reward for reward, _ in results]


reward_func.__name__ = REWARD_NAME
reward_func_trl.__name__ = REWARD_NAME
async_reward_func.__name__ = REWARD_NAME + "_async"


# -- verl ---------------------------------------------------------------------------------
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl custom reward function. The prompt comes from extra_info["prompt"] (or
    ["question"]); ground_truth is the reference for pairwise judges."""
    extra = extra_info or {}
    prompt = _text(extra.get("prompt") or extra.get("question") or "")
    judge = get_judge()
    reference = None if ground_truth is None else [_text(ground_truth)]
    if judge.pairwise and reference is None:
        reference = [""]
    [(reward, detail)] = judge.rewards_sync([prompt], [_text(solution_str)], reference)
    failed = bool(detail.get("judge_failed"))
    score = float(reward) if reward is not None else float(judge.fallback or 0.0)
    out = {"score": score, "judge_failed": failed}
    for key, value in detail.items():
        if key not in ("judge_failed", "error"):
            out[f"criterion/{key}"] = value
    return out


# -- OpenRLHF -----------------------------------------------------------------------------
def reward_func_openrlhf(queries, prompts, labels):
    """OpenRLHF remote reward function: queries are prompt + response."""
    responses = [q[len(p):] if isinstance(q, str) and q.startswith(p) else _text(q)
                 for q, p in zip(queries, prompts)]
    judge = get_judge()
    references = [_text(x) for x in labels] if labels is not None else None
    results = judge.rewards_sync([_text(p) for p in prompts], responses, references)
    fallback = float(judge.fallback or 0.0)
    rewards = [float(r) if r is not None else fallback for r, _ in results]
    extra = {"judge_failures": float(_failures(results))}
    try:
        import torch

        return {"rewards": torch.tensor(rewards), "scores": torch.tensor(rewards),
                "extra_logs": {k: torch.tensor(v) for k, v in extra.items()}}
    except ImportError:
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra}


# -- HTTP ---------------------------------------------------------------------------------
def serve(host="0.0.0.0", port=5000):
    """POST /get_reward (OpenRLHF's remote protocol), POST /score (a plain batch), GET /health."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    judge = get_judge()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        # Headers and body go out as two writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms on Linux) on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            if self.path.rstrip("/") in ("/health", ""):
                self._send(200, {"status": "ok", "judge": REWARD_NAME,
                                 "calibrated": CALIBRATED, "stats": judge.stats})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/get_reward":
                    queries = body.get("query") or body.get("queries") or []
                    prompts = body.get("prompts") or [""] * len(queries)
                    out = reward_func_openrlhf(queries, prompts, body.get("labels"))
                    out = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in out.items()}
                    out["extra_logs"] = {k: (v.tolist() if hasattr(v, "tolist") else v)
                                         for k, v in out["extra_logs"].items()}
                    self._send(200, out)
                elif self.path == "/score":
                    items = body.get("items") or []
                    prompts = [_text(i.get("prompt")) for i in items]
                    completions = [_text(i.get("completion")) for i in items]
                    refs = [_text(i.get("reference")) for i in items]
                    has_refs = any("reference" in i for i in items)
                    results = judge.rewards_sync(prompts, completions,
                                                 refs if has_refs else None)
                    self._send(200, {"rewards": [r for r, _ in results],
                                     "details": [d for _, d in results]})
                else:
                    self._send(404, {"error": "not found"})
            except (ValueError, TypeError, KeyError, BundleError) as exc:
                self._send(400, {"error": str(exc)})

    _litellm()  # seconds of import before the first request, not during it
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"RubricLab reward server for {REWARD_NAME} on http://{host}:{server.server_port}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _main(argv=None):
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return _worker()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP reward server")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, default=5000)
    sub.add_parser("check", help="verify the bundle's files")
    sc = sub.add_parser("score", help="score one completion")
    sc.add_argument("--prompt", required=True)
    sc.add_argument("--completion", required=True)
    sc.add_argument("--reference")
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            load_spec()  # again: the file may have changed since this module was loaded
        except BundleError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        print(f"ok: {REWARD_NAME}, {'CALIBRATED' if CALIBRATED else 'UNCALIBRATED'}")
        return 0
    if args.command == "score":
        refs = [args.reference] if args.reference is not None else None
        [(reward, detail)] = get_judge().rewards_sync([args.prompt], [args.completion], refs)
        print(json.dumps({"reward": reward, "criteria": detail, "stats": get_judge().stats}))
        return 0 if reward is not None else 1
    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
