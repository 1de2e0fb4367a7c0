"""Comparing saved runs, choosing baselines, the gate's output and ``pytest-tee compare``, on documents built here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tee import cli
from pytest_tee.baseline.compare import ComparisonRefused, compare_runs
from pytest_tee.baseline.gate_output import render_json, render_markdown, render_text, short_names
from pytest_tee.baseline.select import BaselineMissing, select_baseline, storage_path
from pytest_tee.baseline.session_gate import (
    EXIT_NO_BASELINE,
    EXIT_USAGE,
    adaptive_gate_check,
    choose_baseline,
    run_gate,
)
from pytest_tee.errors import InputError
from pytest_tee.records import Verdict
from pytest_tee.saved_runs import Run, RunFileError, run_from_document
from pytest_tee.settings import settings_from_mapping

RULES = (("decode_tps", 5.0),)
NODE = "benchmarks/test_paper.py::test_decode[cpu-r1-distill-qwen-1.5b]"
OTHER = "benchmarks/test_paper.py::test_decode[cpu-r1-distill-qwen-7b]"


def environment(fingerprint: str = "fp-a", torch: str = "2.13.0") -> dict[str, Any]:
    fields = {"tee": "none", "cpu_model": "Xeon 8480", "logical_cpus": 16, "libraries": {"torch": torch}}
    return {"tee": "none", "platform": "kvm", "fingerprint": fingerprint, "fingerprint_fields": fields}


def measurement(decode_tps: list[float], new_tokens: int = 32, **extra: list[float]) -> dict[str, Any]:
    workload = {"prompt_tokens": 128, "new_tokens": new_tokens, "batch": 1}
    return {
        "schema": 1,
        "execution_env": "cpu",
        "checkpoint": {"id": "r1-distill-qwen-1.5b"},
        "workload": workload,
        "metrics": {},
        "samples": {"decode_tps": decode_tps, **extra},
        "comparison_key": {"execution_env": "cpu", "checkpoint": "r1-distill-qwen-1.5b", "workload": workload},
    }


def document(env: dict[str, Any], benchmarks: dict[str, dict[str, Any]], when: str = "2026-01-01T10:00:00+00:00"):
    return {
        "machine_info": {"node": "host", "tee": env},
        "commit_info": {"id": "0123456789abcdef"},
        "datetime": when,
        "benchmarks": [
            {"fullname": name, "name": name.rsplit("::", 1)[-1], "params": None, "extra_info": {"tee": tee}}
            for name, tee in benchmarks.items()
        ],
    }


def rates(median: float, n: int = 8, seed: int = 0, cv: float = 0.01) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).lognormal(np.log(median), cv, n)]


def run_of(env: dict[str, Any], benchmarks: dict[str, dict[str, Any]], label: str = "run") -> Run:
    return run_from_document(document(env, benchmarks), label=label)


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------------------
# compare_runs


def test_regression_and_unchanged_benchmarks_are_told_apart() -> None:
    # One run each, nothing stored: the fallback rule (session noise assumed 1.5 × the rounds'), on quiet rounds.
    quiet = {"cv": 0.004}
    base = run_of(environment(), {NODE: measurement(rates(10.0)), OTHER: measurement(rates(4.0, seed=1, **quiet))})
    head = run_of(
        environment(), {NODE: measurement(rates(8.0, seed=2)), OTHER: measurement(rates(4.0, seed=3, **quiet))}
    )
    comparison = compare_runs(base, head, RULES)
    outcomes = {v.benchmark: v.outcome for v in comparison.verdicts}
    assert outcomes == {NODE: "regressed", OTHER: "unchanged"}
    assert comparison.exit_code() == 1
    assert [v.benchmark for v in comparison.regressed] == [NODE]
    assert {v.model for v in comparison.verdicts} == {"single"}
    assert all("between-session noise not measured (1 stored run(s)" in v.note for v in comparison.verdicts)


def stored_runs(levels: list[float], *, fingerprint: str = "fp-a", new_tokens: int = 32) -> list[Run]:
    """Runs of NODE with these median levels, newest first (as BaselineChoice.history orders them)."""
    return [
        run_from_document(
            document(environment(fingerprint), {NODE: measurement(rates(level, seed=index), new_tokens=new_tokens)}),
            label=f"stored-{index}",
        )
        for index, level in enumerate(levels)
    ]


def test_history_of_stored_runs_measures_the_session_noise() -> None:
    history = stored_runs([10.0, 10.3, 9.8, 10.1, 9.9])
    slower = run_of(environment(), {NODE: measurement(rates(8.0, seed=9))})
    (verdict,) = compare_runs(history[0], slower, RULES, history=history).verdicts
    assert (verdict.model, verdict.detail.sessions_base, verdict.detail.df) == ("history", 5, 4.0)
    assert verdict.outcome == "regressed"
    assert verdict.note == ""
    same = run_of(environment(), {NODE: measurement(rates(10.0, seed=9))})
    (verdict,) = compare_runs(history[0], same, RULES, history=history).verdicts
    assert verdict.outcome in ("unchanged", "inconclusive")


def test_history_counts_only_runs_of_the_same_environment_and_setup() -> None:
    history = stored_runs([10.0, 10.2]) + stored_runs([9.9], fingerprint="fp-b") + stored_runs([9.8], new_tokens=64)
    head = run_of(environment(), {NODE: measurement(rates(10.0, seed=9))})
    (verdict,) = compare_runs(history[0], head, RULES, history=history).verdicts
    assert verdict.model == "single"
    assert "2 stored run(s) with this fingerprint" in verdict.note
    # The head itself and the baseline listed twice are not counted again.
    (verdict,) = compare_runs(history[0], head, RULES, history=[history[0], head, history[1]]).verdicts
    assert "2 stored run(s)" in verdict.note


def test_unmatched_benchmarks_are_listed_not_errors() -> None:
    base = run_of(environment(), {NODE: measurement(rates(10.0)), OTHER: measurement(rates(4.0))})
    head = run_of(environment(), {NODE: measurement(rates(10.0, seed=1)), "t.py::test_new": measurement(rates(3.0))})
    comparison = compare_runs(base, head, RULES)
    assert comparison.base_only == [OTHER]
    assert comparison.head_only == ["t.py::test_new"]
    assert [v.benchmark for v in comparison.verdicts] == [NODE]
    assert comparison.exit_code() == 0


def test_environment_mismatch_is_refused_with_the_differences() -> None:
    base = run_of(environment("fp-a", torch="2.12.0"), {NODE: measurement(rates(10.0))})
    head = run_of(environment("fp-b", torch="2.13.0"), {NODE: measurement(rates(10.0))})
    with pytest.raises(ComparisonRefused) as raised:
        compare_runs(base, head, RULES)
    assert "libraries.torch: 2.12.0 → 2.13.0" in str(raised.value)
    assert "--tee-allow-env-mismatch" in str(raised.value)
    allowed = compare_runs(base, head, RULES, allow_env_mismatch=True)
    assert allowed.mismatches[0].scope == "environment"
    assert allowed.verdicts[0].outcome == "unchanged"


def test_comparison_key_mismatch_is_refused_naming_the_benchmark() -> None:
    base = run_of(environment(), {NODE: measurement(rates(10.0), new_tokens=32)})
    head = run_of(environment(), {NODE: measurement(rates(10.0), new_tokens=64)})
    with pytest.raises(ComparisonRefused, match=r"test_decode.*workload\.new_tokens: 32 → 64"):
        compare_runs(base, head, RULES)


def test_lower_is_better_rule_and_metrics_missing_on_a_side() -> None:
    base = run_of(environment(), {NODE: measurement(rates(10.0), ttft_s=rates(0.20, seed=4))})
    head = run_of(environment(), {NODE: measurement(rates(10.0, seed=1), ttft_s=rates(0.30, seed=5))})
    comparison = compare_runs(base, head, (("decode_tps", 5.0), ("ttft_s", 10.0), ("peak_gpu_mib", 5.0)))
    by_metric = {v.metric: v for v in comparison.verdicts}
    assert by_metric["ttft_s"].outcome == "regressed"
    assert by_metric["ttft_s"].higher_is_better is False
    assert comparison.not_applicable == [(NODE, "peak_gpu_mib")]


def test_decide_hook_replaces_the_builtin_verdict() -> None:
    base = run_of(environment(), {NODE: measurement(rates(10.0))})
    head = run_of(environment(), {NODE: measurement(rates(10.0, seed=1))})
    calls: list[dict[str, Any]] = []

    def hook(**kwargs: Any) -> Verdict:
        calls.append(kwargs)
        return Verdict(kwargs["benchmark"], kwargs["metric"], 1.0, 0.5, 0.5, (0.5, 0.5), "regressed")

    comparison = compare_runs(base, head, RULES, decide_hook=hook)
    assert comparison.verdicts[0].outcome == "regressed"
    assert comparison.verdicts[0].threshold_pct == 5.0
    assert comparison.verdicts[0].detail.n_head == 8
    assert calls[0]["higher_is_better"] is True
    assert len(calls[0]["base"]) == 8
    assert compare_runs(base, head, RULES, decide_hook=lambda **_: None).verdicts[0].outcome == "unchanged"
    with pytest.raises(InputError, match="expected a Verdict"):
        compare_runs(base, head, RULES, decide_hook=lambda **_: "regressed")


# --------------------------------------------------------------------------------------------------------------
# rendering


def test_short_names_drop_the_shared_prefix_and_stay_unique() -> None:
    prefix, short = short_names([NODE, OTHER])
    assert prefix == "benchmarks/test_paper.py::"
    assert short[NODE] == "test_decode[cpu-r1-distill-qwen-1.5b]"
    long_a = "t.py::test_x[" + "a" * 80 + "-1]"
    long_b = "t.py::test_x[" + "a" * 80 + "-2]"
    _, cut = short_names([long_a, long_b], width=40)
    assert all(len(name) == 40 and "…" in name for name in cut.values())
    assert len(set(cut.values())) == 2
    assert short_names([NODE])[1][NODE] == "test_decode[cpu-r1-distill-qwen-1.5b]"


def test_text_markdown_and_json_outputs() -> None:
    base = run_of(environment(), {NODE: measurement(rates(10.0)), OTHER: measurement(rates(4.0, n=5, cv=0.1))})
    head = run_of(
        environment(),
        {NODE: measurement(rates(8.0, seed=2)), OTHER: measurement(rates(3.8, n=5, seed=3, cv=0.1))},
    )
    comparison = compare_runs(base, head, RULES)
    text = render_text(comparison)
    assert "test_decode[cpu-r1-distill-qwen-1.5b]" in text
    assert "benchmarks/test_paper.py::test_decode" not in text
    assert "✗ regressed" in text
    assert "inconclusive (ab --blocks" in text
    assert text.count("between-session noise not measured") == 1  # said once, not on every line
    assert "inconclusive: neither yet" in text  # the legend
    markdown = render_markdown(comparison)
    assert "| benchmark | metric | base | head |" in markdown
    data = json.loads(render_json(comparison))
    assert data["counts"]["regressed"] == 1
    assert data["exit_code"] == 1
    assert {v["benchmark"] for v in data["verdicts"]} == {NODE, OTHER}


# --------------------------------------------------------------------------------------------------------------
# choosing the baseline


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """Two machine_id folders; fp-a's newest run is in the second folder although its number is lower."""
    root = tmp_path / ".benchmarks"
    write(
        root / "Linux-CPython-3.11-64bit/0001_a.json",
        document(environment("fp-a"), {NODE: measurement([1.0] * 3)}, "2026-01-01T00:00:00+00:00"),
    )
    write(
        root / "Linux-CPython-3.11-64bit/0002_b.json",
        document(environment("fp-b"), {NODE: measurement([2.0] * 3)}, "2026-01-03T00:00:00+00:00"),
    )
    write(
        root / "Linux-CPython-3.12-64bit/0001_c.json",
        document(environment("fp-a"), {NODE: measurement([3.0] * 3)}, "2026-01-02T00:00:00+00:00"),
    )
    write(root / "Linux-CPython-3.12-64bit/0002_foreign.json", {"machine_info": {}, "benchmarks": [{"fullname": "x"}]})
    return root


