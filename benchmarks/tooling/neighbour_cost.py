"""Per-session cost of pytest-tee on a project that does not use it: pytest-tee loaded vs ``-p no:tee``.

Run: ``python benchmarks/tooling/neighbour_cost.py [SESSIONS]`` (default 15 a side). A plain project (20 tests and
one pytest-benchmark benchmark) is written to a temporary folder; sessions alternate with/without in ABBA order,
each a fresh ``python -m pytest`` process. Prints the median wall and CPU time (user + sys of the child) a side
and the median paired difference; the target is ≤ 20 ms.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = """import pytest

@pytest.mark.parametrize("n", range(20))
def test_add(n):
    assert n + 1 > n

def test_bench(benchmark):
    benchmark.pedantic(sum, args=(range(10),), rounds=1, iterations=1)
"""


def one_session(command: list[str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or "tee:" in result.stdout:
        raise SystemExit(f"unexpected session:\n{result.stdout}\n{result.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(sessions: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "test_plain.py").write_text(PROJECT)
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"]
        sides = {"with": base, "without": [*base, "-p", "no:tee"]}
        for command in sides.values():  # warm the file-system and bytecode caches
            one_session(command, root)
        times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in sides}
        for index in range(sessions):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            for name in order:
                wall, cpu = one_session(sides[name], root)
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
    for kind in ("wall", "cpu"):
        with_, without = times["with"][kind], times["without"][kind]
        paired = statistics.median(a - b for a, b in zip(with_, without, strict=True))
        print(
            f"{kind}: {sessions} sessions a side, median with {statistics.median(with_) * 1e3:.0f} ms, without "
            f"{statistics.median(without) * 1e3:.0f} ms, median paired difference {paired * 1e3:+.1f} ms"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
