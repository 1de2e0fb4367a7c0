"""The shipped benchmark suite. ``pytest benchmarks/`` runs the paper's experiment; the benchmarks of pytest-tee's
own machinery (synthetic weights, measurement fidelity) live in ``benchmarks/tooling`` and run only when that
folder is named: ``pytest benchmarks/tooling``."""

from __future__ import annotations

from pathlib import Path

import pytest

TOOLING = Path(__file__).parent / "tooling"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if TOOLING not in (collection_path, *collection_path.parents):
        return None
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    wanted = any(p == TOOLING or TOOLING in p.parents for p in named)
    return None if wanted else True
