"""pytest-tee: tokens/s regression testing of DeepSeek inference on CPU, CUDA and Intel TDX trust domains.

The public records are plain dataclasses; importing this package does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Environment": "pytest_tee.environment.record",
    "Evidence": "pytest_tee.environment.record",
    "ExecutionEnv": "pytest_tee.environment.record",
    "detect": "pytest_tee.environment",
    "Checkpoint": "pytest_tee.checkpoints.catalogue",
    "LoadedModel": "pytest_tee.checkpoints.loading",
    "ThroughputResult": "pytest_tee.measure.throughput",
    "StoredMeasurement": "pytest_tee.records",
    "Verdict": "pytest_tee.records",
}

__all__ = [
    "Checkpoint",
    "Environment",
    "Evidence",
    "ExecutionEnv",
    "LoadedModel",
    "StoredMeasurement",
    "ThroughputResult",
    "Verdict",
    "__version__",
    "detect",
]

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.environment import detect
    from pytest_tee.environment.record import Environment, Evidence, ExecutionEnv
    from pytest_tee.measure.throughput import ThroughputResult
    from pytest_tee.records import StoredMeasurement, Verdict


def __getattr__(name: str) -> Any:
    # Lazy so that pytest loading the plugin does not pay for numpy/scipy/torch imports.
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_tee' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
