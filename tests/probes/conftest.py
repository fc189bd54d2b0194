"""Fixtures for probe tests: the fake provider in its own process and real workers."""

from __future__ import annotations

import pytest

from tests.realparts import fake, fakellm, start_worker  # noqa: F401 (pytest fixtures)


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    # The fake needs no key; a key from the developer's shell must not change what is sent.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
