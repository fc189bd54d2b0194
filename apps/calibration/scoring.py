"""Scoring a rubric's content on items without a judge run: the optimizer's re-scores.

A proposal is not the draft (a rubric has one draft, and the user has not chosen the proposal
yet), so it cannot be judged by a judge run, which renders the version it belongs to. This
scores content directly, with the same parts a run uses: prompting.build_messages, the call
cache (same key as the executor: an unchanged prompt is free, whichever path asked it first),
provider.ProviderClient through litellm, parse_verdict, and combine for samples and orders.

Every provider attempt, retries included, is taken from a Budget the user saw before the job
started; when it is spent, scoring stops and says so (BudgetSpent), it never carries on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings as django_settings

from apps.judging import provider
from apps.judging.executor import _run_in_process_loop, cache_key
from apps.judging.models import CallCache
from apps.judging.verdicts import (
    ParseError,
    combine,
    pairwise_sample_value,
    parse_verdict,
    storable,
)
from apps.rubrics import prompting, scales


class BudgetSpent(Exception):
    """The call budget ran out before every answer was in."""


class PermanentError(Exception):
    """The provider refused for good (bad key, unknown model): no point going on."""


@dataclass
class Budget:
    total: int
    used: int = 0

    @property
    def left(self) -> int:
        return max(0, self.total - self.used)

    def take(self) -> bool:
        if self.used >= self.total:
            return False
        self.used += 1
        return True


@dataclass
class JudgeSettings:
    model: str
    api_base: str = ""
    temperature: float = 0.0
    max_tokens: int = 400
    samples: int = 1
    concurrency: int = 16
    timeout_s: float = 60.0


@dataclass
class _Call:
    key: tuple  # (item id, criterion key, sample, order)
    criterion: dict
    swapped: bool
    messages: list[dict]
    cache_key: str
    value: object = None
    answered: bool = False
    invalid: str = ""
    rationale: str = ""
    raw: str = ""  # the answer for the call cache: whole (redacted) or "" (over the limit)


@dataclass
class Scored:
    """criterion key -> item id -> value (items whose answers did not parse are left out)."""

    values: dict[str, dict[int, object]] = field(default_factory=dict)
    rationales: dict[tuple[int, str], str] = field(default_factory=dict)
    invalid: int = 0
    asked: int = 0
    cached: int = 0


def spec_of(content: dict) -> dict:
    return {"description": content["description"], "system_template": content["prompt"]["system"],
            "user_template": content["prompt"]["user"], "criteria": content["criteria"],
            "mode": content["mode"]}


def calls_needed(content: dict, n_items: int, settings: JudgeSettings) -> int:
    orders = 2 if content["mode"] == "pairwise" else 1
    return n_items * len(content["criteria"]) * settings.samples * orders


def score_content(content: dict, items: dict[int, dict], settings: JudgeSettings,
                  budget: Budget, *, keys: list[str] | None = None) -> Scored:
    """Judge `items` (item id -> its text fields) on `content`'s criteria (or only `keys`)."""
    spec = spec_of(content)
    use_schema = provider.supports_schema(settings.model)
    run_like = SimpleNamespace(model=settings.model, api_base=settings.api_base,
                               temperature=settings.temperature, max_tokens=settings.max_tokens)
    orders = (("AB", True), ("BA", False)) if content["mode"] == "pairwise" else (("", False),)
    calls = []
    for criterion in spec["criteria"]:
        if keys is not None and criterion["key"] not in keys:
            continue
        for item_id, fields in items.items():
            for sample in range(settings.samples):
                for order, _ in orders:
                    swapped = order == "BA"
                    messages = prompting.build_messages(spec, criterion, fields, swapped=swapped)
                    calls.append(_Call((item_id, criterion["key"], sample, order), criterion,
                                       swapped, messages,
                                       cache_key(messages, run_like, sample, use_schema)))
    out = Scored()
    hits = {}
    keys_all = [c.cache_key for c in calls]
    for start in range(0, len(keys_all), 500):
        for entry in CallCache.objects.filter(key__in=keys_all[start : start + 500]):
            hits[entry.key] = entry.content
    remaining = []
    for call in calls:
        if call.cache_key in hits:
            _read(call, hits[call.cache_key])
            out.cached += 1
        else:
            remaining.append(call)
    if remaining:
        _run_in_process_loop(_ask_all(remaining, settings, budget, use_schema))
        out.asked = sum(1 for c in remaining if c.answered or c.invalid)
        CallCache.objects.bulk_create(
            (CallCache(key=c.cache_key, model=settings.model, content=storable(c.raw))
             for c in remaining if c.answered and c.raw), ignore_conflicts=True)
    return _combine(calls, spec, out)


