"""The stored measurement: one typed record, written and read back through one module, old files still read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_tee.records import (
    SCHEMA,
    EngineInfo,
    HostFacts,
    RecordError,
    StoredMeasurement,
)
from pytest_tee.saved_runs import run_from_document

# A measurement exactly as pytest-tee 0.1 stored it (schema 1: no engine block), trimmed to two rounds.
SCHEMA_1 = {
    "schema": 1,
    "execution_env": "tdx",
    "device": "cpu",
    "checkpoint": {
        "id": "r1-distill-qwen-1.5b",
        "repo_id": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "parameters": 1777088000,
        "architecture": "Qwen2ForCausalLM",
    },
    "weights": "synthetic",
    "weights_source": "synthetic (no local weights found)",
    "dtype": "bfloat16",
    "dtype_reason": "auto: CPU has AVX512-BF16",
    "placement": {"strategy": "single-device", "device": "cpu"},
    "workload": {
        "prompt_tokens": 128,
        "new_tokens": 32,
        "batch": 1,
        "prompt_sha256": "ab" * 32,
        "prompt_source": "synthetic-ids",
    },
    "threads": 2,
    "interop_threads": 2,
    "rounds": 2,
    "warmup": 1,
    "stop_reason": "fixed: 2 rounds",
    "metrics": {"decode_tps": {"median": 4.05, "ci95": [4.0, 4.1], "unit": "tok/s", "higher_is_better": True}},
    "samples": {"decode_tps": [4.0, 4.1]},
    "warmup_samples": {"decode_tps": [3.1]},
    "host": {
        "cpu_quota": None,
        "numa_nodes": 1,
        "clocksource": "tsc",
        "logical_cpus": 2,
        "cpu_model": "x",
        "tee": "tdx",
    },
    "environment_fingerprint": "3f2a9c",
    "comparison_key": {
        "execution_env": "tdx",
        "checkpoint": "r1-distill-qwen-1.5b",
        "weights": "synthetic",
        "dtype": "bfloat16",
        "threads": 2,
        "workload": {"prompt_tokens": 128, "new_tokens": 32, "batch": 1, "prompt_sha256": "ab" * 32},
    },
    "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
}


def test_a_schema_1_measurement_reads_as_the_transformers_engine() -> None:
    measurement = StoredMeasurement.from_json(SCHEMA_1)
    assert measurement.schema == 1
    assert measurement.engine == EngineInfo(name="transformers", quantization="bfloat16")
    assert measurement.comparison_key["engine"] == "transformers"
    assert measurement.comparison_key["quantization"] == "bfloat16"
    assert measurement.comparison_key["engine_settings"] == {}
    assert measurement.checkpoint.parameters == 1777088000
    assert measurement.workload.shape == (128, 32, 1)
    assert measurement.sample_values("decode_tps") == [4.0, 4.1]
    assert measurement.host.numa_nodes == 1


def test_a_schema_1_measurement_compares_with_a_new_transformers_one() -> None:
    old = StoredMeasurement.from_json(SCHEMA_1)
    new = StoredMeasurement.from_json(old.to_json())  # what a new session writes for the same setup
    assert new.schema == SCHEMA
    assert dict(new.comparison_key) == dict(old.comparison_key)
    llama = StoredMeasurement.from_json({**old.to_json(), "engine": {"name": "llama.cpp", "quantization": "Q4_K_M"}})
    llama = StoredMeasurement.from_json({**llama.to_json(), "comparison_key": {}})  # key rebuilt from the fields
    assert (llama.comparison_key["engine"], llama.comparison_key["quantization"]) == ("llama.cpp", "Q4_K_M")
    assert dict(llama.comparison_key) != dict(new.comparison_key)


def test_to_json_and_from_json_round_trip_and_keep_added_fields() -> None:
    stored = {**SCHEMA_1, "runner": "ci-7"}  # a pytest_tee_update_result hook added a field
    once = StoredMeasurement.from_json(stored).to_json()
    assert once["runner"] == "ci-7"
    assert once["schema"] == SCHEMA
    assert StoredMeasurement.from_json(json.loads(json.dumps(once))).to_json() == once


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 99}, "schema 99, this version reads schemas 1, 2"),
        ({"schema": None}, "schema None"),
        ({"samples": {"decode_tps": ["fast"]}}, "samples['decode_tps']: expected a list of numbers"),
        ({"workload": 5}, "workload: expected a mapping"),
        ({"schema": 2, "engine": ["llama.cpp"]}, "engine: expected"),
    ],
)
def test_unreadable_measurements_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message.replace("[", r"\[").replace("]", r"\]")):
        StoredMeasurement.from_json({**SCHEMA_1, **change})


def test_a_missing_required_field_is_named() -> None:
    without = {key: value for key, value in SCHEMA_1.items() if key != "workload"}
    with pytest.raises(RecordError, match="lacks 'workload'"):
        StoredMeasurement.from_json(without)


def test_a_saved_schema_1_file_reads_through_the_run_reader(tmp_path: Path) -> None:
    document = {
        "machine_info": {"tee": {"tee": "tdx", "fingerprint": "3f2a9c"}},
        "benchmarks": [{"fullname": "b.py::test_x", "name": "test_x", "extra_info": {"tee": SCHEMA_1}}],
    }
    run = run_from_document(json.loads(json.dumps(document)), label="old")
    (entry,) = run.measurements
    assert entry.measurement.engine.name == "transformers"
    assert entry.to_json()["extra_info"]["tee"]["engine"]["name"] == "transformers"


def test_host_facts_say_unknown_rather_than_no() -> None:
    unknown = HostFacts({"cpu": {"amx": None, "avx512_bf16": None, "flags": [], "source": "unknown (no file)"}})
    assert unknown.cpu_feature("amx") is None
    assert not unknown.cpu_known
    known = HostFacts({"cpu": {"amx": False, "flags": ["avx2"], "source": "/proc/cpuinfo"}, "numa": {"nodes": 2}})
    assert known.cpu_feature("amx") is False
    assert known.cpu_known
    assert known.cpu_flags == ("avx2",)
    assert known.numa_nodes == 2
    assert known.snapshot("none").numa_nodes == 2


def test_load_and_serving_blocks_are_read_through_the_record() -> None:
    measurement = StoredMeasurement.from_json(
        {
            **SCHEMA_1,
            "schema": 2,
            "engine": {"name": "openai", "quantization": "Q4_K_M"},
            "serving": {"location": "remote", "host": "10.0.0.7:8000"},
            "load": {
                "shape": {"concurrency": 4, "requests": 16},
                "levels": [{"sent": 16, "failed": 1}, {"sent": 16, "failed": 0, "errors": {"timeout": 1}}],
            },
        }
    )
    assert measurement.load_shape == {"concurrency": 4, "requests": 16}
    assert measurement.requests_failed_and_sent() == (1, 32)
    assert measurement.served_from == "remote 10.0.0.7:8000"
    plain = StoredMeasurement.from_json(SCHEMA_1)
    assert (plain.load_shape, plain.load_levels, plain.served_from) == ({}, [], "?")
