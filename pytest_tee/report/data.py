"""The report's inputs: which saved runs are read, in what time order, and which measurement fills which cell.

A cell is one checkpoint × workload × execution environment. Runs from several machines are combined; when more
than one measurement holds the same cell, the newest one is used and the others are named in the report (pooling
would mix sessions whose between-session differences — other code, another boot, another thermal state — the
per-round samples do not describe).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pytest_tee.errors import InputError
from pytest_tee.saved_runs import BenchmarkEntry, Run, RunFileError, load_run, run_files

# Column order: the paper's order (CPU-only, CPU-GPU, TEE), then the other TEEs; unknown names sort after these.
ENVIRONMENT_ORDER = ("cpu", "cuda", "tdx", "tdx-cuda", "sev-snp", "sev-snp-cuda")
# The rates a ratio column can compare: higher is better for each, so 1 − a TEE ratio is the TEE's cost.
RATIO_METRICS = ("decode_tps", "e2e_tps", "prefill_tps")


@dataclass(frozen=True)
class SavedRun:
    """A run with what the report needs around it: a unique display label and its place in time."""

    run: Run
    label: str
    time: datetime | None
    order: int  # 0 = oldest

    @property
    def recorded_bandwidth_gbps(self) -> float | None:
        """Memory read bandwidth recorded with ``--tee-bandwidth`` (GB/s), if any."""
        section = self.run.document.get("pytest_tee")
        bandwidth = section.get("bandwidth") if isinstance(section, Mapping) else None
        value = bandwidth.get("read_gbps") if isinstance(bandwidth, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        return None

    @property
    def when(self) -> str:
        return self.time.strftime("%Y-%m-%d %H:%M") if self.time else (self.run.datetime or "unknown time")


@dataclass(frozen=True)
class Inputs:
    runs: tuple[SavedRun, ...]  # oldest first
    passed_over: tuple[str, ...]  # one "file: reason" per file in a folder that is not a pytest-tee run


def load_inputs(paths: Sequence[str | os.PathLike[str]]) -> Inputs:
    """Every pytest-tee run under ``paths`` (folders searched recursively), oldest first.

    Files inside folders that are not pytest-tee runs (other pytest-benchmark runs, verdict files) are passed
    over and listed; a file named explicitly must be a pytest-tee run.
    """
    explicit = {Path(p) for p in paths if not Path(p).is_dir()}
    runs: list[Run] = []
    passed_over: list[str] = []
    seen: set[Path] = set()
    for file in run_files(paths):
        if file.resolve() in seen:  # a folder and a file inside it, or the same folder twice
            continue
        seen.add(file.resolve())
        try:
            runs.append(load_run(file))
        except RunFileError as exc:
            if file in explicit:
                raise
            passed_over.append(str(exc))
    if not runs:
        names = ", ".join(str(p) for p in paths)
        reasons = "; ".join(passed_over[:3]) + ("; …" if len(passed_over) > 3 else "")
        raise InputError(
            f"{names}: no pytest-tee runs found ({len(passed_over)} file(s) passed over: {reasons}); "
            "give pytest-benchmark storage folders or run files saved with --benchmark-save/--benchmark-autosave "
            "from benchmarks that use the tokens_per_second fixture"
        )
    return Inputs(runs=order_runs(runs), passed_over=tuple(passed_over))


def order_runs(runs: Iterable[Run]) -> tuple[SavedRun, ...]:
    """Runs in time order (their pytest-benchmark ``datetime``; load order breaks ties and stands in for none)."""
    loaded = list(runs)
    times = [parse_time(run.datetime) for run in loaded]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    ranked = sorted(range(len(loaded)), key=lambda i: (times[i] or epoch, i))
    labels = unique_labels([loaded[i] for i in ranked])
    return tuple(
        SavedRun(run=loaded[i], label=label, time=times[i], order=position)
        for position, (i, label) in enumerate(zip(ranked, labels, strict=True))
    )


def parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def unique_labels(runs: Sequence[Run]) -> list[str]:
    """The file stem (``0003_main``); stems that several runs share are prefixed with the nearest folder that
    tells them apart: ``td/…/0001_x`` and ``gpu/…/0001_x`` for runs collected from several machines into
    ``collected/td/Linux-CPython-3.11-64bit/`` and ``collected/gpu/Linux-CPython-3.11-64bit/``.
    """
    labels = [run.label for run in runs]
    for stem in {label for label in labels if labels.count(label) > 1}:
        group = [i for i, run in enumerate(runs) if run.label == stem]
        folders = {i: _folders(runs[i]) for i in group}
        for depth in range(1, 1 + min(len(parts) for parts in folders.values())):
            names = {i: folders[i][-depth] for i in group}
            if len(set(names.values())) == len(group):
                for i in group:
                    labels[i] = f"{names[i]}/{stem}" if depth == 1 else f"{names[i]}/…/{stem}"
                break
        else:
            for position, i in enumerate(group, start=1):
                labels[i] = f"{stem}#{position}"
    return labels


def _folders(run: Run) -> tuple[str, ...]:
    return run.path.resolve().parent.parts[1:] if run.path is not None else ()


@dataclass(frozen=True, order=True)
class Workload:
    """The shape of the generated work: prompt tokens, new tokens per sequence, sequences per call."""

    prompt_tokens: int | None
    new_tokens: int | None
    batch: int | None

    @classmethod
    def of(cls, entry: BenchmarkEntry) -> Workload:
        workload = entry.measurement.workload
        return cls(workload.prompt_tokens, workload.new_tokens, workload.batch)

    @property
    def label(self) -> str:
        """``prompt/new/batch``, e.g. ``128/32/1``."""
        return "/".join(
            "?" if value is None else str(value) for value in (self.prompt_tokens, self.new_tokens, self.batch)
        )

    def sort_key(self) -> tuple[int, int, int]:
        big = 2**62
        return (
            big if self.prompt_tokens is None else self.prompt_tokens,
            big if self.new_tokens is None else self.new_tokens,
            big if self.batch is None else self.batch,
        )

    def to_dict(self) -> dict[str, int | None]:
        return {"prompt_tokens": self.prompt_tokens, "new_tokens": self.new_tokens, "batch": self.batch}


@dataclass(frozen=True)
class RowKey:
    checkpoint: str
    workload: Workload
    # Ratios pair cells of one row only: same checkpoint, workload, engine and quantization.
    engine: str = "transformers"
    quantization: str = ""


@dataclass(frozen=True)
class Source:
    """One measurement of a cell, with the run it came from."""

    saved: SavedRun
    entry: BenchmarkEntry
    position: int  # index within its run, so that a later measurement of the same session wins

    @property
    def rank(self) -> tuple[int, int]:
        return (self.saved.order, self.position)

    def describe(self) -> str:
        return f"{self.saved.label} ({self.saved.when}) {self.entry.fullname}"


@dataclass
class CellChoice:
    chosen: Source
    superseded: list[Source] = field(default_factory=list)


def choose_cells(runs: Sequence[SavedRun]) -> dict[RowKey, dict[str, CellChoice]]:
    """Row key → execution environment → the newest measurement of that cell (and the ones it replaced)."""
    grouped: dict[RowKey, dict[str, list[Source]]] = {}
    for saved in runs:
        for position, entry in enumerate(saved.run.measurements):
            if entry.measurement.load is not None:  # a serving load level: its own table (report.serving)
                continue
            # transformers' dtype may differ between devices by design (auto: bf16 on a GPU, fp32 on an old CPU):
            # it stays a listed difference beside the ratio. A GGUF's quantization is the model itself: its own row.
            quant = entry.quantization if entry.engine != "transformers" else ""
            key = RowKey(entry.checkpoint_id, Workload.of(entry), entry.engine, quant)
            grouped.setdefault(key, {}).setdefault(entry.execution_env, []).append(Source(saved, entry, position))
    cells: dict[RowKey, dict[str, CellChoice]] = {}
    for key, by_env in grouped.items():
        cells[key] = {}
        for env, sources in by_env.items():
            ranked = sorted(sources, key=lambda source: source.rank)
            cells[key][env] = CellChoice(chosen=ranked[-1], superseded=ranked[:-1])
    return cells


def environment_sort_key(name: str) -> tuple[int, str]:
    return (ENVIRONMENT_ORDER.index(name), "") if name in ENVIRONMENT_ORDER else (len(ENVIRONMENT_ORDER), name)
