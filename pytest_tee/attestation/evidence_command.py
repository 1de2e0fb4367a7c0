"""``pytest-tee evidence FILE``: the fields of a TDREPORT, a TD quote (v4/v5) or an SEV-SNP report file.

A results file (JSON with an attestation block) is accepted too: each evidence item in it is shown.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from pathlib import Path
from typing import Any

from pytest_tee.attestation.evidence import PARSERS, ParsedEvidence, parse_evidence
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.posture import PostureNote, format_note, posture_notes
from pytest_tee.attestation.verify import attestation_block
from pytest_tee.errors import InputError


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
    parser.add_argument("--json", action="store_true", help="print the fields as JSON")


def run(args: argparse.Namespace) -> int:
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
        entries = [(str(path), _parse(path, blob, args.kind), {})]
    described = [_describe(label, parsed, context, cpu_flags) for label, parsed, context in entries]
    if args.json:
        print(json.dumps(described[0] if len(described) == 1 else described, indent=2))
    else:
        print("\n\n".join(_text(entry) for entry in described))
    return 0


def _parse(path: Path, blob: bytes, kind: str | None) -> ParsedEvidence:
    try:
        return parse_evidence(blob, kind)
    except EvidenceFormatError as exc:
        raise InputError(f"{path}: {exc}") from None


def _from_results(path: Path, blob: bytes) -> list[tuple[str, ParsedEvidence, dict[str, Any]]]:
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
        try:
            raw = base64.b64decode(item.get("raw") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise InputError(f"{label}: the raw evidence is not valid base64") from None
        entries.append((label, _parse(Path(label), raw, item.get("kind")), item.get("context") or {}))
    return entries


def _describe(label: str, parsed: ParsedEvidence, context: dict[str, Any], cpu_flags: list[str]) -> dict[str, Any]:
    gpu_contexts = [context] if parsed.kind == "nvidia-gpu-report" else []
    notes = posture_notes([parsed], cpu_flags=cpu_flags, gpu_contexts=gpu_contexts)
    return {
        "file": label,
        "kind": parsed.kind,
        "format": parsed.format,
        "fields": parsed.to_dict(),
        "posture": [note.to_dict() for note in notes],
    }


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
    for note in entry["posture"]:
        lines.append(format_note(PostureNote.from_dict(note)))
    return "\n".join(lines)
