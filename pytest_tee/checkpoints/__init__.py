"""DeepSeek checkpoints: the catalogue, weights resolution, synthetic weights, memory preflight and loading.

- ``catalogue``: ``Checkpoint``, ``CATALOGUE``, ``get(id_or_alias)``, ``resolve_id`` (no torch import)
- ``weights``: real weights from ``--tee-model-path`` or the Hugging Face cache, else synthetic
- ``synthetic``: exact shapes, fast deterministic fill
- ``preflight``: memory estimate against what the device has; placement over GPUs/CPU
- ``dtype``: ``choose_dtype``; ``prompts``: ``make_prompt``
- ``loading``: ``load_model``, ``LoadedModel``, ``ModelCache``, ``ModelUnavailable``

Only ``catalogue`` is imported at plugin start-up; the rest import torch/transformers inside their functions.
"""
