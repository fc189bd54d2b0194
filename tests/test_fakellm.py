"""Tests of the fake OpenAI-compatible server (tools/fakellm), mostly through the real litellm.

No Django needed: run with
``LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/pytest tests/test_fakellm.py -p no:django -q``.

litellm retries are disabled in every call (``num_retries=0, max_retries=0``) so each test sees
the raw fault; by default litellm lets the openai SDK retry twice.
"""

from __future__ import annotations

import os

# litellm fetches its model cost map from GitHub at import time unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Coroutine, Iterator  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import httpx  # noqa: E402
import litellm  # noqa: E402
import pytest  # noqa: E402

from tools.fakellm.__main__ import parse_args  # noqa: E402
from tools.fakellm.runner import FakeLLM, running_fakellm  # noqa: E402
from tools.fakellm.settings import Settings  # noqa: E402
from tools.fakellm.verdicts import (  # noqa: E402
    NO_VALUES_RATIONALE,
    choose_value,
    count_tokens,
    messages_text,
)

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
MODEL = "openai/fake-judge"
NO_RETRIES: dict[str, Any] = {"num_retries": 0, "max_retries": 0}

# litellm's lazily built pydantic models warn about ReadOnly TypedDict items; not our concern.
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


def schema_format(values: list[Any]) -> dict[str, Any]:
    """The response_format shape the judge sends for one criterion."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "criterion_verdict",
            "schema": {
                "type": "object",
                "properties": {"value": {"enum": values}, "rationale": {"type": "string"}},
                "required": ["value", "rationale"],
                "additionalProperties": False,
            },
        },
    }


def judge_messages(extra: str = "", allowed: str | None = None) -> list[dict[str, Any]]:
    user = "Question: what is 2+2?\nAnswer: 4\nCriterion: correctness."
    if allowed is not None:
        user += f"\nAllowed values: {allowed}"
    if extra:
        user += "\n" + extra
    return [
        {"role": "system", "content": "You are a strict judge. Reply with a JSON object."},
        {"role": "user", "content": user},
    ]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with running_fakellm() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeLLM) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One loop for the module: litellm caches async HTTP clients, which are bound to a loop.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Run:
    """Run a coroutine to completion on the module's loop (no pytest-asyncio needed)."""

    def _run(coro: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coro)

    return _run


