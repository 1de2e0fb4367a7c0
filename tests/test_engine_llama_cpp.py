"""The llama.cpp engine for real, on tiny synthetic GGUFs: exact token counts, counters, records, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.gguf_files import read_gguf
from pytest_tee.checkpoints.prompts import make_prompt
from pytest_tee.engines import get_engine
from pytest_tee.engines.base import EngineError, LoadRequest, run_once
from pytest_tee.measure.timing import Workload

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed with pytest-tee[llama]")
pytest.importorskip("gguf", reason="the gguf package is installed with pytest-tee[llama]")

TINY = get("tiny-qwen2")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tee-cache")


@pytest.fixture(autouse=True)
def _cache_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_TEE_CACHE_DIR", str(cache))


def _load(quant: str = "Q8_0", **overrides: object):
    request = LoadRequest("cpu", "cpu", quant, threads=1, **overrides)  # type: ignore[arg-type]
    return get_engine("llama.cpp").load(TINY, request)


def _prompt(tokens: int = 8):
    return make_prompt(vocab_size=TINY.vocab_size, prompt_tokens=tokens, batch=1, token_range=TINY.text_token_range)


@pytest.mark.parametrize(
    ("checkpoint_id", "quant", "architecture"),
    [
        ("tiny-qwen2", "Q8_0", "qwen2"),
        # deepseek2: MLA (q/kv LoRA, k_b/v_b), a dense lead block, grouped sigmoid MoE.
        ("tiny-deepseek-v3", "Q8_0", "deepseek2"),
        ("tiny-deepseek-v3", "Q4_K_M", "deepseek2"),
        ("tiny-deepseek-v3", "F16", "deepseek2"),
    ],
)
def test_a_round_makes_exactly_n_tokens_and_llama_cpps_counters_agree(
    checkpoint_id: str, quant: str, architecture: str
):
    checkpoint = get(checkpoint_id)
    engine = get_engine("llama.cpp")
    loaded = engine.load(checkpoint, LoadRequest("cpu", "cpu", quant, threads=1))
    assert (loaded.engine, loaded.weights, loaded.dtype) == ("llama.cpp", "synthetic", quant)
    info = loaded.engine_state["gguf_info"]
    assert (info.architecture, info.file_type) == (architecture, quant)
    prompt = make_prompt(
        vocab_size=checkpoint.vocab_size, prompt_tokens=8, batch=1, token_range=checkpoint.text_token_range
    )
    round_ = engine.rounds(loaded, prompt, Workload(8, 6, 1), threads=None)
    record = run_once(round_)
    assert len(record.times.token_times) == 6
    assert round_.last_counters is not None
    assert round_.last_counters["n_p_eval"] == 8
    assert round_.last_counters["n_eval"] == 5
    # The second round starts from an empty KV cache: the same counts again.
    run_once(round_)
    assert round_.last_counters["n_p_eval"] == 8


def test_end_of_sequence_does_not_stop_a_round():
    loaded = _load("Q8_0")
    round_ = get_engine("llama.cpp").rounds(loaded, _prompt(8), Workload(8, 5, 1), threads=None)
    eos = int(TINY.config["eos_token_id"])
    round_._argmax = lambda logits: eos  # greedy picks EOS every step: it is fed back like any token
    record = run_once(round_)
    assert len(record.times.token_times) == 5
    assert round_.last_counters["n_eval"] == 4


def test_describe_records_what_decides_speed():
    loaded = _load("Q8_0")
    facts = get_engine("llama.cpp").describe(loaded)
    assert facts.name == "llama.cpp"
    assert facts.quantization == "Q8_0"
    assert facts.build["llama_cpp_python"]
    assert "CPU" in facts.build["system_info"] or "AVX" in facts.build["system_info"]
    for key in ("n_threads", "n_threads_batch", "n_ctx", "n_batch", "use_mmap", "use_mlock", "flash_attn"):
        assert key in facts.key
    assert facts.key["n_threads"] == 1
    assert facts.key["n_gpu_layers"] == 0
    assert facts.key["system_info"] == facts.build["system_info"]
    assert facts.weight_bytes == loaded.engine_state["gguf_info"].decode_bytes


@pytest.mark.parametrize("quant", ["Q4_K_M", "F16", "BF16"])
def test_each_quantization_builds_and_runs(quant: str, cache: Path):
    loaded = _load(quant)
    assert read_gguf(loaded.engine_state["gguf_info"].path).file_type == quant
    round_ = get_engine("llama.cpp").rounds(loaded, _prompt(), Workload(8, 3, 1), None)
    assert len(run_once(round_).times.token_times) == 3
    assert not list((cache / "gguf").glob("*.partial"))


def test_a_second_load_uses_the_cache():
    _load("Q8_0")
    again = _load("Q8_0")
    assert again.engine_state["synthetic_cached"] is True
    assert "(cached)" in again.weights_source


def test_a_failed_build_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, cache: Path):
    from pytest_tee.checkpoints import gguf_synthetic

    def broken(*args: object, **kwargs: object) -> None:
        raise gguf_synthetic.SyntheticGGUFError("quantizer crashed")

    monkeypatch.setattr(gguf_synthetic, "quantize", broken)
    from pytest_tee.checkpoints.weights import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="quantizer crashed"):
        _load("Q6_K")
    assert not list((cache / "gguf").glob("*Q6_K*.gguf"))
    assert not list((cache / "gguf").glob("*.partial"))


def test_batch_above_one_is_a_clear_error():
    loaded = _load("Q8_0")
    with pytest.raises(EngineError, match="one sequence per round"):
        get_engine("llama.cpp").rounds(loaded, _prompt(), Workload(8, 3, 2), None)


def test_a_real_gguf_with_another_quantization_is_named(cache: Path, tmp_path: Path):
    source = _load("Q8_0").engine_state["gguf_info"].path
    shutil.copy(source, tmp_path / "mine.gguf")
    with pytest.raises(EngineError, match=r"mine.gguf: holds Q8_0 weights, but --tee-quant asks for F16"):
        _load("F16", model_paths={"tiny-qwen2": tmp_path / "mine.gguf"})


def _hf_cache_with_gguf(tmp_path: Path, source: Path, file_name: str, repo: str = "bartowski/tiny-qwen2-GGUF"):
    from pytest_tee.checkpoints.testing import add_to_hf_cache

    folder = tmp_path / "download"
    folder.mkdir(exist_ok=True)
    shutil.copy(source, folder / file_name)
    hub = tmp_path / "hub"
    add_to_hf_cache(folder, repo, hub, files=[file_name])
    return hub


def test_a_gguf_repository_in_the_hf_cache_is_used_as_real_weights(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    source = _load("Q8_0").engine_state["gguf_info"].path
    hub = _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-Q8_0.gguf")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    loaded = _load("Q8_0")
    assert loaded.weights == "real"
    assert "(Hugging Face cache)" in loaded.weights_source
    assert "models--bartowski--tiny-qwen2-GGUF" in loaded.weights_source
    # Other quantizations, and --tee-weights=synthetic, do not take it.
    assert _load("Q4_K_M").weights == "synthetic"
    assert _load("Q8_0", weights_mode="synthetic").weights == "synthetic"


def test_the_hf_cache_lookup_needs_the_checkpoints_gguf_repository_and_quantization(tmp_path: Path):
    from pytest_tee.checkpoints.gguf_files import find_cached_gguf

    source = tmp_path / "x.gguf"
    source.write_bytes(b"GGUF")
    hub = _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-Q4_K_S.gguf")
    finetune = "someone/tiny-qwen2-abliterated-GGUF"
    _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-abliterated-Q8_0.gguf", repo=finetune)
    _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-bf16.gguf")
    looked: list[str] = []
    assert find_cached_gguf(TINY, "Q8_0", hub, looked) is None  # a fine-tune's repository is not this checkpoint
    assert find_cached_gguf(TINY, "F16", hub) is None  # BF16 is not F16
    assert find_cached_gguf(TINY, "Q4_K_M", hub) is None  # Q4_K_S is not Q4_K_M
    assert any("no Q8_0 GGUF" in line for line in looked)
    _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-Q8_0-00001-of-00002.gguf")
    _hf_cache_with_gguf(tmp_path, source, "tiny-qwen2-Q8_0-00002-of-00002.gguf")
    found = find_cached_gguf(TINY, "Q8_0", hub)
    assert found is not None
    assert found.name == "tiny-qwen2-Q8_0-00001-of-00002.gguf"  # llama.cpp opens the first part


def test_weights_real_without_any_gguf_names_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pytest_tee.checkpoints.weights import ModelUnavailable

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ModelUnavailable, match=r"no real Q8_0 GGUF for tiny-qwen2 \(Hugging Face cache .*empty-hub: "):
        _load("Q8_0", weights_mode="real")


# ------------------------------------------------------------------------------------------- through pytest


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-rounds=2", "--tee-warmup=1", *args)


BENCH = """
def test_gen(tokens_per_second, tee_engine):
    result = tokens_per_second(prompt_tokens=8, new_tokens=4)
    assert result.rounds == 2
