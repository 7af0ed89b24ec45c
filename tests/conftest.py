"""Shared fixtures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace

QUESTION = "What is 17 * 3 + 1?"
REFERENCE = "52"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "runs.sqlite")


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    """A fresh store file for the app (through PDR_DB), and no endpoint configured."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("PDR_DB", str(path))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return path


def run_fake(config: RunConfig, provider: FakeProvider | None = None, sink=None,
             question: str = QUESTION, reference: str | None = REFERENCE) -> Trace:
    """Run `config` on the fake provider, synchronously."""
    return asyncio.run(run(question, config, provider or FakeProvider(), sink,
                           reference=reference))
