"""Memory preflight: the estimate's arithmetic, the does-not-fit message, and placement over GPUs and CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tee.checkpoints import preflight as pf
from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.loading import ModelUnavailable, load_model

GIB = 2**30
QWEN = get("r1-distill-qwen-1.5b")


def test_estimate_follows_the_documented_formula() -> None:
    prompt, new, batch = 128, 32, 2
    estimate = pf.estimate_memory(QWEN, "bfloat16", (prompt, new, batch))
    assert estimate.weights == 2 * 1_777_088_000
    assert estimate.kv_cache == 2 * 28 * 2 * 128 * 2 * (prompt + new) * batch
    logits = batch * 151936 * (2 + 8)
    activations = batch * prompt * 8960 * 2 * 4  # the MLP's intermediate width is the widest activation
    scores = batch * 12 * prompt * prompt * 4
    assert estimate.working == logits + activations + scores
    assert estimate.margin == int(0.1 * (estimate.weights + estimate.kv_cache)) + 512 * 2**20
    assert estimate.total == estimate.weights + estimate.kv_cache + estimate.working + estimate.margin
    assert estimate.to_dict()["total"] == estimate.total


def test_mla_estimate_uses_the_compressed_cache() -> None:
    v3 = get("v3")
    estimate = pf.estimate_memory(v3, "bfloat16", (100, 28, 1))
    assert estimate.kv_cache == 61 * 576 * 2 * 128


def test_fits_on_a_single_device() -> None:
    result = pf.preflight(QWEN, device="cpu", dtype="bfloat16", workload=(128, 32, 1), available_bytes=64 * GIB)
    assert result.fits
    assert result.placement() == {"strategy": "single-device", "device": "cpu"}


def test_does_not_fit_message_states_need_and_availability() -> None:
    result = pf.preflight(QWEN, device="cpu", dtype="bfloat16", workload=(128, 32, 1), available_bytes=2 * GIB)
    assert not result.fits
    assert result.strategy == "does-not-fit"
    assert pf.gib(result.estimate.total) in result.message
    assert "cpu 2.00 GiB" in result.message
    assert "r1-distill-qwen-1.5b in bfloat16" in result.message
    assert "weights 3.31 GiB" in result.message


def test_load_model_skips_with_the_numbers_before_loading_anything() -> None:
    with pytest.raises(ModelUnavailable) as info:
        load_model(
            get("v3"),
            device="cpu",
            dtype="bfloat16",
            weights_mode="real",  # nothing on disk either: preflight must speak first
            model_paths={},
            workload=(128, 32, 1),
            available_bytes=16 * GIB,
        )
    message = str(info.value)
    assert "v3 in bfloat16" in message
    assert "cpu 16.00 GiB" in message
    assert "needs about 1" in message  # about 1.3 TB


def _fake_gpus(monkeypatch: pytest.MonkeyPatch, available: dict[str, int]) -> None:
    monkeypatch.setattr(pf, "available_memory", lambda device: (dict(available), "fake"))


def test_too_big_for_one_gpu_spreads_over_two(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, {"cuda:0": 10 * GIB, "cuda:1": 10 * GIB, "cpu": 4 * GIB})
    model = get("r1-distill-llama-8b")  # ~15 GiB in bf16
    result = pf.preflight(model, device="cuda", dtype="bfloat16", workload=(128, 32, 1))
    assert result.fits
    assert result.strategy == "accelerate-auto"
    assert result.offload is None
    assert set(result.max_memory) == {0, 1}
    assert result.max_memory[0] == 10 * GIB - result.estimate.runtime  # room to run on the execution GPU
    assert result.placement()["strategy"] == "accelerate-auto"


def test_too_big_for_the_gpus_offloads_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, {"cuda:0": 8 * GIB, "cpu": 64 * GIB})
    result = pf.preflight(get("r1-distill-llama-8b"), device="cuda:0", dtype="bfloat16", workload=(128, 32, 1))
    assert result.strategy == "accelerate-auto"
    assert result.offload == "cpu"
    assert result.max_memory["cpu"] == 64 * GIB - 512 * 2**20
    assert result.placement()["offload"] == "cpu"


def test_too_big_for_gpus_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, {"cuda:0": 8 * GIB, "cpu": 4 * GIB})
    result = pf.preflight(get("r1-distill-llama-8b"), device="cuda", dtype="bfloat16", workload=(128, 32, 1))
    assert not result.fits
    assert "cuda:0 8.00 GiB, cpu 4.00 GiB" in result.message


def test_cpu_never_spreads(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, {"cpu": 4 * GIB})
    assert not pf.preflight(get("r1-distill-llama-8b"), device="cpu", dtype="bfloat16", workload=(1, 1, 1)).fits


def test_cgroup_headroom_v2_and_v1(tmp_path: Path) -> None:
    v2 = tmp_path / "v2" / "sys/fs/cgroup"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("8589934592\n")
    (v2 / "memory.current").write_text("1073741824\n")
    assert pf.cgroup_memory_headroom(tmp_path / "v2") == 7 * GIB
    (v2 / "memory.max").write_text("max\n")
    assert pf.cgroup_memory_headroom(tmp_path / "v2") is None
    v1 = tmp_path / "v1" / "sys/fs/cgroup/memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(str(4 * GIB))
    (v1 / "memory.usage_in_bytes").write_text(str(1 * GIB))
    assert pf.cgroup_memory_headroom(tmp_path / "v1") == 3 * GIB
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712")  # v1's "unlimited"
    assert pf.cgroup_memory_headroom(tmp_path / "v1") is None


def test_this_machine_reports_some_cpu_memory() -> None:
    available, source = pf.cpu_available_bytes()
    assert available > 0
    assert source in ("MemAvailable", "cgroup memory limit minus usage")


def test_device_map_summary() -> None:
    summary = pf.summarize_device_map({"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": "cpu"})
    assert summary == {"cuda:0": 2, "cpu": 1}
