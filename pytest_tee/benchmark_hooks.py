"""pytest-benchmark hooks, on a class registered only when pytest-benchmark is active (``-p no:benchmark`` works)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


class BenchmarkHooks:
    @pytest.hookimpl
    def pytest_benchmark_update_machine_info(self, config: pytest.Config, machine_info: dict[str, Any]) -> None:
        from pytest_tee.plugin import tee_session

        machine_info["tee"] = tee_session(config).environment.to_dict()

    @pytest.hookimpl(wrapper=True)
    def pytest_benchmark_update_json(
        self, config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
    ) -> Generator[None, Any, Any]:
        from pytest_tee.plugin import tee_session

        session = tee_session(config)
        # pytest-benchmark stamps each document it writes separately; one session, one time, so that the
        # --benchmark-json file and the stored run hold the same results (and one attestation binds both).
        output_json["datetime"] = session.started
        section = output_json.setdefault("pytest_tee", {})
        section.update(schema=1, environment_fingerprint=session.environment.fingerprint)
        if session.bandwidth is not None:
            section["bandwidth"] = session.bandwidth
        result = yield
        # After every other implementation (conftest files included): anything added later would break the binding.
        if session.settings.attest:
            session.attestation = session.attestor().attach(output_json)
        return result
