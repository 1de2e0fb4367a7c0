"""pytest-tee installed beside suites that do not use it changes nothing there (a good neighbour).

Each check runs a plain project — pytest-benchmark's ``benchmark`` fixture, its own ``requires`` marker and its own
``execution_env`` fixture — once as it is (pytest-tee installed and loaded) and once with ``-p no:tee`` (as if
pytest-tee were not installed), and compares what a user sees: exit codes, outcomes, test ids, header lines,
warnings and saved runs. A project that does use pytest-tee is checked for what pytest-benchmark's compare needs.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

SYSROOTS = Path(__file__).parent / "sysroots"
WITHOUT_TEE = ("-p", "no:tee")
# Quick benchmarks: the checks are about what pytest-benchmark does around them, not about the timings.
FAST = ("--benchmark-min-rounds=1", "--benchmark-max-time=0.0001", "--benchmark-warmup=off")

PLAIN_CONFTEST = """
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "requires(*resources, **options): this project's own resource gate")

def pytest_runtest_setup(item):
    for marker in item.iter_markers("requires"):
        if "network" in marker.args:
            pytest.skip("no network in this project's CI")
        if marker.kwargs.get("db"):
            item.config.stash.setdefault(DB_USED, []).append(item.nodeid)

DB_USED = pytest.StashKey[list]()

@pytest.fixture
def execution_env():
    return "staging"
"""

PLAIN_TESTS = """
import time

import pytest

def test_sum(benchmark):
    assert benchmark(sum, range(100)) == 4950

def test_sleeps_before_the_save():
    time.sleep(0.5)

@pytest.mark.requires("network")
def test_download():
    raise AssertionError("the project's own marker skips this")

@pytest.mark.requires(db=True)
def test_query(execution_env):
    assert execution_env == "staging"
"""


@pytest.fixture
def plain(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(PLAIN_CONFTEST)
    pytester.makepyfile(test_project=PLAIN_TESTS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # In-process runs re-import plugins this process already holds: pytest warns that it cannot rewrite their
    # asserts, with or without pytest-tee. Ignored here (after any -W error) since a real run never sees it.
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", *FAST, *args, "-W", "ignore::pytest.PytestAssertRewriteWarning"
    )


def outcome(result: pytest.RunResult) -> tuple[int, dict[str, int]]:
    return int(result.ret), result.parseoutcomes()


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if " collected in " not in line]  # all but the timing


def saved_runs(root: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((root / ".benchmarks").glob("*/*.json"))]


def shape(document: dict) -> dict[str, list[str]]:
    """The keys of a saved run where anyone could add something: top level, machine_info, each benchmark."""
    return {
        "top": sorted(document),
        "machine_info": sorted(document["machine_info"]),
        "benchmark": sorted({key for bench in document["benchmarks"] for key in bench}),
        "extra_info": sorted({key for bench in document["benchmarks"] for key in bench["extra_info"]}),
    }


# ------------------------------------------------------------------------------------------------ a plain project


def test_same_outcomes_ids_and_no_header_line(plain: pytest.Pytester):
    with_tee = run(plain, "-v", "-rs")
    without = run(plain, "-v", "-rs", *WITHOUT_TEE)

    assert outcome(with_tee) == outcome(without) == (0, {"passed": 3, "skipped": 1})
    with_tee.stdout.fnmatch_lines(["*test_query PASSED*", "*SKIPPED*no network in this project's CI"])
    assert not [line for line in with_tee.outlines if line.startswith("tee")]  # no "tee: …" header line
    ids = collected(run(plain, "--collect-only", "-q"))
    assert ids == collected(run(plain, "--collect-only", "-q", *WITHOUT_TEE))
    assert "test_project.py::test_query" in ids  # not test_query[cpu]: the project's fixture is its own


def test_the_projects_own_marker_keeps_its_arguments(plain: pytest.Pytester):
    plain.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.requires("network", "dns")
        def test_positional():
            pass

        @pytest.mark.requires(db=True, replicas=2)
        def test_keywords(request):
            marker = request.node.get_closest_marker("requires")
            assert marker.kwargs == {"db": True, "replicas": 2}
        """
    )
    with_tee = run(plain, "test_marker.py", "-rs", "--strict-markers")
    without = run(plain, "test_marker.py", "-rs", "--strict-markers", *WITHOUT_TEE)

    assert outcome(with_tee) == outcome(without) == (0, {"passed": 1, "skipped": 1})


@pytest.mark.parametrize(
    "warnings_as_errors",
    [("-W", "error"), ("-o", "filterwarnings=error")],
    ids=["W-error", "ini-filterwarnings"],
)
def test_same_exit_codes_with_warnings_as_errors_and_compare(
    plain: pytest.Pytester, warnings_as_errors: tuple[str, str]
):
    for label, extra in (("with", ()), ("without", WITHOUT_TEE)):
        storage = f"--benchmark-storage=file://{plain.path / label}"
        first = run(plain, *warnings_as_errors, storage, "--benchmark-autosave", *extra)
        second = run(plain, *warnings_as_errors, storage, "--benchmark-autosave", "--benchmark-compare", *extra)
        assert outcome(first) == outcome(second) == (0, {"passed": 3, "skipped": 1}), (label, second.stdout.str())
        assert "machine_info is different" not in second.stdout.str() + second.stderr.str()


