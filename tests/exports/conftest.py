"""Fixtures for export tests: the fake provider in its own process (shared with the judging
tests' fixtures) and judged worlds built on it."""

from __future__ import annotations

import pytest

from tests.realparts import fake, fakellm  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    # The fake needs no key; a key from the developer's shell must not change what is sent.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
