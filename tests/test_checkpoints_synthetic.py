"""Synthetic weights: deterministic, finite, no denormals, and buffers exactly as a normally built model has them."""

from __future__ import annotations

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.synthetic import (
    SyntheticWeightsError,
    _device_for,
    build_empty,
    materialize,
    synthetic_model,
)

TINY = ["tiny-qwen2", "tiny-llama", "tiny-deepseek-v3"]


def _normally_built(checkpoint_id: str, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(get(checkpoint_id).make_config(), dtype=dtype)


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", TINY)
def test_same_seed_same_weights_other_seed_other_weights(checkpoint_id: str) -> None:
    checkpoint = get(checkpoint_id)
    first = synthetic_model(checkpoint, dtype="bfloat16", seed=0).state_dict()
    again = synthetic_model(checkpoint, dtype="bfloat16", seed=0).state_dict()
    other = synthetic_model(checkpoint, dtype="bfloat16", seed=1).state_dict()
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    weights = [name for name, tensor in first.items() if tensor.dim() >= 2]
    assert not any(torch.equal(first[name], other[name]) for name in weights)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_values_are_finite_nonzero_and_never_denormal(dtype: str) -> None:
    model = synthetic_model(get("tiny-deepseek-v3"), dtype=dtype)
    for name, param in model.named_parameters():
        values = param.detach().float()
        tiny = torch.finfo(param.dtype).tiny  # smallest normal number of the parameter's own dtype
        assert torch.isfinite(values).all(), name
        assert (values.abs() >= tiny).all(), name  # no zeros, no denormals
        if "norm" in name:
            assert torch.equal(values, torch.ones_like(values)), name
        else:
            assert values.abs().max() < 1.0, name  # small weights


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", TINY)
def test_rows_of_a_matrix_differ_and_weights_have_fan_in_scale(checkpoint_id: str) -> None:
    model = synthetic_model(get(checkpoint_id), dtype="float32")
    weight = model.model.layers[0].self_attn.o_proj.weight
    assert not torch.equal(weight[0], weight[1])
    expected_std = weight.shape[-1] ** -0.5
    assert weight.std().item() == pytest.approx(expected_std, rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", TINY)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_buffers_equal_those_of_a_normally_built_model(checkpoint_id: str, dtype: torch.dtype) -> None:
    normal = _normally_built(checkpoint_id, dtype)
    synthetic = synthetic_model(get(checkpoint_id), dtype=str(dtype).removeprefix("torch."))
    normal_buffers, synthetic_buffers = dict(normal.named_buffers()), dict(synthetic.named_buffers())
    assert "model.rotary_emb.inv_freq" in normal_buffers
    assert normal_buffers.keys() == synthetic_buffers.keys()
    for name, buffer in normal_buffers.items():
        assert synthetic_buffers[name].dtype == buffer.dtype, name
        assert torch.equal(synthetic_buffers[name], buffer), name
    assert synthetic.model.rotary_emb.attention_scaling == normal.model.rotary_emb.attention_scaling
    # Parameter dtypes as transformers chooses them (MoE routers stay float32 in a bf16 model).
    normal_dtypes = {name: p.dtype for name, p in normal.named_parameters()}
    assert normal_dtypes == {name: p.dtype for name, p in synthetic.named_parameters()}


@pytest.mark.slow
def test_router_of_a_bf16_moe_model_stays_float32() -> None:
    model = synthetic_model(get("tiny-deepseek-v3"), dtype="bfloat16")
    assert model.model.layers[1].mlp.gate.weight.dtype == torch.float32
    assert model.model.layers[1].mlp.experts.gate_up_proj.dtype == torch.bfloat16


@pytest.mark.slow
def test_tied_and_untied_embeddings_follow_the_config() -> None:
    tied = synthetic_model(get("tiny-llama"), dtype="float32")
    assert get("tiny-llama").config["tie_word_embeddings"] is True
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    untied = synthetic_model(get("tiny-qwen2"), dtype="float32")
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert not torch.equal(untied.lm_head.weight, untied.model.embed_tokens.weight)


@pytest.mark.slow
def test_ready_for_inference() -> None:
    model = synthetic_model(get("tiny-qwen2"), dtype="float32")
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


@pytest.mark.slow
def test_unknown_persistent_buffer_is_an_error_not_a_guess() -> None:
    model = build_empty(get("tiny-qwen2"), "float32")
    model.model.layers[0].mlp.register_buffer("running_scale", torch.empty(4, device="meta"))
    with pytest.raises(SyntheticWeightsError, match=r"model\.layers\.0\.mlp\.running_scale"):
        materialize(model)


def test_device_map_prefixes_pick_the_longest_match() -> None:
    device_map = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": "cpu", "": "cpu"}
    assert _device_for("model.embed_tokens.weight", "cpu", device_map) == "cuda:0"
    assert _device_for("model.layers.1.mlp.up_proj.weight", "cpu", device_map) == "cpu"
    assert _device_for("model.layers.10.mlp.up_proj.weight", "cpu", device_map) == "cpu"  # not layers.1
    assert _device_for("lm_head.weight", "cuda:1", None) == "cuda:1"
    with pytest.raises(SyntheticWeightsError, match="disk"):
        _device_for("lm_head.weight", "cpu", {"lm_head": "disk"})
    with pytest.raises(SyntheticWeightsError, match="not covered"):
        _device_for("lm_head.weight", "cpu", {"model": "cpu"})


@pytest.mark.slow
def test_cpu_only_device_map_fills_in_place() -> None:
    model = synthetic_model(get("tiny-qwen2"), dtype="float32", device_map={"model": "cpu", "lm_head": "cpu"})
    assert {p.device.type for p in model.parameters()} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_synthetic_model_on_cuda_generates() -> None:
    model = synthetic_model(get("tiny-deepseek-v3"), dtype="bfloat16", device="cuda")
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert model.model.rotary_emb.inv_freq.device.type == "cuda"
    ids = torch.arange(5, 13, device="cuda").reshape(1, 8)
    out = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, eos_token_id=None)
    assert out.shape == (1, 12)
