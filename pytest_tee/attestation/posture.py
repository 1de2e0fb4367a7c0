"""What the evidence says about the conditions the numbers were measured under.

Notes for the session header, the summary and the report: a DEBUG TD (or an SNP guest whose policy allows
debugging) is not confidential; a TD whose XFAM withholds AMX runs bf16/int8 far slower than its CPU could; a TD
without PERFMON has no PMU counters; a GPU in DevTools mode or a simulated CC environment is not production.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pytest_tee.attestation.evidence import ParsedEvidence
from pytest_tee.attestation.sev import SnpReport
from pytest_tee.attestation.tdx import TdQuote, TdReport

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"

AMX_CPU_FLAGS = ("amx_tile", "amx_bf16", "amx_int8")
AVX512_CPU_FLAGS = ("avx512f",)


@dataclass(frozen=True)
class PostureNote:
    severity: str  # "critical" | "warning" | "info"
    code: str  # stable identifier, e.g. "td-debug"
    message: str
    source: str  # the evidence kind(s) it was read from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostureNote:
        return cls(
            severity=str(data.get("severity", INFO)),
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            source=str(data.get("source", "")),
        )


def format_note(note: PostureNote) -> str:
    """One line for a terminal or a markdown summary; critical notes are meant to be impossible to miss."""
    prefix = {CRITICAL: "!! ", WARNING: "warning: ", INFO: "note: "}.get(note.severity, "")
    return f"{prefix}{note.message}"


def _td_notes(record: TdReport | TdQuote, cpu_flags: set[str]) -> list[PostureNote]:
    notes = []
    source = record.kind
    if record.td_attributes.debug:
        notes.append(
            PostureNote(
                CRITICAL,
                "td-debug",
                "NOT CONFIDENTIAL: the TD has the DEBUG attribute set — the host can read and change its memory and "
                "registers, so nothing measured or attested in it is protected",
                source,
            )
        )
    if not record.xfam.amx:
        cpu_amx = sorted(cpu_flags.intersection(AMX_CPU_FLAGS))
        if cpu_amx:
            notes.append(
                PostureNote(
                    WARNING,
                    "xfam-no-amx",
                    f"XFAM does not enable AMX (bits 17 and 18) although the CPU flags list {', '.join(cpu_amx)}: "
                    "bf16/int8 matrix work falls back to AVX-512 and throughput will be far lower than this CPU "
                    "can deliver — launch the TD with AMX in XFAM before comparing with a bare host",
                    source,
                )
            )
        else:
            notes.append(PostureNote(INFO, "xfam-no-amx", "XFAM does not enable AMX (bits 17 and 18)", source))
    if not record.xfam.avx512 and cpu_flags.intersection(AVX512_CPU_FLAGS):
        notes.append(
            PostureNote(
                WARNING,
                "xfam-no-avx512",
                "XFAM does not enable AVX-512 (bits 5–7) although the CPU has avx512f: vector code runs on AVX2",
                source,
            )
        )
    if not record.td_attributes.perfmon:
        notes.append(
            PostureNote(
                INFO,
                "td-no-perfmon",
                "PERFMON is off in the TD attributes: no PMU counters inside this TD (perf stat hardware events "
                "are unavailable)",
                source,
            )
        )
    return notes


def _snp_notes(report: SnpReport) -> list[PostureNote]:
    notes = []
    if report.debug:
        notes.append(
            PostureNote(
                CRITICAL,
                "snp-debug",
                "NOT CONFIDENTIAL: the SEV-SNP guest policy allows DEBUG (bit 19) — the host can decrypt and change "
                "guest memory, so nothing measured or attested in it is protected",
                report.kind,
            )
        )
    if report.vmpl > 0:
        notes.append(
            PostureNote(
                INFO,
                "snp-vmpl",
                f"the report was requested at VMPL {report.vmpl}: a paravisor or SVSM runs beneath this guest",
                report.kind,
            )
        )
    return notes


def gpu_context_notes(context: dict[str, Any], source: str = "nvidia-gpu-report") -> list[PostureNote]:
    """Notes from the NVML confidential-computing state recorded with a GPU report."""
    notes = []
    label = context.get("name") or f"GPU {context.get('index', '?')}"
    if context.get("cc_environment") == "sim":
        notes.append(
            PostureNote(
                CRITICAL,
                "gpu-cc-simulated",
                f"NOT CONFIDENTIAL: {label} reports a SIMULATED confidential-computing environment",
                source,
            )
        )
    if context.get("devtools_mode"):
        notes.append(
            PostureNote(
                WARNING,
                "gpu-devtools",
                f"{label} is in confidential-computing DevTools mode: debugging and profiling blocks are lifted, "
                "not a production posture",
                source,
            )
        )
    return notes


def posture_notes(
    evidence: Iterable[ParsedEvidence],
    *,
    cpu_flags: Iterable[str] = (),
    gpu_contexts: Sequence[dict[str, Any]] = (),
) -> list[PostureNote]:
    """Notes from parsed evidence (TDREPORT, quote, SNP report) and GPU CC state, each said once."""
    flags = {flag.lower() for flag in cpu_flags}
    notes: list[PostureNote] = []
    for record in evidence:
        if isinstance(record, (TdReport, TdQuote)):
            notes.extend(_td_notes(record, flags))
        elif isinstance(record, SnpReport):
            notes.extend(_snp_notes(record))
    for context in gpu_contexts:
        notes.extend(gpu_context_notes(context))
    return _merge_sources(notes)


def _merge_sources(notes: list[PostureNote]) -> list[PostureNote]:
    # A TDREPORT and a quote from one TD say the same thing: keep one note, naming both sources.
    merged: dict[tuple[str, str], PostureNote] = {}
    for note in notes:
        key = (note.code, note.message)
        if key in merged:
            previous = merged[key]
            sources = previous.source.split(", ")
            if note.source not in sources:
                merged[key] = PostureNote(note.severity, note.code, note.message, f"{previous.source}, {note.source}")
        else:
            merged[key] = note
    order = {CRITICAL: 0, WARNING: 1, INFO: 2}
    return sorted(merged.values(), key=lambda note: order.get(note.severity, 3))


def is_confidential(notes: Iterable[PostureNote]) -> bool:
    return not any(note.severity == CRITICAL for note in notes)
