# ruff: noqa
# The HTTP reward server and the command line of a generated reward.py (see
# apps/exports/bundle.py), after reward_adapters.py. Not imported by the app. Standard library
# + litellm only.

_HEADER_LIMIT = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
            413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 501: "Not Implemented"}


class _HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _Batcher:
    """Requests that arrive within `window_s` of the first one of a batch are judged together,
    as one batch (OpenRLHF sends one completion per request): one gather over the calls, one
    split over the judge processes. A batch in flight does not hold back the next one."""

    def __init__(self, judge, window_s, max_items):
        self.judge = judge
        self.window_s = window_s
        self.max_items = max_items
        self.pending = []
        self.count = 0
        self.timer = None
        self.batches = 0

    async def submit(self, items):
        future = asyncio.get_running_loop().create_future()
        self.pending.append((items, future))
        self.count += len(items)
        if self.count >= self.max_items:
            self._flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.window_s, self._flush)
        return await future

    def _flush(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending, self.count = self.pending, [], 0
        if batch:
            self.batches += 1
            asyncio.ensure_future(self._run(batch))

    async def _run(self, batch):
        items = [item for its, _ in batch for item in its]
        try:
            results = await self.judge.score_many(items)
        except Exception as exc:  # every waiting request gets an answer
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for its, future in batch:
            if not future.done():
                future.set_result(results[start:start + len(its)])
            start += len(its)


class RewardServer:
    """`python reward.py serve`: OpenRLHF's remote reward protocol and a plain batch endpoint on
    asyncio streams (thousands of open connections cost a coroutine each, not a thread).

    Life of a request:
    1. Read the head (64 KB at most) and the body (Content-Length or chunked, at most
       RUBRICLAB_SERVE_MAX_BYTES); keep the connection for the next request (HTTP/1.1).
    2. With RUBRICLAB_SERVE_TOKEN set, POSTs need `Authorization: Bearer <token>`.
    3. Read the JSON and check its shape; anything odd is a 400 that says what and where.
    4. Hand the items to the batcher, answer with the rewards (same keys whatever happened).
    """

    def __init__(self, judge=None, *, token=None, window_ms=None, max_body=None):
        self.judge = judge or get_judge()
        self.token = (os.environ.get("RUBRICLAB_SERVE_TOKEN") if token is None else token) or ""
        window = _setting("RUBRICLAB_BATCH_WINDOW_MS", window_ms, 5, float, 0)
        self.max_body = _setting("RUBRICLAB_SERVE_MAX_BYTES", max_body, 64 << 20, int, 1)
        self.batcher = _Batcher(self.judge, window / 1000.0, 4096)
        self.requests = 0

    # -- the wire ----------------------------------------------------------------------
    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        try:
            if sock is not None:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            while True:
                try:
                    request = await self._read(reader, writer)
                except _HttpError as exc:
                    await self._send(writer, exc.status, {"error": str(exc)}, close=True)
                    return
                if request is None:
                    return
                method, path, headers, body, keep = request
                try:
                    status, payload = await self.dispatch(method, path, headers, body)
                except _HttpError as exc:
                    status, payload = exc.status, {"error": str(exc)}
                except (BundleError, ValueError, TypeError, KeyError, RecursionError) as exc:
                    status, payload = 400, {"error": str(exc)[:2000]}
                except Exception as exc:  # a bug of ours: this request fails, the server stays
                    sys.stderr.write(f"reward server: {type(exc).__name__}: {exc}\n")
                    status, payload = 500, {"error": f"internal error: {type(exc).__name__}"}
                await self._send(writer, status, payload, close=not keep)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _read(self, reader, writer):
        """(method, path, headers, body, keep-alive), or None when the client is gone."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=300)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            return None
        except (asyncio.LimitOverrunError, ValueError):
            raise _HttpError(431, "the request head is over 64 KB") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _HttpError(400, "not an HTTP/1.x request line")
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _HttpError(400, f"a header line without ':': {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = ("close" not in connection if version == "HTTP/1.1"
                else "keep-alive" in connection)
        if headers.get("expect", "").lower() == "100-continue":
            # curl asks before sending a body over 1 KB and would wait a second for this.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await asyncio.wait_for(self._body(reader, headers), timeout=120)
        except asyncio.TimeoutError:
            raise _HttpError(408, "the body did not arrive within 120 s") from None
        return method, target.split("?", 1)[0], headers, body, keep

    async def _body(self, reader, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = await reader.readuntil(b"\r\n")
                try:
                    length = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _HttpError(400, "a malformed chunk size") from None
                if length == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > self.max_body:
                    raise _HttpError(413, f"the body is over {self.max_body} bytes")
                chunks.append(await reader.readexactly(length))
                await reader.readexactly(2)
        raw = headers.get("content-length")
        if raw is None:
            return b""
        if not raw.isdigit() or len(raw) > 15:
            raise _HttpError(400, "Content-Length is not a number")
        length = int(raw)
        if length > self.max_body:
            raise _HttpError(413, f"the body is over {self.max_body} bytes "
                                  "(RUBRICLAB_SERVE_MAX_BYTES)")
        return await reader.readexactly(length)

    async def _send(self, writer, status, payload, close=False):
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n"
                + ("WWW-Authenticate: Bearer\r\n" if status == 401 else "")
                + f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
        writer.write(head.encode("latin-1") + data)  # one write: no Nagle wait between parts
        await writer.drain()

    # -- the endpoints -----------------------------------------------------------------
    async def dispatch(self, method, path, headers, body):
        self.requests += 1
        path = path.rstrip("/") or "/"
        if path in ("/", "/health"):
            if method != "GET":
                raise _HttpError(405, "GET /health")
            return 200, {"status": "ok", "judge": REWARD_NAME, "calibrated": CALIBRATED,
                         "status_line": STATUS_LINE, "stats": self.judge.stats,
                         "batches": self.batcher.batches}
        if path not in ("/get_reward", "/score"):
            raise _HttpError(404, "not found; POST /get_reward or /score, GET /health")
        if method != "POST":
            raise _HttpError(405, f"POST {path}")
        if self.token:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"),
                                       f"Bearer {self.token}".encode("utf-8", "replace")):
                raise _HttpError(401, "this server needs Authorization: Bearer "
                                      "<RUBRICLAB_SERVE_TOKEN>")
        try:
            payload = json.loads(body or b"{}")
        except RecursionError:
            raise _HttpError(400, "the body nests too deeply to be read") from None
        except ValueError as exc:
            raise _HttpError(400, f"the body is not JSON: {str(exc)[:200]}") from None
        if not isinstance(payload, dict):
            raise _HttpError(400, "the body must be a JSON object")
        if path == "/get_reward":
            return 200, await self.get_reward(payload)
        return 200, await self.score(payload)

    async def _judge(self, prompts, completions, references):
        if self.judge.mode() == "group":  # a request's own completions are its groups
            return await self.judge.score_in_groups(prompts, completions)
        # Completions scored before are answered at once, without waiting for a batch.
        return (self.judge.cached(prompts, completions, references)
                or await self.batcher.submit(self.judge.items(prompts, completions,
                                                              references)))

    async def get_reward(self, payload):
        """OpenRLHF: {"query": [prompt + response], "prompts": [...], "labels": [...]}."""
        queries = payload.get("query", payload.get("queries"))
        if isinstance(queries, str):
            queries = [queries]
        prompts = payload.get("prompts")
        if isinstance(prompts, str):
            prompts = [prompts]
        labels = payload.get("labels")
        if labels is not None:
            labels = [labels] if isinstance(labels, str) else labels
            if not isinstance(labels, list) or not all(isinstance(x, (str, type(None)))
                                                       for x in labels):
                raise _HttpError(400, "labels: a list of strings")
        results = await self._judge(*openrlhf_inputs(queries, prompts, labels))
        return openrlhf_output(self.judge, results)

    async def score(self, payload):
        """{"items": [{"prompt", "completion", "reference"}]} -> {"rewards", "details"}."""
        items = payload.get("items")
        if not isinstance(items, list):
            raise _HttpError(400, "items: a list of {prompt, completion, reference}")
        prompts, completions, references = [], [], []
        tokens = strip_tokens()
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise _HttpError(400, f"items[{n}]: an object with prompt and completion")
            for field in ("prompt", "completion", "reference"):
                value = item.get(field)
                if value is not None and not isinstance(value, (str, list, dict)):
                    raise _HttpError(400, f"items[{n}].{field}: text (or chat messages), "
                                          f"not {type(value).__name__}")
            prompts.append(_text(item.get("prompt")))
            completions.append(_completion(item.get("completion"), tokens))
            references.append(_text(item.get("reference")))
        has_references = any(isinstance(i, dict) and "reference" in i for i in items)
        results = await self._judge(prompts, completions,
                                    references if has_references else None)
        return {"rewards": [reward for reward, _ in results],
                "details": [detail for _, detail in results]}

    async def start(self, host, port):
        return await asyncio.start_server(self.handle, host, port, backlog=4096,
                                          limit=_HEADER_LIMIT)


def _raise_file_limit():
    """Thousands of open connections need as many file descriptors: the soft limit goes up to
    the hard one (commonly 1,024 -> 65,536 or more)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass


def serve(host="127.0.0.1", port=5000):
    """POST /get_reward (OpenRLHF's remote protocol), POST /score (a plain batch), GET /health."""
    server = RewardServer()
    server.judge.mode()  # a bad RUBRICLAB_PAIRWISE_MODE stops here, not at the first request
    _raise_file_limit()
    _litellm()  # seconds of import before the first request, not during it
    if host not in ("127.0.0.1", "localhost", "::1") and not server.token:
        sys.stderr.write(f"warning: serving on {host} without RUBRICLAB_SERVE_TOKEN: anyone "
                         "who reaches this port can spend the judge's budget\n")

    async def main():
        listener = await server.start(host, port)
        bound = listener.sockets[0].getsockname()[1]
        print(STATUS_LINE, flush=True)
        shown = f"[{host}]" if ":" in host else host
        print(f"RubricLab reward server for {REWARD_NAME} on http://{shown}:{bound}", flush=True)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def check():
    """`python reward.py check`: the files, the settings and the key, without a model call."""
    try:
        load_spec()  # again: the file may have changed since this module was loaded
        judge = Judge()
        judge.mode()
    except BundleError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    missing = missing_keys()
    base = api_base()
    if missing and not base:
        sys.stderr.write(f"error: {REWARD_NAME} calls {SPEC['model']['model']}, which needs "
                         f"{', '.join(missing)}; it is not set in this environment\n")
        return 3
    if missing:
        sys.stderr.write(f"note: RUBRICLAB_API_KEY is not set; {base} gets a placeholder key "
                         "(fine for a server that needs none)\n")
    print(f"ok: {REWARD_NAME}, {STATUS} ({STATUS_REASON}); judge {SPEC['model']['model']}"
          + (f" at {base}" if base else "") + f", K = {judge.samples}")
    return 0


def _main(argv=None):
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return _worker()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP reward server")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=5000)
    sub.add_parser("check", help="verify the bundle's files, settings and key")
    sc = sub.add_parser("score", help="score one completion")
    sc.add_argument("--prompt", required=True)
    sc.add_argument("--completion", required=True)
    sc.add_argument("--reference")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    try:
        if args.command == "score":
            refs = [_text(args.reference)] if args.reference is not None else None
            judge = get_judge()
            [(reward, detail)] = judge.rewards_sync([_text(args.prompt)],
                                                    [_completion(args.completion)], refs)
            print(json.dumps({"reward": reward, "detail": detail, "stats": judge.stats}))
            return 0 if reward is not None else 1
        serve(args.host, args.port)
    except BundleError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