def test_latest_is_newest_with_this_fingerprint_across_folders(storage: Path) -> None:
    chosen = select_baseline(storage, "latest", "fp-a", allow_env_mismatch=False)
    assert chosen.path == storage / "Linux-CPython-3.12-64bit/0001_c.json"
    newest_any = select_baseline(storage, "latest", "fp-z", allow_env_mismatch=True)
    assert newest_any.path is not None
    assert newest_any.path.name == "0002_b.json"


def test_latest_without_a_matching_fingerprint_is_missing(storage: Path) -> None:
    with pytest.raises(BaselineMissing, match=r"fingerprint fp-z.*fp-a, fp-b.*--tee-allow-env-mismatch"):
        select_baseline(storage, "latest", "fp-z", allow_env_mismatch=False)


def test_run_number_and_path(storage: Path) -> None:
    # 0002 is in both folders, but only one of them is a pytest-tee run (the other is someone else's benchmarks).
    assert (
        select_baseline(storage, "2", "fp-b", allow_env_mismatch=False).path
        == storage / "Linux-CPython-3.11-64bit/0002_b.json"
    )
    file = storage / "Linux-CPython-3.11-64bit/0001_a.json"
    assert select_baseline(storage, str(file), "fp-x", allow_env_mismatch=False).path == file
    with pytest.raises(InputError, match="run 0001 is ambiguous: 2 pytest-tee runs"):
        select_baseline(storage, "0001", "fp-a", allow_env_mismatch=False)


