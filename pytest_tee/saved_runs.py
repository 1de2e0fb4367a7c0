"""Reading saved runs: pytest-benchmark JSON files that carry pytest-tee measurements.

One reader for every consumer (the gate, ``pytest-tee compare``, ``report`` and ``verify``), so that a file is
judged the same way everywhere and a bad one is named in one clear message. Files are only ever read here.
The format is described in ``docs/results-format.md``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_tee.errors import InputError
from pytest_tee.records import RecordError, StoredMeasurement

RUN_FILE_PATTERN = re.compile(r"^\d{4}_.*\.json$")  # pytest-benchmark storage: NNNN_<name>.json


class RunFileError(InputError):
    """A saved run that cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class BenchmarkEntry:
    """One benchmark of a run: pytest's node id and what ``tokens_per_second`` recorded for it."""

    fullname: str
    name: str
    params: Mapping[str, Any] | None
    measurement: StoredMeasurement

    @property
    def execution_env(self) -> str:
        return self.measurement.execution_env

    @property
    def checkpoint_id(self) -> str:
        return self.measurement.checkpoint.id

    @property
    def parameters(self) -> int | None:
        return self.measurement.checkpoint.parameters

    @property
    def metrics(self) -> Mapping[str, Mapping[str, Any]]:
        return self.measurement.metrics

    def samples(self, metric: str) -> list[float]:
        return self.measurement.sample_values(metric)

    @property
    def comparison_key(self) -> Mapping[str, Any]:
        return self.measurement.comparison_key

    @property
    def engine(self) -> str:
        """The engine that measured this (results stored before engines were a dimension: transformers)."""
        return self.measurement.engine.name

    @property
    def quantization(self) -> str:
        """How the weights were stored as measured (a dtype for transformers, a GGUF type for llama.cpp)."""
        return str(self.measurement.engine.quantization or self.measurement.dtype or "unknown")

    def to_json(self) -> dict[str, Any]:
        """The entry as a ``benchmarks[]`` item of a pytest-benchmark document (pytest-tee's part only)."""
        return {
            "name": self.name,
            "fullname": self.fullname,
            "params": dict(self.params) if self.params is not None else None,
            "extra_info": {"tee": self.measurement.to_json()},
        }


@dataclass(frozen=True)
class Run:
    """A saved session: its environment record and its measurements."""

    label: str
    path: Path | None
    environment: Mapping[str, Any]  # the Environment record (see environment_record)
    datetime: str
    commit: Mapping[str, Any]
    measurements: tuple[BenchmarkEntry, ...]
    document: Mapping[str, Any] = field(repr=False)
    skipped_benchmarks: tuple[str, ...] = ()  # benchmarks in the file without pytest-tee data

    @property
    def fingerprint(self) -> str:
        return str(self.environment.get("fingerprint", ""))

    @property
    def tee(self) -> str:
        return str(self.environment.get("tee", "unknown"))

    def by_fullname(self) -> dict[str, BenchmarkEntry]:
        return {measurement.fullname: measurement for measurement in self.measurements}


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one saved run; RunFileError naming the file when it is missing, corrupt or not a pytest-tee run."""
    file = Path(path)
    if not file.exists():
        raise RunFileError(f"{file}: no such file")
    if file.is_dir():
        raise RunFileError(f"{file}: is a directory, expected a saved run (.json)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{file}: cannot be read ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        state = "truncated" if exc.pos >= len(text.rstrip()) else "corrupt"
        raise RunFileError(
            f"{file}: is not valid JSON ({state}: {exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the file was left as it is"
        ) from None
    return run_from_document(document, path=file)


def run_from_document(document: Any, *, path: Path | None = None, label: str | None = None) -> Run:
    """A Run from an already parsed document (a saved file, or the session's own results in memory)."""
    where = str(path) if path is not None else (label or "results")
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise RunFileError(f"{where}: not a pytest-benchmark run (no 'benchmarks' list)")
    machine_info = document.get("machine_info")
    if not isinstance(machine_info, dict):
        raise RunFileError(f"{where}: not a pytest-benchmark run (no 'machine_info')")
    measurements: list[BenchmarkEntry] = []
    skipped: list[str] = []
    for index, bench in enumerate(document["benchmarks"]):
        if not isinstance(bench, dict) or "fullname" not in bench:
            raise RunFileError(f"{where}: benchmark #{index} is not a pytest-benchmark entry (no 'fullname')")
        tee = (bench.get("extra_info") or {}).get("tee")
        if not isinstance(tee, dict):
            skipped.append(str(bench["fullname"]))
            continue
        try:
            measurement = StoredMeasurement.from_json(tee)
        except RecordError as exc:
            raise RunFileError(f"{where}: {bench['fullname']}: {exc}") from None
        measurements.append(
            BenchmarkEntry(
                fullname=str(bench["fullname"]),
                name=str(bench.get("name", bench["fullname"])),
                params=bench.get("params"),
                measurement=measurement,
            )
        )
    environment = environment_record(document)
    if not measurements:
        raise RunFileError(
            f"{where}: has no pytest-tee measurements (benchmarks without extra_info['tee']); "
            "record runs with the tokens_per_second fixture"
        )
    if not isinstance(environment, dict):
        raise RunFileError(
            f"{where}: has pytest-tee measurements but no environment record "
            "(pytest_tee['environment'] or machine_info['tee'])"
        )
    return Run(
        label=label or (path.stem if path is not None else "results"),
        path=path,
        environment=environment,
        datetime=str(document.get("datetime", "")),
        commit=document.get("commit_info") or {},
        measurements=tuple(measurements),
        document=document,
        skipped_benchmarks=tuple(skipped),
    )


def environment_record(document: Mapping[str, Any]) -> Any:
    """The full environment record of a saved run: ``pytest_tee["environment"]`` (since 0.2), else the record
    runs saved by 0.1 kept in ``machine_info["tee"]``; None when neither is there."""
    section = document.get("pytest_tee")
    if isinstance(section, dict) and isinstance(section.get("environment"), dict):
        return section["environment"]
    machine_info = document.get("machine_info")
    return machine_info.get("tee") if isinstance(machine_info, dict) else None


def run_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders (pytest-benchmark storage, searched recursively) into run files, oldest first."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                (p for p in path.rglob("*.json") if p.is_file()),
                key=lambda p: (p.parent.as_posix(), p.name),
            )
            if not files:
                raise RunFileError(f"{path}: folder holds no .json run files")
            found.extend(files)
        elif path.exists():
            found.append(path)
        else:
            raise RunFileError(f"{path}: no such file or folder")
    return found


def storage_run_files(storage: Path) -> list[Path]:
    """pytest-benchmark storage files (``<machine_id>/NNNN_*.json``), ordered by run number then folder."""
    if not storage.is_dir():
        return []
    files = [p for p in storage.glob("*/*.json") if RUN_FILE_PATTERN.match(p.name)]
    return sorted(files, key=lambda p: (p.name[:4], p.parent.name, p.name))