def test_back_to_back_runs_under_pythonwarnings_error(plain: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """PYTHONWARNINGS=error is read when the interpreter starts, so this one runs pytest in a subprocess."""
    monkeypatch.setenv("PYTHONWARNINGS", "error")
    for label, extra in (("with", ()), ("without", WITHOUT_TEE)):
        args = ("-p", "no:cacheprovider", *FAST, f"--benchmark-storage=file://{plain.path / label}", *extra)
        first = plain.runpytest_subprocess(*args, "--benchmark-autosave")
        second = plain.runpytest_subprocess(*args, "--benchmark-autosave", "--benchmark-compare")
        assert (first.ret, second.ret) == (0, 0), (label, second.stdout.str() + second.stderr.str())
        assert "machine_info is different" not in second.stdout.str() + second.stderr.str()


def test_saved_runs_are_pytest_benchmarks_own(plain: pytest.Pytester):
    started = datetime.now(timezone.utc)
    assert run(plain, "--benchmark-save=with").ret == 0
    assert run(plain, "--benchmark-save=without", *WITHOUT_TEE).ret == 0

    with_tee, without = saved_runs(plain.path)
    assert shape(with_tee) == shape(without)
    assert "pytest_tee" not in with_tee
    assert "tee" not in with_tee["machine_info"]
    # datetime is when pytest-benchmark saved the run: after the half-second test, not at the session's start.
    assert datetime.fromisoformat(with_tee["datetime"]) >= started + timedelta(seconds=0.5)


def test_plain_sessions_detect_nothing_also_under_xdist(plain: pytest.Pytester):
    pytest.importorskip("xdist")
    plain.makeconftest(
        PLAIN_CONFTEST
        + """
def pytest_tee_generate_environment(config, sysroot):
    with open("detections.log", "a") as log:
        log.write("detected\\n")
"""
    )
    assert run(plain).ret == 0
    assert run(plain, "-n", "2").ret == 0
    assert not (plain.path / "detections.log").exists()


# ------------------------------------------------------------------------------------- a project using pytest-tee

TEE_PROJECT = """
import time

def test_label(tee_environment, benchmark):
    benchmark(len, tee_environment.tee)

def test_plain(benchmark):
    time.sleep(0.5)
    benchmark(sum, range(10))
"""


def test_a_tee_project_saves_the_same_machine_info_twice(pytester: pytest.Pytester):
    """Real detection on this machine: what goes into machine_info must not move between two runs."""
    pytester.makepyfile(test_tee=TEE_PROJECT)
    started = datetime.now(timezone.utc)
    first = run(pytester, "-W", "error", "--benchmark-autosave")
    second = run(pytester, "-W", "error", "--benchmark-autosave", "--benchmark-compare")

    assert (first.ret, second.ret) == (0, 0), second.stdout.str()
    assert "machine_info is different" not in second.stdout.str()
    first.stdout.fnmatch_lines(["collected 2 items", "tee: *"])  # the header, once the tests show it is used
    quiet = run(pytester, "-q", "--collect-only")
    assert not [line for line in quiet.outlines if line.startswith("tee")]  # -q: pytest prints no header either
    one, two = saved_runs(pytester.path)
    assert one["machine_info"] == two["machine_info"]
    assert sorted(one["machine_info"]["tee"]) == ["fingerprint", "fingerprint_fields", "platform", "tee"]
    section = one["pytest_tee"]
    assert section["environment"]["fingerprint"] == one["machine_info"]["tee"]["fingerprint"]
    session_started = datetime.fromisoformat(section["session_started"])
    assert started <= session_started
    assert datetime.fromisoformat(one["datetime"]) >= session_started + timedelta(seconds=0.5)


def test_compare_against_a_tee_run_from_a_session_that_does_not_use_it(pytester: pytest.Pytester):
    """--benchmark-compare reads machine_info before collection; a stored pytest-tee run makes this one detect."""
    pytester.makepyfile(test_tee=TEE_PROJECT)
    assert run(pytester, "-W", "error", "--benchmark-autosave").ret == 0
    second = run(pytester, "-W", "error", "-k", "test_plain", "--benchmark-compare")
    assert second.ret == 0, second.stdout.str()
    assert "machine_info is different" not in second.stdout.str()


def test_xdist_workers_take_the_controllers_record(pytester: pytest.Pytester):
    pytest.importorskip("xdist")
    pytester.makeconftest(
        f"""
        import os
        from pytest_tee import detect

        def pytest_tee_generate_environment(config, sysroot):
            with open("detections.log", "a") as log:
                log.write(f"{{os.getpid()}}\\n")
            return detect({str(SYSROOTS / "kvm-tdx-guest")!r})
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_label(tee_environment, n):
            assert tee_environment.tee == "tdx"

        @pytest.mark.tee_requires(tee="tdx")
        def test_in_a_td():
            pass
        """
    )
    result = run(pytester, "-n", "2", "--tee=tdx")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=5)
    assert (pytester.path / "detections.log").read_text().split() == [str(os.getpid())]


def test_workers_of_an_unconfigured_controller_detect_only_when_their_tests_need_it(pytester: pytest.Pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(
        """
        def test_label(tee_environment):
            assert tee_environment.tee in ("none", "tdx", "sev-snp")

        def test_plain():
            pass
        """
    )
    result = run(pytester, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)


def test_the_plugin_fixture_list_is_complete(pytester: pytest.Pytester):
    """Detection is decided by the fixtures a test uses: the list must name every fixture the plugin defines."""
    from pytest_tee.plugin import FIXTURES

    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:cacheprovider")
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "fixtures defined from pytest_tee.plugin" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("---")), len(lines))
    defined = {line.split()[0] for line in lines[start + 1 : end] if line and not line.startswith(" ")}
    assert defined == FIXTURES
