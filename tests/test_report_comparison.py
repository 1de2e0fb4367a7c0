"""pytest-tee report: the cross-environment table, ratios, comparability notes, roofline, formats, plots, history.

The saved runs are built here (``saved_run``): pytest-benchmark documents as ``--benchmark-save`` writes them,
with pytest-tee's environment record in ``machine_info["tee"]`` and per-round samples in ``extra_info["tee"]``.
Every expected number is recomputed here with numpy from those samples, not taken from the report code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tee import cli
from pytest_tee.environment.record import Environment, Evidence
from pytest_tee.measure.metrics import summarize
from pytest_tee.report import roofline as roofline_module
from pytest_tee.report.data import load_inputs
from pytest_tee.report.model import Bandwidth, Report, build_report
from pytest_tee.report.roofline import CheckpointShape

PARAMETERS = {
    "r1-distill-qwen-1.5b": 1_777_088_000,
    "r1-distill-qwen-7b": 7_615_616_512,
    "r1-distill-qwen-14b": 14_770_033_664,
}
ROUND_SPREAD = [0.98, 1.00, 1.02, 0.99, 1.01, 1.03, 0.97, 1.005]
PROMPT, NEW, BATCH = 128, 32, 1

# Median decode tok/s the builder centres each cell on: GPU/CPU rises with size (9, 10, 11), TDX beats CPU at 1.5B.
DECODE = {
    "cpu": {"r1-distill-qwen-1.5b": 4.0, "r1-distill-qwen-7b": 1.0, "r1-distill-qwen-14b": 0.5},
    "cuda": {"r1-distill-qwen-1.5b": 36.0, "r1-distill-qwen-7b": 10.0, "r1-distill-qwen-14b": 5.5},
    "tdx": {"r1-distill-qwen-1.5b": 4.4, "r1-distill-qwen-7b": 0.93, "r1-distill-qwen-14b": 0.46},
}
ROUNDS = {"cpu": 7, "cuda": 6, "tdx": 5}


# ---------------------------------------------------------------------------------------------------------------
# The builder


def host(
    *,
    brand: str = "Intel(R) Xeon(R) Gold 6530",
    logical_cpus: int = 64,
    numa_nodes: int = 2,
    quota: float | None = None,
    kernel: str = "6.8.0-45-generic",
    torch: str = "2.13.0",
    clocksource: str = "tsc",
) -> dict[str, Any]:
    return {
        "cpu": {
            "brand": brand,
            "logical_cpus": logical_cpus,
            "physical_cores": logical_cpus // 2,
            "amx": True,
            "avx512_bf16": True,
            "flags": ["amx_bf16", "avx512_bf16"],
        },
        "memory": {"total_bytes": 512 * 2**30},
        "numa": {"nodes": numa_nodes},
        "cgroup": {"cpu_quota": quota},
        "clocksource": clocksource,
        "kernel": kernel,
        "libraries": {"torch": torch, "transformers": "5.24.0"},
    }


def cpu_environment() -> dict[str, Any]:
    evidence = [Evidence("cpuinfo flag tdx_guest", "/proc/cpuinfo", "absent", None)]
    return Environment("none", "bare-metal", evidence, host(), [{"kind": "cpu"}]).to_dict()


def tdx_environment(**host_facts: Any) -> dict[str, Any]:
    """As detection records a TD (canonical/tdx guest): the TDX signals, a smaller VM, one NUMA node."""
    evidence = [
        Evidence("cpuinfo flag tdx_guest", "/proc/cpuinfo", "present", "tdx"),
        Evidence("device /dev/tdx_guest", "/dev/tdx_guest", "present", "tdx"),
        Evidence("configfs-tsm provider", "/sys/kernel/config/tsm/report", "provider tdx_guest", "tdx"),
        Evidence("kernel log", "dmesg", "tdx: Guest detected", "tdx"),
    ]
    record = Environment(
        "tdx",
        "kvm",
        evidence,
        host(**{"logical_cpus": 8, "numa_nodes": 1, "kernel": "6.8.0-1004-intel", **host_facts}),
        [{"kind": "cpu"}],
    )
    return record.to_dict()


def cuda_environment() -> dict[str, Any]:
    gpu = {
        "kind": "cuda",
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total_mib": 81559,
        "driver": "550.90.07",
        "cc_mode": "off",
    }
    return Environment("none", "bare-metal", [], host(), [{"kind": "cpu"}, gpu]).to_dict()


def samples_for(env: str, checkpoint: str, scale: float = 1.0) -> dict[str, list[float]]:
    spread = ROUND_SPREAD[: ROUNDS[env]]
    decode = [DECODE[env][checkpoint] * scale * s for s in spread]
    return {
        "decode_tps": decode,
        "e2e_tps": [d * 0.9 for d in decode],
        "ttft_s": [PROMPT / (d * 12) for d in decode],
    }


def measurement(
    env: str,
    checkpoint: str,
    samples: dict[str, list[float]],
    *,
    fingerprint: str,
    dtype: str = "bfloat16",
    threads: int = 32,
) -> dict[str, Any]:
    """One pytest-benchmark entry as the tokens_per_second fixture leaves it."""
    tee = {
        "schema": 1,
        "execution_env": env,
        "device": "cuda" if "cuda" in env else "cpu",
        "checkpoint": {
            "id": checkpoint,
            "repo_id": f"deepseek-ai/{checkpoint}",
            "parameters": PARAMETERS[checkpoint],
            "architecture": "Qwen2ForCausalLM",
        },
        "weights": "synthetic",
        "weights_source": "synthetic (no local weights found)",
        "dtype": dtype,
        "dtype_reason": "CPU has AMX",
        "placement": {"strategy": "single-device", "device_map": None},
        "workload": {
            "prompt_tokens": PROMPT,
            "new_tokens": NEW,
            "batch": BATCH,
            "prompt_sha256": "0" * 64,
            "prompt_source": "synthetic-ids",
        },
        "threads": threads,
        "interop_threads": threads,
        "rounds": len(samples["decode_tps"]),
        "warmup": 1,
        "stop_reason": "fixed",
        "metrics": {name: summarize(name, values).to_dict() for name, values in samples.items()},
        "samples": samples,
        "warmup_samples": {name: [values[0] * 0.7] for name, values in samples.items()},
        "environment_fingerprint": fingerprint,
        "comparison_key": {"execution_env": env, "checkpoint": checkpoint},
        "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
    }
    seconds = [NEW / v for v in samples["e2e_tps"]]
    return {
        "group": None,
        "name": f"test_paper_matrix[{env}-{checkpoint}]",
        "fullname": f"benchmarks/test_paper.py::test_paper_matrix[{env}-{checkpoint}]",
        "params": {"execution_env": env, "deepseek_checkpoint": checkpoint},
        "param": f"{env}-{checkpoint}",
        "extra_info": {"tee": tee},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 1, "max_time": 1.0},
        "stats": {
            "min": min(seconds),
            "max": max(seconds),
            "mean": float(np.mean(seconds)),
            "median": float(np.median(seconds)),
            "rounds": len(seconds),
            "iterations": 1,
            "data": seconds,
        },
    }


def saved_run(
    environment: dict[str, Any],
    benchmarks: list[dict[str, Any]],
    *,
    when: str,
    bandwidth_gbps: float | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "machine_info": {
            "node": "host",
            "processor": "x86_64",
            "machine": "x86_64",
            "python_version": "3.11.2",
            "system": "Linux",
            "cpu": {"brand_raw": "Intel"},
            "tee": environment,
        },
        "commit_info": {"id": "0123abcd", "branch": "main", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": when,
        "version": "5.3.1",
        "pytest_tee": {"schema": 1, "environment_fingerprint": environment["fingerprint"]},
    }
    if bandwidth_gbps is not None:
        document["pytest_tee"]["bandwidth"] = {"read_gbps": bandwidth_gbps, "method": "numpy copy"}
    return document


def run_for(
    env: str, environment: dict[str, Any], *, when: str, scale: float = 1.0, bandwidth: float | None = None, **kw: Any
) -> dict[str, Any]:
    benchmarks = [
        measurement(env, checkpoint, samples_for(env, checkpoint, scale), fingerprint=environment["fingerprint"], **kw)
        for checkpoint in PARAMETERS
    ]
    return saved_run(environment, benchmarks, when=when, bandwidth_gbps=bandwidth)


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """Three machines' .benchmarks folders side by side, as collected for the paper's matrix."""
    root = tmp_path / "collected"
    # An older CPU run with slower numbers: the newer one must win.
    write(
        root / "cpu-host/Linux-CPython-3.11-64bit/0001_cpu.json",
        run_for("cpu", cpu_environment(), when="2025-03-01T10:00:00+00:00", scale=0.5, bandwidth=22.0),
    )
    write(
        root / "cpu-host/Linux-CPython-3.11-64bit/0002_cpu.json",
        run_for("cpu", cpu_environment(), when="2025-03-02T10:00:00+00:00", bandwidth=22.0),
    )
    write(
        root / "td/Linux-CPython-3.11-64bit/0001_tdx.json",
        run_for("tdx", tdx_environment(), when="2025-03-02T12:00:00+00:00", bandwidth=20.0, threads=8),
    )
    write(
        root / "gpu-host/Linux-CPython-3.11-64bit/0001_cuda.json",
        run_for("cuda", cuda_environment(), when="2025-03-02T14:00:00+00:00"),
    )
    # A plain pytest-benchmark run (no pytest-tee data) in the same storage: passed over, not an error.
    plain = saved_run(cpu_environment(), [], when="2025-03-02T15:00:00+00:00")
    plain["benchmarks"] = [
        {"name": "test_sort", "fullname": "tests/test_sort.py::test_sort", "extra_info": {}, "stats": {"data": [0.1]}}
    ]
    del plain["machine_info"]["tee"]
    write(root / "cpu-host/Linux-CPython-3.11-64bit/0003_other.json", plain)
    return root


@pytest.fixture
def report(storage: Path) -> Report:
    return build_report(load_inputs([storage]))


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch):
    """``pytest_tee.cli.main`` with only the report command registered (the other commands are not ours)."""
    monkeypatch.setattr(cli, "COMMANDS", {"report": cli.COMMANDS["report"]})
    return cli.main


def row_of(report: Report, checkpoint: str):
    return next(row for row in report.rows if row.checkpoint == checkpoint)


# ---------------------------------------------------------------------------------------------------------------
# The table


def test_rows_are_ordered_by_parameter_count_and_environments_in_paper_order(report):
    assert [row.checkpoint for row in report.rows] == list(PARAMETERS)
    assert report.environments == ["cpu", "cuda", "tdx"]
    assert [kind.name for kind in report.ratio_kinds] == ["gpu/cpu", "tdx/cpu"]
    assert all(row.workload.label == f"{PROMPT}/{NEW}/{BATCH}" for row in report.rows)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["decode_tps", "e2e_tps", "ttft_s"])
def test_cell_medians_are_the_medians_of_the_stored_samples(report, metric):
    for row in report.rows:
        for env, cell in row.cells.items():
            expected = samples_for(env, row.checkpoint)[metric]
            found = cell.estimates[metric]
            assert found.median == pytest.approx(np.median(expected))
            assert found.n == len(expected)
            assert found.ci95[0] <= found.median <= found.ci95[1]
            assert min(expected) <= found.ci95[0]
            assert found.ci95[1] <= max(expected)


@pytest.mark.slow
def test_ratios_are_ratios_of_medians_with_a_bootstrap_ci(report):
    rng = np.random.default_rng(12345)
    for row in report.rows:
        for name, top_env in (("gpu/cpu", "cuda"), ("tdx/cpu", "tdx")):
            top = np.asarray(samples_for(top_env, row.checkpoint)["decode_tps"])
            bottom = np.asarray(samples_for("cpu", row.checkpoint)["decode_tps"])
            ratio = row.ratios[name]
            assert ratio.value == pytest.approx(np.median(top) / np.median(bottom))
            low, high = ratio.ci95
            assert low <= ratio.value <= high
            assert top.min() / bottom.max() <= low
            assert high <= top.max() / bottom.min()
            # An independent bootstrap (other seed, other code) lands within a few per cent of the same bounds.
            resampled = np.median(rng.choice(top, (20_000, top.size)), axis=1) / np.median(
                rng.choice(bottom, (20_000, bottom.size)), axis=1
            )
            expected_low, expected_high = np.percentile(resampled, [2.5, 97.5])
            assert low == pytest.approx(expected_low, rel=0.02)
            assert high == pytest.approx(expected_high, rel=0.02)
    tdx = row_of(report, "r1-distill-qwen-1.5b").ratios["tdx/cpu"]
    assert tdx.overhead[0] == pytest.approx(1 - tdx.value)
    assert tdx.overhead[1] == pytest.approx((1 - tdx.ci95[1], 1 - tdx.ci95[0]))


@pytest.mark.slow
def test_the_same_inputs_give_the_same_cis(storage):
    first = build_report(load_inputs([storage]))
    second = build_report(load_inputs([storage]))
    assert [r.ratios["gpu/cpu"].ci95 for r in first.rows] == [r.ratios["gpu/cpu"].ci95 for r in second.rows]


def test_mean_gpu_cpu_ratio_across_sizes(report):
    expected = np.mean(
        [
            np.median(samples_for("cuda", c)["decode_tps"]) / np.median(samples_for("cpu", c)["decode_tps"])
            for c in PARAMETERS
        ]
    )
    mean = next(m for m in report.means if m.kind.name == "gpu/cpu")
    assert mean.value == pytest.approx(expected)
    assert mean.value == pytest.approx(10.0, rel=0.02)
    assert mean.ci95[0] < mean.value < mean.ci95[1]
    assert [checkpoint for checkpoint, _ in mean.members] == list(PARAMETERS)
    claims = {finding.claim: finding.observed for finding in report.findings}
    assert claims["smaller models have a lower GPU/CPU ratio"].startswith("yes")


def test_the_newest_run_holds_a_cell_and_the_older_one_is_named(report):
    cell = row_of(report, "r1-distill-qwen-1.5b").cells["cpu"]
    assert cell.run_label == "0002_cpu"
    assert [source.saved.label for source in cell.superseded] == ["0001_cpu"]
    assert cell.estimates["decode_tps"].median == pytest.approx(
        np.median(samples_for("cpu", "r1-distill-qwen-1.5b")["decode_tps"])
    )
    assert any("the newest, 0002_cpu" in note and "not 0001_cpu" in note for note in report.notes)
    assert any("not pytest-tee runs passed over" in note and "0003_other.json" in note for note in report.notes)


def test_comparability_notes_list_what_differs_besides_the_tee(report):
    tdx = row_of(report, "r1-distill-qwen-1.5b").ratios["tdx/cpu"]
    differing = {difference.fact: (difference.numerator, difference.denominator) for difference in tdx.differences}
    assert differing["threads"] == (8, 32)
    assert differing["logical_cpus"] == (8, 64)
    assert differing["numa_nodes"] == (1, 2)
    assert differing["platform"] == ("kvm", "bare-metal")
    assert differing["kernel"] == ("6.8.0-1004-intel", "6.8.0-45-generic")
    assert not {"dtype", "weights", "torch", "transformers", "cpu_model", "amx", "gpus"} & set(differing)
    # GPU/CPU compares devices on purpose: the GPUs and the CPU thread count are not listed.
    gpu = row_of(report, "r1-distill-qwen-1.5b").ratios["gpu/cpu"]
    assert not {"gpus", "threads"} & {difference.fact for difference in gpu.differences}
    finding = next(f for f in report.findings if "TDX is faster" in f.claim)
    assert "TDX faster (CI above 1)" in finding.observed
    assert "torch threads" in finding.observed
    assert "NUMA nodes" in finding.observed


def test_a_dtype_difference_is_listed_beside_the_gpu_cpu_ratio(tmp_path):
    cpu = run_for("cpu", cpu_environment(), when="2025-03-02T10:00:00+00:00", dtype="float32")
    cuda = run_for("cuda", cuda_environment(), when="2025-03-02T11:00:00+00:00")
    paths = [write(tmp_path / "0001_cpu.json", cpu), write(tmp_path / "0001_cuda.json", cuda)]
    report = build_report(load_inputs(paths))
    differences = row_of(report, "r1-distill-qwen-7b").ratios["gpu/cpu"].differences
    assert [(d.fact, d.numerator, d.denominator) for d in differences] == [("dtype", "bfloat16", "float32")]


def test_a_cpu_quota_and_a_clocksource_difference_are_listed_beside_the_tdx_ratio(tmp_path):
    cpu = run_for("cpu", cpu_environment(), when="2025-03-02T10:00:00+00:00")
    td = tdx_environment(quota=4.0, clocksource="kvm-clock", torch="2.12.0")
    tdx = run_for("tdx", td, when="2025-03-02T11:00:00+00:00")
    tdx["benchmarks"][0]["extra_info"]["tee"]["versions"]["torch"] = "2.12.0"
    paths = [write(tmp_path / "0001_cpu.json", cpu), write(tmp_path / "0001_tdx.json", tdx)]
    report = build_report(load_inputs(paths))
    differing = {
        d.fact: (d.numerator, d.denominator)
        for d in row_of(report, "r1-distill-qwen-1.5b").ratios["tdx/cpu"].differences
    }
    assert differing["cpu_quota"] == (4.0, None)
    assert differing["clocksource"] == ("kvm-clock", "tsc")
    assert differing["torch"] == ("2.12.0", "2.13.0")
    # The other rows' measurements recorded torch 2.13.0 themselves: the measurement's own record wins.
    assert "torch" not in {d.fact for d in row_of(report, "r1-distill-qwen-7b").ratios["tdx/cpu"].differences}


# ---------------------------------------------------------------------------------------------------------------
# Roofline


@pytest.mark.slow
def test_roofline_fraction_counts_weights_and_kv_cache(storage, monkeypatch):
    kv_per_token = 28_672.0  # 2 × 28 layers × 2 KV heads × 128 × 2 bytes: Qwen2-1.5B in bf16
    monkeypatch.setattr(roofline_module, "checkpoint_shape", lambda *_: CheckpointShape(kv_per_token, 0, False, None))
    report = build_report(load_inputs([storage]))
    cell = row_of(report, "r1-distill-qwen-1.5b").cells["cpu"]
    decode = np.median(samples_for("cpu", "r1-distill-qwen-1.5b")["decode_tps"])
    bytes_per_step = PARAMETERS["r1-distill-qwen-1.5b"] * 2 + kv_per_token * (PROMPT + NEW / 2) * BATCH
    assert cell.roofline.fraction == pytest.approx(decode * bytes_per_step / 22e9)
    assert cell.roofline.bandwidth_source == "recorded in 0002_cpu"
    # The TD recorded its own bandwidth; the GPU run recorded none, and host bandwidth is no GPU limit.
    assert row_of(report, "r1-distill-qwen-1.5b").cells["tdx"].roofline.bandwidth_gbps == 20.0
    assert row_of(report, "r1-distill-qwen-1.5b").cells["cuda"].roofline is None


def test_roofline_sanity_anchor_with_the_real_catalogue():
    from pytest_tee.report.data import Workload
    from pytest_tee.report.roofline import roofline

    # About 4 tok/s for the 1.5B shape in bf16 against about 22 GB/s. Counting every parameter (3.55 GB) that is
    # 3.55 × 4 / 22 ≈ 65 % of the limit; a decode step does not read the untied input embedding (151936 × 1536
    # parameters, one row per step), so the bytes actually read are 3.09 GB and the fraction about 56 %.
    result, missing = roofline(
        checkpoint_id="r1-distill-qwen-1.5b",
        parameters=PARAMETERS["r1-distill-qwen-1.5b"],
        dtype="bfloat16",
        workload=Workload(PROMPT, NEW, 1),
        decode_tps=4.0,
        decode_ci95=(3.9, 4.1),
        bandwidth_gbps=22.0,
        bandwidth_source="--bandwidth",
    )
    assert missing is None
    read = (PARAMETERS["r1-distill-qwen-1.5b"] - 151936 * 1536) * 2 + 28672 * (PROMPT + NEW / 2)
    assert result.bytes_per_step == pytest.approx(read)
    assert result.fraction == pytest.approx(read * 4.0 / 22e9)
    assert result.fraction == pytest.approx(0.56, abs=0.01)
    assert PARAMETERS["r1-distill-qwen-1.5b"] * 2 * 4.0 / 22e9 == pytest.approx(0.65, abs=0.01)
    assert result.fraction_ci95[0] < result.fraction < result.fraction_ci95[1]
    assert any("input embedding not counted" in note for note in result.notes)


def test_roofline_without_kv_sizes_in_the_catalogue_still_counts_the_weights(monkeypatch):
    from pytest_tee.checkpoints import catalogue
    from pytest_tee.report.data import Workload
    from pytest_tee.report.roofline import roofline

    def unknown(name: str):
        raise KeyError(name)

    monkeypatch.setattr(catalogue, "get", unknown)
    roofline_module.checkpoint_shape.cache_clear()
    try:
        result, _ = roofline(
            checkpoint_id="r1-distill-qwen-1.5b",
            parameters=1_000_000_000,
            dtype="float32",
            workload=Workload(10, 10, 1),
            decode_tps=5.0,
            decode_ci95=None,
            bandwidth_gbps=40.0,
            bandwidth_source="--bandwidth",
        )
    finally:
        roofline_module.checkpoint_shape.cache_clear()
    assert result.fraction == pytest.approx(4e9 * 5 / 40e9)
    assert any("KV cache not counted" in note for note in result.notes)


@pytest.mark.slow
def test_bandwidth_on_the_command_line_overrides_and_reaches_gpus(storage):
    report = build_report(load_inputs([storage]), bandwidth=Bandwidth(30.0, {"cuda": 3350.0}))
    row = row_of(report, "r1-distill-qwen-14b")
    assert row.cells["cpu"].roofline.bandwidth_gbps == 30.0
    assert row.cells["tdx"].roofline.bandwidth_gbps == 30.0
    assert row.cells["cuda"].roofline.bandwidth_gbps == 3350.0


@pytest.mark.slow
def test_bandwidth_for_an_environment_the_runs_do_not_hold_is_noted(storage):
    report = build_report(load_inputs([storage, storage]), bandwidth=Bandwidth(None, {"sev-snp": 300.0}))
    assert any(note.startswith("--bandwidth sev-snp=…: no sev-snp measurements") for note in report.notes)
    assert len(report.runs) == 4  # the folder given twice is read once


# ---------------------------------------------------------------------------------------------------------------
# Output formats through the command


@pytest.mark.slow
def test_json_holds_every_number_of_the_table(main, storage, capsys):
    assert main(["report", str(storage), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["environments"] == ["cpu", "cuda", "tdx"]
    row = document["rows"][0]
    assert row["checkpoint"] == "r1-distill-qwen-1.5b"
    assert row["parameters"] == PARAMETERS["r1-distill-qwen-1.5b"]
    decode = samples_for("tdx", "r1-distill-qwen-1.5b")["decode_tps"]
    assert row["cells"]["tdx"]["metrics"]["decode_tps"]["median"] == pytest.approx(np.median(decode))
    assert row["cells"]["tdx"]["metrics"]["decode_tps"]["ci_level"] < 0.95  # 5 rounds
    assert row["cells"]["cpu"]["roofline"]["fraction"] > 0
    tdx = row["ratios"]["tdx/cpu"]
    assert tdx["overhead"] == pytest.approx(1 - tdx["value"])
    assert {d["fact"] for d in tdx["differences"]} >= {"threads", "numa_nodes"}
    assert document["means"][0]["ratio"] == "gpu/cpu"
    assert document["means"][0]["ci95"][0] < 10
    assert document["bootstrap"]["seed"] == 0
    assert document["findings"]


@pytest.mark.slow
def test_markdown_has_a_column_group_per_environment_and_the_ratio_columns(main, storage, capsys):
    assert main(["report", str(storage), "--format", "md"]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("| checkpoint"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    for env in ("cpu", "cuda", "tdx"):
        assert [f"{env} decode tok/s", f"{env} e2e tok/s", f"{env} TTFT ms"] == columns[
            columns.index(f"{env} decode tok/s") : columns.index(f"{env} decode tok/s") + 3
        ]
    assert columns[-3:] == ["GPU/CPU", "TDX/CPU", "TDX overhead"]
    table = text[text.index(header) :].split("\n\n")[0].splitlines()
    rows = [line for line in table if line.startswith("| r1-distill")]
    assert len(rows) == 3
    assert all(row.count("|") == header.count("|") for row in rows)
    assert "†" in rows[0]  # TDX/CPU differs in more than the TEE
    assert "### Comparability" in text
    assert "torch threads (tdx 8, cpu 32)" in text


@pytest.mark.slow
def test_terminal_table_lists_each_cell(main, storage, capsys):
    assert main(["report", str(storage)]) == 0
    text = capsys.readouterr().out
    decode = np.median(samples_for("cuda", "r1-distill-qwen-14b")["decode_tps"])
    assert re.search(rf"r1-distill-qwen-14b\s+14.8B\s+128/32/1\s+cuda\s+{decode:.2f} \[", text)
    assert "Mean ratio across model sizes" in text
    assert "GPU/CPU" in text


@pytest.mark.slow
def test_html_is_one_self_contained_page_with_the_plots(main, storage, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(storage), "--output", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from anywhere
    assert "<script" not in page
    assert '<link rel="stylesheet"' not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert images
    import base64

    assert base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert 'colspan="3">cpu</th>' in page or 'colspan="4">cpu</th>' in page


# ---------------------------------------------------------------------------------------------------------------
# Plots and history


def read_png(path: Path):
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


@pytest.mark.slow
def test_plot_and_history_plot_are_written(main, storage, tmp_path, capsys):
    out = tmp_path / "plots" / "paper.png"
    code = main(["report", str(storage), "--plot", str(out), "--history", "cpu-r1-distill-qwen-1.5b", "--format", "md"])
    assert code == 0
    figure = read_png(out)
    history = read_png(tmp_path / "plots" / "paper-history.png")
    assert figure.shape[0] > 400
    assert figure.shape[1] > 800
    assert history.shape[1] > 400
    assert figure.std() > 0.05  # not a blank canvas
    err = capsys.readouterr().err
    assert f"wrote {out}" in err


def test_history_marks_a_regression_by_the_gates_rule(tmp_path):
    from pytest_tee.report.history import build_history

    env = cpu_environment()
    folder = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    for number, (day, scale) in enumerate([(1, 1.0), (2, 1.0), (3, 0.8), (4, 0.8)], start=1):
        write(
            folder / f"{number:04d}_main.json", run_for("cpu", env, when=f"2025-03-0{day}T10:00:00+00:00", scale=scale)
        )
    inputs = load_inputs([tmp_path / ".benchmarks"])
    history = build_history(inputs.runs, "cpu-r1-distill-qwen-7b")
    assert [point.saved.label for point in history.points] == ["0001_main", "0002_main", "0003_main", "0004_main"]
    # As the gate judged each run then: one stored run a side cannot call identical sessions "unchanged" at this
    # round noise (the between-session noise is assumed), the 20 % drop is a regression, and after it the three
    # stored runs' own spread (the drop among them) leaves the next comparison open.
    assert [point.outcome for point in history.points] == [None, "inconclusive", "regressed", "inconclusive"]
    assert "(single model)" in history.points[2].outcome_detail
    assert "(history model)" in history.points[3].outcome_detail
    assert history.points[2].estimate.median == pytest.approx(
        0.8 * np.median(samples_for("cpu", "r1-distill-qwen-7b")["decode_tps"])
    )
    assert "gate" in history.rule


def test_history_takes_verdicts_from_a_verdicts_file(main, tmp_path, capsys):
    env = cpu_environment()
    folder = tmp_path / ".benchmarks" / "m"
    for number in (1, 2, 3):
        write(folder / f"{number:04d}_main.json", run_for("cpu", env, when=f"2025-03-0{number}T10:00:00+00:00"))
    verdicts = write(
        tmp_path / "verdicts.json",
        [
            {
                "benchmark": "benchmarks/test_paper.py::test_paper_matrix[cpu-r1-distill-qwen-7b]",
                "metric": "decode_tps",
                "base": 1.0,
                "head": 0.9,
                "ratio": 0.9,
                "ci95": [0.85, 0.95],
                "outcome": "regressed",
            },
        ],
    )
    code = main(
        [
            "report",
            str(tmp_path / ".benchmarks"),
            "--history",
            "cpu-r1-distill-qwen-7b",
            "--verdicts",
            f"0002={verdicts}",
            "--format",
            "json",
        ]
    )
    assert code == 0
    points = json.loads(capsys.readouterr().out)["history"]["points"]
    assert [point["outcome"] for point in points] == [None, "regressed", None]


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one clear line, exit 2, no traceback


def fails_cleanly(main, capsys, argv: list[str], *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("pytest-tee report: error: ")
    for fragment in fragments:
        assert fragment in err
    return err


def test_an_empty_folder(main, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    fails_cleanly(main, capsys, ["report", str(tmp_path / "empty")], "empty", "no .json run files")


def test_no_benchmarks_folder_here(main, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails_cleanly(main, capsys, ["report"], "no .benchmarks folder here")


def test_a_file_that_is_not_a_pytest_benchmark_run(main, tmp_path, capsys):
    bad = write(tmp_path / "results.json", {"hello": "world"})
    fails_cleanly(main, capsys, ["report", str(bad)], str(bad), "not a pytest-benchmark run")
    broken = tmp_path / "0001_broken.json"
    broken.write_text('{"benchmarks": [', encoding="utf-8")
    fails_cleanly(main, capsys, ["report", str(broken)], str(broken), "not valid JSON")


def test_a_run_without_pytest_tee_data(main, tmp_path, capsys):
    plain = saved_run(cpu_environment(), [], when="2025-03-02T15:00:00+00:00")
    plain["benchmarks"] = [{"name": "test_sort", "fullname": "tests/test_sort.py::test_sort", "extra_info": {}}]
    path = write(tmp_path / "store" / "m" / "0001_plain.json", plain)
    fails_cleanly(main, capsys, ["report", str(path)], "has no pytest-tee measurements")
    fails_cleanly(main, capsys, ["report", str(tmp_path / "store")], "no pytest-tee runs found", "0001_plain.json")


@pytest.mark.slow
def test_bad_options(main, storage, tmp_path, capsys):
    fails_cleanly(main, capsys, ["report", str(storage), "--plot", str(tmp_path / "x.pdf")], ".png or .svg")
    fails_cleanly(main, capsys, ["report", str(storage), "--bandwidth", "fast"], "--bandwidth 'fast'")
    fails_cleanly(main, capsys, ["report", str(storage), "--history", "no-such-benchmark"], "no benchmark matches")
    fails_cleanly(main, capsys, ["report", str(storage), "--history", "r1-distill-qwen-7b"], "matches 3 benchmarks")
    fails_cleanly(main, capsys, ["report", str(storage), "--verdicts", str(tmp_path / "v.json")], "--history")
    run = storage / "td/Linux-CPython-3.11-64bit/0001_tdx.json"
    before = run.read_bytes()
    fails_cleanly(main, capsys, ["report", str(storage), "--output", str(run)], "is one of the saved runs")
    assert run.read_bytes() == before


def test_runs_with_the_same_file_name_from_several_machines_are_told_apart(tmp_path):
    for host, env, environment in (("cpu-host", "cpu", cpu_environment()), ("td", "tdx", tdx_environment())):
        folder = tmp_path / host / "Linux-CPython-3.11-64bit"
        write(folder / "0001_paper.json", run_for(env, environment, when="2025-03-02T10:00:00+00:00"))
    report = build_report(load_inputs([tmp_path]))
    assert [saved.label for saved in report.runs] == ["cpu-host/…/0001_paper", "td/…/0001_paper"]
    assert row_of(report, "r1-distill-qwen-7b").cells["tdx"].run_label == "td/…/0001_paper"
