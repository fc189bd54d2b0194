"""The one outside-call boundary (STYLE.md 7): ProviderClient against the fake OpenAI-compatible
server, through the real litellm client. Every failure becomes a ProviderError whose kind and
`permanent` flag decide what the executor does; keys stay out of every message."""

from __future__ import annotations

import asyncio

import pytest

from apps.judging import provider
from apps.judging.provider import CallSettings, ProviderClient, ProviderError

MESSAGES = [{"role": "system", "content": "Grade it."},
            {"role": "user", "content": "Answer: 4.\nAllowed values: [1, 2, 3, 4, 5]"}]
SECRET = "sk-test-3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"


def call(fake, *, model: str = "openai/fake-judge", timeout_s: float = 5.0,
         response_format: dict | None = None):
    settings = CallSettings(model=model, api_base=fake.url, timeout_s=timeout_s)

    async def once():
        client = ProviderClient()
        try:
            return await client.complete(MESSAGES, settings, response_format=response_format)
        finally:
            await client.aclose()

    return asyncio.run(once())


def failure(fake, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call(fake, **kwargs)
    return caught.value


@pytest.fixture
def no_openai_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_an_answer_comes_back_with_tokens_and_latency(fake, no_openai_key):
    completion = call(fake)
    assert completion.content.startswith('{"value": ')
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert completion.latency_ms >= 0
    # The fake has no price in litellm's table: the cost is unknown, not free.
    assert completion.cost_usd is None


def test_a_priced_model_gets_a_numeric_cost(fake, no_openai_key):
    completion = call(fake, model="openai/gpt-4.1-mini")
    assert isinstance(completion.cost_usd, float) and completion.cost_usd > 0


def test_a_429_is_transient_and_carries_retry_after_from_the_header(fake, no_openai_key):
    fake.control(rate_429=1.0, retry_after_s=7)
    error = failure(fake)
    assert (error.kind, error.permanent, error.retry_after) == ("rate_limit", False, 7.0)
    assert fake.stats()["requests"] == 1  # litellm's own retries are off: the budget is ours


def test_a_500_is_a_transient_server_error(fake, no_openai_key):
    fake.control(rate_500=1.0)
    error = failure(fake)
    assert (error.kind, error.permanent) == ("server", False)
    assert fake.stats()["requests"] == 1


def test_a_hung_call_times_out_as_transient(fake, no_openai_key):
    fake.control(rate_hang=1.0)
    error = failure(fake, timeout_s=1)
    assert (error.kind, error.permanent) == ("timeout", False)


def test_a_dropped_connection_is_a_transient_connection_error(fake, no_openai_key):
    fake.control(rate_close=1.0)
    error = failure(fake)
    assert (error.kind, error.permanent) == ("connection", False)


def test_a_wrong_key_is_permanent(fake, no_openai_key):
    fake.control(api_key="sk-the-right-key-0123456789")
    error = failure(fake)
    assert (error.kind, error.permanent) == ("auth", True)
    assert "Incorrect API key" in error.message


def test_an_unknown_model_is_permanent(fake, no_openai_key):
    error = failure(fake, model="openai/does-not-exist")
    assert (error.kind, error.permanent) == ("not_found", True)
    assert "does-not-exist" in error.message


def test_the_key_for_a_custom_server_is_read_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("RUBRICLAB_API_KEY", SECRET)
    fake.control(api_key=SECRET)
    assert call(fake).content


def test_the_providers_own_key_never_goes_to_a_custom_server(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("RUBRICLAB_API_KEY", raising=False)
    fake.control(api_key=SECRET)
    with pytest.raises(ProviderError) as caught:
        call(fake)
    assert caught.value.kind == "auth" and caught.value.permanent


def test_the_response_format_is_passed_through(fake, no_openai_key):
    schema = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {
        "type": "object", "properties": {"value": {"enum": [2]}}}}}
    completion = call(fake, response_format=schema)
    assert completion.content.startswith('{"value": 2')
    assert fake.requests(1)[0]["response_format"] == schema