"""


def test_both_engines_in_one_session_store_engine_blocks_and_distinct_keys(pytester: pytest.Pytester):
    pytester.makepyfile(BENCH)
    result = run(
        pytester,
        "--tee-models=tiny-qwen2",
        "--tee-engine=transformers,llama.cpp",
        "--tee-quant=Q8_0,F16",
        "--tee-dtype=float32",
        "--tee-threads=1",
        "--benchmark-json=out.json",
        "-v",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    for ident in ("transformers", "llama.cpp-Q8_0", "llama.cpp-F16"):
        assert f"::test_gen[cpu-tiny-qwen2-{ident}]" in out
    result.stdout.fnmatch_lines(["*tiny-qwen2*cpu*llama.cpp*synthetic*Q8_0*8+4x1*"])
    benches = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    records = {b["extra_info"]["tee"]["engine"]["name"] + ":" + b["extra_info"]["tee"]["dtype"]: b for b in benches}
    assert set(records) == {"transformers:float32", "llama.cpp:Q8_0", "llama.cpp:F16"}
    llama = records["llama.cpp:Q8_0"]["extra_info"]["tee"]
    assert llama["engine"]["settings"]["n_threads"] == 1
    assert llama["threads"] == 1
    assert llama["comparison_key"]["engine"] == "llama.cpp"
    assert llama["comparison_key"]["quantization"] == "Q8_0"
    assert llama["comparison_key"]["engine_settings"]["n_ctx"] >= 12
    assert llama["metrics"]["decode_tps"]["n"] == 2
    keys = [json.dumps(b["extra_info"]["tee"]["comparison_key"], sort_keys=True) for b in benches]
    assert len(set(keys)) == 3


def test_a_gguf_folder_given_as_model_path_is_recorded_as_real(pytester: pytest.Pytester, cache: Path):
    folder = pytester.path / "weights"
    folder.mkdir()
    shutil.copy(_load("Q8_0").engine_state["gguf_info"].path, folder / "tiny-qwen2-Q8_0.gguf")
    pytester.makepyfile(BENCH)
    result = run(
        pytester,
        "--tee-models=tiny-qwen2",
        "--tee-engine=llama.cpp",
        "--tee-quant=Q8_0",
        f"--tee-model-path=tiny-qwen2={folder}",
        "--benchmark-json=out.json",
    )
    assert result.ret == 0, result.stdout.str()
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    tee = bench["extra_info"]["tee"]
    assert tee["weights"] == "real"
    assert "tiny-qwen2-Q8_0.gguf" in tee["weights_source"]
    assert tee["engine"]["settings"]["gguf"]["file"] == "tiny-qwen2-Q8_0.gguf"


def test_an_ollama_blob_given_as_model_path_is_a_real_gguf(pytester: pytest.Pytester, cache: Path):
    blobs = pytester.path / "ollama" / "models" / "blobs"
    blobs.mkdir(parents=True)
    blob = blobs / ("sha256-" + "ab" * 32)  # how Ollama stores a pulled model's GGUF: no suffix
    shutil.copy(_load("Q8_0").engine_state["gguf_info"].path, blob)
    pytester.makepyfile(BENCH)
    args = ["--tee-models=tiny-qwen2", "--tee-engine=llama.cpp", "--tee-quant=Q8_0", "--benchmark-json=out.json"]
    result = run(pytester, *args, f"--tee-model-path=tiny-qwen2={blob}")
    assert result.ret == 0, result.stdout.str()
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert bench["extra_info"]["tee"]["weights"] == "real"
    (blobs / "not-a-model").write_bytes(b"{}")
    result = run(pytester, *args, f"--tee-model-path=tiny-qwen2={blobs / 'not-a-model'}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*not-a-model is neither a directory nor a GGUF file*"])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate", "*tiny-qwen2: *broken.gguf: *truncated*"),
        ("other-arch", "*tiny-qwen2: *broken.gguf: architecture 'llama' does not match tiny-qwen2*"),
    ],
)
def test_a_bad_gguf_given_as_model_path_is_a_usage_error(pytester: pytest.Pytester, damage: str, expected: str):
    source = _load("Q8_0").engine_state["gguf_info"].path
    broken = pytester.path / "broken.gguf"
    if damage == "truncate":
        broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    else:
        other = get_engine("llama.cpp").load(get("tiny-llama"), LoadRequest("cpu", "cpu", "Q8_0", threads=1))
        shutil.copy(other.engine_state["gguf_info"].path, broken)
    pytester.makepyfile(BENCH)
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-engine=llama.cpp", f"--tee-model-path=tiny-qwen2={broken}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def test_llama_cpp_asked_for_but_missing_is_a_usage_error(pytester: pytest.Pytester, monkeypatch):
    from pytest_tee import engines

    monkeypatch.setitem(engines._LIBRARIES, "llama.cpp", ("no_such_llama_module", "pip install 'pytest-tee[llama]'"))
    pytester.makepyfile(BENCH)
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-engine=llama.cpp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*command line --tee-engine: --tee-engine=llama.cpp needs the no_such_llama_module*"])


def test_llama_cpp_missing_under_a_suite_default_skips_with_the_reason(pytester: pytest.Pytester, monkeypatch):
    from pytest_tee import engines

    monkeypatch.setitem(engines._LIBRARIES, "llama.cpp", ("no_such_llama_module", "pip install 'pytest-tee[llama]'"))
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_configure(config):
            from pytest_tee.settings import set_suite_default
            set_suite_default(config, "engine", "transformers,llama.cpp", "conftest.py")
        """
    )
    pytester.makepyfile(BENCH)
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-dtype=float32", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs the no_such_llama_module module (llama-cpp-python)*"])


