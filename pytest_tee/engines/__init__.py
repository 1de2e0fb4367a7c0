"""Inference engines behind one interface (``base.Engine``), one module per engine, looked up by name.

Importing this package imports no engine library: the modules load on first use.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from pytest_tee.engines.base import EngineError, EngineUnavailable, LoadRequest

if TYPE_CHECKING:
    from pytest_tee.engines.base import Engine

# name -> "module:class"; a new engine is one more module and one more line here.
_REGISTRY: dict[str, str] = {
    "transformers": "pytest_tee.engines.transformers:TransformersEngine",
    "llama.cpp": "pytest_tee.engines.llama_cpp:LlamaCppEngine",
    "openai": "pytest_tee.engines.openai:OpenAIEngine",
}
ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)
DEFAULT_ENGINE = "transformers"


# engine -> (importable module, what to install); checked without importing it.
_LIBRARIES: dict[str, tuple[str, str]] = {
    "llama.cpp": ("llama_cpp", "pip install 'pytest-tee[llama]' (builds llama-cpp-python from source, ~6.5 min)"),
    "openai": ("httpx", "pip install 'pytest-tee[server]'"),
}
_DISTRIBUTIONS = {"llama.cpp": "llama-cpp-python", "openai": "httpx"}


def missing_library(name: str) -> str | None:
    """Why engine ``name`` cannot be used here (its library is not installed), or None."""
    import importlib.util

    module, install = _LIBRARIES.get(name, ("", ""))
    if not module or importlib.util.find_spec(module) is not None:
        return None
    distribution = _DISTRIBUTIONS.get(name, module)
    return f"--tee-engine={name} needs the {module} module ({distribution}), which is not installed: {install}"


@cache
def get_engine(name: str) -> Engine:
    """The engine called ``name``; KeyError naming the known engines otherwise."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; engines: {', '.join(ENGINE_NAMES)}") from None
    module_name, _, class_name = target.partition(":")
    engine: Engine = getattr(importlib.import_module(module_name), class_name)()
    return engine


__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "EngineError",
    "EngineUnavailable",
    "LoadRequest",
    "get_engine",
    "missing_library",
]