async def ajudge(fake: FakeLLM, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    params: dict[str, Any] = {"model": MODEL, "api_base": fake.url, "api_key": "sk-fake"}
    params.update(NO_RETRIES)
    params.update(kwargs)
    return await litellm.acompletion(messages=messages, **params)


def content_of(response: Any) -> str:
    return response.choices[0].message.content


def post_raw(fake: FakeLLM, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(fake.url + "/chat/completions", json=body, timeout=10, **kwargs)


# --------------------------------------------------------------------------- verdicts


def test_verdict_from_schema_enum(fake: FakeLLM, run: Run) -> None:
    values = ["A", "B", "tie"]
    messages = judge_messages()
    response = run(ajudge(fake, messages, response_format=schema_format(values)))
    answer = json.loads(content_of(response))
    assert answer["value"] in values
    assert answer["value"] == choose_value(messages, schema_format(values))
    assert json.dumps(answer["value"]) in answer["rationale"]
    # litellm forwards the response_format untouched to an openai/ model with api_base.
    sent = fake.requests(1)[0]
    assert sent["response_format"] == schema_format(values)
    assert sent["model"] == "fake-judge"


def test_verdict_from_allowed_values_line(fake: FakeLLM, run: Run) -> None:
    # An earlier line (e.g. a rubric example) must be ignored: the LAST line wins.
    messages = judge_messages(allowed="[1, 2, 3, 4, 5]")
    messages[0]["content"] += '\nAllowed values: ["nope"]'
    response = run(ajudge(fake, messages))
    answer = json.loads(content_of(response))
    assert answer["value"] in [1, 2, 3, 4, 5]
    assert answer["value"] == choose_value(messages, None)
    assert "response_format" not in fake.requests(1)[0]


def test_schema_takes_precedence_over_text(fake: FakeLLM, run: Run) -> None:
    messages = judge_messages(allowed="[1, 2, 3]")
    answer = json.loads(content_of(run(ajudge(fake, messages,
                                              response_format=schema_format(["x"])))))
    assert answer["value"] == "x"


def test_fake_verdict_directive(fake: FakeLLM, run: Run) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("FAKE_VERDICT=4", "[1, 2, 3, 4, 5]", 4),
        ('FAKE_VERDICT=B', '["A", "B", "tie"]', "B"),
        ("FAKE_VERDICT=1 then later FAKE_VERDICT=tie", '["A", "B", "tie"]', "tie"),
        ("FAKE_VERDICT=9", "[1, 2, 3, 4, 5]", 9),  # out of scale, still returned (as a number)
        ('FAKE_VERDICT="much better"', '["worse", "much better"]', "much better"),
    ]
    for directive, allowed, expected in cases:
        messages = judge_messages(extra=directive, allowed=allowed)
        answer = json.loads(content_of(run(ajudge(fake, messages))))
        assert answer["value"] == expected, directive
        assert choose_value(messages, None) == expected
        assert "FAKE_VERDICT" in answer["rationale"]


def test_determinism_and_hash_rule(fake: FakeLLM, run: Run) -> None:
    values = [1, 2, 3, 4, 5]
    messages = judge_messages(allowed=json.dumps(values))
    first = json.loads(content_of(run(ajudge(fake, messages))))
    second = json.loads(content_of(run(ajudge(fake, messages))))
    assert first == second
    text = messages_text(messages)
    expected = values[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(values)]
    assert first["value"] == expected == choose_value(messages, None)
    # Different prompts spread over the scale (not a constant answer).
    seen = {choose_value(judge_messages(extra=f"item {i}", allowed="[1, 2, 3, 4, 5]"), None)
            for i in range(40)}
    assert len(seen) >= 3


def test_no_allowed_values_gives_null(fake: FakeLLM, run: Run) -> None:
    answer = json.loads(content_of(run(ajudge(fake, judge_messages()))))
    assert answer == {"value": None, "rationale": NO_VALUES_RATIONALE}


def test_usage_tokens(fake: FakeLLM, run: Run) -> None:
    messages = judge_messages(allowed="[1, 2, 3]")
    response = run(ajudge(fake, messages))
    usage = response.usage
    assert usage.prompt_tokens == math.ceil(len(messages_text(messages)) / 4) > 0
    assert usage.completion_tokens == count_tokens(content_of(response)) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.role == "assistant"


def test_choose_value_pure_cases() -> None:
    # pydantic-style schema: enum behind a $ref, content given as a list of text parts.
    rf = {
        "type": "json_schema",
        "json_schema": {
            "name": "v",
            "schema": {
                "type": "object",
                "$defs": {"Grade": {"enum": ["pass", "fail"], "type": "string"}},
                "properties": {"value": {"$ref": "#/$defs/Grade"}},
            },
        },
    }
    messages = [{"role": "user", "content": [{"type": "text", "text": "FAKE_VERDICT=fail"}]}]
    assert choose_value(messages, rf) == "fail"
    any_of = {"type": "json_schema", "json_schema": {"name": "v", "schema": {
        "properties": {"value": {"anyOf": [{"const": 0}, {"const": 1}]}}}}}
    assert choose_value([{"role": "user", "content": "x"}], any_of) in (0, 1)
    assert choose_value([{"role": "user", "content": "hi"}], {"type": "json_object"}) is None
    # A malformed "Allowed values" line is skipped in favour of an earlier valid one.
    text = "Allowed values: [true, false]\nAllowed values: [oops"
    assert choose_value([{"role": "user", "content": text}], None) in (True, False)


# --------------------------------------------------------------------------- faults


def test_429_has_retry_after(fake: FakeLLM, run: Run) -> None:
    fake.control(rate_429=1)
    response = post_raw(fake, {"model": "fake-judge", "messages": judge_messages()})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    fake.control(retry_after_s=2.5)
    response = post_raw(fake, {"model": "fake-judge", "messages": judge_messages()})
    assert response.headers["Retry-After"] == "2.5"
    with pytest.raises(litellm.RateLimitError):
        run(ajudge(fake, judge_messages()))
    assert fake.stats()["by_status"] == {"429": 3}


def test_500(fake: FakeLLM, run: Run) -> None:
    fake.control(rate_500=1)
    assert post_raw(fake, {"model": "fake-judge", "messages": []}).status_code == 500
    with pytest.raises(litellm.InternalServerError) as info:
        run(ajudge(fake, judge_messages()))
    assert info.value.status_code == 500


def test_malformed_fenced_and_trailing_comma(fake: FakeLLM, run: Run) -> None:
    messages = judge_messages(allowed="[1, 2, 3, 4, 5]")
    expected = choose_value(messages, None)

    fake.control(rate_malformed=1)
    content = content_of(run(ajudge(fake, messages)))
    with pytest.raises(ValueError):
        json.loads(content)

    fake.control(rate_malformed=0, rate_fenced=1)
    content = content_of(run(ajudge(fake, messages)))
    with pytest.raises(ValueError):
        json.loads(content)  # prose around the fence
    fenced = re.search(r"```json\s*(\{.*?\})\s*```", content, re.DOTALL)
    assert fenced is not None and not content.startswith("```")
    assert json.loads(fenced.group(1))["value"] == expected

    fake.control(rate_fenced=0, rate_trailing_comma=1)
    content = content_of(run(ajudge(fake, messages)))
    assert content.endswith(",}")
    with pytest.raises(ValueError):
        json.loads(content)
    assert json.loads(content[:-2] + "}")["value"] == expected
    assert fake.stats()["faults"] == {"malformed": 1, "fenced": 1, "trailing_comma": 1}


def test_poison_answers(fake: FakeLLM, run: Run) -> None:
    messages = judge_messages(allowed="[1, 2, 3, 4, 5]")
    expected = choose_value(messages, None)

    fake.control(rate_nul_escaped=1)
    content = content_of(run(ajudge(fake, messages)))
    assert "\\u0000" in content and "\x00" not in content  # the escape, as JSON text
    assert json.loads(content) == {"value": expected, "rationale": "contains a \x00 NUL"}

    fake.control(rate_nul_escaped=0, rate_nul_raw=1)
    content = content_of(run(ajudge(fake, messages)))
    assert "\x00" in content  # the character itself, inside a JSON string
    assert json.loads(content, strict=False)["rationale"] == "raw \x00 NUL"

    fake.control(rate_nul_raw=0, rate_huge_int=1)
    content = content_of(run(ajudge(fake, messages)))
    assert content.startswith('{"value": ' + "9" * 5000 + ",")

    fake.control(rate_huge_int=0, rate_array=1)
    content = content_of(run(ajudge(fake, messages)))
    assert json.loads(content) == [{"value": expected, "rationale": json.loads(content)[0][
        "rationale"]}]
    assert fake.stats()["faults"] == {"nul_escaped": 1, "nul_raw": 1, "huge_int": 1, "array": 1}


def test_content_filter_refuses_the_same_prompts_by_a_seeded_share(fake: FakeLLM) -> None:
    prompts = [judge_messages(extra=f"item {n}", allowed="[1, 2]") for n in range(200)]

    def refused() -> set[int]:
        out = set()
        for n, messages in enumerate(prompts):
            response = post_raw(fake, {"model": "fake-judge", "messages": messages})
            if response.status_code == 400:
                assert response.json()["error"]["code"] == "content_policy_violation"
                out.add(n)
            else:
                assert response.status_code == 200
        return out

    fake.control(content_filter_share=0.1, seed=7)
    first = refused()
    assert 5 <= len(first) <= 40
    assert refused() == first  # a property of the prompt: asked again, refused again
    fake.control(seed=8)
    assert refused() != first  # another seed, another draw of prompts


def test_content_filter_and_context_window_through_litellm(fake: FakeLLM, run: Run) -> None:
    fake.control(content_filter_share=1)
    with pytest.raises(litellm.BadRequestError) as info:
        run(ajudge(fake, judge_messages()))
    assert info.value.status_code == 400 and "safety system" in str(info.value)
    fake.control(content_filter_share=0, max_context_tokens=5)
    with pytest.raises(litellm.ContextWindowExceededError):
        run(ajudge(fake, judge_messages()))
    fake.control(max_context_tokens=100_000)
    assert run(ajudge(fake, judge_messages())).choices
    assert fake.stats()["faults"] == {"content_filter": 1, "context_window": 1}


def test_wrong_api_key(fake: FakeLLM, run: Run) -> None:
    fake.control(api_key="sk-right")
    with pytest.raises(litellm.AuthenticationError):
        run(ajudge(fake, judge_messages()))
    response = post_raw(fake, {"model": "fake-judge", "messages": []},
                        headers={"Authorization": "Bearer sk-wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Incorrect API key provided",
                                         "type": "invalid_request_error", "param": None,
                                         "code": "invalid_api_key"}}
    assert run(ajudge(fake, judge_messages(), api_key="sk-right")).choices


def test_unknown_model(fake: FakeLLM, run: Run) -> None:
    with pytest.raises(litellm.NotFoundError):
        run(ajudge(fake, judge_messages(), model="openai/does-not-exist"))
    response = post_raw(fake, {"model": "does-not-exist", "messages": []})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_hang_times_out_and_server_sees_disconnect(fake: FakeLLM, run: Run) -> None:
    fake.control(rate_hang=1)
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        run(ajudge(fake, judge_messages(), timeout=1))
    assert time.monotonic() - started < 2.5
    deadline = time.monotonic() + 2
    while fake.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = fake.stats()
    assert stats["hung"] == 1 and stats["hanging"] == 0 and stats["in_flight"] == 0
    assert stats["cancelled"] == 1 and stats["completed"] == 0


def test_close_is_a_connection_error(fake: FakeLLM, run: Run) -> None:
    fake.control(rate_close=1)
    with pytest.raises(httpx.ReadError):  # ECONNRESET: no HTTP response at all
        post_raw(fake, {"model": "fake-judge", "messages": []})
    # litellm maps the openai SDK's APIConnectionError to InternalServerError here.
    with pytest.raises((litellm.InternalServerError, litellm.APIConnectionError)) as info:
        run(ajudge(fake, judge_messages()))
    assert "Connection error" in str(info.value)
    assert fake.stats()["closed"] == 2


def test_fail_first_n(fake: FakeLLM, run: Run) -> None:
    fake.control(fail_first_n=2)
    body = {"model": "fake-judge", "messages": judge_messages(allowed="[1, 2]")}
    assert [post_raw(fake, body).status_code for _ in range(3)] == [500, 500, 200]
    other = {"model": "fake-judge", "messages": judge_messages(extra="other")}
    assert post_raw(fake, other).status_code == 500  # counted per distinct body
    # litellm's own retries (num_retries -> openai SDK max_retries) get through.
    fresh = judge_messages(extra="retried")
    response = run(ajudge(fake, fresh, num_retries=2, max_retries=2))
    assert json.loads(content_of(response))["value"] is None
    assert fake.stats()["by_status"] == {"500": 5, "200": 2}


def test_storm_then_calm(fake: FakeLLM) -> None:
    fake.control(rate_429=1, storm_s=0.3)
    body = {"model": "fake-judge", "messages": []}
    assert post_raw(fake, body).status_code == 429
    time.sleep(0.4)
    assert post_raw(fake, body).status_code == 200


def test_seeded_faults_are_reproducible(fake: FakeLLM) -> None:
    def sequence() -> list[int]:
        fake.control(seed=1234, rate_500=0.3, rate_429=0.3)  # setting seed restarts the RNG
        with httpx.Client(base_url=fake.url) as client:
            return [client.post("/chat/completions", json={"model": "m", "messages": []})
                    .status_code for _ in range(30)]

    first, second = sequence(), sequence()
    assert first == second
    assert {200, 429, 500} <= set(first)


def test_latency(fake: FakeLLM) -> None:
    fake.control(latency_ms=200, jitter_ms=50)
    started = time.monotonic()
    assert post_raw(fake, {"model": "fake-judge", "messages": []}).status_code == 200
    assert 0.15 <= time.monotonic() - started < 1.0


def test_bad_requests(fake: FakeLLM) -> None:
    url = fake.url + "/chat/completions"
    response = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert post_raw(fake, {"model": "fake-judge"}).status_code == 400
    response = post_raw(fake, {"model": "fake-judge", "messages": [], "stream": True})
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["message"]
    bad_control = httpx.post(fake.base_url + "/_control", json={"rate_500": 2})
    assert bad_control.status_code == 400
    assert httpx.post(fake.base_url + "/_control", json={"nope": 1}).status_code == 400


def test_health_models_and_plain_path(fake: FakeLLM) -> None:
    assert httpx.get(fake.base_url + "/health").json() == {"status": "ok"}
    models = httpx.get(fake.url + "/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "fake-judge"
    response = httpx.post(fake.base_url + "/chat/completions",
                          json={"model": "m", "messages": judge_messages(allowed="[7]")})
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "m"
    assert json.loads(body["choices"][0]["message"]["content"])["value"] == 7


# --------------------------------------------------------------------------- stats and control


def test_stats_and_request_log(fake: FakeLLM, run: Run) -> None:
    before = time.time()
    run(ajudge(fake, judge_messages(allowed="[1, 2]"), response_format=schema_format([1, 2])))
    fake.control(rate_500=1)
    post_raw(fake, {"model": "fake-judge", "messages": [{"role": "user", "content": "x"}]})
    stats = fake.stats()
    assert stats["requests"] == 2 and stats["completed"] == 2 and stats["in_flight"] == 0
    assert stats["by_status"] == {"200": 1, "500": 1}
    assert stats["last_request_at"] >= before
    logged = fake.requests(10)
    assert len(logged) == 2
    assert logged[0]["response_format"] == schema_format([1, 2])
    assert logged[1]["messages"] == [{"role": "user", "content": "x"}]
    assert fake.requests(1) == logged[1:]

    settings = fake.reset()
    assert settings == Settings().as_dict()
    assert fake.stats()["requests"] == 0 and fake.requests(10) == []


def test_cli_flags_parse() -> None:
    _, settings = parse_args([
        "--port", "0", "--latency-ms", "500", "--jitter-ms", "100", "--rate-429", "0.1",
        "--seed", "7", "--unknown-models", "a,b", "--config", '{"fail_first_n": 2, "seed": 1}',
    ])
    assert settings.latency_ms == 500 and settings.jitter_ms == 100 and settings.rate_429 == 0.1
    assert settings.seed == 7 and settings.fail_first_n == 2  # explicit flag beats --config
    assert settings.unknown_models == ["a", "b"]


def test_startup_settings_survive_reset() -> None:
    with running_fakellm(latency_ms=50, api_key="k") as server:
        assert server.port > 0 and server.url.endswith("/v1")
        server.control(latency_ms=0)
        assert server.reset()["latency_ms"] == 50
        response = httpx.post(server.url + "/chat/completions",
                              json={"model": "m", "messages": []})
        assert response.status_code == 401
    assert server.process.poll() is not None  # terminated on exit


# --------------------------------------------------------------------------- throughput


def test_100_concurrent_slow_requests(fake: FakeLLM, run: Run) -> None:
    fake.control(latency_ms=500)

    async def burst() -> list[Any]:
        return await asyncio.gather(*[
            ajudge(fake, judge_messages(extra=f"item {i}", allowed="[1, 2, 3]"))
            for i in range(100)
        ])

    started = time.monotonic()
    responses = run(burst())
    elapsed = time.monotonic() - started
    # Served one after another they would take 50 s; concurrently about 0.5 s plus the client's
    # CPU. The bound is loose so a busy CI machine does not fail a behaviour test on speed.
    assert elapsed < 10.0, elapsed
    assert all(json.loads(content_of(r))["value"] in (1, 2, 3) for r in responses)
    assert fake.stats()["by_status"] == {"200": 100}


@pytest.mark.parametrize("changes", [
    {"content_filter_share": 1.5}, {"content_filter_share": -0.1}, {"content_filter_share": "x"},
    {"max_context_tokens": 0}, {"max_context_tokens": "many"}, {"max_context_tokens": True},
    {"rate_nul_raw": 2}, {"rate_array": float("nan")},
])
def test_the_new_fault_settings_refuse_bad_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings().updated(changes)
    assert Settings().updated({"max_context_tokens": "120"}).max_context_tokens == 120
    assert Settings().updated({"max_context_tokens": None}).max_context_tokens is None
