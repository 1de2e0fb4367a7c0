"""Choosing the baseline run: ``latest`` for this environment, a run number, or a file.

pytest-benchmark keeps runs as ``<storage>/<machine_id>/NNNN_<name>.json``, where machine_id ignores CPU, GPU and
TEE; so ``latest`` looks in every machine_id folder and keys on pytest-tee's environment fingerprint instead.
Stored files are only read. A corrupt file that may be the newest run stops the choice (naming the file) rather
than being passed over for an older run, which is what pytest-benchmark does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pytest_tee.errors import InputError
from pytest_tee.saved_runs import Run, RunFileError, load_run, storage_run_files

HISTORY_LIMIT = 10  # as sessions.HISTORY_LIMIT: the stored runs that measure the between-session noise
_RUN_NUMBER = re.compile(r"^\d{1,4}$")
_AUTOSAVE_TIME = re.compile(r"_(\d{8}_\d{6})(?:_uncommitted-changes)?\.json$")  # pytest-benchmark's get_tag()


class BaselineMissing(InputError):
    """No baseline run matches the request; the message names what was searched."""


def storage_path(uri: str) -> Path:
    """The folder of pytest-benchmark file storage (``--benchmark-storage``): ``file://PATH`` or a plain path.

    A relative path is relative to the current directory, as in pytest-benchmark.
    """
    text = uri.strip()
    if "://" not in text:
        path = text
    elif text.startswith("file://"):
        path = text[len("file://") :]
    else:
        scheme = text.split("://", 1)[0]
        raise InputError(
            f"--benchmark-storage {uri!r}: pytest-tee reads baselines from file storage only "
            f"(file://PATH or a plain path), not {scheme}://; "
            "pass the baseline as a JSON file with --tee-compare=PATH instead"
        )
    if not path:
        raise InputError(f"--benchmark-storage {uri!r}: no path given; e.g. file://./.benchmarks")
    return Path(path)


def select_baseline(storage: Path, spec: str, fingerprint: str, *, allow_env_mismatch: bool) -> Run:
    """The baseline run named by ``spec``: ``latest``, a run number (``0003`` or ``3``) or a path to a saved run.

    ``latest`` is the newest run (by its recorded time) whose environment fingerprint is ``fingerprint``, in any
    machine_id folder; with ``allow_env_mismatch`` the newest run of any fingerprint when none matches.
    Raises BaselineMissing when nothing matches, RunFileError naming the file when a candidate is corrupt.
    """
    value = spec.strip()
    if value == "latest":
        return _latest(storage, fingerprint, allow_env_mismatch=allow_env_mismatch)
    if _RUN_NUMBER.match(value):
        return _numbered(storage, f"{int(value):04d}", fingerprint)
    path = Path(value).expanduser()
    if not path.exists():
        raise BaselineMissing(
            f"baseline {value!r}: no such file (a baseline is 'latest', a run number such as 0003, "
            "or the path of a saved run)"
        )
    return load_run(path)


def history_runs(
    folder: Path, fingerprint: str, *, include: Run | None = None, limit: int = HISTORY_LIMIT
) -> list[Run]:
    """The stored runs that measure the between-session noise: ``include`` (the chosen baseline) first, then the
    newest other pytest-tee runs under ``folder`` (any depth) with this environment ``fingerprint``, ``limit`` in
    all. Files that cannot be read, or hold no pytest-tee data, are passed over: they are not the baseline.
    """
    if limit < 1:
        return []
    chosen: list[Run] = [include] if include is not None else []
    skip = {include.path.resolve()} if include is not None and include.path is not None else set()
    files = sorted(path for path in folder.rglob("*.json") if path.is_file()) if folder.is_dir() else []
    entries = []
    for path in files:
        if path.resolve() in skip:
            continue
        try:
            run = load_run(path)
        except RunFileError:
            continue
        if run.fingerprint == fingerprint:
            entries.append(_Stored(path, run, None))
    entries.sort(key=_newness, reverse=True)
    chosen += [entry.run for entry in entries if entry.run is not None]
    return chosen[:limit]


@dataclass(frozen=True)
class _Stored:
    """One file in storage: a usable run, or why it is unusable."""

    path: Path
    run: Run | None
    problem: RunFileError | None  # corrupt, or a pytest-tee run this version cannot read

    @property
    def number(self) -> int:
        prefix = self.path.name[:4]
        return int(prefix) if prefix.isdigit() else -1


def _latest(storage: Path, fingerprint: str, *, allow_env_mismatch: bool) -> Run:
    searched = f"{storage}/*/NNNN_*.json"
    stored = [entry for entry in map(_read_stored, storage_run_files(storage)) if entry is not None]
    runs = [entry for entry in stored if entry.run is not None]
    if not runs and not any(entry.problem for entry in stored):
        raise BaselineMissing(
            f"no pytest-tee baseline in {storage} (searched {searched}); record one on the base branch with "
            "--benchmark-autosave or --benchmark-save=NAME"
        )
    matching = [entry for entry in runs if entry.run is not None and entry.run.fingerprint == fingerprint]
    pool = matching or (runs if allow_env_mismatch else [])
    chosen = max(pool, key=_newness) if pool else None
    _refuse_corrupt_candidates(stored, chosen)
    if chosen is None or chosen.run is None:
        others = sorted({entry.run.fingerprint for entry in runs if entry.run is not None})
        raise BaselineMissing(
            f"no pytest-tee baseline for environment fingerprint {fingerprint} in {storage} "
            f"(searched {searched}; {len(runs)} run(s) found with fingerprint(s) {', '.join(others)}); "
            "record a baseline in this environment, or pass --tee-allow-env-mismatch to compare against the "
            "newest of them"
        )
    return chosen.run


def _numbered(storage: Path, number: str, fingerprint: str) -> Run:
    files = sorted(storage.glob(f"*/{number}_*.json")) if storage.is_dir() else []
    if not files:
        raise BaselineMissing(f"no run {number} in {storage} (searched {storage}/*/{number}_*.json)")
    stored = [entry for entry in map(_read_stored, files) if entry is not None]
    for entry in stored:
        if entry.problem is not None:
            raise entry.problem  # a corrupt file named by its number is an error, never skipped
    runs = [entry.run for entry in stored if entry.run is not None]
    if not runs:
        load_run(files[0])  # raises: why this pytest-benchmark run holds no pytest-tee measurements
    if len(runs) == 1:
        return runs[0]
    matching = [run for run in runs if run.fingerprint == fingerprint]
    if len(matching) == 1:
        return matching[0]
    listed = ", ".join(str(run.path) for run in runs)
    raise InputError(
        f"run {number} is ambiguous: {len(runs)} pytest-tee runs in {storage} ({listed}), "
        f"{len(matching)} of them with this environment's fingerprint; name the file path instead"
    )


def _read_stored(path: Path) -> _Stored | None:
    """The run in ``path``; None for a pytest-benchmark run without pytest-tee data (someone else's benchmarks)."""
    try:
        return _Stored(path, load_run(path), None)
    except RunFileError as exc:
        return None if _is_foreign(path) else _Stored(path, None, exc)


def _is_foreign(path: Path) -> bool:
    """A readable pytest-benchmark file with no pytest-tee data in it (as opposed to a broken pytest-tee run)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(document, dict):
        return False
    machine_info = document.get("machine_info")
    if isinstance(machine_info, dict) and "tee" in machine_info:
        return False
    benchmarks = document.get("benchmarks")
    return not (
        isinstance(benchmarks, list)
        and any(
            isinstance(bench, dict) and isinstance(bench.get("extra_info"), dict) and "tee" in bench["extra_info"]
            for bench in benchmarks
        )
    )


def _refuse_corrupt_candidates(stored: list[_Stored], chosen: _Stored | None) -> None:
    """Raise for the first unusable file that might be newer than ``chosen`` (or for any, when none was chosen)."""
    for entry in sorted(stored, key=lambda e: (e.number, e.path.parent.name), reverse=True):
        if entry.problem is None or (chosen is not None and _provably_older(entry, chosen)):
            continue
        reason = (
            f"it may be newer than {chosen.path}, so that run was not used in its place"
            if chosen is not None
            else "it may be the baseline for this environment"
        )
        raise RunFileError(
            f"{entry.problem}; {reason}. Repair or move the file away yourself, "
            "or name the baseline explicitly (a run number or a path)"
        )


def _provably_older(entry: _Stored, chosen: _Stored) -> bool:
    # Run numbers count up within one machine_id folder; autosave names carry the session's start time (UTC).
    if entry.path.parent == chosen.path.parent and entry.number < chosen.number:
        return True
    started = _autosave_time(entry.path)
    chosen_started = _autosave_time(chosen.path) or _recorded_time(chosen)
    return started is not None and chosen_started is not None and started < chosen_started


def _autosave_time(path: Path) -> datetime | None:
    stamp = _AUTOSAVE_TIME.search(path.name)
    if stamp is None:
        return None
    return datetime.strptime(stamp.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)


def _recorded_time(entry: _Stored) -> datetime | None:
    if entry.run is None or not entry.run.datetime:
        return None
    try:
        moment = datetime.fromisoformat(entry.run.datetime)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _newness(entry: _Stored) -> tuple[datetime, int, str]:
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return (_recorded_time(entry) or oldest, entry.number, entry.path.parent.name)
