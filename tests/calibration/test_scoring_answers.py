"""The re-scoring path (workbench and optimizer, apps/calibration/scoring.py) reads answers as a
judge run does: a valid 1 MB answer is a verdict, cached whole (the cache is shared with judge
runs, so a cut entry would turn a later run's answer invalid); an answer over the cache limit is
not cached; a base that cannot be reached stops at once, not after every call's retries."""

from __future__ import annotations

import time

import pytest

from apps.calibration.scoring import Budget, JudgeSettings, PermanentError, score_content
from apps.judging.models import CallCache
from apps.rubrics import content as content_mod
from tests.calibration.worlds import length_spec
from tests.judging.test_hostile_provider import closed_port_url

pytestmark = pytest.mark.django_db

CONTENT = content_mod.validate(length_spec(10))
ITEMS = {n: {"prompt": f"Question {n}?", "response": " ".join(["word"] * (5 + n))}
         for n in range(1, 4)}


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _settings(url) -> JudgeSettings:
    return JudgeSettings(model="openai/fake-judge", api_base=url, concurrency=4, timeout_s=20.0)


def test_a_one_megabyte_answer_is_a_verdict_and_is_cached_whole(fake):
    fake.control(rationale_pad=1_000_000)
    scored = score_content(CONTENT, ITEMS, _settings(fake.url), Budget(total=50))
    assert scored.asked == len(ITEMS)
    assert sum(map(len, scored.values.values())) == len(ITEMS) and not scored.invalid
    entries = list(CallCache.objects.all())
    assert len(entries) == len(ITEMS)
    assert all(len(e.content) > 1_000_000 for e in entries)
    again = score_content(CONTENT, ITEMS, _settings(fake.url), Budget(total=50))
    assert again.cached == len(ITEMS) and again.values == scored.values


def test_an_answer_over_the_cache_limit_is_judged_but_not_cached(fake, settings):
    settings.JUDGE_CACHE_MAX_CHARS = 1000
    fake.control(rationale_pad=5000)
    scored = score_content(CONTENT, ITEMS, _settings(fake.url), Budget(total=50))
    assert sum(map(len, scored.values.values())) == len(ITEMS)
    assert not CallCache.objects.exists()


def test_a_closed_port_stops_at_once_naming_the_url(settings):
    url = closed_port_url()
    settings.ALLOWED_API_BASES = ["http://127.0.0.1:"]
    began = time.monotonic()
    with pytest.raises(PermanentError) as caught:
        score_content(CONTENT, ITEMS, _settings(url), Budget(total=50))
    assert time.monotonic() - began < 5
    assert "unreachable" in str(caught.value) and url in str(caught.value)