def _read(call: _Call, text: str) -> None:
    # The whole answer is read, and cached whole or not at all (JUDGE_CACHE_MAX_CHARS, as the
    # executor does: both paths share the cache, and a cut answer no longer parses).
    text = provider.redact(text)
    try:
        call.value, call.rationale = parse_verdict(text, call.criterion, swapped=call.swapped)
        call.rationale = storable(call.rationale)
        call.answered = True
        call.raw = text if len(text) <= django_settings.JUDGE_CACHE_MAX_CHARS else ""
    except ParseError as exc:
        call.invalid = str(exc)


async def _ask_all(calls: list[_Call], settings: JudgeSettings, budget: Budget,
                   use_schema: bool) -> None:
    client = provider.ProviderClient()
    call_settings = provider.CallSettings(model=settings.model, api_base=settings.api_base,
                                          temperature=settings.temperature,
                                          max_tokens=settings.max_tokens,
                                          timeout_s=settings.timeout_s)
    semaphore = asyncio.Semaphore(max(1, settings.concurrency))
    stop = asyncio.Event()
    failure: list[BaseException] = []
    answered = [False]  # any answer yet: an unreachable base before the first one stops at once

    async def one(call: _Call) -> None:
        schema = prompting.response_schema(call.criterion) if use_schema else None
        async with semaphore:
            attempt = 0
            while not stop.is_set():
                if not budget.take():
                    failure.append(BudgetSpent())
                    stop.set()
                    return
                attempt += 1
                try:
                    completion = await client.complete(call.messages, call_settings,
                                                       response_format=schema)
                except provider.ProviderError as exc:
                    if exc.permanent or (exc.kind == "unreachable" and not answered[0]):
                        failure.append(PermanentError(f"{exc.kind}: {exc.message}"))
                        stop.set()
                        return
                    # A refusal of this prompt (content filter, context window): this call's
                    # outcome, asked once.
                    if exc.call_only or attempt >= django_settings.JUDGE_MAX_ATTEMPTS:
                        call.invalid = f"{exc.kind}: {exc.message}"
                        return
                    await asyncio.sleep(provider.backoff_delay(
                        attempt, exc.retry_after, base=django_settings.JUDGE_BACKOFF_BASE_S,
                        cap=django_settings.JUDGE_BACKOFF_CAP_S))
                    continue
                answered[0] = True
                _read(call, completion.content)
                return

    await asyncio.gather(*(one(c) for c in calls))
    if failure:
        raise failure[0]


def _combine(calls: list[_Call], spec: dict, out: Scored) -> Scored:
    """Samples (and both orders) into one value per (item, criterion), as a judge run does."""
    scale_of = {c["key"]: c["scale"] for c in spec["criteria"]}
    grouped: dict[tuple[int, str], dict[int, dict[str, object]]] = {}
    for call in calls:
        item_id, key, sample, order = call.key
        if not call.answered:
            out.invalid += 1 if call.invalid else 0
            continue
        grouped.setdefault((item_id, key), {}).setdefault(sample, {})[order] = call.value
        out.rationales.setdefault((item_id, key), call.rationale)
    for (item_id, key), samples in grouped.items():
        scale = scale_of[key]
        if scale["type"] == scales.PAIRWISE:
            values = [pairwise_sample_value(o["AB"], o["BA"]) for o in samples.values()
                      if "AB" in o and "BA" in o]
        else:
            values = [o[""] for o in samples.values() if "" in o]
        if values:
            out.values.setdefault(key, {})[item_id] = combine(scale, values)[0]
    return out


def ask_once(messages: list[dict], settings: JudgeSettings, budget: Budget) -> str:
    """One free-text request (the optimizer's rewrite), retried within the budget; the answer
    redacted. Permanent errors end the job; a request that keeps failing is a ValueError."""
    box: dict[str, str] = {}

    async def ask() -> None:
        client = provider.ProviderClient()
        call = provider.CallSettings(model=settings.model, api_base=settings.api_base,
                                     temperature=settings.temperature,
                                     max_tokens=max(settings.max_tokens, 800),
                                     timeout_s=settings.timeout_s)
        attempt = 0
        while True:
            if not budget.take():
                raise BudgetSpent()
            attempt += 1
            try:
                completion = await client.complete(messages, call)
            except provider.ProviderError as exc:
                if exc.permanent or (exc.kind == "unreachable" and attempt == 1):
                    raise PermanentError(f"{exc.kind}: {exc.message}") from None
                if attempt >= django_settings.JUDGE_MAX_ATTEMPTS:
                    raise ValueError(f"the request failed {attempt} times ({exc.kind})") from None
                await asyncio.sleep(provider.backoff_delay(
                    attempt, exc.retry_after, base=django_settings.JUDGE_BACKOFF_BASE_S,
                    cap=django_settings.JUDGE_BACKOFF_CAP_S))
                continue
            box["text"] = provider.redact(completion.content or "")
            return

    _run_in_process_loop(ask())
    return box["text"]
