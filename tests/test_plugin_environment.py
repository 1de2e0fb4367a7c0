"""The plugin over sysroot trees: labels, --tee claims, execution environments, markers and recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SYSROOTS = Path(__file__).parent / "sysroots"

SHOW_ENV = """
def test_env(tee_environment):
    print("ENV", tee_environment.tee, tee_environment.platform, tee_environment.claim)
"""

LIST_ENVS = """
def test_where(tee_execution_env):
    print("RUNS", tee_execution_env.name, tee_execution_env.device, tee_execution_env.tee)
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tree", "tee", "platform"),
    [
        ("kvm-tdx-guest", "tdx", "kvm"),
        ("tdx-guest-no-device", "tdx", "kvm"),
        ("azure-tdx-guest", "tdx", "azure-paravisor"),
        ("sev-snp-guest", "sev-snp", "gcp"),
        ("plain-vm", "none", "kvm"),
        ("tdx-host", "none", "bare-metal"),
    ],
)
def test_each_sysroot_is_labelled(pytester: pytest.Pytester, tree: str, tee: str, platform: str):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, f"--tee-sysroot={SYSROOTS / tree}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*ENV {tee} {platform} auto"])
    result.stdout.fnmatch_lines([f"tee: {tee} ({platform})*"])  # the header line


def test_this_machine_is_labelled_too(pytester: pytest.Pytester):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["tee: none *", "*ENV none * auto"])


def test_tdx_claim_on_a_td_is_accepted(pytester: pytest.Pytester):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, "--tee=tdx", f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*ENV tdx kvm tdx"])


@pytest.mark.slow
@pytest.mark.parametrize("tree", ["plain-vm", "tdx-host", "sev-snp-guest"])
def test_wrong_tdx_claim_stops_before_collection_listing_the_evidence(pytester: pytest.Pytester, tree: str):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, "--tee=tdx", f"--tee-sysroot={SYSROOTS / tree}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "tdx" in err
    assert "not supported" in err
    assert "/proc/cpuinfo" in err  # each signal checked is listed with what it found
    assert "/dev/tdx_guest" in err
    assert "collected" not in result.stdout.str()
    assert "Traceback" not in err


def test_sev_snp_claim_on_a_tdx_guest_is_refused(pytester: pytest.Pytester):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, "--tee=sev-snp", f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "sev-snp" in result.stderr.str()
    assert "/dev/sev-guest" in result.stderr.str()