@pytest.mark.parametrize("spec", ["latest", "0009", "no/such/run.json"])
def test_missing_baseline_names_what_was_searched(tmp_path: Path, spec: str) -> None:
    with pytest.raises(BaselineMissing) as raised:
        select_baseline(tmp_path / ".benchmarks", spec, "fp-a", allow_env_mismatch=False)
    assert (str(tmp_path / ".benchmarks") in str(raised.value)) or spec in str(raised.value)


def test_corrupt_latest_is_named_and_left_untouched(storage: Path) -> None:
    corrupt = storage / "Linux-CPython-3.12-64bit/0003_new.json"
    corrupt.write_bytes(b'{"machine_info": {"tee": {"fingerprint": "fp-a"')  # truncated mid-write
    before = corrupt.read_bytes()
    with pytest.raises(RunFileError) as raised:
        select_baseline(storage, "latest", "fp-a", allow_env_mismatch=False)
    assert str(corrupt) in str(raised.value)
    assert "truncated" in str(raised.value)
    assert corrupt.read_bytes() == before
    with pytest.raises(RunFileError, match=r"0003_new\.json"):
        select_baseline(storage, "3", "fp-a", allow_env_mismatch=False)


def test_corrupt_file_older_than_the_choice_is_passed_over(storage: Path) -> None:
    older = storage / "Linux-CPython-3.12-64bit/0000_old.json"
    older.write_text("{not json", encoding="utf-8")
    chosen = select_baseline(storage, "latest", "fp-a", allow_env_mismatch=False)
    assert chosen.path is not None
    assert chosen.path.name == "0001_c.json"


