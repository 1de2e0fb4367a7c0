"""``pytest-tee evidence FILE``: the fields of a TDREPORT, a TD quote (v4/v5) or an SEV-SNP report file, and
whether its signatures verify offline up to the pinned vendor roots.

A results file (JSON with an attestation block) is accepted too: each evidence item in it is shown.
Exit 0 when every signature check holds (or there is nothing to check), 1 when one fails, 2 when FILE cannot be
read as evidence. ``run``'s ``anchors`` keyword is for tests only and is not reachable from the command line.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_tee.attestation.chain import SignatureReport
from pytest_tee.attestation.evidence import PARSERS, ParsedEvidence, parse_evidence
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.output import print_quietly
from pytest_tee.attestation.posture import PostureNote, format_note, posture_notes
from pytest_tee.attestation.signatures import check_signatures
from pytest_tee.attestation.tdx import TdQuote
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors
from pytest_tee.attestation.verify import attestation_block, trailing_note
from pytest_tee.attestation.verify_command import add_signature_arguments, signature_context
from pytest_tee.errors import InputError


@dataclass
class Entry:
    label: str
    parsed: ParsedEvidence
    raw: bytes
    context: dict[str, Any] = field(default_factory=dict)
    auxblob: bytes | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", help="a TDREPORT, TD quote or SEV-SNP report (binary), or a results file"
    )
    parser.add_argument(
        "--kind",
        choices=sorted(PARSERS),
        help="read FILE as this kind instead of recognising it (needed for GPU reports)",
    )
    parser.add_argument("--cpu-flags", metavar="FLAGS", default="", help="CPU flags of the host, for posture notes")
    add_signature_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the fields as JSON")


def run(args: argparse.Namespace, *, anchors: TrustAnchors = VENDOR_ROOTS) -> int:
    path = Path(args.file)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected an evidence file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    cpu_flags = args.cpu_flags.replace(",", " ").split()
    if blob.lstrip()[:1] == b"{":
        entries = _from_results(path, blob)
    else:
        entries = [Entry(str(path), _parse(path, blob, args.kind), blob)]
    context = signature_context(args, anchors)
    described = []
    failed = False
    for entry in entries:
        signatures = check_signatures(entry.parsed, entry.raw, context, auxblob=entry.auxblob)
        failed = failed or (signatures is not None and not signatures.ok)
        described.append(_describe(entry, signatures, cpu_flags))
    if args.json:
        print_quietly(json.dumps(described[0] if len(described) == 1 else described, indent=2))
    else:
        print_quietly("\n\n".join(_text(entry) for entry in described))
    return 1 if failed else 0


def _parse(path: Path, blob: bytes, kind: str | None) -> ParsedEvidence:
    try:
        return parse_evidence(blob, kind)
    except EvidenceFormatError as exc:
        raise InputError(f"{path}: {exc}") from None


def _b64(text: Any, label: str, what: str) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InputError(f"{label}: the {what} is not valid base64") from None


def _from_results(path: Path, blob: bytes) -> list[Entry]:
    try:
        doc = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: starts like JSON but is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a JSON {type(doc).__name__}, expected a results object or a binary evidence file")
    block = attestation_block(doc, str(path))
    items = block.get("evidence") or []
    if not items:
        raise InputError(f'{path}: the attestation block holds no evidence (see its "failures")')
    entries = []
    for number, item in enumerate(items, 1):
        label = f"{path} evidence #{number} ({item.get('source', '?')})"
        raw = _b64(item.get("raw"), label, "raw evidence")
        attachments = item.get("attachments") or {}
        auxblob = _b64(attachments["auxblob"], label, "auxblob") if "auxblob" in attachments else None
        entries.append(
            Entry(label, _parse(Path(label), raw, item.get("kind")), raw, item.get("context") or {}, auxblob)
        )
    return entries


def _describe(entry: Entry, signatures: SignatureReport | None, cpu_flags: list[str]) -> dict[str, Any]:
    parsed = entry.parsed
    gpu_contexts = [entry.context] if parsed.kind == "nvidia-gpu-report" else []
    notes = posture_notes([parsed], cpu_flags=cpu_flags, gpu_contexts=gpu_contexts)
    described: dict[str, Any] = {
        "file": entry.label,
        "kind": parsed.kind,
        "format": parsed.format,
        "fields": parsed.to_dict(),
        "posture": [note.to_dict() for note in notes],
        "signatures": None if signatures is None else signatures.to_dict(),
    }
    if isinstance(parsed, TdQuote) and parsed.trailing:
        described["trailing"] = {
            "size": len(parsed.trailing),
            "non_zero": any(parsed.trailing),
            "note": trailing_note(parsed.trailing),
        }
    return described


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        if "flags" in value and "value" in value:
            return f"{value['value']} [{' '.join(value['flags']) or 'no bits set'}]"
        if "features" in value:
            amx = "yes" if value.get("amx") else "NO"
            avx512 = "yes" if value.get("avx512") else "no"
            return f"{value['value']} [{' '.join(value['features'])}] (AMX: {amx}, AVX-512: {avx512})"
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if value is None:
        return "-"
    return str(value)


def _text(entry: dict[str, Any]) -> str:
    lines = [f"{entry['file']}: {entry['format']}"]
    fields = {key: value for key, value in entry["fields"].items() if key != "kind"}
    width = max(len(key) for key in fields)
    lines.extend(f"  {key:<{width}}  {_value_text(value)}" for key, value in fields.items())
    trailing = entry.get("trailing")
    if trailing and trailing["non_zero"]:
        lines.append(f"warning: {trailing['note']}")
    for note in entry["posture"]:
        lines.append(format_note(PostureNote.from_dict(note)))
    signatures = entry.get("signatures")
    if signatures is not None:
        lines.extend(_signature_text(signatures))
    return "\n".join(lines)


def _verdict(signatures: dict[str, Any]) -> str:
    steps = signatures["steps"]
    if not signatures["ok"]:
        return "FAILED: " + ", ".join(step["name"] for step in steps if step["outcome"] == "fail")
    tcb = next((step["message"] for step in steps if step["name"] == "TCB status"), None)
    if tcb is None or tcb.startswith("signature chain valid"):
        return tcb or "signature chain valid"
    return f"signature chain valid; TCB status {tcb}"


def _signature_text(signatures: dict[str, Any]) -> list[str]:
    lines = ["certificate chain:"] if signatures["chain"] else []
    for cert in signatures["chain"]:
        lines.append(f"  {cert['role']:<12}  {cert['subject']}")
        lines.append(f"  {'':<12}  valid {cert['not_before']} to {cert['not_after']}, serial {cert['serial']}")
    for name, values in signatures["details"].items():
        if isinstance(values, dict):
            shown = ", ".join(f"{key} {_value_text(value)}" for key, value in values.items())
            lines.append(f"{name.replace('_', ' ')}: {shown}")
    lines.append("signature checks:")
    lines.extend(f"  {step['outcome'].upper():<5} {step['name']}: {step['message']}" for step in signatures["steps"])
    lines.append(f"verdict: {_verdict(signatures)}")
    return lines
