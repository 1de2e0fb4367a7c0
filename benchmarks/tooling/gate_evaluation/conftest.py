"""The injected decode slowdown of the gate evaluation, switched on by an environment variable.

``PYTEST_TEE_EVAL_STRETCH=0.12`` adds CPU work to every decoding step of the model under test: 12 % of the step's
own work (see ``slowdown.py``; ``run.py`` calibrates the value that lowers the decode rate by 10 %). Unset, empty
or 0: no hook — the unchanged arm.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.tooling.gate_evaluation.slowdown import VARIABLE, DecodeSlowdown


def requested_stretch() -> float:
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{VARIABLE}={raw!r}: expected a fraction of a step's work, e.g. 0.12") from None
    if not 0.0 <= value < 10.0:
        raise pytest.UsageError(f"{VARIABLE}={raw!r}: expected a fraction in [0, 10), e.g. 0.12 for 12 % more work")
    return value


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