def test_storage_uris() -> None:
    assert storage_path("file://./.benchmarks") == Path(".benchmarks")
    assert storage_path("file:///srv/bench") == Path("/srv/bench")
    assert storage_path("results/bench") == Path("results/bench")
    with pytest.raises(InputError, match="file storage only"):
        storage_path("elasticsearch+https://host:9200/index/doc")


# --------------------------------------------------------------------------------------------------------------
# the session gate


def test_run_gate_reports_each_outcome(tmp_path: Path) -> None:
    head = run_of(environment(), {NODE: measurement(rates(8.0, seed=2))}, label="this session")
    uri = f"file://{tmp_path / '.benchmarks'}"
    latest = settings_from_mapping({"compare": "latest"})
    nothing = choose_baseline(latest, storage_uri=uri, fingerprint="fp-a")
    missing = run_gate(head, latest, nothing)
    assert (missing.status, missing.exit_code) == ("no-baseline", EXIT_NO_BASELINE)
    passing = settings_from_mapping({"compare": "latest", "allow_missing_baseline": True})
    assert run_gate(head, passing, nothing).exit_code == 0

    write(tmp_path / ".benchmarks/m/0001_main.json", document(environment(), {NODE: measurement(rates(10.0))}))
    verdicts = tmp_path / "out/verdicts.json"
    settings = settings_from_mapping({"compare": "latest", "verdicts": verdicts})
    report = run_gate(head, settings, choose_baseline(settings, storage_uri=uri, fingerprint="fp-a"))
    assert (report.status, report.exit_code) == ("compared", 1)
    assert "regressed" in report.text
    assert "### pytest-tee gate" in report.markdown
    assert json.loads(verdicts.read_text())["verdicts"][0]["outcome"] == "regressed"

    other = run_of(environment("fp-b", torch="2.12.0"), {NODE: measurement(rates(8.0))})
    numbered = settings_from_mapping({"compare": "0001"})
    refused = run_gate(other, numbered, choose_baseline(numbered, storage_uri=uri, fingerprint="fp-b"))
    assert (refused.status, refused.exit_code) == ("refused", EXIT_USAGE)
    assert "libraries.torch" in refused.text

    (tmp_path / ".benchmarks/m/0002_broken.json").write_text("{", encoding="utf-8")
    broken = run_gate(head, latest, choose_baseline(latest, storage_uri=uri, fingerprint="fp-a"))
    assert (broken.status, broken.exit_code) == ("bad-baseline", EXIT_USAGE)
    assert "0002_broken.json" in broken.text
    assert run_gate(None, latest, nothing).status == "nothing-measured"


