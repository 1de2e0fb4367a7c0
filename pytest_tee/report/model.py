"""The cross-environment comparison: rows, cells, ratios with CIs, means across sizes, roofline, findings.

Everything the renderers and plots show is computed here once, so the terminal table, markdown, JSON, HTML and
the plots always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pytest_tee.report.comparability import Difference, differences
from pytest_tee.report.data import (
    RATIO_METRICS,
    CellChoice,
    Inputs,
    RowKey,
    SavedRun,
    Source,
    Workload,
    choose_cells,
    environment_sort_key,
)
from pytest_tee.report.formatting import number
from pytest_tee.report.history import History
from pytest_tee.report.roofline import Roofline, roofline
from pytest_tee.report.stats import (
    DEFAULT_SEED,
    RESAMPLES,
    Estimate,
    RatioEstimate,
    estimate,
    mean_of_ratios,
    ratio_of_medians,
    ratio_of_values,
)

TABLE_METRICS = ("decode_tps", "e2e_tps", "ttft_s")
PAPER_MEAN_GPU_CPU = 12.0


def split_env(name: str) -> tuple[str, str]:
    """Execution environment name → (tee, device): ``tdx-cuda`` → ("tdx", "cuda"), ``cpu`` → ("none", "cpu")."""
    if name in ("cpu", "cuda"):
        return "none", name
    if name.endswith("-cuda"):
        return name.removesuffix("-cuda"), "cuda"
    return name, "cpu"


@dataclass(frozen=True)
class RatioKind:
    name: str  # "gpu/cpu", "tdx/cpu", …: the key in JSON
    label: str  # "GPU/CPU", "TDX/CPU", …
    numerator: str  # execution environment
    denominator: str
    kind: str  # "gpu-cpu" | "tee-cpu" | "tee-gpu" (what the ratio compares on purpose)

    @property
    def is_tee(self) -> bool:
        return self.kind.startswith("tee")

    @property
    def overhead_label(self) -> str:
        return f"{self.numerator.upper()} overhead" if self.kind == "tee-cpu" else f"{self.label} overhead"


def ratio_kinds(environments: Sequence[str]) -> list[RatioKind]:
    """The ratios these environments allow: GPU/CPU, each TEE against bare CPU or GPU, and GPU/CPU inside a TEE."""
    present = set(environments)
    kinds: list[RatioKind] = []
    if {"cpu", "cuda"} <= present:
        kinds.append(RatioKind("gpu/cpu", "GPU/CPU", "cuda", "cpu", "gpu-cpu"))
    for env in environments:
        tee, device = split_env(env)
        if tee == "none":
            continue
        if device == "cpu" and "cpu" in present:
            kinds.append(RatioKind(f"{env}/cpu", f"{env.upper()}/CPU", env, "cpu", "tee-cpu"))
        if device == "cuda" and "cuda" in present:
            kinds.append(RatioKind(f"{env}/cuda", f"{env.upper()}/CUDA", env, "cuda", "tee-gpu"))
        if device == "cuda" and tee in present:
            kinds.append(RatioKind(f"{env}/{tee}", f"{env.upper()}/{tee.upper()}", env, tee, "gpu-cpu"))
    return kinds


@dataclass(frozen=True)
class Bandwidth:
    """Memory read bandwidth given on the command line; it takes precedence over what a run recorded.

    A bare value applies to CPU environments only (a GPU's memory is another limit): ``cuda=3350`` sets a GPU's.
    """

    default_gbps: float | None = None
    by_env: Mapping[str, float] = field(default_factory=dict)

    def for_cell(self, env: str, saved: SavedRun) -> tuple[float, str] | None:
        if env in self.by_env:
            return self.by_env[env], f"--bandwidth {env}={self.by_env[env]:g}"
        if split_env(env)[1] != "cpu":
            return None
        if self.default_gbps is not None:
            return self.default_gbps, "--bandwidth"
        recorded = saved.recorded_bandwidth_gbps
        if recorded is not None:
            return recorded, f"recorded in {saved.label}"
        return None


@dataclass
class Cell:
    env: str
    source: Source
    superseded: list[Source]
    estimates: dict[str, Estimate]
    roofline: Roofline | None = None
    roofline_missing: str | None = None  # why there is no roofline for this cell

    @property
    def run_label(self) -> str:
        return self.source.saved.label

    @property
    def dtype(self) -> str | None:
        return self.source.measurement.tee.get("dtype")

    @property
    def weights(self) -> str | None:
        return self.source.measurement.tee.get("weights")

    @property
    def threads(self) -> int | None:
        return self.source.measurement.tee.get("threads")


@dataclass
class Ratio:
    kind: RatioKind
    metric: str
    estimate: RatioEstimate
    differences: list[Difference]

    @property
    def value(self) -> float:
        return self.estimate.value

    @property
    def ci95(self) -> tuple[float, float] | None:
        return self.estimate.ci95

    @property
    def overhead(self) -> tuple[float, tuple[float, float] | None] | None:
        """1 − ratio for TEE ratios (the cost of the trust boundary), with its CI."""
        if not self.kind.is_tee:
            return None
        ci = (1 - self.ci95[1], 1 - self.ci95[0]) if self.ci95 else None
        return 1 - self.value, ci


@dataclass
class Row:
    checkpoint: str
    parameters: int | None
    workload: Workload
    cells: dict[str, Cell]
    ratios: dict[str, Ratio] = field(default_factory=dict)
    engine: str = "transformers"
    quantization: str = ""

    @property
    def size_label(self) -> str:
        return size_label(self.parameters) or self.checkpoint


def size_label(parameters: int | None) -> str | None:
    return f"{parameters / 1e9:.3g}B" if parameters else None


@dataclass(frozen=True)
class MeanRatio:
    kind: RatioKind
    workload: Workload
    value: float
    ci95: tuple[float, float] | None
    members: tuple[tuple[str, float], ...]  # (checkpoint, ratio) averaged, smallest model first
    engine: str = "transformers"  # a mean never mixes engines or quantizations
    quantization: str = ""


@dataclass(frozen=True)
class Finding:
    """A qualitative claim of the paper next to what these runs show (never a pass/fail)."""

    claim: str
    observed: str


@dataclass
class Report:
    metric: str
    environments: list[str]
    ratio_kinds: list[RatioKind]
    rows: list[Row]
    means: list[MeanRatio]
    findings: list[Finding]
    runs: tuple[SavedRun, ...]
    notes: list[str]
    seed: int = DEFAULT_SEED
    resamples: int = RESAMPLES
    history: History | None = None  # with --history

    @property
    def has_engines(self) -> bool:
        """Engine and quantization columns: shown once any row is not transformers (older reports stay as they were)."""
        return any(row.engine != "transformers" for row in self.rows)

    @property
    def has_roofline(self) -> bool:
        return any(cell.roofline for row in self.rows for cell in row.cells.values())

    @property
    def workloads(self) -> list[Workload]:
        return sorted({row.workload for row in self.rows}, key=Workload.sort_key)


def build_report(
    inputs: Inputs,
    *,
    metric: str = "decode_tps",
    bandwidth: Bandwidth | None = None,
    seed: int = DEFAULT_SEED,
) -> Report:
    if metric not in RATIO_METRICS:
        raise ValueError(f"ratio metric must be one of {', '.join(RATIO_METRICS)}")
    bandwidth = bandwidth or Bandwidth()
    chosen = choose_cells(inputs.runs)
    environments = sorted({env for by_env in chosen.values() for env in by_env}, key=environment_sort_key)
    kinds = ratio_kinds(environments)
    rows = [
        _row(key, by_env, kinds, metric=metric, bandwidth=bandwidth, seed=seed)
        for key, by_env in sorted(chosen.items(), key=lambda item: _row_order(item[0], item[1]))
    ]
    means = _means(rows, kinds)
    return Report(
        metric=metric,
        environments=environments,
        ratio_kinds=kinds,
        rows=rows,
        means=means,
        findings=_findings(rows, kinds, means),
        runs=inputs.runs,
        notes=_notes(inputs, rows, bandwidth),
        seed=seed,
    )


def _row_order(key: RowKey, by_env: Mapping[str, CellChoice]) -> tuple[int, str, tuple[int, int, int], str, str]:
    parameters = _parameters(key, by_env)
    size = parameters if parameters is not None else 2**62
    return (size, key.checkpoint, key.workload.sort_key(), key.engine, key.quantization)


def _parameters(key: RowKey, by_env: Mapping[str, CellChoice]) -> int | None:
    for choice in by_env.values():
        if choice.chosen.measurement.parameters:
            return choice.chosen.measurement.parameters
    try:
        from pytest_tee.checkpoints import catalogue

        return int(catalogue.get(key.checkpoint).parameters)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):  # an id it does not know: sorts last
        return None


def _row(
    key: RowKey,
    by_env: Mapping[str, CellChoice],
    kinds: Sequence[RatioKind],
    *,
    metric: str,
    bandwidth: Bandwidth,
    seed: int,
) -> Row:
    parameters = _parameters(key, by_env)
    cells = {
        env: _cell(env, choice, key, parameters, metric, bandwidth)
        for env, choice in sorted(by_env.items(), key=lambda item: environment_sort_key(item[0]))
    }
    row = Row(key.checkpoint, parameters, key.workload, cells, engine=key.engine, quantization=key.quantization)
    for kind in kinds:
        top, bottom = cells.get(kind.numerator), cells.get(kind.denominator)
        if top is None or bottom is None:
            continue
        label = key.checkpoint if key.engine == "transformers" else f"{key.checkpoint}|{key.engine}|{key.quantization}"
        found = _ratio(top, bottom, metric, seed=seed, name=f"{label}|{key.workload.label}|{kind.name}")
        if found is not None:
            row.ratios[kind.name] = Ratio(kind, metric, found, differences(top.source, bottom.source, kind=kind.kind))
    return row


def _cell(env: str, choice: CellChoice, key: RowKey, parameters: int | None, metric: str, bandwidth: Bandwidth) -> Cell:
    measurement = choice.chosen.measurement
    estimates: dict[str, Estimate] = {}
    for name in dict.fromkeys((*TABLE_METRICS, metric)):
        found = estimate(name, measurement.samples(name), measurement.metrics.get(name))
        if found is not None:
            estimates[name] = found
    cell = Cell(env, choice.chosen, choice.superseded, estimates)
    decode = estimates.get("decode_tps")
    limit = bandwidth.for_cell(env, choice.chosen.saved)
    if decode is None:
        cell.roofline_missing = "no decode rate"
    elif limit is None:
        cell.roofline_missing = "no memory bandwidth for this environment"
    else:
        cell.roofline, cell.roofline_missing = roofline(
            checkpoint_id=key.checkpoint,
            parameters=parameters,
            dtype=measurement.tee.get("dtype"),
            workload=key.workload,
            # transformers keeps the parameters × dtype arithmetic (input embedding excluded); GGUF engines record
            # the tensor bytes a decode step reads, since quantized weights have no whole bytes per weight.
            weight_bytes=(measurement.tee.get("engine") or {}).get("weight_bytes")
            if key.engine != "transformers"
            else None,
            quantization=key.quantization,
            decode_tps=decode.median,
            decode_ci95=decode.ci95,
            bandwidth_gbps=limit[0],
            bandwidth_source=limit[1],
        )
    return cell


def _ratio(top: Cell, bottom: Cell, metric: str, *, seed: int, name: str) -> RatioEstimate | None:
    top_samples = top.source.measurement.samples(metric)
    bottom_samples = bottom.source.measurement.samples(metric)
    if top_samples and bottom_samples:
        return ratio_of_medians(top_samples, bottom_samples, seed=seed, name=name)
    a, b = top.estimates.get(metric), bottom.estimates.get(metric)
    return ratio_of_values(a.median, b.median) if a and b else None


def _means(rows: Sequence[Row], kinds: Sequence[RatioKind]) -> list[MeanRatio]:
    means: list[MeanRatio] = []
    workloads = sorted({row.workload for row in rows}, key=Workload.sort_key)
    engines = list(dict.fromkeys((row.engine, row.quantization) for row in rows))
    for workload in workloads:
        for engine, quantization in engines:
            for kind in kinds:
                members = [
                    row
                    for row in rows
                    if row.workload == workload
                    and (row.engine, row.quantization) == (engine, quantization)
                    and kind.name in row.ratios
                ]
                if not members:
                    continue
                value, ci = mean_of_ratios([row.ratios[kind.name].estimate for row in members])
                pairs = tuple((row.checkpoint, row.ratios[kind.name].value) for row in members)
                means.append(MeanRatio(kind, workload, value, ci, pairs, engine, quantization))
    return means


def _findings(rows: Sequence[Row], kinds: Sequence[RatioKind], means: Sequence[MeanRatio]) -> list[Finding]:
    findings: list[Finding] = []
    for mean in means:
        if mean.kind.name != "gpu/cpu":
            continue
        members = [row for row in rows if row.workload == mean.workload and "gpu/cpu" in row.ratios]
        ci = f" [{number(mean.ci95[0])}, {number(mean.ci95[1])}]" if mean.ci95 else ""
        findings.append(
            Finding(
                "the GPU/CPU ratio averages about 12 across model sizes",
                f"mean GPU/CPU {number(mean.value)}{ci} over {len(members)} size(s), workload {mean.workload.label}",
            )
        )
        if len(members) >= 2:
            values = [row.ratios["gpu/cpu"].value for row in members]
            rising = all(b >= a for a, b in pairwise(values))
            series = ", ".join(f"{row.size_label} {number(v)}" for row, v in zip(members, values, strict=True))
            findings.append(
                Finding(
                    "smaller models have a lower GPU/CPU ratio",
                    f"{'yes' if rising else 'no'}: {series} (point estimates, workload {mean.workload.label})",
                )
            )
    if any(kind.name == "tdx/cpu" for kind in kinds):
        findings += _tdx_findings(rows)
    return findings


def _tdx_findings(rows: Sequence[Row]) -> list[Finding]:
    findings: list[Finding] = []
    for workload in sorted({row.workload for row in rows}, key=Workload.sort_key):
        members = [row for row in rows if row.workload == workload and "tdx/cpu" in row.ratios]
        if not members:
            continue
        smallest = members[0]
        ratio = smallest.ratios["tdx/cpu"]
        findings.append(
            Finding(
                "for the smallest model (1.5B) TDX is faster than plain CPU",
                f"{smallest.size_label} {workload.label}: TDX/CPU {number(ratio.value)}{_ci_text(ratio.ci95)} — "
                f"{_verdict_against_one(ratio.ci95, 'TDX')}{_confounders(ratio)}",
            )
        )
    return findings


def _verdict_against_one(ci: tuple[float, float] | None, tee: str) -> str:
    if ci is None:
        return "too few rounds to tell"
    if ci[0] > 1:
        return f"{tee} faster (CI above 1)"
    if ci[1] < 1:
        return f"{tee} slower (CI below 1)"
    return "no clear difference (CI includes 1)"


def _confounders(ratio: Ratio) -> str:
    if not ratio.differences:
        return "; the two environments match in every recorded fact but the TEE"
    listed = ", ".join(difference.label for difference in ratio.differences)
    return f"; the environments also differ in {listed}, which may explain the difference rather than the TEE"


def _ci_text(ci: tuple[float, float] | None) -> str:
    return f" [{number(ci[0])}, {number(ci[1])}]" if ci else ""


def _superseded_notes(rows: Sequence[Row]) -> list[str]:
    """One note per environment and set of runs, listing the cells where newer measurements replaced older ones."""
    grouped: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for row in rows:
        for env, cell in row.cells.items():
            if cell.superseded:
                older = tuple(dict.fromkeys(source.saved.label for source in cell.superseded))
                key = (env, f"{cell.run_label} ({cell.source.saved.when})", older)
                grouped.setdefault(key, []).append(f"{row.checkpoint} {row.workload.label}")
    return [
        f"{env}: several runs measured {', '.join(cells)}; the newest, {newest}, is used, not {', '.join(older)}"
        for (env, newest, older), cells in grouped.items()
    ]


def _notes(inputs: Inputs, rows: Sequence[Row], bandwidth: Bandwidth) -> list[str]:
    notes = _superseded_notes(rows)
    for saved in inputs.runs:
        if saved.run.skipped_benchmarks:
            notes.append(
                f"{saved.label}: {len(saved.run.skipped_benchmarks)} benchmark(s) without pytest-tee data left out"
            )
    if inputs.passed_over:
        notes.append(
            f"{len(inputs.passed_over)} file(s) that are not pytest-tee runs passed over: "
            + "; ".join(inputs.passed_over)
        )
    counts = {
        estimate.n
        for row in rows
        for cell in row.cells.values()
        for estimate in cell.estimates.values()
        if estimate.ci_level is not None and estimate.ci_level < 0.95
    }
    short = sorted(n for n in counts if n >= 2)
    if short:
        notes.append(
            "cells with " + ", ".join(map(str, short)) + " rounds: their median CI is [min, max] of the rounds, "
            "which covers the median with less than 95 % probability (exact coverage in the JSON as ci_level)"
        )
    if 1 in counts:
        notes.append("cells with a single round have no CI, and ratios involving them none either")
    present = {env for row in rows for env in row.cells}
    for env in sorted(set(bandwidth.by_env) - present):
        notes.append(
            f"--bandwidth {env}=…: no {env} measurements in these runs (they hold {', '.join(sorted(present))})"
        )
    if not any(cell.roofline for row in rows for cell in row.cells.values()):
        notes.append(
            "no memory bandwidth known: record it with --tee-bandwidth or give --bandwidth GBPS to see how close "
            "each decode rate is to the bandwidth limit"
        )
    return notes
