"""``pytest-tee cache list|clear [--json]``: the synthetic GGUF files pytest-tee keeps in the user cache directory.

``list`` shows each file's size and age (and ``.partial`` leftovers of interrupted builds); ``clear`` removes them
all. Nothing else in the cache directory is touched. The directory is ``$PYTEST_TEE_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-tee``, else ``~/.cache/pytest-tee``.
"""

from __future__ import annotations

import argparse
import json
import time

from pytest_tee.checkpoints.gguf_synthetic import CacheEntry, cache_dir, clear_cache, list_cache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "clear"), help="list the cached files, or remove them")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON")


def run(args: argparse.Namespace) -> int:
    entries = clear_cache() if args.action == "clear" else list_cache()
    if args.json:
        print(json.dumps([_as_dict(entry) for entry in entries], indent=2))
        return 0
    folder = cache_dir() / "gguf"
    if not entries:
        print(f"{folder}: no synthetic GGUF files" if args.action == "list" else f"{folder}: nothing to remove")
        return 0
    verb = "removed" if args.action == "clear" else ""
    for entry in entries:
        note = "  (partial: an interrupted build)" if entry.partial else ""
        print(f"{verb + ' ' if verb else ''}{_size(entry.size):>9}  {_age(entry.modified):>8}  {entry.path.name}{note}")
    total = sum(entry.size for entry in entries)
    print(f"{len(entries)} file(s), {_size(total)} in {folder}" + (" removed" if verb else ""))
    return 0


def _as_dict(entry: CacheEntry) -> dict[str, object]:
    return {"path": str(entry.path), "bytes": entry.size, "modified": entry.modified, "partial": entry.partial}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _age(modified: float) -> str:
    seconds = max(0.0, time.time() - modified)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
