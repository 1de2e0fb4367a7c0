"""Every pytest-tee option, declared once: command line flag, ini key and ``PYTEST_TEE_*`` variable.

Precedence is command line > environment variable > ini file > default. Each value is checked by one parser
function; a bad value is a usage error that names where it came from (the flag, the variable or the ini key)
and what would be valid.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

TEE_CHOICES = ("auto", "none", "tdx", "sev-snp")
DEVICE_CHOICES = ("cpu", "cuda")
WEIGHTS_CHOICES = ("auto", "real", "synthetic")
DTYPE_CHOICES = ("auto", "bfloat16", "float16", "float32")
DEFAULT_MODEL = "r1-distill-qwen-1.5b"


class SettingError(ValueError):
    """A value that does not parse; the message says what would be valid."""


# ---------------------------------------------------------------------------------------------------------------
# Parsers: str -> value, raising SettingError with a message that says what is valid.


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise SettingError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


def parse_devices(text: str) -> tuple[str, ...]:
    """``auto`` → () (every device this host offers), else a comma list of cpu/cuda."""
    value = text.strip().lower()
    if value == "auto":
        return ()
    items = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    bad = [item for item in items if item not in DEVICE_CHOICES]
    if bad or not items:
        raise SettingError(f"{text!r} is not auto or a comma list of {', '.join(DEVICE_CHOICES)}")
    return items


def parse_models(text: str) -> tuple[str, ...]:
    from pytest_tee.checkpoints.catalogue import resolve_id

    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise SettingError("no checkpoint id given")
    try:
        return tuple(dict.fromkeys(resolve_id(item) for item in items))
    except KeyError as exc:
        raise SettingError(str(exc.args[0])) from None


def parse_engines(text: str) -> tuple[str, ...]:
    """A comma list of engine names (``transformers``, ``llama.cpp``, …), in the order given."""
    from pytest_tee.engines import ENGINE_NAMES

    items = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    aliases = {"llama_cpp": "llama.cpp", "llamacpp": "llama.cpp", "llama-cpp": "llama.cpp"}
    items = tuple(dict.fromkeys(aliases.get(item, item) for item in items))
    bad = [item for item in items if item not in ENGINE_NAMES]
    if bad or not items:
        raise SettingError(f"{text!r} is not a comma list of engines: {', '.join(ENGINE_NAMES)}")
    return items


def parse_quants(text: str) -> tuple[str, ...]:
    """A comma list of GGUF quantizations (``Q4_K_M``, ``Q8_0``, ``F16``, ``BF16``, …), case-insensitive."""
    from pytest_tee.checkpoints.gguf_quant import QUANTS, canonical_quant

    items = [part for part in text.split(",") if part.strip()]
    if not items:
        raise SettingError(f"{text!r} names no quantization; valid: {', '.join(QUANTS)}")
    try:
        return tuple(dict.fromkeys(canonical_quant(item) for item in items))
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def parse_endpoint_url(text: str) -> str:
    """An http(s) URL of an OpenAI-compatible server (``…/v1`` accepted); its canonical base URL."""
    from pytest_tee.serving.endpoint import EndpointError, parse_endpoint

    try:
        return parse_endpoint(text).base_url
    except EndpointError as exc:
        raise SettingError(str(exc)) from None


def parse_server_kind(text: str) -> str:
    from pytest_tee.serving.endpoint import SERVER_KINDS

    return _choice(SERVER_KINDS)(text)


def parse_env_name(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise SettingError(f"{text!r} is not an environment variable name such as OPENAI_API_KEY")
    return value


def parse_model_name(text: str) -> str:
    value = text.strip()
    if not value:
        raise SettingError("empty model name; give the id the server lists at /v1/models")
    return value


# Request fields the openai engine sets itself: extra fields may not replace them.
PROTECTED_REQUEST_FIELDS = ("model", "prompt", "max_tokens", "min_tokens", "stream", "stream_options", "n")


def parse_request_extra(text: str) -> str:
    """A JSON object of extra request fields (e.g. ``{"logit_bias": {"42": -100}}``); kept as canonical JSON."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingError(f'{text!r} is not JSON ({exc.msg}); give an object such as {{"top_k": 1}}') from None
    if not isinstance(value, dict):
        raise SettingError(f"{text!r} is not a JSON object of request fields")
    clash = sorted(set(value) & set(PROTECTED_REQUEST_FIELDS))
    if clash:
        raise SettingError(f"{', '.join(clash)}: set by pytest-tee for exactly N streamed tokens; not allowed here")
    return json.dumps(value, sort_keys=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise SettingError(f"{text!r} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise SettingError(f"{text!r} must be 0 or more")
    return value


def parse_percent(text: str) -> float:
    """``2``, ``2%`` or ``2.5%`` → 2.5 (a percentage, not a fraction)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*", text)
    if not match:
        raise SettingError(f"{text!r} is not a percentage such as 2 or 2.5%")
    value = float(match.group(1))
    if not 0 < value < 100:
        raise SettingError(f"{text!r} must be above 0 % and below 100 %")
    return value


def parse_seconds(text: str) -> float:
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(s|m|min)?\s*", text)
    if not match:
        raise SettingError(f"{text!r} is not a duration such as 300, 300s or 5m")
    value = float(match.group(1)) * (60 if match.group(2) in ("m", "min") else 1)
    if value <= 0:
        raise SettingError(f"{text!r} must be longer than 0 seconds")
    return value


def parse_fail_drop(text: str) -> tuple[tuple[str, float], ...]:
    """``decode_tps:5%,ttft_s:10%`` → (("decode_tps", 5.0), ("ttft_s", 10.0)); a bare ``5%`` means decode_tps."""
    from pytest_tee.measure.metrics import METRICS

    rules: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        metric, _, pct = part.rpartition(":")
        metric = metric.strip() or "decode_tps"
        if metric not in METRICS:
            raise SettingError(f"unknown metric {metric!r} in {text!r}; metrics are {', '.join(METRICS)}")
        try:
            rules[metric] = parse_percent(pct)
        except SettingError as exc:
            raise SettingError(f"{part!r}: {exc}") from None
    if not rules:
        raise SettingError(f"{text!r} names no METRIC:PCT rule, e.g. decode_tps:5%")
    return tuple(rules.items())


def parse_model_paths(text: str) -> tuple[tuple[str, Path], ...]:
    """``ID=PATH[,ID=PATH…]``: a Hugging Face model directory (config.json), a ``.gguf`` file, or a directory
    holding GGUF files (one per quantization) for the llama.cpp engine."""
    from pytest_tee.checkpoints.catalogue import resolve_id

    pairs: dict[str, Path] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        ident, sep, raw_path = part.partition("=")
        if not sep or not ident.strip() or not raw_path.strip():
            raise SettingError(f"{part!r} is not ID=PATH, e.g. r1-distill-qwen-1.5b=/models/qwen-1.5b")
        try:
            ident = resolve_id(ident.strip())
        except KeyError as exc:
            raise SettingError(str(exc.args[0])) from None
        path = Path(raw_path.strip()).expanduser()
        if path.is_file() and (path.suffix.lower() == ".gguf" or _starts_as_gguf(path)):  # Ollama blobs: no suffix
            _check_gguf(ident, path)
            pairs[ident] = path
            continue
        if not path.is_dir():
            raise SettingError(f"{ident}: {path} is neither a directory nor a GGUF file")
        for gguf_file in sorted(path.glob("*.gguf")):
            _check_gguf(ident, gguf_file)
        if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
            raise SettingError(
                f"{ident}: {path} has no config.json and no .gguf file (expected a Hugging Face model directory, "
                "a .gguf file, or a directory of GGUF files)"
            )
        pairs[ident] = path
    if not pairs:
        raise SettingError(f"{text!r} names no ID=PATH pair")
    return tuple(pairs.items())


def _starts_as_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False


def _check_gguf(ident: str, path: Path) -> None:
    """A GGUF given as real weights must be whole and of this checkpoint's architecture (when gguf can read it)."""
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        return  # checked again at load, by llama.cpp itself
    from pytest_tee.checkpoints.catalogue import get
    from pytest_tee.checkpoints.gguf_files import GGUFError, check_matches, read_gguf

    try:
        check_matches(read_gguf(path), get(ident))
    except GGUFError as exc:
        raise SettingError(f"{ident}: {exc}") from None


def parse_sysroot(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise SettingError(f"{text!r} is not an existing directory")
    return path


def parse_output_path(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise SettingError(f"{text!r} is a directory; give a file path")
    return path


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingError(f"{text!r} is not a boolean (true/false, 1/0, yes/no)")


def parse_compare(text: str) -> str:
    """``latest`` (newest run with this environment fingerprint), a run number such as 0003, or a JSON file."""
    value = text.strip()
    if not value:
        raise SettingError("empty run name; give latest, a run number such as 0003, or a path to a saved run")
    # A bare --tee-compare followed by a test path would swallow the path as the run name.
    if "::" in value or value.endswith(".py") or Path(value).is_dir():
        raise SettingError(
            f"{value!r} looks like a test path, not a stored run; write --tee-compare=latest (or =0003, or "
            "=path/to/run.json) so that the path after it stays a test path"
        )
    return value


# ---------------------------------------------------------------------------------------------------------------
# The declaration table.


@dataclass(frozen=True)
class Option:
    dest: str  # Settings field and argparse dest (without the tee_ prefix)
    flag: str
    help: str
    parse: Callable[[str], Any] | None  # None: a boolean flag
    default: Any = None
    metavar: str | None = None
    optional_value: str | None = None  # a flag whose value may be omitted (nargs="?"): the value it then means

    @property
    def ini(self) -> str:
        return "tee_" + self.dest

    @property
    def env(self) -> str:
        return "PYTEST_TEE_" + self.dest.upper()

    @property
    def argparse_dest(self) -> str:
        return "tee_opt_" + self.dest


OPTIONS: tuple[Option, ...] = (
    Option(
        "tee",
        "--tee",
        "trust boundary this run claims; auto detects and records it",
        _choice(TEE_CHOICES),
        "auto",
        "auto|none|tdx|sev-snp",
    ),
    Option(
        "device",
        "--tee-device",
        "devices to measure on (auto: every device this host offers)",
        parse_devices,
        (),
        "auto|cpu|cuda[,…]",
    ),
    Option(
        "models",
        "--tee-models",
        f"checkpoint ids from the catalogue (default {DEFAULT_MODEL})",
        parse_models,
        (DEFAULT_MODEL,),
        "ID[,ID…]",
    ),
    Option(
        "weights",
        "--tee-weights",
        "real weights from disk, synthetic weights of the same shapes, or auto",
        _choice(WEIGHTS_CHOICES),
        "auto",
        "auto|real|synthetic",
    ),
    Option(
        "engine",
        "--tee-engine",
        "inference engines to measure, a collection dimension like --tee-device",
        parse_engines,
        ("transformers",),
        "transformers|llama.cpp|openai[,…]",
    ),
    Option(
        "quant",
        "--tee-quant",
        "GGUF quantizations the llama.cpp engine measures",
        parse_quants,
        ("Q4_K_M",),
        "Q4_K_M|Q8_0|F16|BF16[,…]",
    ),
    Option(
        "endpoint",
        "--tee-endpoint",
        "URL of the OpenAI-compatible streaming server the openai engine measures",
        parse_endpoint_url,
        None,
        "URL",
    ),
    Option(
        "served_model",
        "--tee-served-model",
        "model id the openai engine asks for (default: the one model the server lists)",
        parse_model_name,
        None,
        "NAME",
    ),
    Option(
        "server_kind",
        "--tee-server-kind",
        "how the server is asked for exactly N tokens (auto: from /v1/models)",
        parse_server_kind,
        "auto",
        "auto|vllm|sglang|llama.cpp|llama-cpp-python|ollama|tgi|generic",
    ),
    Option(
        "api_key_env",
        "--tee-api-key-env",
        "environment variable holding the server's API key (never stored)",
        parse_env_name,
        "OPENAI_API_KEY",
        "VAR",
    ),
    Option(
        "request_extra",
        "--tee-request-extra",
        "openai engine: JSON object of extra fields for every request (recorded, part of the comparison key)",
        parse_request_extra,
        None,
        "JSON",
    ),
    Option(
        "request_timeout",
        "--tee-request-timeout",
        "openai engine: seconds to wait for the first byte and between streamed chunks",
        parse_seconds,
        60.0,
        "S",
    ),
    Option(
        "dtype",
        "--tee-dtype",
        "weight dtype; auto picks bfloat16 where the device runs it fast",
        _choice(DTYPE_CHOICES),
        "auto",
        "auto|bfloat16|float16|float32",
    ),
    Option("prompt_tokens", "--tee-prompt-tokens", "prompt length in tokens", _positive_int, 128, "N"),
    Option("new_tokens", "--tee-new-tokens", "tokens generated per round", _positive_int, 32, "N"),
    Option("batch", "--tee-batch", "sequences per generate call", _positive_int, 1, "N"),
    Option(
        "rounds", "--tee-rounds", "measured rounds (the minimum when --tee-target-ci is set)", _positive_int, 5, "N"
    ),
    Option("warmup", "--tee-warmup", "warmup rounds, reported separately", _non_negative_int, 1, "N"),
    Option(
        "target_ci",
        "--tee-target-ci",
        "adaptive rounds: stop when the 95%% CI of median decode_tps is within ±PCT",
        parse_percent,
        None,
        "PCT",
    ),
    Option("max_time", "--tee-max-time", "time budget per benchmark for adaptive rounds", parse_seconds, 600.0, "S"),
    Option("max_rounds", "--tee-max-rounds", "round cap for adaptive rounds", _positive_int, 50, "N"),
    Option(
        "compare",
        "--tee-compare",
        "compare with a stored run (default: latest for this environment)",
        parse_compare,
        None,
        "RUN",
        optional_value="latest",
    ),
    Option(
        "fail_drop",
        "--tee-fail-drop",
        "fail when METRIC regressed by more than PCT, e.g. decode_tps:5%%",
        parse_fail_drop,
        None,
        "METRIC:PCT[,…]",
    ),
    Option("attest", "--tee-attest", "collect attestation evidence and bind the results to it", None, False),
    Option(
        "sysroot",
        "--tee-sysroot",
        "read /proc, /sys, /dev facts under DIR instead of /",
        parse_sysroot,
        Path("/"),
        "DIR",
    ),
    Option(
        "summary",
        "--tee-summary",
        "write a markdown summary (also appended to $GITHUB_STEP_SUMMARY)",
        parse_output_path,
        None,
        "PATH",
    ),
    Option(
        "model_path",
        "--tee-model-path",
        "real weights for a checkpoint from a local directory",
        parse_model_paths,
        (),
        "ID=PATH[,…]",
    ),
    Option("threads", "--tee-threads", "torch intra-op threads for the measured work", _positive_int, None, "N"),
    Option(
        "allow_env_mismatch",
        "--tee-allow-env-mismatch",
        "compare runs whose environment fingerprints differ",
        None,
        False,
    ),
    Option("fail_inconclusive", "--tee-fail-inconclusive", "fail the session on an inconclusive verdict", None, False),
    Option(
        "allow_missing_baseline",
        "--tee-allow-missing-baseline",
        "a missing baseline is a pass (first run on a branch) instead of an error",
        None,
        False,
    ),
    Option("verdicts", "--tee-verdicts", "write the gate's verdicts as JSON", parse_output_path, None, "PATH"),
    Option(
        "bandwidth", "--tee-bandwidth", "measure memory read bandwidth once and record it with the run", None, False
    ),
)


@dataclass(frozen=True)
class Settings:
    """The resolved, validated options of one session (stored in ``config.stash``)."""

    tee: str = "auto"
    device: tuple[str, ...] = ()
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    weights: str = "auto"
    engine: tuple[str, ...] = ("transformers",)
    quant: tuple[str, ...] = ("Q4_K_M",)
    endpoint: str | None = None
    served_model: str | None = None
    server_kind: str = "auto"
    api_key_env: str = "OPENAI_API_KEY"
    request_timeout: float = 60.0
    request_extra: str | None = None
    dtype: str = "auto"
    prompt_tokens: int = 128
    new_tokens: int = 32
    batch: int = 1
    rounds: int = 5
    warmup: int = 1
    target_ci: float | None = None
    max_time: float = 600.0
    max_rounds: int = 50
    compare: str | None = None
    fail_drop: tuple[tuple[str, float], ...] | None = None
    attest: bool = False
    sysroot: Path = Path("/")
    summary: Path | None = None
    model_path: tuple[tuple[str, Path], ...] = ()
    threads: int | None = None
    allow_env_mismatch: bool = False
    fail_inconclusive: bool = False
    allow_missing_baseline: bool = False
    verdicts: Path | None = None
    bandwidth: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def model_paths(self) -> dict[str, Path]:
        return dict(self.model_path)

    @property
    def gate_rules(self) -> tuple[tuple[str, float], ...]:
        """The regression rules in force: --tee-fail-drop, or decode_tps:5% when only --tee-compare is given."""
        return self.fail_drop or (("decode_tps", 5.0),)

    @property
    def gating(self) -> bool:
        return self.compare is not None or self.fail_drop is not None

    @property
    def configured(self) -> bool:
        """Whether any pytest-tee option was set (flag, variable or ini key): then the session uses pytest-tee."""
        return any(source != "default" for source in self.sources.values())


def _check_consistency(values: dict[str, Any]) -> None:
    if values["max_rounds"] < values["rounds"]:
        raise SettingError(
            f"--tee-max-rounds ({values['max_rounds']}) is below --tee-rounds ({values['rounds']}); "
            "the round cap must be at least the minimum"
        )


# ---------------------------------------------------------------------------------------------------------------
# pytest wiring.


def _argparse_type(option: Option) -> Callable[[str], Any]:
    assert option.parse is not None

    def parse(text: str) -> Any:
        try:
            return option.parse(text)  # type: ignore[misc]
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option.dest  # argparse shows this name in "invalid <name> value"
    return parse


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("tee", "pytest-tee: LLM tokens/s benchmarks in trust domains")
    for option in OPTIONS:
        help_text = f"{option.help} [env {option.env}, ini {option.ini}]"
        if option.parse is None:
            group.addoption(option.flag, action="store_true", default=None, dest=option.argparse_dest, help=help_text)
            parser.addini(option.ini, help=option.help, type="bool", default=None)
            continue
        kwargs: dict[str, Any] = {}
        if option.optional_value is not None:
            kwargs.update(nargs="?", const=option.optional_value)
        group.addoption(
            option.flag,
            dest=option.argparse_dest,
            default=None,
            type=_argparse_type(option),
            metavar=option.metavar,
            help=help_text,
            **kwargs,
        )
        parser.addini(option.ini, help=option.help, type="string", default=None)


def resolve(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every option (CLI > env > ini > default) into Settings; raise pytest.UsageError naming the source."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        value, source = _resolve_one(config, option, environ)
        values[option.dest] = value
        sources[option.dest] = source
    try:
        _check_consistency(values)
    except SettingError as exc:
        raise pytest.UsageError(f"pytest-tee: {exc}") from None
    return Settings(**values, sources=sources)


def _resolve_one(config: pytest.Config, option: Option, environ: Mapping[str, str]) -> tuple[Any, str]:
    cli_value = config.getoption(option.argparse_dest, default=None)
    if cli_value is not None:
        return cli_value, f"command line {option.flag}"
    raw = environ.get(option.env)
    if raw is not None:
        return _parse_from(option, raw, f"environment variable {option.env}"), f"environment variable {option.env}"
    ini_value = config.getini(option.ini)
    if ini_value is not None and ini_value != "":
        where = f"ini option {option.ini}" + (f" in {config.inipath}" if config.inipath else "")
        if isinstance(ini_value, bool):
            return ini_value, where
        return _parse_from(option, str(ini_value), where), where
    suite = config.stash.get(SUITE_DEFAULTS, {}).get(option.dest)
    if suite is not None:
        where = f"suite default for {option.flag} ({suite[1]})"
        return _parse_from(option, suite[0], where), where
    return option.default, "default"


SUITE_DEFAULTS = pytest.StashKey[dict[str, tuple[str, str]]]()


def set_suite_default(config: pytest.Config, dest: str, value: str, where: str) -> None:
    """A benchmark suite's own default for an option (below command line, environment and ini).

    Call it from the suite's conftest in a ``tryfirst`` ``pytest_configure``; ``where`` names the conftest for
    messages. The shipped suite uses it to measure both engines unless told otherwise.
    """
    if dest not in {option.dest for option in OPTIONS}:
        raise KeyError(f"unknown pytest-tee option {dest!r}")
    config.stash.setdefault(SUITE_DEFAULTS, {})[dest] = (value, where)


def explicitly_set(settings: Settings, dest: str) -> bool:
    """Whether the user asked for this option's value (command line, environment or ini), not a default."""
    source = settings.sources.get(dest, "default")
    return source != "default" and not source.startswith("suite default")


def _parse_from(option: Option, raw: str, where: str) -> Any:
    parse = option.parse or parse_bool
    try:
        return parse(raw)
    except SettingError as exc:
        raise pytest.UsageError(f"pytest-tee: {where}: {exc}") from None


def settings_from_mapping(values: Mapping[str, Any]) -> Settings:
    """Settings for code outside pytest (the CLI, tests): unknown keys are an error."""
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)
