"""Synthetic GGUF files (exact shapes, valid header), GGUF checks (truncated, corrupt, wrong model), the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.gguf_files import GGUFError, check_matches, find_gguf, read_gguf
from pytest_tee.checkpoints.gguf_synthetic import (
    cache_dir,
    cache_name,
    clear_cache,
    list_cache,
    tensor_layout,
    write_f16_gguf,
)
from pytest_tee.cli import main

pytest.importorskip("gguf", reason="the gguf package is installed with pytest-tee[llama]")


@pytest.fixture(scope="module")
def tiny_qwen_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny-qwen2.F16.gguf"
    write_f16_gguf(get("tiny-qwen2"), path)
    return path


@pytest.mark.parametrize(
    "ident",
    ["tiny-qwen2", "tiny-llama", "r1-distill-qwen-1.5b", "r1-distill-llama-8b", "tiny-deepseek-v3", "v2-lite", "v3"],
)
def test_tensor_layout_holds_exactly_the_checkpoints_parameters(ident: str):
    from pytest_tee.checkpoints.catalogue import parameter_layout

    checkpoint = get(ident)
    layout = tensor_layout(checkpoint)
    counted = sum(
        _count(shape)
        for name, shape, kind in layout
        if kind not in ("rope", "buffer")  # rope factors, V3's e_score_correction_bias: buffers
    )
    # deepseek2: kv_b_proj is split into attn_k_b + attn_v_b (same values), V3's MTP layer is left out as the
    # converter and transformers leave it out: the count is the catalogue's, exactly.
    assert counted == checkpoint.parameters
    buffers = sum(_count(shape) for name, shape, kind in layout if kind == "buffer")
    assert buffers == parameter_layout(checkpoint.family, checkpoint.config)["fp32_buffer_elements"]


def test_deepseek2_layout_is_what_convert_hf_to_gguf_writes():
    layout = {name: shape for name, shape, _kind in tensor_layout(get("v3"))}
    # 61 blocks (no MTP block 61): 3 dense of 13 tensors, 58 MoE of 18. The familiar 1025 of older V3 GGUFs is
    # this with one attn_kv_b per block in place of attn_k_b + attn_v_b: 1086 - 61.
    assert len(layout) == 3 + 3 * 13 + 58 * 18 == 1086
    assert "blk.61.attn_norm.weight" not in layout
    assert layout["blk.0.attn_q_a.weight"] == (1536, 7168)
    assert layout["blk.0.attn_q_b.weight"] == (128 * 192, 1536)
    assert layout["blk.0.attn_kv_a_mqa.weight"] == (512 + 64, 7168)
    assert layout["blk.0.attn_k_b.weight"] == (128, 512, 128)  # per head, transposed: (heads, kv_lora, nope)
    assert layout["blk.0.attn_v_b.weight"] == (128, 128, 512)  # (heads, v_head_dim, kv_lora)
    assert layout["blk.2.ffn_gate.weight"] == (18432, 7168)
    assert layout["blk.3.ffn_gate_inp.weight"] == (256, 7168)
    assert layout["blk.3.exp_probs_b.bias"] == (256,)
    assert layout["blk.3.ffn_down_exps.weight"] == (256, 7168, 2048)
    assert layout["blk.3.ffn_up_shexp.weight"] == (2048, 7168)
    lite = {name for name, _shape, _kind in tensor_layout(get("v2-lite"))}
    assert "blk.0.attn_q.weight" in lite
    assert "blk.0.attn_q_a.weight" not in lite
    assert not any("exp_probs_b" in name for name in lite)  # V2: softmax gating, no correction bias


def test_deepseek2_without_q_lora_needs_llama_cpps_lite_layer_count():
    import dataclasses

    from pytest_tee.checkpoints.gguf_synthetic import SyntheticGGUFError

    lite = get("v2-lite")
    shallow = dataclasses.replace(lite, config={**lite.config, "num_hidden_layers": 3})
    with pytest.raises(SyntheticGGUFError, match="without q_lora_rank only with 26 or 27 layers, not 3"):
        tensor_layout(shallow)


def test_a_deepseek2_file_reads_back_and_matches_its_checkpoint(tmp_path: Path):
    path = tmp_path / "tiny-deepseek-v3.F16.gguf"
    checkpoint = get("tiny-deepseek-v3")
    write_f16_gguf(checkpoint, path)
    info = read_gguf(path)
    assert info.architecture == "deepseek2"
    assert info.shape["num_key_value_heads"] == 1  # MLA as MQA, as llama.cpp's converter writes it
    check_matches(info, checkpoint)
    with open(path, "rb") as handle:
        from pytest_tee.checkpoints.gguf_files import read_header

        header = read_header(handle)
    fields = header.fields
    assert fields["deepseek2.attention.kv_lora_rank"] == 32
    assert fields["deepseek2.attention.q_lora_rank"] == 48
    assert fields["deepseek2.attention.key_length"] == 32 + 8
    assert fields["deepseek2.attention.key_length_mla"] == 16 + 8
    assert fields["deepseek2.attention.value_length_mla"] == 16
    assert fields["deepseek2.leading_dense_block_count"] == 1
    assert fields["deepseek2.expert_gating_func"] == 2  # sigmoid
    assert fields["deepseek2.expert_group_count"] == 2
    # One token's decode step reads 2 of the 8 routed experts of each stack (and no input embedding).
    stacks = sum(t.n_bytes for t in header.tensors if "_exps." in t.name)
    embedding = next(t.n_bytes for t in header.tensors if t.name == "token_embd.weight")
    assert stacks == 2 * 3 * 8 * 32 * 64 * 2  # 2 MoE blocks, gate/up/down, 8 experts of 32x64, F16
    assert info.decode_bytes == info.tensor_bytes - embedding - stacks * 6 // 8
    types = {t.name: t.type_name for t in header.tensors}
    assert types["blk.1.ffn_gate_inp.weight"] == "F32"  # routers stay F32, as convert_hf_to_gguf.py keeps them
    assert types["blk.1.ffn_gate_exps.weight"] == "F16"
    with pytest.raises(GGUFError, match="architecture 'deepseek2' does not match tiny-qwen2"):
        check_matches(info, get("tiny-qwen2"))


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def test_written_file_reads_back_with_the_checkpoints_architecture_and_shapes(tiny_qwen_gguf: Path):
    info = read_gguf(tiny_qwen_gguf)
    assert info.architecture == "qwen2"
    assert info.file_type == "F16"
    assert info.shape == {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
    }
    # F16 matrices, F32 norms and biases; the untied input embedding is not read by a decode step.
    assert info.tensor_types == {"F16": 16, "F32": 11}
    embedding = 1024 * 64 * 2
    assert info.decode_bytes == info.tensor_bytes - embedding
    check_matches(info, get("tiny-qwen2"))


def test_a_truncated_gguf_is_named_with_its_sizes(tiny_qwen_gguf: Path, tmp_path: Path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_qwen_gguf.read_bytes()[:-1000])
    with pytest.raises(GGUFError, match=r"cut.gguf: (corrupt or )?truncated"):
        read_gguf(cut)


def test_a_file_that_is_not_gguf_is_named(tmp_path: Path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>404</html>")
    with pytest.raises(GGUFError, match=r"model.gguf: not a GGUF file \(starts with b'<htm'"):
        read_gguf(bad)


def test_a_corrupt_header_is_named(tiny_qwen_gguf: Path, tmp_path: Path):
    data = bytearray(tiny_qwen_gguf.read_bytes())
    data[8:16] = (10**12).to_bytes(8, "little")  # tensor count: absurd
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"bad.gguf: corrupt or truncated GGUF header"):
        read_gguf(bad)


def test_a_gguf_of_another_architecture_does_not_match(tiny_qwen_gguf: Path):
    with pytest.raises(GGUFError, match=r"architecture 'qwen2' does not match tiny-llama .*GGUF architecture 'llama'"):
        check_matches(read_gguf(tiny_qwen_gguf), get("tiny-llama"))
    with pytest.raises(GGUFError, match=r"shapes do not match r1-distill-qwen-1.5b: hidden_size 64 \(expected 1536\)"):
        check_matches(read_gguf(tiny_qwen_gguf), get("r1-distill-qwen-1.5b"))


def test_find_gguf_picks_the_file_of_the_quantization(tmp_path: Path):
    for name in ("model-Q4_K_M.gguf", "model-Q8_0.gguf", "model-f16.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    assert find_gguf(tmp_path, "Q4_K_M") == tmp_path / "model-Q4_K_M.gguf"
    assert find_gguf(tmp_path, "F16") == tmp_path / "model-f16.gguf"
    assert find_gguf(tmp_path, "BF16") is None
    (tmp_path / "other-Q8_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(GGUFError, match="several GGUF files for Q8_0"):
        find_gguf(tmp_path, "Q8_0")


def test_cache_dir_follows_the_environment(tmp_path: Path):
    assert cache_dir({"PYTEST_TEE_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "pytest-tee"


def test_cache_list_and_clear_show_sizes_and_partials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("PYTEST_TEE_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "gguf"
    folder.mkdir()
    done = folder / cache_name("tiny-qwen2", "Q8_0", 0)
    done.write_bytes(b"x" * 3000)
    (folder / f"{done.name}.123.partial").write_bytes(b"x" * 10)
    assert [entry.partial for entry in list_cache()] == [False, True]
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "2.9 KiB" in out
    assert "tiny-qwen2.Q8_0.seed0.w2.gguf" in out
    assert "(partial: an interrupted build)" in out
    assert main(["cache", "clear", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert len(removed) == 2
    assert list_cache() == []
    assert not os.listdir(folder)
    assert clear_cache() == []


def test_our_header_reader_agrees_with_the_gguf_packages(tiny_qwen_gguf: Path):
    from gguf import GGUFReader

    from pytest_tee.checkpoints.gguf_files import read_header

    with open(tiny_qwen_gguf, "rb") as handle:
        ours = read_header(handle)
    theirs = GGUFReader(tiny_qwen_gguf)
    assert [(t.name, t.offset, t.n_bytes, t.type_id) for t in ours.tensors] == [
        (t.name, int(t.data_offset), int(t.n_bytes), int(t.tensor_type)) for t in theirs.tensors
    ]
    assert [t.shape for t in ours.tensors] == [tuple(int(n) for n in t.shape) for t in theirs.tensors]
    scalars = {name: f.contents() for name, f in theirs.fields.items() if name in ours.fields}
    assert scalars == ours.fields
    assert set(theirs.fields) - set(ours.fields) >= {"tokenizer.ggml.tokens"}  # arrays: stepped over


@pytest.mark.parametrize("length_at", ["tensor count", "array length"])
def test_a_damaged_length_is_reported_without_allocating_it(tiny_qwen_gguf: Path, tmp_path: Path, length_at: str):
    data = bytearray(tiny_qwen_gguf.read_bytes())
    if length_at == "tensor count":
        data[8:16] = (10**9).to_bytes(8, "little")
    else:
        at = data.index(b"tokenizer.ggml.tokens") + len(b"tokenizer.ggml.tokens") + 4 + 4  # after type, item type
        data[at : at + 8] = (10**11).to_bytes(8, "little")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"bad.gguf: corrupt or truncated GGUF header"):
        read_gguf(bad)


def _k_quant_sized_qwen2():
    """tiny-qwen2 with rows of 256 (K-quant blocks) and 12:2 heads as the 1.5B: llama.cpp's type rules bite."""
    import dataclasses

    tiny = get("tiny-qwen2")
    config = {**tiny.config, "hidden_size": 768, "intermediate_size": 512, "num_attention_heads": 12}
    config.update(num_key_value_heads=2, num_hidden_layers=4, vocab_size=2048)
    return dataclasses.replace(tiny, id="k-quant-qwen2", config=config)


