"""pytest-benchmark hooks, on a class registered only when pytest-benchmark is active (``-p no:benchmark`` works).

A session that did not use pytest-tee adds nothing to pytest-benchmark's documents. One that did puts the stable
identity of its environment into ``machine_info["tee"]`` (pytest-benchmark compares ``machine_info`` verbatim and
warns on any difference) and the full environment record, volatile observations included, into the top-level
``pytest_tee`` block. ``datetime`` stays pytest-benchmark's own save time.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

SECTION_SCHEMA = 2  # 2: the environment record moved from machine_info["tee"] to pytest_tee["environment"]


class BenchmarkHooks:
    @pytest.hookimpl
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict[str, Any]) -> None:
        from pytest_tee.plugin import tee_session

        session = tee_session(config)
        if session.detected:
            machine_info["tee"] = session.environment.identity()

    @pytest.hookimpl(tryfirst=True)
    def pytest_benchmark_compare_machine_info(
        self, config: pytest.Config, benchmarksession: Any, machine_info: dict[str, Any], compared_benchmark: Any
    ) -> None:
        # --benchmark-compare reads machine_info at configure time, before collection shows whether this session
        # uses pytest-tee. A stored run that carries pytest-tee's record says the project does: add this session's
        # record (detecting now) so that pytest-benchmark compares like with like. Before its own comparison.
        from pytest_tee.plugin import tee_session

        saved = compared_benchmark.get("machine_info") if isinstance(compared_benchmark, dict) else None
        if "tee" not in machine_info and isinstance(saved, dict) and "tee" in saved:
            machine_info["tee"] = tee_session(config).environment.identity()

    @pytest.hookimpl(wrapper=True)
    def pytest_benchmark_update_json(
        self, config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
    ) -> Generator[None, Any, Any]:
        from pytest_tee.plugin import tee_session

        session = tee_session(config)
        if session.detected:
            environment = session.environment
            section = output_json.setdefault("pytest_tee", {})
            section.update(
                schema=SECTION_SCHEMA,
                environment_fingerprint=environment.fingerprint,
                session_started=session.started,
                environment=environment.to_dict(),
            )
            if session.bandwidth is not None:
                section["bandwidth"] = session.bandwidth
        result = yield
        # After every other implementation (conftest files included): anything added later would break the binding.
        if session.settings.attest:
            session.attestation = session.attestor().attach(output_json)
        return result
