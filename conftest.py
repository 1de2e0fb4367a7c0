"""What this repository's tests (``tests/``) and its benchmark suite (``benchmarks/``) share.

Nothing may reach a model hub: the tests use tiny synthetic models, the benchmarks real weights only when they
are already on disk (a local path, or the Hugging Face cache with ``local_files_only``), else synthetic weights
of the exact shapes. Setting the libraries' offline switches here makes any accidental download fail at once,
in both, instead of hanging on a network the CI machine does not have. A user's own environment wins.
"""

from __future__ import annotations

import os

OFFLINE = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: no requests at all
    "TRANSFORMERS_OFFLINE": "1",  # transformers: from_pretrained reads the cache only
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
for _name, _value in OFFLINE.items():
    os.environ.setdefault(_name, _value)
