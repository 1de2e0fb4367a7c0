"""The injected decode slowdown of the gate evaluation, switched on by an environment variable.

``PYTEST_TEE_EVAL_STRETCH=0.12`` adds CPU work to every decoding step of the model under test: 12 % of the step's
own work (see ``slowdown.py``; ``run.py`` calibrates the value that lowers the decode rate by 10 %). Unset, empty
or 0: no hook — the unchanged arm.

``PYTEST_TEE_EVAL_STRETCH_AT=0.08@FOLDER`` does the same only in sessions whose checkout (this file) lies inside
FOLDER: for ``pytest-tee ab``, whose head is the working tree and whose base is a temporary worktree elsewhere,
it slows the head alone (the base's own copy of this file may predate the variable, and then ignores it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.tooling.gate_evaluation.slowdown import VARIABLE, DecodeSlowdown

SCOPED_VARIABLE = VARIABLE + "_AT"


def requested_stretch() -> float:
    raw = os.environ.get(VARIABLE, "").strip() or _scoped_stretch()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{VARIABLE}={raw!r}: expected a fraction of a step's work, e.g. 0.12") from None
    if not 0.0 <= value < 10.0:
        raise pytest.UsageError(f"{VARIABLE}={raw!r}: expected a fraction in [0, 10), e.g. 0.12 for 12 % more work")
    return value


def _scoped_stretch() -> str:
    """The stretch of ``PYTEST_TEE_EVAL_STRETCH_AT=STRETCH@FOLDER`` when this checkout is inside FOLDER, else ""."""
    raw = os.environ.get(SCOPED_VARIABLE, "").strip()
    if not raw:
        return ""
    stretch, at, folder = raw.partition("@")
    if not at or not folder:
        raise pytest.UsageError(f"{SCOPED_VARIABLE}={raw!r}: expected STRETCH@FOLDER, e.g. 0.08@/path/to/checkout")
    here = Path(__file__).resolve()
    return stretch if here.is_relative_to(Path(folder).expanduser().resolve()) else ""


@pytest.fixture(autouse=True)
def _slow_decode(request: pytest.FixtureRequest) -> Iterator[None]:
    stretch = requested_stretch()
    if stretch == 0.0 or "tokens_per_second" not in request.fixturenames:
        yield
        return
    model = request.getfixturevalue("deepseek_model").model  # the cached model tokens_per_second measures
    handle = model.register_forward_pre_hook(DecodeSlowdown(stretch), with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
