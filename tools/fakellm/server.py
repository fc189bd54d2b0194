"""aiohttp implementation of the fake OpenAI-compatible chat-completions server.

Single process, single event loop: all state lives in one ``FakeState`` that is only touched
from the loop, so no locks are needed. Latency is an ``asyncio.sleep``, which is why hundreds of
slow requests can be in flight at once without the server being the bottleneck.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web

from tools.fakellm.settings import Settings
from tools.fakellm.verdicts import count_tokens, messages_text, verdict

DEFAULT_REQUEST_LOG_SIZE = 10_000
MALFORMED_CONTENT = "I think the answer is good."
HUGE_INT_DIGITS = 5000
# What OpenAI sends (code content_policy_violation / context_length_exceeded), which litellm
# maps to its ContentPolicyViolationError and ContextWindowExceededError.
CONTENT_FILTER_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system. (fakellm content filter)")
CONTEXT_WINDOW_MESSAGE = (
    "This model's maximum context length is {limit} tokens. However, your messages resulted "
    "in {tokens} tokens. Please reduce the length of the messages.")


class FakeState:
    """Settings, fault RNG and counters of one running server."""

    def __init__(self, baseline: Settings, request_log_size: int = DEFAULT_REQUEST_LOG_SIZE):
        self.baseline = baseline
        self.request_log_size = request_log_size
        # Live gauges are NOT reset by /_control/reset: requests already in flight still end
        # later and decrement them.
        self.in_flight = 0
        self.hanging = 0
        self.reset()

    def reset(self) -> None:
        """Back to the startup (CLI) settings, a fresh RNG and zeroed cumulative counters."""
        self.settings = self.baseline
        self.rng = random.Random(self.settings.seed)  # seed None => seeded from the OS
        self.storm_started = time.monotonic()
        self.attempts: dict[str, int] = {}
        self.seq = 0
        self.requests = 0
        self.completed = 0
        self.by_status: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.hung = 0
        self.closed = 0
        self.cancelled = 0
        self.last_request_at: float | None = None
        # The most requests in flight at once since the last reset (a run-wide cap shows here).
        self.max_in_flight = self.in_flight
        self.request_log: deque[Any] = deque(maxlen=self.request_log_size)

    def apply(self, changes: dict[str, Any]) -> None:
        """Partial update from the control endpoint (validated; raises ValueError)."""
        self.settings = self.settings.updated(changes)
        if "seed" in changes:
            self.rng = random.Random(self.settings.seed)
        if "storm_s" in changes:
            self.storm_started = time.monotonic()  # the storm window starts at the control call
        if "fail_first_n" in changes:
            self.attempts.clear()  # a new N applies to fresh attempt counts

    def storm_active(self) -> bool:
        storm_s = self.settings.storm_s
        return storm_s is not None and time.monotonic() - self.storm_started < storm_s

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completed": self.completed,
            "by_status": dict(self.by_status),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "hung": self.hung,
            "hanging": self.hanging,
            "closed": self.closed,
            "cancelled": self.cancelled,
            "faults": dict(self.faults),
            "last_request_at": self.last_request_at,
        }


STATE_KEY = web.AppKey("fakellm_state", FakeState)


# --------------------------------------------------------------------------- responses


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    """OpenAI error envelope; the openai SDK (and so litellm) reads ``error.message``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def completion_body(seq: int, model: str, content: str, prompt_text: str) -> dict[str, Any]:
    prompt_tokens = count_tokens(prompt_text)
    completion_tokens = count_tokens(content)
    return {
        "id": f"chatcmpl-fake-{seq}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fakellm",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def render_content(answer: dict[str, Any], fault: str | None) -> str:
    """Serialise the verdict, or damage it the way real models do for the content faults."""
    if fault == "malformed":
        return MALFORMED_CONTENT
    if fault == "fenced":
        return (
            "Sure! Here is my evaluation:\n\n```json\n"
            + json.dumps(answer, indent=2)
            + "\n```\n\nLet me know if you need anything else."
        )
    if fault == "trailing_comma":
        return json.dumps(answer)[:-1] + ",}"
    if fault == "nul_escaped":  # JSON text with the escape: the parsed rationale holds a NUL
        return json.dumps({**answer, "rationale": "contains a \x00 NUL"})
    if fault == "nul_raw":  # the NUL character itself inside the JSON string
        return json.dumps({**answer, "rationale": "raw NUL"}).replace("raw NUL", "raw \x00 NUL")
    if fault == "huge_int":
        return '{"value": ' + "9" * HUGE_INT_DIGITS + ', "rationale": "a very large number"}'
    if fault == "array":
        return json.dumps([answer])
    return json.dumps(answer)


def format_seconds(seconds: float) -> str:
    """'1' rather than '1.0' for whole seconds, since Retry-After is normally an integer."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def body_key(body: Any) -> str:
    """Canonical hash of a parsed body: equal JSON => same key, whatever the key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def reset_connection(request: web.Request) -> None:
    """Drop the TCP connection with an RST (SO_LINGER 0) and no HTTP response at all."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # still closes, just with a FIN instead of an RST
    transport.abort()


# --------------------------------------------------------------------------- handlers


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    settings = state.settings  # snapshot: a concurrent control call does not affect this request
    # Draw both numbers at arrival, before any await, so that with a seed the faults depend
    # only on arrival order and every request consumes exactly two draws.
    fault_draw = state.rng.random()
    jitter_draw = state.rng.random()
    storm_active = state.storm_active()
    state.seq += 1
    state.requests += 1
    state.last_request_at = time.time()
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    outcome = {"closed": False}
    try:
        return await _complete(request, state, settings, fault_draw, jitter_draw, storm_active,
                               outcome)
    except asyncio.CancelledError:
        # Client went away (aiohttp cancels handlers on disconnect, see handler_cancellation).
        if not outcome["closed"]:
            state.cancelled += 1
        raise
    finally:
        state.in_flight -= 1


async def _complete(
    request: web.Request,
    state: FakeState,
    settings: Settings,
    fault_draw: float,
    jitter_draw: float,
    storm_active: bool,
    outcome: dict[str, bool],
) -> web.StreamResponse:
    seq = state.seq

    def respond(status: int, payload: dict, headers: dict[str, str] | None = None) -> web.Response:
        state.by_status[str(status)] += 1
        state.completed += 1
        return web.json_response(payload, status=status, headers=headers)

    raw = await request.read()
    try:
        body: Any = json.loads(raw)
        state.request_log.append(body)
    except ValueError:
        body = None
        state.request_log.append({"_invalid_json": raw[:2000].decode("utf-8", "replace")})

    # Auth before looking at the body, like the real API.
    if settings.api_key is not None:
        if request.headers.get("Authorization", "") != f"Bearer {settings.api_key}":
            return respond(401, error_body("Incorrect API key provided",
                                           "invalid_request_error", "invalid_api_key"))
    if body is None:
        return respond(400, error_body("Request body is not valid JSON.",
                                       "invalid_request_error", "invalid_json"))
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return respond(400, error_body("'messages' is a required property (a list).",
                                       "invalid_request_error", "missing_messages", "messages"))
    model = str(body.get("model", ""))
    if model in settings.unknown_models:
        return respond(404, error_body(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error", "model_not_found", "model"))
    if body.get("stream"):
        return respond(400, error_body("fakellm does not support stream=true; send stream=false.",
                                       "invalid_request_error", "stream_not_supported", "stream"))

    fault = settings.pick_fault(fault_draw, storm_active)
    if fault == "429":  # rate limits answer at once, without the model latency
        state.faults["429"] += 1
        retry = format_seconds(settings.retry_after_s)
        return respond(
            429,
            error_body("Rate limit reached for requests (fakellm injected fault).",
                       "requests", "rate_limit_exceeded"),
            headers={"Retry-After": retry,
                     "retry-after-ms": str(int(settings.retry_after_s * 1000))},
        )

    # Refusals that belong to the prompt: the same prompt is refused on every request.
    prompt_text = messages_text(body["messages"])
    limit = settings.max_context_tokens
    if limit is not None and count_tokens(prompt_text) > limit:
        state.faults["context_window"] += 1
        return respond(400, error_body(
            CONTEXT_WINDOW_MESSAGE.format(limit=limit, tokens=count_tokens(prompt_text)),
            "invalid_request_error", "context_length_exceeded", "messages"))
    if settings.refuses_prompt(prompt_text):
        state.faults["content_filter"] += 1
        return respond(400, error_body(CONTENT_FILTER_MESSAGE, "invalid_request_error",
                                       "content_policy_violation", "prompt"))

    # fail_first_n is per distinct body and wins over the random faults, so a test can count on
    # exactly N failures before success.
    key = body_key(body)
    attempt = state.attempts.get(key, 0) + 1
    if settings.fail_first_n:
        state.attempts[key] = attempt
    forced_failure = attempt <= settings.fail_first_n

    if fault == "hang" and not forced_failure:
        state.faults["hang"] += 1
        state.hung += 1
        state.hanging += 1
        try:
            await asyncio.sleep(settings.hang_s)  # cancelled when the client disconnects
        finally:
            state.hanging -= 1
        fault = None  # after hang_s it answers normally, just very late
    else:
        delay_ms = settings.latency_ms + (2.0 * jitter_draw - 1.0) * settings.jitter_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)

    if forced_failure or fault == "500":
        state.faults["fail_first_n" if forced_failure else "500"] += 1
        return respond(500, error_body(
            "The server had an error while processing your request (fakellm injected fault).",
            "server_error", None))

    if fault == "close":
        state.faults["close"] += 1
        state.closed += 1
        outcome["closed"] = True
        reset_connection(request)
        # connection_lost now cancels this handler; the sleep just waits for that.
        await asyncio.sleep(3600)
        raise web.HTTPInternalServerError()  # pragma: no cover - not reached in practice

    if fault is not None:
        state.faults[fault] += 1
    messages = body["messages"]
    answer = verdict(messages, body.get("response_format"), settings.script)
    if settings.rationale_pad and isinstance(answer.get("rationale"), str):
        pad = settings.rationale_pad - len(answer["rationale"])
        answer["rationale"] += " " + "long " * (pad // 5) if pad > 0 else ""
    content = render_content(answer, fault)
    return respond(200, completion_body(seq, model, content, messages_text(messages)))


async def list_models(request: web.Request) -> web.Response:
    models = request.app[STATE_KEY].settings.models
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fakellm"} for m in models]
    return web.json_response({"object": "list", "data": data})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_control(request: web.Request) -> web.Response:
    return web.json_response({"settings": request.app[STATE_KEY].settings.as_dict()})


async def post_control(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        changes = json.loads(await request.read() or b"{}")
    except ValueError:
        return web.json_response(error_body("control body is not JSON", "invalid_request_error",
                                            "invalid_json"), status=400)
    if not isinstance(changes, dict):
        return web.json_response(error_body("control body must be a JSON object",
                                            "invalid_request_error", "invalid_control"), status=400)
    try:
        state.apply(changes)
    except ValueError as exc:
        return web.json_response(error_body(str(exc), "invalid_request_error",
                                            "invalid_control"), status=400)
    return web.json_response({"settings": state.settings.as_dict()})


async def post_reset(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.reset()
    return web.json_response({"settings": state.settings.as_dict()})


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].stats())


async def get_logged_requests(request: web.Request) -> web.Response:
    """Last ``limit`` request bodies (oldest first), default 100."""
    log = request.app[STATE_KEY].request_log
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = -1
    if limit < 0:
        return web.json_response(error_body("limit must be a non-negative integer",
                                            "invalid_request_error", "invalid_limit"), status=400)
    items = list(log)[-limit:] if limit else []
    return web.json_response(items)


def create_app(
    settings: Settings | None = None, request_log_size: int = DEFAULT_REQUEST_LOG_SIZE
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)  # judge prompts can be large
    app[STATE_KEY] = FakeState(settings or Settings(), request_log_size)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/models", list_models)
    app.router.add_get("/health", health)
    app.router.add_get("/_control", get_control)
    app.router.add_post("/_control", post_control)
    app.router.add_post("/_control/reset", post_reset)
    app.router.add_get("/_stats", get_stats)
    app.router.add_get("/_stats/requests", get_logged_requests)
    return app


async def serve(
    host: str,
    port: int,
    settings: Settings,
    request_log_size: int = DEFAULT_REQUEST_LOG_SIZE,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set, printing the ready line once the socket is bound."""
    app = create_app(settings, request_log_size)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,  # logging every request would cost more than answering it
        handler_cancellation=True,  # lets hung/slow handlers notice a client disconnect
        shutdown_timeout=0.5,  # do not wait for hung requests on exit
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound_port = runner.addresses[0][1]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"fakellm listening on http://{shown_host}:{bound_port}", flush=True)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