class Log:
    def __init__(self, values: list[float]) -> None:
        self.values = values

    def samples(self, metric: str) -> list[float]:
        return self.values if metric == "decode_tps" else []


def test_adaptive_gate_check_looks_at_doublings() -> None:
    baseline = run_of(environment(), {NODE: measurement(rates(10.0))})
    check = adaptive_gate_check(baseline, NODE, RULES, first_look=5)
    assert check is not None
    assert check(Log(rates(7.0, n=5, seed=9))) is None  # clearly regressed at the first look: decided
    assert "next look after 10" in str(check(Log(rates(7.0, n=6, seed=9))))
    # Open, but only more sessions could decide it (the rounds of this one cannot shrink the session noise): stop.
    assert check(Log(rates(9.7, n=5, seed=9, cv=0.2))) is None
    assert adaptive_gate_check(baseline, "unknown::test", RULES, first_look=5) is None


def test_adaptive_gate_check_samples_on_while_head_rounds_could_decide() -> None:
    # 40 steady base rounds; 5 head rounds 10.6 % lower: the head median's own noise is what stands in the way.
    wobble = [math.exp(0.02 * (-1) ** i) for i in range(40)]
    baseline = run_of(environment(), {NODE: measurement([10.0 * w for w in wobble])})
    check = adaptive_gate_check(baseline, NODE, RULES, first_look=5)
    assert check is not None
    assert "decode_tps inconclusive after 5 rounds" in str(check(Log([8.8 * w for w in wobble[:5]])))
    history = stored_runs([10.0, 10.4, 9.6, 10.2])  # measured noise: the head's rounds cannot change the verdict
    with_history = adaptive_gate_check(history[0], NODE, RULES, first_look=5, history=history)
    assert with_history is not None
    assert with_history(Log([9.0 * w for w in wobble[:5]])) is None


