"""The benchmark the gate evaluation measures: decode throughput of the tiny Qwen2 model on the CPU.

Driven by ``run.py`` in this folder, one pytest process per session; the workload comes from the command line
(``--tee-models=tiny-qwen2 --tee-new-tokens=32 …``) and the injected slowdown from ``conftest.py``.
"""

from __future__ import annotations

from typing import Any


def test_decode_tps(tokens_per_second: Any) -> None:
    result = tokens_per_second()
    assert result.samples["decode_tps"], "no decode rounds were measured"