def _table(path: Path) -> list[tuple[str, tuple[int, ...], str, int]]:
    from pytest_tee.checkpoints.gguf_files import read_header

    with open(path, "rb") as handle:
        return [(t.name, t.shape, t.type_name, t.n_bytes) for t in read_header(handle).tensors]


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"])
def test_a_sampled_build_has_the_types_and_sizes_of_quantizing_every_value(
    quant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("llama_cpp", reason="llama.cpp's quantizer comes with pytest-tee[llama]")
    from pytest_tee.checkpoints import gguf_synthetic

    checkpoint = _k_quant_sized_qwen2()
    full_f16, full = tmp_path / "full.f16.gguf", tmp_path / "full.gguf"
    write_f16_gguf(checkpoint, full_f16)
    gguf_synthetic.quantize(full_f16, full, quant, threads=1)
    monkeypatch.setattr(gguf_synthetic, "SAMPLE_ELEMENTS", 768 * 3)  # 3 of 768 rows, 5 of 2048: really sampled
    built = gguf_synthetic.synthetic_gguf(checkpoint, quant, root=tmp_path / "cache", threads=1)
    assert _table(built.path) == _table(full)
    assert {t for _name, _shape, t, _bytes in _table(full)} >= ({"Q4_K", "Q6_K"} if quant == "Q4_K_M" else {"Q8_0"})
    assert built.path.stat().st_size == full.stat().st_size
    assert read_gguf(built.path).file_type == quant
    assert sorted(p.name for p in built.path.parent.iterdir()) == [built.path.name, built.path.name + ".lock"]


def test_sampled_rows_repeat_in_order_to_the_full_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import numpy as np

    from pytest_tee.checkpoints import gguf_synthetic
    from pytest_tee.checkpoints.gguf_files import read_header

    monkeypatch.setattr(gguf_synthetic, "SAMPLE_ELEMENTS", 64 * 3)
    built = gguf_synthetic.synthetic_gguf(get("tiny-qwen2"), "F16", root=tmp_path)
    with open(built.path, "rb") as handle:
        embedding = next(t for t in read_header(handle).tensors if t.name == "token_embd.weight")
        handle.seek(embedding.offset)
        rows = np.frombuffer(handle.read(embedding.n_bytes), dtype=np.float16).reshape(1024, 64)
    assert np.array_equal(rows[3:6], rows[0:3])
    assert np.array_equal(rows[1023], rows[1023 % 3])
    assert not np.array_equal(rows[0], rows[1])
    assert np.all(rows != 0)


def _k_quant_sized_deepseek(lite: bool = False):
    """tiny-deepseek-v3 (or V2-Lite's no-q_lora path, which llama.cpp takes at 27 layers) with rows of 256."""
    import dataclasses

    base = get("v2-lite" if lite else "tiny-deepseek-v3")
    config = {**base.config, "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 256}
    config.update(kv_lora_rank=256, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32)
    if lite:
        config.update(num_attention_heads=4, num_key_value_heads=4, n_routed_experts=8, num_experts_per_tok=2)
        config.update(vocab_size=1024, bos_token_id=0, eos_token_id=1)
    else:
        config.update(q_lora_rank=256)
    return dataclasses.replace(base, id="k-quant-deepseek2" + ("-lite" if lite else ""), config=config)


@pytest.mark.parametrize(("quant", "lite"), [("Q4_K_M", False), ("Q8_0", False), ("Q4_K_M", True)])
def test_a_sampled_deepseek2_build_with_expert_stacks_has_the_types_and_sizes_of_quantizing_every_value(
    quant: str, lite: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("llama_cpp", reason="llama.cpp's quantizer comes with pytest-tee[llama]")
    from pytest_tee.checkpoints import gguf_synthetic

    checkpoint = _k_quant_sized_deepseek(lite)
    full_f16, full = tmp_path / "full.f16.gguf", tmp_path / "full.gguf"
    write_f16_gguf(checkpoint, full_f16)
    gguf_synthetic.quantize(full_f16, full, quant, threads=1)
    # 3 of 256 rows of 2 of 8 experts: the expert stacks are really sampled.
    monkeypatch.setattr(gguf_synthetic, "SAMPLE_ELEMENTS", 256 * 3 * 2)
    assert gguf_synthetic._sample_shape((8, 256, 256), gguf_synthetic.SAMPLE_ELEMENTS) == (2, 3, 256)
    built = gguf_synthetic.synthetic_gguf(checkpoint, quant, root=tmp_path / "cache", threads=1)
    table = _table(built.path)
    assert table == _table(full)
    exps = {name: (shape, t) for name, shape, t, _bytes in table if "_exps" in name}
    assert exps["blk.1.ffn_down_exps.weight"][0] == (256, 256, 8)  # GGUF order: still 3-D, full size
    expected = {"Q4_K", "Q6_K"} if quant == "Q4_K_M" else {"Q8_0"}
    assert {t for _shape, t in exps.values()} <= expected | {"Q5_0", "Q5_1", "Q8_0"}
    assert {t for _name, _shape, t, _bytes in table} >= expected | {"F32"}
    assert built.path.stat().st_size == full.stat().st_size
    assert read_gguf(built.path).file_type == quant


def test_sampled_expert_rows_repeat_in_order_across_the_experts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import numpy as np

    from pytest_tee.checkpoints import gguf_synthetic
    from pytest_tee.checkpoints.gguf_files import read_header

    monkeypatch.setattr(gguf_synthetic, "SAMPLE_ELEMENTS", 64 * 3 * 2)  # 2 experts x 3 rows of 64
    built = gguf_synthetic.synthetic_gguf(get("tiny-deepseek-v3"), "F16", root=tmp_path)
    with open(built.path, "rb") as handle:
        gate = next(t for t in read_header(handle).tensors if t.name == "blk.1.ffn_gate_exps.weight")
        handle.seek(gate.offset)
        data = np.frombuffer(handle.read(gate.n_bytes), dtype=np.float16)
    assert gate.shape == (64, 32, 8)
    rows = data.reshape(8 * 32, 64)  # every row of every expert, in order
    assert np.array_equal(rows[6:12], rows[0:6])
    assert np.array_equal(rows[8 * 32 - 1], rows[(8 * 32 - 1) % 6])
    assert len({rows[i].tobytes() for i in range(6)}) == 6
    assert np.all(rows != 0)
