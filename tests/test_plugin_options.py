"""Options: declared once, CLI > env > ini > default, bad values are one-line usage errors naming the source."""

from __future__ import annotations

import pytest

from pytest_tee.settings import OPTIONS, parse_fail_drop, parse_percent

SHOW_SETTINGS = """
from pytest_tee.plugin import tee_session

def test_show(pytestconfig):
    s = tee_session(pytestconfig).settings
    print("SETTINGS", s.tee, s.device, s.rounds, s.dtype, s.fail_drop, s.compare, s.attest)
    print("SOURCE", s.sources["rounds"])
"""


@pytest.fixture
def show(pytester: pytest.Pytester):
    pytester.makepyfile(test_show=SHOW_SETTINGS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)


def test_help_lists_the_tee_group_with_env_and_ini_names(pytester: pytest.Pytester):
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["*pytest-tee: LLM tokens/s benchmarks in trust domains*"])
    text = result.stdout.str()
    for option in OPTIONS:
        assert option.flag in text
        assert option.env in text
    assert "tee_rounds" in text  # ini keys are listed in the ini section too


def test_defaults(show: pytest.Pytester):
    result = run(show)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SETTINGS auto () 5 auto None None False", "SOURCE default"])


@pytest.mark.slow
def test_precedence_cli_over_env_over_ini(show: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    show.makeini("[pytest]\ntee_rounds = 7\n")
    result = run(show)
    result.stdout.fnmatch_lines(["*SETTINGS auto () 7 *", "SOURCE ini option tee_rounds*"])
    monkeypatch.setenv("PYTEST_TEE_ROUNDS", "9")
    result = run(show)
    result.stdout.fnmatch_lines(["*SETTINGS auto () 9 *", "SOURCE environment variable PYTEST_TEE_ROUNDS"])
    result = run(show, "--tee-rounds=11")
    result.stdout.fnmatch_lines(["*SETTINGS auto () 11 *", "SOURCE command line --tee-rounds"])


def test_flags_and_optional_values(show: pytest.Pytester):
    result = run(show, "--tee-attest", "--tee-compare", "--tee-fail-drop=decode_tps:5%,ttft_s:10", "--tee-device=cpu")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*SETTINGS auto ('cpu',) 5 auto (('decode_tps', 5.0), ('ttft_s', 10.0)) latest True"])


@pytest.mark.slow
def test_boolean_from_environment(show: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_TEE_ATTEST", "yes")
    run(show).stdout.fnmatch_lines(["*SETTINGS * True"])
    monkeypatch.setenv("PYTEST_TEE_ATTEST", "maybe")
    result = run(show)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment variable PYTEST_TEE_ATTEST*'maybe' is not a boolean*"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tee=sgx"], "*--tee*'sgx' is not one of auto, none, tdx, sev-snp*"),
        (["--tee-device=tpu"], "*--tee-device*'tpu' is not auto or a comma list of cpu, cuda*"),
        (["--tee-models=r1-distill-qwen-3b"], "*unknown checkpoint 'r1-distill-qwen-3b'; the catalogue has*"),
        (["--tee-rounds=0"], "*--tee-rounds*'0' must be at least 1*"),
        (["--tee-fail-drop=tokens:5%"], "*unknown metric 'tokens'*metrics are decode_tps*"),
        (["--tee-target-ci=150%"], "*must be above 0 % and below 100 %*"),
        (["--tee-sysroot=/no/such/dir"], "*--tee-sysroot*'/no/such/dir' is not an existing directory*"),
        (
            ["--tee-model-path=r1-distill-qwen-1.5b=/no/such/dir"],
            "*/no/such/dir is neither a directory nor a GGUF file*",
        ),
        (["--tee-engine=vllm"], "*--tee-engine*'vllm' is not a comma list of engines: transformers*"),
        (["--tee-quant=Q3_X"], "*--tee-quant*'Q3_X' is not a GGUF quantization*valid: Q4_K_M, Q8_0, F16, BF16*"),
        (["--tee-rounds=10", "--tee-max-rounds=5"], "*--tee-max-rounds (5) is below --tee-rounds (10)*"),
        (["--tee-compare", "test_show.py"], "*'test_show.py' looks like a test path, not a stored run*"),
    ],
)
def test_bad_command_line_values_are_usage_errors(show: pytest.Pytester, args: list[str], expected: str):
    result = run(show, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_bad_env_value_names_the_variable(show: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_TEE_DEVICE", "gpu")
    result = run(show)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment variable PYTEST_TEE_DEVICE: 'gpu' is not auto or a comma list*"])


def test_bad_ini_value_names_the_file(show: pytest.Pytester):
    show.makeini("[pytest]\ntee_dtype = int4\n")
    result = run(show)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option tee_dtype in *tox.ini*'int4' is not one of auto, bfloat16*"])


def test_model_path_needs_a_config(show: pytest.Pytester, tmp_path):
    result = run(show, f"--tee-model-path=r1-distill-qwen-1.5b={tmp_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*has no config.json and no .gguf file*"])


def test_engine_and_quant_from_env_and_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    pytester.makepyfile(
        """
        from pytest_tee.plugin import tee_session

        def test_show(pytestconfig):
            s = tee_session(pytestconfig).settings
            print("ENGINES", s.engine, s.quant, s.sources["quant"])
        """
    )
    pytester.makeini("[pytest]\ntee_quant = q8_0,f16\n")
    run(pytester).stdout.fnmatch_lines(["*ENGINES ('transformers',) ('Q8_0', 'F16') ini option tee_quant*"])
    monkeypatch.setenv("PYTEST_TEE_QUANT", "bf16")
    run(pytester).stdout.fnmatch_lines(["*ENGINES ('transformers',) ('BF16',) environment variable PYTEST_TEE_QUANT"])
    monkeypatch.setenv("PYTEST_TEE_ENGINE", "Transformers")
    run(pytester).stdout.fnmatch_lines(["*ENGINES ('transformers',) *"])


def test_percent_and_fail_drop_parsers():
    assert parse_percent("2.5%") == 2.5
    assert parse_percent("5") == 5.0
    assert parse_fail_drop("5%") == (("decode_tps", 5.0),)
    assert parse_fail_drop("e2e_tps:3,decode_tps:4%") == (("e2e_tps", 3.0), ("decode_tps", 4.0))
