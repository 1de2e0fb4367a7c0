"""Binding results to evidence: REPORTDATA = SHA-512 of the canonical results document.

Scheme ``sha512-canonical-json-v1``:

1. Take the pytest-benchmark results document (the dict pytest-benchmark saves) and round-trip it through JSON
   the way pytest-benchmark writes it (objects JSON cannot hold become ``"UNSERIALIZABLE[<repr>]"``).
2. Remove ``["pytest_tee"]["attestation"]`` (the block that will hold the evidence; ``pytest_tee`` itself goes
   when nothing else is left in it) and every ``benchmarks[i]["stats"]["data"]`` (pytest-benchmark writes the raw
   timings to ``--benchmark-json`` but not to storage, so without them one quote binds both files; the per-round
   samples pytest-tee gates on live in ``extra_info`` and are covered).
3. Serialise with ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` (non-finite
   floats as Python writes them: ``NaN``, ``Infinity``) and hash the ASCII bytes with SHA-512.

The 64-byte digest is the TD's REPORTDATA (and the SNP report's REPORT_DATA); its first 32 bytes are the nonce
of NVIDIA GPU reports.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from pytest_tee.attestation.collect import (
    DEFAULT_TIMEOUT_S,
    AttestationIO,
    CollectionFailed,
    EvidenceItem,
    collect_evidence,
    collect_tdreport,
)
from pytest_tee.attestation.evidence import NVIDIA_GPU_REPORT, SEV_SNP_REPORT, TDX_KINDS, ParsedEvidence
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.nvidia import GPU_NONCE_SIZE
from pytest_tee.attestation.posture import PostureNote, format_note, posture_notes

SCHEME = "sha512-canonical-json-v1"
SCHEMA = 1
EXCLUDED = ('["pytest_tee"]["attestation"]', '["benchmarks"][*]["stats"]["data"]')


def _unserializable(value: Any) -> str:
    # Exactly what pytest-benchmark's SafeJSONEncoder writes, so the digest matches the file it saves.
    return f"UNSERIALIZABLE[{value!r}]"


def bound_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a results document that REPORTDATA covers (a fresh copy; ``doc`` is not changed)."""
    plain = json.loads(json.dumps(doc, default=_unserializable))
    if not isinstance(plain, dict):
        raise TypeError(f"a results document is a JSON object, not {type(plain).__name__}")
    tee = plain.get("pytest_tee")
    if isinstance(tee, dict):
        tee.pop("attestation", None)
        if not tee:
            del plain["pytest_tee"]
    benchmarks = plain.get("benchmarks")
    if isinstance(benchmarks, list):
        for bench in benchmarks:
            stats = bench.get("stats") if isinstance(bench, dict) else None
            if isinstance(stats, dict):
                stats.pop("data", None)
    return plain


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    canonical = json.dumps(bound_document(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return canonical.encode("ascii")


def results_digest(doc: dict[str, Any]) -> bytes:
    """The 64-byte REPORTDATA for a results document."""
    return hashlib.sha512(canonical_bytes(doc)).digest()


def gpu_nonce(report_data: bytes) -> bytes:
    """The 32-byte nonce for GPU reports: the first half of REPORTDATA."""
    return report_data[:GPU_NONCE_SIZE]


def _parsed(items: Iterable[EvidenceItem]) -> list[ParsedEvidence]:
    parsed = []
    for item in items:
        # An item that does not parse is stored with its parse error, and verify reports it.
        with contextlib.suppress(EvidenceFormatError):
            parsed.append(item.parsed())
    return parsed


def tee_of(kinds: Iterable[str]) -> str:
    """The trust domain the collected evidence speaks for: "tdx", "sev-snp" or "none"."""
    kinds = set(kinds)
    if kinds.intersection(TDX_KINDS):
        return "tdx"
    if SEV_SNP_REPORT in kinds:
        return "sev-snp"
    return "none"


def attest_document(
    doc: dict[str, Any],
    *,
    sysroot: str | os.PathLike[str] = "/",
    cpu_flags: Iterable[str] = (),
    nvml: Any | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    io: AttestationIO | None = None,
    gpu: bool = True,
) -> dict[str, Any]:
    """Collect evidence bound to ``doc`` and return the block to store at ``doc["pytest_tee"]["attestation"]``.

    Never raises for a machine that cannot attest: failures are recorded with their reasons. Blocks for up to
    ``timeout`` seconds per evidence source, so call it after all timed work.
    """
    digest = results_digest(doc)
    collection = collect_evidence(digest, sysroot=sysroot, io=io, nvml=nvml, timeout=timeout, gpu=gpu)
    gpu_contexts = [item.context for item in collection.items if item.kind == NVIDIA_GPU_REPORT]
    notes = posture_notes(_parsed(collection.items), cpu_flags=cpu_flags, gpu_contexts=gpu_contexts)
    return {
        "schema": SCHEMA,
        "scheme": SCHEME,
        "excluded": list(EXCLUDED),
        "report_data": digest.hex(),
        "gpu_nonce": gpu_nonce(digest).hex(),
        "tee": tee_of(item.kind for item in collection.items),
        "evidence": [item.to_dict() for item in collection.items],
        "failures": [failure.to_dict() for failure in collection.failures],
        "posture": [note.to_dict() for note in notes],
        "collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "collection_s": round(collection.seconds, 3),
    }


class SessionAttestor:
    """Attest once per session although pytest-benchmark asks for each file it writes.

    pytest-benchmark builds a separate document for ``--benchmark-json`` and for storage, stamping each with its
    own ``datetime``. ``attest`` copies the first document's ``datetime`` into later ones (changing ``doc``) so the
    files agree, and reuses the block when the bound content is the same; otherwise it collects anew.
    """

    def __init__(self, **attest_kwargs: Any) -> None:
        self._kwargs = attest_kwargs
        self._datetime: Any = None
        self._blocks: dict[bytes, dict[str, Any]] = {}

    def attest(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self._datetime is None:
            self._datetime = doc.get("datetime")
        elif "datetime" in doc:
            doc["datetime"] = self._datetime
        digest = results_digest(doc)
        if digest not in self._blocks:
            self._blocks[digest] = attest_document(doc, **self._kwargs)
        return copy.deepcopy(self._blocks[digest])

    def attach(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Attest ``doc`` and store the block at ``doc["pytest_tee"]["attestation"]``; returns the block.

        Call it last, once everything else is in ``doc``: anything added afterwards breaks the binding.
        """
        block = self.attest(doc)
        tee = doc.setdefault("pytest_tee", {})  # an empty section is not bound, so creating it here is neutral
        tee["attestation"] = block
        return block


def early_posture(
    sysroot: str | os.PathLike[str] = "/", *, cpu_flags: Iterable[str] = (), io: AttestationIO | None = None
) -> list[PostureNote]:
    """Posture from a TDREPORT taken now (one TDCALL, no quote service): for the session header, before any test.

    Returns no notes where no TDREPORT can be had.
    """
    try:
        item = collect_tdreport(bytes(64), sysroot=sysroot, io=io)
        return posture_notes([item.parsed()], cpu_flags=cpu_flags)
    except (CollectionFailed, EvidenceFormatError, OSError, ValueError):
        return []


def describe_attestation(block: dict[str, Any]) -> list[str]:
    """Lines for the session summary and the report: what binds the results, what failed, the posture notes."""
    evidence = block.get("evidence") or []
    lines = []
    if evidence:
        formats = ", ".join(item.get("format") or item.get("kind", "?") for item in evidence)
        line = f"attestation: {formats} bound to these results ({block.get('scheme', '?')})"
        mrtd = next((item["fields"]["mrtd"] for item in evidence if (item.get("fields") or {}).get("mrtd")), None)
        if mrtd:
            line += f"; MRTD {mrtd[:16]}…"
        lines.append(line + "; signatures are checked by `pytest-tee verify --quote-verifier CMD`")
    else:
        lines.append("attestation: no evidence collected — nothing binds these results to a trust domain")
    for failure in block.get("failures") or []:
        if not evidence or failure.get("reason") not in ("no-device", "no-provider"):
            lines.append(f"  {failure.get('kind')}: {failure.get('reason')} — {failure.get('detail')}")
    lines.extend(format_note(PostureNote.from_dict(note)) for note in block.get("posture") or [])
    return lines
