"""Shared test setup."""

from __future__ import annotations

import os

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# pytester's in-process runs restore sys.modules afterwards; extension modules first imported inside such a run
# cannot be imported again ("cannot load module more than once per process"), so import them here, once.
import numpy  # noqa: F401
import scipy.stats  # noqa: F401
import torch  # noqa: F401
from transformers import DeepseekV3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM  # noqa: F401
