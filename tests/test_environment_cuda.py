"""The real NVML and torch path of detection; runs only where an NVIDIA driver and a CUDA build of torch exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tee.environment.detection import detect, execution_envs, header_line

pytestmark = pytest.mark.skipif(
    not Path("/proc/driver/nvidia/version").exists(), reason="needs an NVIDIA GPU with its driver loaded"
)

CC_MODES = {"on", "devtools", "off", "unsupported", "unknown"}


def test_detection_agrees_with_nvml_and_torch():
    torch = pytest.importorskip("torch")
    pynvml = pytest.importorskip("pynvml", reason="needs nvidia-ml-py (pip install 'pytest-tee[cuda]')")
    environment = detect("/")
    print(header_line(environment))
    gpus = [device for device in environment.devices if device["kind"] == "cuda"]
    pynvml.nvmlInit()
    try:
        assert len(gpus) == pynvml.nvmlDeviceGetCount()
        driver = pynvml.nvmlSystemGetDriverVersion()
    finally:
        pynvml.nvmlShutdown()
    assert all(gpu["driver"] == driver and gpu["cc_mode"] in CC_MODES for gpu in gpus)
    usable = [gpu for gpu in gpus if gpu["usable"]]
    if not torch.cuda.is_available():
        assert not usable, "torch cannot use CUDA, so no GPU may be usable"
        pytest.skip(f"torch cannot use CUDA here: {[gpu['reason'] for gpu in gpus]}")
    assert len(usable) == torch.cuda.device_count()
    for gpu in usable:
        props = torch.cuda.get_device_properties(gpu["index"])
        assert gpu["name"] == props.name
        # NVML's total includes memory the CUDA runtime reserves, so the two differ by a few percent.
        assert abs(gpu["memory_total_mib"] - props.total_memory / 2**20) < 0.1 * gpu["memory_total_mib"]
    envs = execution_envs(environment, ("cuda",))
    assert sorted(env.device_index for env in envs) == sorted(gpu["index"] for gpu in usable)
    assert all(env.name.startswith("cuda" if environment.tee == "none" else f"{environment.tee}-cuda") for env in envs)