# -- errors that never reach the fake --------------------------------------------------------
def test_plain_timeouts_and_connection_errors_are_transient():
    assert provider.classify(TimeoutError()).kind == "timeout"
    error = provider.classify(ConnectionResetError("reset by peer"))
    assert (error.kind, error.permanent) == ("connection", False)


def _litellm_error(name: str, message: str, status: int | None = None):
    import httpx
    import litellm

    cls = getattr(litellm, name)
    if name == "BudgetExceededError":
        return cls(current_cost=10.0, max_budget=5.0)
    kwargs = {"message": message, "model": "openai/x", "llm_provider": "openai"}
    if status is not None:
        kwargs["response"] = httpx.Response(status, request=httpx.Request("POST", "http://x"))
    return cls(**kwargs)


# One row per class of failure (docs/decisions/0006): litellm's type (and status), the kind
# recorded, and its scope: RETRY (transient), CALL (this prompt fails), RUN (the run stops).
CLASSES = [
    ("AuthenticationError", "Incorrect API key provided", None, "auth", provider.RUN),
    ("PermissionDeniedError", "Project does not have access", 403, "auth", provider.RUN),
    ("NotFoundError", "The model `gpt-9` does not exist", None, "not_found", provider.RUN),
    ("RateLimitError", "You exceeded your current quota, please check your plan and billing "
     "details. insufficient_quota", None, "quota", provider.RUN),
    ("BudgetExceededError", "", None, "quota", provider.RUN),
    ("RateLimitError", "Rate limit reached for requests", None, "rate_limit", provider.RETRY),
    ("ContextWindowExceededError", "This model's maximum context length is 8192 tokens", None,
     "context_window", provider.CALL),
    ("ContentPolicyViolationError", "Your request was rejected by the content filter", None,
     "content_policy", provider.CALL),
    ("BadRequestError", "Your request was rejected as a result of our safety system", None,
     "content_policy", provider.CALL),
    ("BadRequestError", "Invalid image: the file is not a supported format", None,
     "bad_request", provider.CALL),
    ("UnprocessableEntityError", "prompt is too long", 422, "bad_request", provider.CALL),
    ("InternalServerError", "The server had an error", None, "server", provider.RETRY),
    ("ServiceUnavailableError", "overloaded", None, "server", provider.RETRY),
    ("Timeout", "Request timed out", None, "timeout", provider.RETRY),
    ("APIConnectionError", "Connection error.", None, "connection", provider.RETRY),
]


@pytest.mark.parametrize("name, message, status, kind, scope", CLASSES,
                         ids=[f"{row[0]}-{row[3]}" for row in CLASSES])
def test_each_class_of_provider_error_has_its_kind_and_scope(name, message, status, kind,
                                                              scope):
    error = provider.classify(_litellm_error(name, message, status),
                              url="https://llm.example/v1", model="openai/x")
    assert (error.kind, error.scope) == (kind, scope)
    assert error.permanent == (scope == provider.RUN)
    assert error.call_only == (scope == provider.CALL)
    if scope == provider.RUN:  # an error that stops a run names where it asked
        assert error.message.startswith("https://llm.example/v1: ")


def test_a_refused_connection_is_unreachable_and_names_url_and_cause():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("Connection error.") from inner
    except RuntimeError as exc:
        error = provider.classify(exc, url="http://10.0.0.9:8000/v1")
    assert error.kind == "unreachable"
    assert error.message == ("http://10.0.0.9:8000/v1: connection refused (nothing listens at "
                             "that address and port)")


def test_a_name_that_does_not_resolve_is_unreachable_dns():
    import socket

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as inner:
            raise RuntimeError("Connection error.") from inner
    except RuntimeError as exc:
        error = provider.classify(exc, model="openai/gpt-4.1-mini")
    assert error.message == ("the provider of openai/gpt-4.1-mini: the host name does not "
                             "resolve (DNS)")


def test_a_closed_port_through_litellm_is_unreachable(no_openai_key):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    class Closed:
        url = f"http://127.0.0.1:{port}/v1"

    error = failure(Closed)
    assert (error.kind, error.scope) == ("unreachable", provider.RETRY)
    assert "connection refused" in error.message and str(port) in error.message


