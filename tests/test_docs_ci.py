"""The CI recipes in docs/ci parse, have the jobs docs/ci.md describes, and every pytest / pytest-tee command in
them parses with the real option parsers, so a renamed or removed option breaks this test, not a user's CI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_tee.cli import build_parser
from pytest_tee.settings import resolve

CI = Path(__file__).resolve().parent.parent / "docs" / "ci"
GATE_WORKFLOW = CI / "github-actions-tdx.yml"
AB_WORKFLOW = CI / "github-actions-tdx-ab.yml"

# What each GitHub expression used inside a run script stands for when the command is checked.
EXPRESSIONS = {
    "github.event.pull_request.base.sha": "0123456789abcdef0123456789abcdef01234567",
    "steps.baseline.outputs.cache-matched-key == '' && '--tee-allow-missing-baseline' || ''": (
        "--tee-allow-missing-baseline"
    ),
}
OPERATORS = {"|", "||", "&&", ";", "&"}
REDIRECTS = {">", ">>", "<", "2>", "2>>"}


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    return workflow.get("on", workflow.get(True))


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def run_scripts(workflow: dict[Any, Any], job: str) -> list[str]:
    return [step["run"] for step in steps(workflow, job) if "run" in step]


def substitute_expressions(script: str) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in EXPRESSIONS, f"add ${{{{ {expression} }}}} to EXPRESSIONS in {__file__}"
        return EXPRESSIONS[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", value, script)


def shell_commands(script: str) -> list[list[str]]:
    """Simple commands of a run script (pipelines, lists and redirections split apart; continuations joined)."""
    commands: list[list[str]] = []
    for line in substitute_expressions(script).replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        skip_target = False
        for token in lexer:
            if skip_target:
                skip_target = False
            elif token in OPERATORS:
                commands.append(current)
                current = []
            elif token in REDIRECTS:
                skip_target = True
            else:
                current.append(token)
        commands.append(current)
    return [command for command in commands if command]


def program(command: list[str]) -> tuple[str, list[str]]:
    """("pytest" | "pytest-tee" | other, arguments)."""
    name = Path(command[0]).name
    if name.startswith("python") and command[1:3] == ["-m", "pytest"]:
        return "pytest", command[3:]
    return name, command[1:]


def commands_of(workflow: dict[Any, Any], job: str, wanted: str) -> list[list[str]]:
    found = []
    for script in run_scripts(workflow, job):
        for command in shell_commands(script):
            name, arguments = program(command)
            if name == wanted:
                found.append(arguments)
    return found


def parse_pytest(pytester: pytest.Pytester, arguments: list[str]) -> pytest.Config:
    """The pytest command line as pytest itself parses it, with pytest-tee's settings resolved (no test runs)."""
    try:
        config = pytester.parseconfig(*arguments)
    except pytest.UsageError as exc:
        pytest.fail(f"pytest {shlex.join(arguments)}: {exc}")
    resolve(config, environ={})  # every value valid, and consistent with the others
    return config


def parse_pytest_tee(arguments: list[str]) -> Any:
    try:
        return build_parser().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"pytest-tee {shlex.join(arguments)} does not parse (see the usage message above)")


def all_commands() -> list[tuple[str, str, str, list[str]]]:
    rows = []
    for path in (GATE_WORKFLOW, AB_WORKFLOW):
        workflow = load(path)
        for job in workflow["jobs"]:
            for script in run_scripts(workflow, job):
                for command in shell_commands(script):
                    name, arguments = program(command)
                    if name in ("pytest", "pytest-tee"):
                        rows.append((path.name, job, name, arguments))
    return rows


# ------------------------------------------------------------------------------------------------- structure


def test_shell_command_splitting_handles_pipes_redirections_and_continuations():
    script = 'a --x=1 \\\n  --y 2 | tee out.md >> "$GITHUB_STEP_SUMMARY"\n'
    script += "b && c ${{ github.event.pull_request.base.sha }}"
    assert shell_commands(script) == [
        ["a", "--x=1", "--y", "2"],
        ["tee", "out.md"],
        ["b"],
        ["c", EXPRESSIONS["github.event.pull_request.base.sha"]],
    ]


