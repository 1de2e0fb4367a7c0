"""The catalogue: exact parameter counts, byte sizes, KV-cache sizes and id resolution."""

from __future__ import annotations

import pytest

from pytest_tee.checkpoints import catalogue
from pytest_tee.checkpoints.catalogue import CATALOGUE, CATALOGUE_IDS, get, resolve_id

PUBLISHED = {
    "r1-distill-qwen-1.5b": 1_777_088_000,
    "r1-distill-qwen-7b": 7_615_616_512,
    "r1-distill-qwen-14b": 14_770_033_664,
    "r1-distill-qwen-32b": 32_763_876_352,
    "r1-distill-llama-8b": 8_030_261_248,
    "r1-distill-llama-70b": 70_553_706_496,
    "v2-lite": 15_706_484_224,
    "v3": 671_026_404_352,  # the main model, without the 14B MTP layer
}


def test_catalogue_ids_cover_the_published_checkpoints_and_tiny_variants() -> None:
    assert set(PUBLISHED) < set(CATALOGUE_IDS)
    assert {cid for cid in CATALOGUE_IDS if CATALOGUE[cid].tiny} == {"tiny-qwen2", "tiny-llama", "tiny-deepseek-v3"}


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", CATALOGUE_IDS)
def test_meta_model_has_exact_parameter_count_and_weight_bytes(checkpoint_id: str) -> None:
    from pytest_tee.checkpoints.synthetic import build_empty

    checkpoint = get(checkpoint_id)
    model = build_empty(checkpoint, "bfloat16")
    params = {id(p): p for p in model.parameters()}.values()
    count = sum(p.numel() for p in params)
    assert count == checkpoint.parameters
    assert count == catalogue.count_parameters(checkpoint.family, checkpoint.config)
    if checkpoint_id in PUBLISHED:
        assert count == PUBLISHED[checkpoint_id]
    # weight_bytes counts what transformers holds: parameters in their own dtype plus persistent buffers.
    persistent = [
        buffer
        for name, buffer in model.named_buffers()
        if name.rsplit(".", 1)[-1] not in ("inv_freq", "original_inv_freq")
    ]
    held = sum(p.numel() * p.element_size() for p in params) + sum(b.numel() * b.element_size() for b in persistent)
    assert checkpoint.weight_bytes("bfloat16") == held
    assert type(model).__name__ == checkpoint.architecture


def test_weight_bytes_by_dtype() -> None:
    qwen = get("r1-distill-qwen-1.5b")
    assert qwen.weight_bytes("bfloat16") == 2 * 1_777_088_000
    assert qwen.weight_bytes("float16") == 2 * 1_777_088_000
    assert qwen.weight_bytes("float32") == 4 * 1_777_088_000
    v3 = get("v3")
    # Routers (58 MoE layers × 256 experts × 7168) stay float32, as does e_score_correction_bias (58 × 256).
    router, bias = 58 * 256 * 7168, 58 * 256
    assert v3.weight_bytes("bfloat16") == 2 * (v3.parameters - router) + 4 * router + 4 * bias
    assert v3.weight_bytes("float32") == 4 * v3.parameters + 4 * bias
    with pytest.raises(ValueError, match="float32"):
        qwen.weight_bytes("int4")


def test_kv_cache_bytes_per_token_values() -> None:
    # Dense: 2 (K and V) × layers × kv_heads × head_dim × bytes.
    assert get("r1-distill-qwen-1.5b").kv_cache_bytes_per_token("bfloat16") == 2 * 28 * 2 * 128 * 2
    assert get("r1-distill-llama-70b").kv_cache_bytes_per_token("bfloat16") == 2 * 80 * 8 * 128 * 2
    # MLA: the compressed latent (512) and the shared rope key (64) per layer.
    assert get("v3").kv_cache_bytes_per_token("bfloat16") == 61 * (512 + 64) * 2
    assert get("v2-lite").kv_cache_bytes_per_token("float32") == 27 * (512 + 64) * 4


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", ["tiny-qwen2", "tiny-llama", "tiny-deepseek-v3"])
def test_kv_cache_bytes_per_token_match_what_transformers_caches(checkpoint_id: str) -> None:
    import torch

    from pytest_tee.checkpoints.synthetic import synthetic_model

    checkpoint = get(checkpoint_id)
    model = synthetic_model(checkpoint, dtype="float32")
    batch, tokens = 2, 7
    ids = torch.arange(10, 10 + batch * tokens).reshape(batch, tokens)
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    cached = 0
    for layer in cache.layers:
        cached += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
    assert cached == checkpoint.kv_cache_bytes_per_token("float32") * batch * tokens


def test_resolve_id_accepts_ids_aliases_and_case() -> None:
    assert resolve_id("r1") == "v3"
    assert resolve_id("  R1-Distill-Qwen-1.5B ") == "r1-distill-qwen-1.5b"
    assert get("r1") is get("v3")
    assert get("v3").aliases == ("r1",)


def test_unknown_id_lists_the_catalogue() -> None:
    with pytest.raises(KeyError) as info:
        resolve_id("deepseek-9000b")
    message = str(info.value.args[0])
    assert "'deepseek-9000b'" in message
    for checkpoint_id in CATALOGUE_IDS:
        assert checkpoint_id in message
    assert "r1 = v3" in message


def test_make_config_builds_the_native_class_without_quantization() -> None:
    config = get("v3").make_config()
    assert type(config).__name__ == "DeepseekV3Config"
    assert config.hidden_size == 7168
    assert config.n_routed_experts == 256
    assert getattr(config, "quantization_config", None) is None
    assert config.rope_parameters["rope_type"] == "yarn"
    assert config.rope_parameters["factor"] == 40
    llama = get("r1-distill-llama-8b").make_config()
    assert llama.rope_parameters["rope_type"] == "llama3"
    assert llama.rope_parameters["rope_theta"] == 500000.0


def test_config_and_summary_are_plain_data() -> None:
    import json

    checkpoint = get("r1-distill-qwen-1.5b")
    assert checkpoint.to_dict() == {
        "id": "r1-distill-qwen-1.5b",
        "repo_id": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "parameters": 1_777_088_000,
        "architecture": "Qwen2ForCausalLM",
    }
    json.dumps(dict(checkpoint.config))
    assert hash(checkpoint) == hash(get("r1-distill-qwen-1.5b"))  # usable as a parametrize value / dict key
    assert all(entry.source for entry in CATALOGUE.values())


def test_text_token_ranges_exclude_bos_and_eos() -> None:
    for entry in CATALOGUE.values():
        low, high = entry.text_token_range
        assert 0 <= low < high <= entry.vocab_size
        for special in (entry.config.get("bos_token_id"), entry.config.get("eos_token_id")):
            assert special is None or not low <= special < high, entry.id