def test_a_content_filter_400_from_the_fake_fails_the_call(fake, no_openai_key):
    fake.control(content_filter_share=1.0)
    error = failure(fake)
    assert (error.kind, error.scope) == ("content_policy", provider.CALL)


def test_a_context_window_400_from_the_fake_fails_the_call(fake, no_openai_key):
    fake.control(max_context_tokens=5)
    error = failure(fake)
    assert (error.kind, error.scope) == ("context_window", provider.CALL)


# -- keys --------------------------------------------------------------------------------------
def test_redact_removes_the_value_of_a_key_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    text = provider.redact(f"401: Incorrect API key provided: {SECRET}. Check it.")
    assert SECRET not in text
    assert "***" in text


def test_redact_removes_keys_of_any_shape_from_secret_variables(monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_TOKEN", "plain-secret-value-42")
    assert "plain-secret-value-42" not in provider.redact("auth plain-secret-value-42 failed")


def test_redact_masks_sk_looking_keys_even_when_not_in_the_environment():
    text = provider.redact("key sk-proj-abcdefghijklmnopqrstuvwxyz was refused")
    assert "abcdefghijklmnop" not in text


def test_classified_errors_are_redacted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    error = provider.classify(RuntimeError(f"refused key {SECRET}"))
    assert SECRET not in error.message


def test_missing_keys_names_the_variable_the_model_needs(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert provider.missing_keys("openai/gpt-4.1-mini") == ["OPENAI_API_KEY"]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert provider.missing_keys("openai/gpt-4.1-mini") == []


def test_schema_support_and_prices_come_from_litellms_table():
    assert provider.supports_schema("openai/gpt-4.1-mini") is True
    assert provider.supports_schema("openai/fake-judge") is False
    assert provider.price_per_token("openai/fake-judge") is None
    price = provider.price_per_token("openai/gpt-4.1-mini")
    assert price is not None and price[0] > 0 and price[1] > 0


# -- backoff ------------------------------------------------------------------------------------
def test_backoff_follows_retry_after_with_a_little_jitter():
    for _ in range(50):
        delay = provider.backoff_delay(1, 2.0, base=0.5, cap=30)
        assert 2.0 <= delay <= 2.5


def test_backoff_grows_exponentially_and_is_capped():
    for attempt in range(1, 12):
        for _ in range(20):
            delay = provider.backoff_delay(attempt, None, base=0.5, cap=4.0)
            assert 0.5 <= delay <= min(4.0, 0.5 * 2 ** attempt)


def test_an_hour_of_retry_after_is_capped_jitter_included():
    for _ in range(50):
        assert 30.0 <= provider.backoff_delay(1, 3600.0, base=0.5, cap=30.0) <= 30.0 * 1.25


def test_closing_the_client_leaves_no_litellm_task_pending_on_the_loop(fake, no_openai_key):
    # asyncio.run closes the loop after every batch; a task still pending on it is destroyed
    # later ("Task was destroyed but it is pending!") wherever the garbage collector runs.
    settings = CallSettings(model="openai/fake-judge", api_base=fake.url, timeout_s=5)

    async def litellm_tasks_left(close: bool) -> list:
        client = ProviderClient()
        await client.complete(MESSAGES, settings)
        if close:
            await client.aclose()
        return [t for t in asyncio.all_tasks() if not t.done()
                and "litellm" in t.get_coro().cr_code.co_filename]

    # Whether litellm leaves work behind depends on its timing (so not asserted); none may be
    # left once the client is closed.
    assert asyncio.run(litellm_tasks_left(close=True)) == []


def test_a_wrong_api_base_path_stops_the_run_naming_the_url(fake, no_openai_key):
    class WrongPath:
        url = fake.base_url + "/not-the-api"

    error = failure(WrongPath)
    assert error.scope == provider.RUN, (error.kind, error.message)
    assert error.message.startswith(WrongPath.url + ": ")