def test_gate_workflow_saves_on_main_and_compares_on_pull_requests():
    workflow = load(GATE_WORKFLOW)
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on
    assert set(workflow["jobs"]) == {"baseline", "gate"}
    for job in ("baseline", "gate"):
        assert workflow["jobs"][job]["runs-on"] == ["self-hosted", "tdx"]
    assert workflow["jobs"]["baseline"]["if"] == "github.event_name == 'push'"
    assert workflow["jobs"]["gate"]["if"] == "github.event_name == 'pull_request'"

    (measure,) = commands_of(workflow, "baseline", "pytest")
    assert {"--tee=tdx", "--tee-attest", "--benchmark-autosave"} <= set(measure)
    (compare,) = commands_of(workflow, "gate", "pytest")
    assert {"--tee=tdx", "--tee-compare=latest", "--tee-fail-drop=decode_tps:5%"} <= set(compare)
    assert any(argument.startswith("--tee-summary=") for argument in compare)


def test_gate_workflow_restores_in_pull_requests_what_main_saves():
    workflow = load(GATE_WORKFLOW)
    uses = {job: [step.get("uses", "") for step in steps(workflow, job)] for job in workflow["jobs"]}
    (save,) = [s for s in steps(workflow, "baseline") if s.get("uses", "").startswith("actions/cache/save@")]
    (restore,) = [s for s in steps(workflow, "gate") if s.get("uses", "").startswith("actions/cache/restore@")]
    assert save["with"]["path"] == restore["with"]["path"] == ".benchmarks"
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"])
    assert restore["id"] == "baseline"  # the missing-baseline expression reads steps.baseline.outputs
    # main restores its own history first, so that the saved folder keeps every earlier run
    assert any(use.startswith("actions/cache/restore@") for use in uses["baseline"])
    names = [step.get("uses", "") or step.get("run", "") for step in steps(workflow, "baseline")]
    restore_at = next(i for i, n in enumerate(names) if n.startswith("actions/cache/restore@"))
    measure_at = next(i for i, n in enumerate(names) if "pytest benchmarks/" in n)
    save_at = next(i for i, n in enumerate(names) if n.startswith("actions/cache/save@"))
    assert restore_at < measure_at < save_at


def test_ab_workflow_runs_pytest_tee_ab_against_the_base_commit_into_the_job_summary():
    workflow = load(AB_WORKFLOW)
    assert "pull_request" in triggers(workflow)
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "tdx"]
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0
    (ab_step,) = [step for step in job["steps"] if "pytest-tee ab" in step.get("run", "")]
    assert ab_step["shell"] == "bash"  # GitHub runs `shell: bash` with -o pipefail: the exit status survives tee
    assert '>> "$GITHUB_STEP_SUMMARY"' in ab_step["run"]
    (arguments,) = [args for args in commands_of(workflow, "ab", "pytest-tee") if args[0] == "ab"]
    parsed = parse_pytest_tee(arguments)
    assert parsed.command == "ab"
    assert parsed.base == EXPRESSIONS["github.event.pull_request.base.sha"]
    assert parsed.format == "md"
    assert parsed.pytest_args[0] == "benchmarks/"


# ------------------------------------------------------------------------------------------------- commands


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workflow", "job", "name", "arguments"),
    all_commands(),
    ids=[f"{path}:{job}:{name}-{i}" for i, (path, job, name, _) in enumerate(all_commands())],
)
def test_every_command_in_the_recipes_parses_with_the_real_parsers(
    pytester: pytest.Pytester, workflow: str, job: str, name: str, arguments: list[str]
):
    if name == "pytest":
        config = parse_pytest(pytester, arguments)
        # No option swallowed a test path (an optional value such as --tee-compare would).
        assert [arg for arg in config.args if not arg.startswith("-")] == ["benchmarks/"]
        return
    parsed = parse_pytest_tee(arguments)
    if parsed.command == "ab":
        config = parse_pytest(pytester, parsed.pytest_args)
        assert config.args == ["benchmarks/"]


def test_a_renamed_option_would_fail_the_check(pytester: pytest.Pytester):
    with pytest.raises(pytest.fail.Exception, match="--tee-fail-below"):
        parse_pytest(pytester, ["benchmarks/", "--tee-fail-below=decode_tps:5%"])
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        parse_pytest_tee(["ab", "--base", "main", "--fail-below", "5%", "--", "benchmarks/"])


def test_the_missing_baseline_flag_and_summary_resolve_to_settings(pytester: pytest.Pytester):
    (compare,) = commands_of(load(GATE_WORKFLOW), "gate", "pytest")
    settings = resolve(parse_pytest(pytester, compare), environ={})
    assert settings.compare == "latest"
    assert settings.fail_drop == (("decode_tps", 5.0),)
    assert settings.allow_missing_baseline is True
    assert settings.summary is not None
    assert settings.tee == "tdx"
