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


def test_a_litellm_bad_request_is_permanent():
    import litellm

    exc = litellm.BadRequestError(message="max_tokens is too large", model="openai/x",
                                  llm_provider="openai")
    error = provider.classify(exc)
    assert (error.kind, error.permanent) == ("bad_request", True)


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
