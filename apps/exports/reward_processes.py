# ruff: noqa
# The background event loop and the judge processes (RUBRICLAB_PROCESSES) of a generated
# reward.py (see apps/exports/bundle.py), after reward_runtime.py. Not imported by the app.
# Standard library + litellm only.

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
                           "fallback": judge.fallback, "guard": judge.guard}).encode() + b"\n"
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
                out.extend([self.judge.failed(str(exc))] * len(chunk))
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
                  fallback=settings["fallback"], processes=1, guard=settings["guard"])
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
            results = [judge.failed(f"{type(exc).__name__}: {exc}")] * len(request["items"])
        send({"id": request["id"], "results": results})

    def read():
        for line in sys.stdin:
            asyncio.run_coroutine_threadsafe(answer(json.loads(line)), loop)
        loop.call_soon_threadsafe(loop.stop)

    send({"ready": True})
    threading.Thread(target=read, daemon=True).start()
    loop.run_forever()
    return 0
