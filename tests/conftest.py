"""Test setup (the no-hub-access settings tests share with the benchmarks are in the top-level conftest.py)."""

from __future__ import annotations

# pytester's in-process runs restore sys.modules afterwards; extension modules first imported inside such a run
# cannot be imported again ("cannot load module more than once per process"), so import them here, once.
import numpy  # noqa: F401
import scipy.stats  # noqa: F401
import torch  # noqa: F401
from transformers import DeepseekV3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM  # noqa: F401
