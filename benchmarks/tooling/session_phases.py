"""A pytest plugin for ``session_overhead.py``: wall-clock stamps of a session's phases, written as JSON.

Loaded with ``-p session_phases`` (this folder on ``PYTHONPATH``); writes to ``$TEE_PHASES_JSON``. Not collected
and not loaded by anything else.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

STAMPS: dict[str, float] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: before pytest-tee's configure, which detects the environment.
    STAMPS.setdefault("configure_start", time.time())


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    STAMPS.setdefault("configure_end", time.time())
    # What the first test would import anyway, imported here so that its cost is a phase of its own.
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401

    STAMPS.setdefault("imports_end", time.time())


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Iterator[Any]:
    if fixturedef.argname != "deepseek_model":
        return (yield)
    STAMPS.setdefault("load_start", time.time())
    try:
        return (yield)
    finally:
        STAMPS.setdefault("load_end", time.time())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    STAMPS.setdefault("setup_start", time.time())
    try:
        return (yield)
    finally:
        STAMPS.setdefault("setup_end", time.time())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    STAMPS.setdefault("call_start", time.time())
    try:
        return (yield)
    finally:
        STAMPS.setdefault("call_end", time.time())


def pytest_unconfigure(config: Any) -> None:
    path = os.environ.get("TEE_PHASES_JSON")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(STAMPS, out)