def test_none_claim_inside_a_td_is_allowed_and_recorded(pytester: pytest.Pytester):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, "--tee=none", f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*ENV tdx kvm none"])  # the label stays what the evidence says
    result.stdout.fnmatch_lines(["tee warning:*"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tree", "device", "expected"),
    [
        ("plain-vm", "auto", ["cpu cpu none"]),
        ("kvm-tdx-guest", "auto", ["tdx cpu tdx"]),
        ("sev-snp-guest", "cpu", ["sev-snp cpu sev-snp"]),
    ],
)
def test_execution_envs_per_host(pytester: pytest.Pytester, tree: str, device: str, expected: list[str]):
    pytester.makepyfile(LIST_ENVS)
    result = run(pytester, f"--tee-sysroot={SYSROOTS / tree}", f"--tee-device={device}", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*RUNS {line}*" for line in expected])
    result.assert_outcomes(passed=len(expected))


def test_cuda_requested_without_a_gpu_skips_with_the_reason(pytester: pytest.Pytester):
    pytester.makepyfile(LIST_ENVS)
    result = run(pytester, f"--tee-sysroot={SYSROOTS / 'plain-vm'}", "--tee-device=cuda", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no execution environment here*cuda*"])


MARKED = """
import pytest

@pytest.mark.tee_env("tdx")
def test_only_in_tdx(tee_execution_env):
    print("RAN", tee_execution_env.name)

@pytest.mark.tee_env("cuda", "tdx-cuda")
def test_only_on_gpus(tee_execution_env):
    pass

@pytest.mark.tee_requires(cuda=True)
def test_needs_cuda():
    pass

@pytest.mark.tee_requires(tee="tdx", cpu_flags=["amx_bf16"], min_memory_gb=1)
def test_needs_a_td_with_amx():
    print("RAN amx")

@pytest.mark.tee_requires(min_memory_gb=100000)
def test_needs_a_lot_of_memory():
    pass
"""


def test_markers_on_a_td_with_amx(pytester: pytest.Pytester):
    pytester.makepyfile(MARKED)
    result = run(pytester, f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}", "-rs", "--strict-markers")
    result.assert_outcomes(passed=2, skipped=3)
    out = result.stdout.str()
    assert "RAN tdx" in out
    assert "RAN amx" in out
    result.stdout.fnmatch_lines_random(
        [
            "*test_markers_on_a_td_with_amx.py:7: no execution environment here matches cuda, tdx-cuda*",
            "*test_markers_on_a_td_with_amx.py:11: requires a usable CUDA device*",
            "*test_markers_on_a_td_with_amx.py:19: requires 100000 GiB of memory (have *GiB)*",
        ]
    )


def test_markers_on_a_plain_vm(pytester: pytest.Pytester):
    pytester.makepyfile(MARKED)
    result = run(pytester, f"--tee-sysroot={SYSROOTS / 'plain-vm'}", "-rs", "--strict-markers")
    result.assert_outcomes(passed=0, skipped=5)
    result.stdout.fnmatch_lines_random(
        [
            "*test_markers_on_a_plain_vm.py:3: no execution environment here matches tdx (this host offers: cpu)",
            "*test_markers_on_a_plain_vm.py:15: requires TEE tdx (this runs in: none)*",
        ]
    )


def test_markers_are_registered(pytester: pytest.Pytester):
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.tee_env(*names)*", "@pytest.mark.tee_requires(cuda=False*"])


def test_requires_misuse_fails_that_test(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tee_requires(gpu=True)
        def test_a():
            pass

        def test_b():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)  # an error at setup, like a broken fixture
    result.stdout.fnmatch_lines(["*unknown argument gpu; valid: cuda, tee, min_memory_gb, cpu_flags*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_tee_env_misuse_is_a_collection_error(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tee_env("gpu")
        def test_b(tee_execution_env):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*unknown environment 'gpu'; known: cpu, cuda, tdx*"])
    assert "MarkerError" not in result.stdout.str()


@pytest.mark.slow
def test_saved_runs_carry_the_environment_record(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_fast(benchmark):
            benchmark(lambda: None)
        """
    )
    result = run(pytester, f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}", "--benchmark-json=out.json")
    assert result.ret == 0
    document = json.loads((pytester.path / "out.json").read_text())
    identity = document["machine_info"]["tee"]  # what pytest-benchmark compares: only what stays put
    assert sorted(identity) == ["fingerprint", "fingerprint_fields", "platform", "tee"]
    assert identity["tee"] == "tdx"
    assert len(identity["fingerprint"]) == 16
    assert identity["fingerprint_fields"]["tee"] == "tdx"
    record = document["pytest_tee"]["environment"]  # the whole record, observations included
    assert any(item["supports"] == "tdx" for item in record["evidence"])
    assert record["fingerprint"] == identity["fingerprint"]
    assert "available_bytes" in record["host"]["memory"]
    assert document["pytest_tee"]["environment_fingerprint"] == identity["fingerprint"]


def test_fingerprint_is_stable_and_tells_hosts_apart(pytester: pytest.Pytester):
    from pytest_tee.environment import detect

    first = detect(SYSROOTS / "kvm-tdx-guest")
    again = detect(SYSROOTS / "kvm-tdx-guest")
    other = detect(SYSROOTS / "plain-vm")
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


def test_plugin_works_without_pytest_benchmark(pytester: pytest.Pytester):
    pytester.makepyfile(SHOW_ENV)
    result = run(pytester, "-p", "no:benchmark")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*ENV none * auto"])


def test_environment_hooks_replace_and_extend_detection(pytester: pytest.Pytester):
    pytester.makeconftest(
        f"""
        from pytest_tee import Evidence, detect

        def pytest_tee_generate_environment(config, sysroot):
            env = detect({str(SYSROOTS / "plain-vm")!r})
            env.evidence.append(Evidence("site role", "/etc/site-role", "td-runner", "tdx"))
            env.tee = "tdx"
            return env

        def pytest_tee_update_environment(config, environment):
            environment.host.setdefault("site", {{}})["rack"] = "r12"
        """
    )
    pytester.makepyfile(
        """
        def test_env(tee_environment):
            print("ENV", tee_environment.tee, tee_environment.host["site"]["rack"])
        """
    )
    result = run(pytester, "--tee=tdx")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["*ENV tdx r12"])