# --------------------------------------------------------------------------------------------------------------
# pytest-tee compare


def test_compare_command_exit_codes_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.json", document(environment(), {NODE: measurement(rates(10.0))}))
    slower = write(tmp_path / "slower.json", document(environment(), {NODE: measurement(rates(8.0, seed=1))}))
    same = write(tmp_path / "same.json", document(environment(), {NODE: measurement(rates(10.0, seed=2))}))
    noisy = write(tmp_path / "noisy.json", document(environment(), {NODE: measurement(rates(9.5, n=4, cv=0.2))}))
    assert cli.main(["compare", str(base), str(slower)]) == 1
    assert "regressed" in capsys.readouterr().out
    assert cli.main(["compare", str(base), str(same)]) == 0
    assert cli.main(["compare", str(base), str(noisy)]) == 0
    assert cli.main(["compare", str(base), str(noisy), "--fail-inconclusive"]) == 1
    capsys.readouterr()
    assert cli.main(["compare", str(base), str(slower), "--fail-drop", "decode_tps:25%", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"][0]["outcome"] == "unchanged"
    assert cli.main(["compare", str(base), str(slower), "--format", "md"]) == 1
    assert capsys.readouterr().out.startswith("### pytest-tee gate")


def test_compare_command_with_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    for number, level in enumerate([10.0, 10.2, 9.9, 10.1], start=1):
        write(
            storage / f"{number:04d}_main.json",
            document(
                environment(), {NODE: measurement(rates(level, seed=number))}, f"2026-01-0{number}T00:00:00+00:00"
            ),
        )
    write(storage / "0005_other.json", document(environment("fp-b"), {NODE: measurement(rates(5.0))}))
    head = write(tmp_path / "pr.json", document(environment(), {NODE: measurement(rates(8.0, seed=7))}))
    base = storage / "0004_main.json"
    assert (
        cli.main(["compare", str(base), str(head), "--history", str(tmp_path / ".benchmarks"), "--format", "json"]) == 1
    )
    (verdict,) = json.loads(capsys.readouterr().out)["verdicts"]
    assert (verdict["model"], verdict["detail"]["sessions_base"], verdict["outcome"]) == ("history", 4, "regressed")
    assert cli.main(["compare", str(base), str(head), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdicts"][0]["model"] == "single"
    assert cli.main(["compare", str(base), str(head), "--history", str(tmp_path / "absent")]) == 2
    assert "--history" in capsys.readouterr().err


def test_choose_baseline_returns_the_history_of_its_environment(tmp_path: Path) -> None:
    root = tmp_path / ".benchmarks"
    for number in range(1, 13):
        write(
            root / f"m/{number:04d}_main.json",
            document(
                environment(), {NODE: measurement(rates(10.0, seed=number))}, f"2026-01-{number:02d}T00:00:00+00:00"
            ),
        )
    write(root / "m/0013_other.json", document(environment("fp-b"), {NODE: measurement(rates(10.0))}))
    uri = f"file://{root}"
    choice = choose_baseline(settings_from_mapping({"compare": "0003"}), storage_uri=uri, fingerprint="fp-a")
    assert choice.run is not None
    assert choice.run.path == root / "m/0003_main.json"
    names = [run.path.name for run in choice.history if run.path is not None]
    assert names[0] == "0003_main.json"  # the baseline first, then the newest others
    assert names[1:] == [f"{n:04d}_main.json" for n in range(12, 3, -1)]
    head = run_of(environment(), {NODE: measurement(rates(10.0, seed=99))}, label="this session")
    report = run_gate(head, settings_from_mapping({"compare": "0003"}), choice)
    assert report.comparison is not None
    assert report.comparison.verdicts[0].model == "history"


def test_compare_command_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.json", document(environment(), {NODE: measurement(rates(10.0))}))
    other = write(tmp_path / "other.json", document(environment("fp-b", "2.12.0"), {NODE: measurement(rates(10.0))}))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(base.read_text()[:50], encoding="utf-8")
    assert cli.main(["compare", str(base), str(tmp_path / "absent.json")]) == 2
    assert "absent.json: no such file" in capsys.readouterr().err
    assert cli.main(["compare", str(truncated), str(base)]) == 2
    assert "truncated.json" in capsys.readouterr().err
    assert cli.main(["compare", str(base), str(other)]) == 2
    assert "libraries.torch: 2.13.0 → 2.12.0" in capsys.readouterr().err
    assert cli.main(["compare", str(base), str(other), "--allow-env-mismatch"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["compare", str(base), str(other), "--fail-drop", "speed:5%"])


def test_an_inconclusive_gate_says_the_command_to_run_next(tmp_path: Path) -> None:
    # A 6 % drop with noisy rounds and one stored run: one session a side cannot decide it.
    write(tmp_path / ".benchmarks/m/0001_main.json", document(environment(), {NODE: measurement(rates(10.0, cv=0.1))}))
    head = run_of(environment(), {NODE: measurement(rates(9.4, seed=3, cv=0.1))}, label="this session")
    uri = f"file://{tmp_path / '.benchmarks'}"
    for strict in (False, True):
        settings = settings_from_mapping({"compare": "latest", "fail_inconclusive": strict})
        choice = choose_baseline(settings, storage_uri=uri, fingerprint="fp-a")
        report = run_gate(head, settings, choice, test_args=["benchmarks/", "-k", "decode and 1.5b"])
        assert report.comparison is not None
        assert report.comparison.verdicts[0].outcome == "inconclusive"
        (line,) = [line for line in report.text.splitlines() if line.startswith("next: ")]
        assert "run `pytest-tee ab --base 0123456789ab --blocks " in line
        assert line.split("`")[1].endswith("-- benchmarks/ -k 'decode and 1.5b'")
        assert ("--tee-fail-inconclusive" in line) is not strict
        assert report.exit_code == (1 if strict else 0)
        assert line in report.markdown
    quiet = tmp_path / "quiet"
    write(quiet / "m/0001_main.json", document(environment(), {NODE: measurement(rates(10.0))}))
    latest = settings_from_mapping({"compare": "latest"})
    decided = run_gate(
        run_of(environment(), {NODE: measurement(rates(8.0, seed=5))}, label="this session"),
        latest,
        choose_baseline(latest, storage_uri=f"file://{quiet}", fingerprint="fp-a"),
    )
    assert decided.comparison is not None
    assert decided.comparison.verdicts[0].outcome == "regressed"
    assert "next: " not in decided.text


# --------------------------------------------------------------------------------------------------------------
# the two layouts of a saved run's environment record


def test_the_environment_record_is_read_from_either_layout() -> None:
    full = {**environment("fp-full"), "host": {"clocksource": "tsc", "memory": {"available_bytes": 123}}}
    benchmarks = {NODE: measurement(rates(10.0))}
    old = document(full, benchmarks)  # pytest-tee 0.1: the whole record in machine_info["tee"]
    new = document({k: full[k] for k in ("tee", "platform", "fingerprint", "fingerprint_fields")}, benchmarks)
    new["pytest_tee"] = {"schema": 2, "environment": full}  # 0.2: machine_info["tee"] holds the identity only

    for doc in (old, new):
        run = run_from_document(doc, label="run")
        assert run.fingerprint == "fp-full"
        assert run.environment["host"]["clocksource"] == "tsc"

    del new["pytest_tee"]["environment"]
    assert "host" not in run_from_document(new, label="run").environment  # the identity alone still reads
    del new["machine_info"]["tee"]
    with pytest.raises(RunFileError, match="no environment record"):
        run_from_document(new, label="run")
