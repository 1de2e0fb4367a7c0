"""tokens_per_second end to end with tiny models: stored metrics, samples, no prompt text, table, properties."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.testing import save_synthetic_checkpoint
from pytest_tee.measure.metrics import METRICS
from tests.fakes.sleepy_model import SLEEPY_CONFTEST

SECRET = "Quarterly merger terms for Project Bluebird are confidential"

CUSTOM_BENCHMARK = f"""
def test_my_prompt(tokens_per_second):
    result = tokens_per_second(new_tokens=6, prompt={SECRET!r})
    assert result["decode_tps"].median > 0
    assert result.rounds == 3 and result.warmup == 1
    print("GENERATED", result.workload["prompt_tokens"])
"""


@pytest.fixture(scope="module")
def tiny_with_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_synthetic_checkpoint(get("tiny-qwen2"), tmp_path_factory.mktemp("tiny-qwen2"))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-rounds=3", "--tee-warmup=1", *args)


def test_custom_benchmark_stores_every_metric_and_sample_but_no_prompt_text(
    pytester: pytest.Pytester, tiny_with_tokenizer: Path
):
    pytester.makepyfile(CUSTOM_BENCHMARK)
    result = run(
        pytester,
        "--tee-models=tiny-qwen2",
        f"--tee-model-path=tiny-qwen2={tiny_with_tokenizer}",
        "--benchmark-json=out.json",
        "--junitxml=junit.xml",
        "-s",
    )
    assert result.ret == 0, result.stdout.str()
    text = (pytester.path / "out.json").read_text()
    document = json.loads(text)
    (bench,) = document["benchmarks"]
    tee = bench["extra_info"]["tee"]
    assert tee["weights"] == "real"
    assert tee["checkpoint"]["id"] == "tiny-qwen2"
    assert tee["workload"]["prompt_source"] == "tokenizer"
    assert len(tee["workload"]["prompt_sha256"]) == 64
    timing_metrics = {"decode_tps", "prefill_tps", "e2e_tps", "ttft_s", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms"}
    assert timing_metrics <= set(tee["metrics"]) <= set(METRICS)
    for name, summary in tee["metrics"].items():
        assert summary["n"] == 3
        assert len(tee["samples"][name]) == 3
        assert summary["unit"] == METRICS[name].unit
        assert summary["higher_is_better"] == METRICS[name].higher_is_better
        assert summary["ci95"][0] <= summary["median"] <= summary["ci95"][1]
    assert len(tee["warmup_samples"]["decode_tps"]) == 1
    assert tee["rounds"] == 3
    assert tee["stop_reason"] == "fixed: 3 rounds"
    assert tee["threads"] >= 1
    assert tee["environment_fingerprint"] == document["machine_info"]["tee"]["fingerprint"]
    assert tee["comparison_key"]["workload"]["new_tokens"] == 6
    # pytest-benchmark's own stats are the end-to-end seconds of the measured rounds, one per round.
    assert bench["stats"]["rounds"] == 3
    assert len(bench["stats"]["data"]) == 3
    e2e_seconds = [6 / rate for rate in tee["samples"]["e2e_tps"]]
    assert max(abs(a - b) / b for a, b in zip(sorted(bench["stats"]["data"]), sorted(e2e_seconds), strict=True)) < 0.2
    # Confidential: the prompt text is nowhere, not in the results, the terminal or the JUnit report.
    for fragment in ("Bluebird", "merger"):
        assert fragment not in text
        assert fragment not in result.stdout.str()
        assert fragment not in (pytester.path / "junit.xml").read_text()
    properties = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert float(properties["tee_decode_tps"]) > 0
    assert properties["tee_execution_env"] == "cpu"


def test_session_table_and_progress(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("prompt_tokens", [8, 24])
        def test_shapes(tokens_per_second, prompt_tokens):
            tokens_per_second(prompt_tokens=prompt_tokens, new_tokens=4)
        """
    )
    result = run(pytester, "--tee-models=tiny-llama,tiny-deepseek-v3", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "[tee] warmup 1/1: decode_tps" in out
    assert "[tee] round 3/3: decode_tps" in out
    result.stdout.fnmatch_lines(
        [
            "*pytest-tee: tokens/s*",
            "checkpoint*env*weights*dtype*shape*decode tok/s*prefill tok/s*e2e tok/s*TTFT ms*rounds",
            "*",
            "tiny-deepseek-v3*cpu*synthetic*8+4x1*",
            "tiny-deepseek-v3*cpu*synthetic*24+4x1*",
            "tiny-llama*cpu*synthetic*8+4x1*",
            "tiny-llama*cpu*synthetic*24+4x1*",
        ]
    )


def test_quiet_run_shows_no_progress(pytester: pytest.Pytester):
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "-q")
    assert result.ret == 0
    assert "[tee]" not in result.stdout.str()


