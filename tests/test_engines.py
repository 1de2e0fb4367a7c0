"""The engine dimension: --tee-engine/--tee-quant, the tee_engine fixture, the engine block and comparison key."""

from __future__ import annotations

import json

import pytest

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.prompts import make_prompt
from pytest_tee.engines import ENGINE_NAMES, get_engine
from pytest_tee.engines.base import LoadRequest, run_once
from pytest_tee.measure.timing import Workload
from pytest_tee.records import EngineInfo


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-rounds=2", "--tee-warmup=1", *args)


def test_transformers_engine_loads_and_times_one_round_through_the_interface():
    engine = get_engine("transformers")
    checkpoint = get("tiny-qwen2")
    loaded = engine.load(checkpoint, LoadRequest(execution_env="cpu", device="cpu", precision="float32"))
    assert loaded.engine == "transformers"
    prompt = make_prompt(vocab_size=checkpoint.vocab_size, prompt_tokens=8, batch=1, token_range=(2, 1024))
    record = run_once(engine.rounds(loaded, prompt, Workload(8, 5, 1), threads=None))
    assert len(record.times.token_times) == 5
    facts = engine.describe(loaded)
    assert facts.name == "transformers"
    assert facts.quantization == "float32"
    assert facts.weight_bytes == checkpoint.weight_bytes("float32")
    assert facts.settings["threads"] >= 1
    assert facts.comparison_key() == {"engine": "transformers", "quantization": "float32", "engine_settings": {}}


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown engine 'vllm'; engines: transformers"):
        get_engine("vllm")
    assert "transformers" in ENGINE_NAMES


def test_stored_result_has_an_engine_block_and_engine_in_its_comparison_key(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_gen(tokens_per_second, tee_engine, tee_quant):
            assert tee_engine == "transformers" and tee_quant is None
            tokens_per_second(prompt_tokens=8, new_tokens=3)
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-dtype=float32", "--benchmark-json=out.json", "-v")
    assert result.ret == 0, result.stdout.str()
    # One engine: nothing is parametrized, node ids stay what they were before engines were a dimension.
    result.stdout.fnmatch_lines(["*::test_gen[[]cpu-tiny-qwen2[]] *"])
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    tee = bench["extra_info"]["tee"]
    assert tee["engine"]["name"] == "transformers"
    assert tee["engine"]["quantization"] == "float32"
    assert set(tee["engine"]["build"]) == {"torch", "transformers"}
    key = tee["comparison_key"]
    assert (key["engine"], key["quantization"], key["engine_settings"]) == ("transformers", "float32", {})


def test_results_stored_before_engines_read_as_transformers():
    legacy = EngineInfo.from_json(None)
    assert legacy.name == "transformers"
    assert legacy.comparison_key()["engine"] == "transformers"