def test_stored_runs_of_both_engines_go_through_compare_report_and_pytest_benchmark(pytester: pytest.Pytester):
    import os
    import subprocess
    import sys

    from pytest_tee.cli import main

    pytester.makepyfile(BENCH)
    args = ("--tee-models=tiny-qwen2", "--tee-engine=transformers,llama.cpp", "--tee-dtype=float32")
    for _ in range(2):
        assert run(pytester, *args, "--tee-threads=1", "--benchmark-save=both").ret == 0
    saved = sorted(pytester.path.glob(".benchmarks/*/*.json"))
    assert len(saved) == 2
    # The offline gate pairs each engine's benchmark with itself (same comparison key) and judges it.
    assert main(["compare", str(saved[0]), str(saved[1])]) in (0, 1)
    out = subprocess.run(
        [sys.executable, "-m", "pytest_tee.cli", "compare", str(saved[0]), str(saved[1])],
        capture_output=True,
        text=True,
    )
    assert "llama.cpp-Q4_K_M" in out.stdout
    assert "not comparable" not in out.stdout
    report = subprocess.run(
        [sys.executable, "-m", "pytest_tee.cli", "report", str(saved[1]), "--format", "md"],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    assert "| checkpoint | engine | quant |" in report.stdout
    assert "| tiny-qwen2 | llama.cpp | Q4_K_M |" in report.stdout
    assert "| tiny-qwen2 | transformers | float32 |" in report.stdout
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    compared = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", "0001", "0002"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert compared.returncode == 0, compared.stderr
    assert "llama.cpp-Q4_K_M" in compared.stdout