def test_using_the_fixture_twice_is_a_clear_error(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_twice(tokens_per_second):
            tokens_per_second(prompt_tokens=8, new_tokens=3)
            tokens_per_second(prompt_tokens=8, new_tokens=3)
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FixtureAlreadyUsed: tokens_per_second can be called once per test*"])


def test_batch_and_single_new_token(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_batch(tokens_per_second):
            r = tokens_per_second(prompt_tokens=8, new_tokens=1, batch=3)
            assert "decode_tps" not in r.metrics
            assert r.workload["batch"] == 3
            print("STOP", r.stop_reason)
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2", "-s")
    assert result.ret == 0, result.stdout.str()


def test_adaptive_rounds_record_why_they_stopped(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_adaptive(tokens_per_second):
            r = tokens_per_second(prompt_tokens=8, new_tokens=4)
            print("STOP", r.rounds, r.stop_reason)
            assert 3 <= r.rounds <= 6
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-target-ci=0.001", "--tee-max-rounds=6", "-s")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*STOP 6 round cap: 6 rounds*"])


def test_adaptive_rounds_trim_pytest_benchmark_stats(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    # A stand-in that sleeps: stable under CPU contention, so a loose CI target is met at the minimum rounds.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    pytester.makeconftest(SLEEPY_CONFTEST)
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=4)\n")
    result = run(
        pytester, "--tee-models=tiny-qwen2", "--tee-target-ci=99", "--tee-max-rounds=40", "--benchmark-json=o.json"
    )
    assert result.ret == 0
    (bench,) = json.loads((pytester.path / "o.json").read_text())["benchmarks"]
    assert bench["stats"]["rounds"] == bench["extra_info"]["tee"]["rounds"] == 3  # stopped at the minimum
    assert bench["extra_info"]["tee"]["stop_reason"].startswith("precision")


def test_works_without_pytest_benchmark(pytester: pytest.Pytester):
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "-p", "no:benchmark")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*pytest-tee: tokens/s*", "tiny-qwen2*cpu*"])


def test_refuses_to_measure_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second()\n")
    result = run(pytester, "--tee-models=tiny-qwen2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-tee does not measure under pytest-xdist*"])


def test_a_model_passed_in_is_measured_and_described(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        def test_mine(tokens_per_second):
            config = Qwen2Config(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)
            model = Qwen2ForCausalLM(config).eval()
            r = tokens_per_second(prompt_tokens=8, new_tokens=3, model=model)
            assert r.record["checkpoint"]["architecture"] == "Qwen2ForCausalLM"
            assert r.record["checkpoint"]["parameters"] == sum(p.numel() for p in model.parameters())
            assert r.record["weights"] == "custom"
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2")
    assert result.ret == 0, result.stdout.str()


def test_result_hook_adds_fields(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        def pytest_tee_update_result(config, item, result):
            result["runner"] = "lab-7"
        """
    )
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "--benchmark-json=o.json")
    assert result.ret == 0
    (bench,) = json.loads((pytester.path / "o.json").read_text())["benchmarks"]
    assert bench["extra_info"]["tee"]["runner"] == "lab-7"


def test_real_weights_required_but_absent_skips_with_where_it_looked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second()\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-weights=real", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*--tee-model-path*"])


def test_model_that_does_not_fit_skips_with_both_numbers(pytester: pytest.Pytester):
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second()\n")
    result = run(pytester, "--tee-models=v3", "-rs")
    result.assert_outcomes(skipped=1)
    out = result.stdout.str()
    assert "SKIPPED" in out
    assert "GiB" in out


def test_prompts_hook_replaces_the_builtin_texts(pytester: pytest.Pytester, tiny_with_tokenizer: Path):
    bench = "def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=16, new_tokens=3)\n"
    pytester.makepyfile(bench)
    args = ("--tee-models=tiny-qwen2", f"--tee-model-path=tiny-qwen2={tiny_with_tokenizer}", "--benchmark-json=o.json")
    assert run(pytester, *args).ret == 0
    default = json.loads((pytester.path / "o.json").read_text())["benchmarks"][0]["extra_info"]["tee"]["workload"]
    pytester.makeconftest(
        """
        from pytest_tee.checkpoints.prompts import BUILTIN_TEXTS

        def pytest_tee_generate_prompts(config, checkpoint):
            # The toy tokenizer knows only the built-in words: the same words, in another order.
            return [" ".join(reversed(BUILTIN_TEXTS[0].split()))]
        """
    )
    assert run(pytester, *args).ret == 0
    custom = json.loads((pytester.path / "o.json").read_text())["benchmarks"][0]["extra_info"]["tee"]["workload"]
    assert custom["prompt_source"] == default["prompt_source"] == "tokenizer"
    assert custom["prompt_tokens"] == default["prompt_tokens"] == 16
    assert custom["prompt_sha256"] != default["prompt_sha256"]


def test_summary_file_and_github_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    step_summary = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-summary=summary.md")
    assert result.ret == 0
    summary = (pytester.path / "summary.md").read_text()
    assert summary.startswith("## pytest-tee")
    assert "| checkpoint | env |" in summary
    assert "| tiny-qwen2 | cpu | transformers | synthetic |" in summary
    assert step_summary.read_text() == summary


def test_prompt_text_never_reaches_a_failure_report(pytester: pytest.Pytester):
    pytester.makepyfile(
        f"""
        def test_a(tokens_per_second):
            tokens_per_second(new_tokens=3, prompt={SECRET!r})
        """
    )
    result = run(pytester, "--tee-models=tiny-qwen2", "--tb=long", "-l")  # long tracebacks with locals
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*tokens_per_second: a prompt text needs a tokenizer*"])
    assert "Bluebird" not in out.replace(f"prompt={SECRET!r}", "")  # only the test's own source line shows it
    assert "PromptError" not in out


def test_confidential_text_reads_as_text_but_reprs_redacted():
    from pytest_tee.confidential import ConfidentialText

    text = ConfidentialText(SECRET)
    assert text == SECRET
    assert text.split()[0] == "Quarterly"
    assert "Bluebird" not in repr(text)
    assert "Bluebird" not in repr([text])
    assert repr(text).startswith(f"<confidential text: {len(SECRET)} characters")


def test_skipping_before_measuring_leaves_pytest_benchmark_quiet(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second()\n")
    result = run(pytester, "--tee-models=tiny-qwen2", "--tee-weights=real")
    result.assert_outcomes(skipped=1)
    assert "Benchmark fixture was not used" not in result.stdout.str()
