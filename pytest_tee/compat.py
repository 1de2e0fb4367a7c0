"""The few places pytest-tee relies on other libraries' internals, each in one function, each with a test
(``tests/test_compat.py``) that fails loudly, naming the library, when a release changes what it relies on.

- pytest-benchmark: ``benchmark.pedantic`` needs its round count up front; rounds after an adaptive stop run as
  no-ops, and their times are dropped from the fixture's private per-round list (``stats.stats.data``).
- torch: which buffers of a module are non-persistent (``_non_persistent_buffers_set``; no public accessor).
  Parameters and buffers themselves are replaced through the public ``register_parameter``/``register_buffer``.
- accelerate: which device a device map gives a tensor (accelerate's own longest-prefix rule,
  ``accelerate.utils.modeling._get_param_device``); coverage is checked with the public ``check_device_map``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LibraryChanged(RuntimeError):
    """An internal of another library that pytest-tee relies on is not there any more."""

    def __init__(self, library: str, what: str) -> None:
        from importlib import metadata

        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "not installed"
        super().__init__(
            f"{library} {version} changed: {what}. pytest-tee's compatibility shim (pytest_tee/compat.py) needs an "
            f"update for this release."
        )


# ---------------------------------------------------------------------------------------------- pytest-benchmark


def keep_benchmark_rounds(benchmark: Any, rounds: int) -> None:
    """Keep only the first ``rounds`` per-round times pytest-benchmark recorded (the rest were no-op rounds)."""
    data = getattr(getattr(getattr(benchmark, "stats", None), "stats", None), "data", None)
    if not isinstance(data, list):
        raise LibraryChanged("pytest-benchmark", "benchmark.stats.stats.data is no longer the list of round times")
    del data[rounds:]


# ------------------------------------------------------------------------------------------------------- torch


def non_persistent_buffer_names(module: Any) -> frozenset[str]:
    """Names of ``module``'s own buffers that are not saved in its state dict."""
    names = getattr(module, "_non_persistent_buffers_set", None)
    if not isinstance(names, set):
        raise LibraryChanged("torch", "Module._non_persistent_buffers_set is no longer a set of buffer names")
    return frozenset(names)


# -------------------------------------------------------------------------------------------------- accelerate


def device_in_map(tensor_name: str, device_map: Mapping[str, Any]) -> Any:
    """The device ``device_map`` gives ``tensor_name``: the entry of its longest module prefix ("" covers all)."""
    try:
        from accelerate.utils.modeling import _get_param_device
    except ImportError:
        raise LibraryChanged("accelerate", "accelerate.utils.modeling._get_param_device is gone") from None
    return _get_param_device(tensor_name, dict(device_map))  # ValueError when no prefix covers it
