"""The one boundary for model calls (STYLE.md 7): litellm behind a small client with a timeout on
every call and an error type that says whether retrying can help.

Keys come from the environment only (litellm's variable names). They never reach the database,
a log line or a message shown to users: provider error texts pass through `redact` first.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_CONNECTION_ERROR = "Connection error."


@dataclass(frozen=True)
class CallSettings:
    model: str
    api_base: str = ""
    temperature: float = 0.0
    max_tokens: int = 400
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None  # None: litellm knows no price for the model
    latency_ms: int


# What a failed call means for the run (docs/decisions/0006):
RETRY = "retry"  # transient (429, 5xx, timeouts, a dropped connection): retried with backoff
CALL = "call"  # about this prompt (content filter, context window, bad request): the call fails
RUN = "run"  # about the run itself (key, model, api_base, quota): the run stops


class ProviderError(Exception):
    """A failed call, with its `scope`: RETRY, CALL or RUN (see above). `permanent` is true for
    RUN: retrying the run's other calls cannot help either."""

    def __init__(self, kind: str, message: str, *, scope: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.scope = scope
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.scope == RUN

    @property
    def call_only(self) -> bool:
        return self.scope == CALL


def redact(text: str) -> str:
    """Remove secrets from a text, in every form a provider may echo (apps/judging/egress.py)."""
    from apps.judging.egress import redact as _redact

    return _redact(text)


@lru_cache(maxsize=1)
def _litellm():
    import litellm

    # No telemetry, no request logging: prompts and headers stay in this process.
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.turn_off_message_logging = True
    litellm.drop_params = True
    return litellm


def missing_keys(model: str, api_base: str = "") -> list[str]:
    """Environment variables the model needs and that are not set (names only)."""
    try:
        report = _litellm().validate_environment(model=model, api_base=api_base or None)
    except Exception:  # an unknown provider prefix: litellm will say so on the first call
        return []
    return list(report.get("missing_keys") or [])


def supports_schema(model: str) -> bool:
    try:
        return bool(_litellm().supports_response_schema(model=model))
    except Exception:
        return False


def price_per_token(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's price table, or None if it has none."""
    table = _litellm().model_cost
    name = model.split("/", 1)[1] if model.count("/") and model.split("/", 1)[1] in table else model
    entry = table.get(name) or table.get(model)
    if not entry or entry.get("input_cost_per_token") is None:
        return None
    return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token") or 0)


@lru_cache(maxsize=256)
def _has_price(model: str) -> bool:
    return price_per_token(model) is not None


def _retry_after(exc: Exception) -> float | None:
    for source in (getattr(exc, "response", None), exc):
        headers = getattr(source, "headers", None) or getattr(exc, "litellm_response_headers", None)
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


_CONTENT_POLICY = ("content_policy", "content_filter", "content management policy",
                   "safety system", "responsibleaipolicyviolation", "usage policy")
_QUOTA = ("insufficient_quota", "exceeded your current quota", "quota exceeded",
          "quota_exceeded", "credit balance is too low", "billing")


def _chain(exc: BaseException):
    """The exception and its causes (litellm wraps openai, which wraps httpx and the socket)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _connect_failure(exc: BaseException) -> str | None:
    """Why no connection could be made at all (refused, name not resolved), or None when the
    connection was made and then lost (that is transient)."""
    import errno
    import socket

    chain = list(_chain(exc))
    if any(isinstance(link, ConnectionRefusedError) for link in chain):
        return "connection refused (nothing listens at that address and port)"
    if any(isinstance(link, socket.gaierror) for link in chain):
        return "the host name does not resolve (DNS)"
    unreachable = (errno.ENETUNREACH, errno.EHOSTUNREACH)
    if any(isinstance(link, OSError) and link.errno in unreachable for link in chain):
        return "no route to the host (network unreachable)"
    if any(type(link).__name__ == "ConnectError" and type(link).__module__.startswith("httpx")
           for link in chain):
        return "no connection could be made"
    return None


def _where(url: str, model: str) -> str:
    if url:
        return url
    return f"the provider of {model}" if model else "the provider"


def classify(exc: Exception, *, url: str = "", model: str = "") -> ProviderError:
    """What a failed call means: RETRY, CALL or RUN (see the constants above), by litellm's
    exception type and the HTTP status; messages are redacted, and those that stop a run name
    the URL that was asked."""
    litellm = _litellm()
    message = redact(str(exc))[:2000]
    lowered = message.lower()
    where = _where(url, model)

    def run_error(kind: str, cause: str) -> ProviderError:
        return ProviderError(kind, f"{where}: {cause}", scope=RUN)

    if isinstance(exc, ProviderError):
        return exc
    budget = getattr(litellm, "BudgetExceededError", None)
    if budget is not None and isinstance(exc, budget):
        return run_error("quota", message)
    unreachable = _connect_failure(exc)
    if unreachable is not None:
        # Whether this stops the run is the executor's choice: at the start it does (the URL is
        # wrong or the server is down); after answers came, it is retried like a dropped line.
        return ProviderError("unreachable", f"{where}: {unreachable}", scope=RETRY)
    status = getattr(exc, "status_code", None)
    # Order matters: Timeout is a subclass of APIConnectionError, ContentPolicyViolationError
    # and ContextWindowExceededError of BadRequestError.
    if isinstance(exc, litellm.RateLimitError):
        if any(word in lowered for word in _QUOTA):
            return run_error("quota", message)
        return ProviderError("rate_limit", message, scope=RETRY, retry_after=_retry_after(exc))
    if isinstance(exc, litellm.Timeout):
        return ProviderError("timeout", message, scope=RETRY)
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return run_error("auth", message)
    if isinstance(exc, litellm.NotFoundError):
        # An unknown model, or an api_base whose path is wrong: every call would get the same.
        return run_error("not_found", message)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ProviderError("context_window", message, scope=CALL)
    if isinstance(exc, litellm.ContentPolicyViolationError) or (
            isinstance(exc, litellm.BadRequestError)
            and any(word in lowered for word in _CONTENT_POLICY)):
        return ProviderError("content_policy", message, scope=CALL)
    if status == 402 or (isinstance(status, int) and 400 <= status < 500
                         and any(word in lowered for word in _QUOTA)):
        return run_error("quota", message)
    if isinstance(exc, litellm.BadRequestError | litellm.UnprocessableEntityError):
        return ProviderError("bad_request", message, scope=CALL)
    server = (litellm.InternalServerError, litellm.ServiceUnavailableError,
              litellm.BadGatewayError, litellm.APIConnectionError, litellm.APIError)
    if isinstance(exc, server):
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429):
            return ProviderError("bad_request", message, scope=CALL)
        # litellm reports a dropped connection (no response at all) as a 500 with the openai
        # client's "Connection error."; name it for what it is.
        connection = _CONNECTION_ERROR in str(exc) or isinstance(exc, litellm.APIConnectionError)
        return ProviderError("connection" if connection else "server", message, scope=RETRY,
                             retry_after=_retry_after(exc))
    if isinstance(exc, TimeoutError):
        return ProviderError("timeout", message or "timed out", scope=RETRY)
    if isinstance(exc, ConnectionError | OSError):
        return ProviderError("connection", message, scope=RETRY)
    return ProviderError("unknown", message, scope=RETRY)


def backoff_delay(attempt: int, retry_after: float | None, *, base: float = 0.5,
                  cap: float = 30.0) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the provider's Retry-After when
    it gives one, else exponential backoff; both with jitter so workers do not retry in step."""
    if retry_after is not None:
        # The jitter scales with the capped wait: a Retry-After of an hour must not turn into
        # a quarter of an hour of jitter while the call holds its slot.
        wait = min(cap, retry_after)
        return wait + random.uniform(0, 0.25 * max(wait, base))
    return random.uniform(base, min(cap, base * 2 ** attempt))


class ProviderClient:
    """One attempt per call; retries belong to the caller, which knows the run's budget.

    Call `aclose()` before the event loop closes (the executor keeps one loop per process and
    closes it in `close_process_loop`, or when a batch fails).
    """

    async def aclose(self) -> None:
        """Let litellm's background work on the running loop finish, then stop its logger.

        After a call litellm leaves tasks behind (success hooks, which then start a logging
        worker task). When asyncio.run closes the loop with them pending, they are destroyed
        ("Task was destroyed but it is pending!") wherever the garbage collector next runs.
        """
        def leftovers() -> list[asyncio.Task]:
            current = asyncio.current_task()
            return [t for t in asyncio.all_tasks() if t is not current and not t.done()
                    and "litellm" in getattr(getattr(t.get_coro(), "cr_code", None),
                                             "co_filename", "")]

        # Best effort throughout: nothing of ours goes through these, and a batch must not
        # fail because of them.
        hooks = [t for t in leftovers() if "_worker_loop" not in repr(t.get_coro())]
        if hooks:
            await asyncio.wait(hooks, timeout=1.0)
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER as worker
        except ImportError:  # a litellm without it: nothing more to stop
            return
        if getattr(worker, "_bound_loop", None) is not asyncio.get_running_loop():
            return  # not started on this loop (or on another thread's): not ours to stop
        for step in (lambda: asyncio.wait_for(worker.flush(), timeout=1.0),
                     lambda: worker.stop(discard_pending=True, timeout=1.0)):
            try:
                await step()
            except Exception:
                pass

    async def complete(self, messages: list[dict], settings: CallSettings, *,
                       response_format: dict | None = None) -> Completion:
        litellm = _litellm()
        kwargs = {
            "model": settings.model,
            "messages": messages,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "timeout": settings.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
        }
        if settings.api_base:
            from apps.judging import egress

            # The operator's policy, again at call time: a name may resolve elsewhere by now.
            refused = egress.api_base_error(settings.api_base)
            if refused:
                raise ProviderError("policy", f"{settings.api_base}: {refused}", scope=RUN)
            kwargs["api_base"] = settings.api_base
            # A server of the user's own (vLLM, Ollama, a proxy) never gets the provider's key
            # from the environment (OPENAI_API_KEY would otherwise go to whatever URL the run
            # names); a listed base gets RUBRICLAB_API_KEY, any other a placeholder.
            kwargs["api_key"] = egress.key_for(settings.api_base)
        if response_format is not None:
            kwargs["response_format"] = response_format
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:  # classified below; nothing is swallowed
            raise classify(exc, url=settings.api_base, model=settings.model) from None
        latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            content = response.choices[0].message.content or ""
        except (AttributeError, IndexError):
            content = ""
        usage = getattr(response, "usage", None)
        cost = None
        if _has_price(settings.model):
            # litellm has priced the call already (it does for every call); read, do not redo.
            hidden = getattr(response, "_hidden_params", None) or {}
            raw_cost = hidden.get("response_cost")
            cost = float(raw_cost) if isinstance(raw_cost, int | float) else None
        return Completion(
            content=content,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=cost,
            latency_ms=latency_ms,
        )
