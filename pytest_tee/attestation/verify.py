"""Checking that attestation evidence binds a results file: structure, REPORTDATA, measurements, signatures.

Signatures are checked offline (``signatures.py``): a TD quote up to the pinned Intel SGX Root CA, an SEV-SNP
report up to AMD's pinned ARK. TCB status and revocation need the vendors' collateral, handed in as files. An
external verifier command (``quote_verifier``) can be added as one more check; its exit status is the outcome.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_tee.attestation.binding import SCHEME, results_digest
from pytest_tee.attestation.chain import FAIL, NOTE, PASS
from pytest_tee.attestation.evidence import (
    NVIDIA_GPU_REPORT,
    PARSERS,
    SEV_SNP_REPORT,
    SIGNED_CPU_KINDS,
    TDX_QUOTE,
    TDX_TDREPORT,
    ParsedEvidence,
)
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.nvidia import GPU_NONCE_SIZE
from pytest_tee.attestation.sev import SNP_KNOWN_VERSIONS, SnpReport
from pytest_tee.attestation.signatures import SignatureContext, check_signatures
from pytest_tee.attestation.tdx import (
    ATT_KEY_TYPE_ECDSA_P256,
    INTEL_QE_VENDOR_ID,
    MEASUREMENT_SIZE,
    TdQuote,
    TdReport,
    identity_differences,
)
from pytest_tee.errors import InputError

DEFAULT_VERIFIER_TIMEOUT_S = 120.0

AddCheck = Callable[[str, str, str], None]  # (check name, outcome, message) for one evidence item


@dataclass(frozen=True)
class Check:
    subject: str  # "results", "tdx-quote", "tdx-tdreport", "nvidia-gpu-report #2", …
    name: str  # "structure", "REPORTDATA", "MRTD", "RTMR2", "signature", …
    outcome: str  # "pass" | "fail" | "note"
    message: str

    @property
    def failed(self) -> bool:
        return self.outcome == FAIL

    def line(self) -> str:
        return f"{self.outcome.upper():<5} {self.subject}: {self.name}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Expectations:
    mrtd: bytes | None = None
    rtmrs: dict[int, bytes] = field(default_factory=dict)
    measurement: bytes | None = None  # SEV-SNP launch measurement
    allow_debug: bool = False


def parse_measurement(text: str, what: str, size: int = MEASUREMENT_SIZE) -> bytes:
    """A hex measurement from the command line (``0x`` prefix and any case allowed)."""
    cleaned = text.strip().lower().removeprefix("0x")
    if not cleaned or any(char not in "0123456789abcdef" for char in cleaned):
        raise InputError(f"{what}: {text!r} is not hexadecimal; expected {2 * size} hex digits")
    if len(cleaned) != 2 * size:
        raise InputError(f"{what}: expected {2 * size} hex digits ({size} bytes), got {len(cleaned)}")
    return bytes.fromhex(cleaned)


def parse_rtmr_expectation(text: str) -> tuple[int, bytes]:
    index, sep, value = text.partition("=")
    if not sep or index.strip() not in ("0", "1", "2", "3"):
        raise InputError(f"--expect-rtmr: {text!r} is not N=HEX with N in 0..3 (e.g. 2=9f86d0…)")
    return int(index), parse_measurement(value, f"--expect-rtmr {index.strip()}")


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (expected a pytest-benchmark results JSON file)") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a pytest-benchmark results JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as text: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected a results file"
        ) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: holds a JSON {type(doc).__name__}, expected a pytest-benchmark results object")
    return doc


def attestation_block(doc: dict[str, Any], origin: str = "the results") -> dict[str, Any]:
    tee = doc.get("pytest_tee")
    block = tee.get("attestation") if isinstance(tee, dict) else None
    if block is None:
        raise InputError(
            f'{origin} have no attestation block ("pytest_tee" → "attestation"): they were not produced with '
            "--tee-attest, or the block was removed"
        )
    if not isinstance(block, dict):
        raise InputError(f"{origin}: the attestation block is a {type(block).__name__}, expected an object")
    if block.get("scheme") != SCHEME:
        raise InputError(
            f"{origin}: attestation scheme {block.get('scheme')!r} is not one this pytest-tee knows ({SCHEME})"
        )
    if not isinstance(block.get("evidence", []), list):
        raise InputError(f'{origin}: the attestation block\'s "evidence" is not a list')
    return block


def _subjects(items: list[Any]) -> list[str]:
    kinds = [item.get("kind", "?") if isinstance(item, dict) else "?" for item in items]
    totals = Counter(kinds)
    seen: Counter[str] = Counter()
    names = []
    for kind in kinds:
        seen[kind] += 1
        names.append(f"{kind} #{seen[kind]}" if totals[kind] > 1 else kind)
    return names


def _short(value: bytes) -> str:
    return value.hex()[:16] + "…"


def verify_document(
    doc: dict[str, Any],
    expectations: Expectations | None = None,
    *,
    quote_verifier: str | None = None,
    verifier_timeout: float = DEFAULT_VERIFIER_TIMEOUT_S,
    origin: str = "the results",
    signatures: SignatureContext | None = None,
) -> list[Check]:
    """All checks, in order; a results document without an attestation block is an ``InputError``.

    ``signatures`` says when and against what the signatures are judged (default: now, the vendor roots, no
    collateral); a context with other trust anchors is for tests only.
    """
    expectations = expectations or Expectations()
    signatures = signatures or SignatureContext()
    block = attestation_block(doc, origin)
    digest = results_digest(doc)
    items = block.get("evidence") or []
    checks: list[Check] = []
    if not items:
        reasons = "; ".join(
            f"{failure.get('kind')}: {failure.get('reason')}"
            for failure in block.get("failures") or []
            if isinstance(failure, dict)
        )
        checks.append(
            Check(
                "results",
                "evidence",
                FAIL,
                "the attestation block holds no evidence: nothing binds these results to a trust domain"
                + (f" (collection failed — {reasons})" if reasons else ""),
            )
        )
    parsed_by_kind: dict[str, list[ParsedEvidence]] = {}
    for subject, item in zip(_subjects(items), items, strict=True):
        parsed = _check_item(subject, item, digest, expectations, quote_verifier, verifier_timeout, signatures, checks)
        if parsed is not None:
            parsed_by_kind.setdefault(parsed.kind, []).append(parsed)
    checks.extend(_cross_checks(parsed_by_kind, expectations))
    return checks


def _check_item(
    subject: str,
    item: Any,
    digest: bytes,
    expectations: Expectations,
    quote_verifier: str | None,
    verifier_timeout: float,
    signatures: SignatureContext,
    checks: list[Check],
) -> ParsedEvidence | None:
    def add(name: str, outcome: str, message: str) -> None:
        checks.append(Check(subject, name, outcome, message))

    if not isinstance(item, dict):
        add("structure", FAIL, f"the evidence entry is a {type(item).__name__}, not an object")
        return None
    kind = item.get("kind")
    if kind not in PARSERS:
        add("structure", FAIL, f"unknown evidence kind {kind!r} (known: {', '.join(PARSERS)})")
        return None
    try:
        raw = base64.b64decode(item.get("raw") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        add("structure", FAIL, "the raw evidence is not valid base64")
        return None
    try:
        parsed = PARSERS[kind](raw)
    except EvidenceFormatError as exc:
        add("structure", FAIL, f"the evidence does not parse: {exc}")
        return None
    problems = _structure_problems(parsed, raw, item)
    if problems:
        add("structure", FAIL, "; ".join(problems))
    else:
        add("structure", PASS, _structure_summary(parsed, raw))

    stored = item.get("fields")
    if isinstance(stored, dict):
        actual = parsed.to_dict()
        # Only keys both sides know: another pytest-tee version may record more or fewer fields.
        edited = sorted(key for key in set(stored) & set(actual) if stored[key] != actual[key])
        if edited:
            add(
                "fields",
                FAIL,
                f"the parsed fields stored beside the raw evidence differ from it ({', '.join(edited)}): they were "
                "edited after collection; the raw bytes are what counts",
            )

    _check_binding(parsed, digest, add)
    _check_expectations(parsed, expectations, add)
    _check_posture(parsed, expectations, add)
    _check_signature(parsed, raw, _auxblob(item), signatures, add)
    if quote_verifier is not None and parsed.kind in SIGNED_CPU_KINDS:
        passed, message = run_quote_verifier(quote_verifier, raw, parsed.kind, digest.hex(), verifier_timeout)
        add("external verifier", PASS if passed else FAIL, message)
    return parsed


def _auxblob(item: dict[str, Any]) -> bytes | None:
    attachments = item.get("attachments")
    text = attachments.get("auxblob") if isinstance(attachments, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _structure_problems(parsed: ParsedEvidence, raw: bytes, item: dict[str, Any]) -> list[str]:
    problems = []
    if isinstance(parsed, TdQuote):
        if parsed.att_key_type != ATT_KEY_TYPE_ECDSA_P256:
            problems.append(f"attestation key type is {parsed.att_key_type}, expected 2 (ECDSA-256 with P-256)")
        if parsed.qe_vendor_id != INTEL_QE_VENDOR_ID:
            problems.append(
                f"QE vendor ID is {parsed.qe_vendor_id.hex()}, not Intel's {INTEL_QE_VENDOR_ID.hex()}: not a quote "
                "from Intel's Quoting Enclave"
            )
    if isinstance(parsed, SnpReport) and parsed.version not in SNP_KNOWN_VERSIONS:
        problems.append(f"report version {parsed.version} is not one this pytest-tee knows ({SNP_KNOWN_VERSIONS})")
    if "sha256" in item and item["sha256"] != hashlib.sha256(raw).hexdigest():
        problems.append("the stored sha256 does not match the raw evidence")
    if "size" in item and item["size"] != len(raw):
        problems.append(f"the stored size {item['size']} does not match the raw evidence ({len(raw)} bytes)")
    return problems


def _structure_summary(parsed: ParsedEvidence, raw: bytes) -> str:
    if isinstance(parsed, TdQuote):
        extra = f", {trailing_note(parsed.trailing)}" if parsed.trailing else ""
        return f"{parsed.format}, TEE type 0x81 (TDX), {parsed.qe_vendor} QE, {len(raw)} bytes{extra}"
    if isinstance(parsed, TdReport):
        return f"{parsed.format}, TEE type 0x81 (TDX), {len(raw)} bytes"
    return f"{parsed.format}, {len(raw)} bytes"


def trailing_note(trailing: bytes) -> str:
    if any(trailing):
        return f"{len(trailing)} non-zero bytes after the signed data (covered by no signature, ignored)"
    return f"{len(trailing)} bytes of zero padding after the signed data"


def _check_binding(parsed: ParsedEvidence, digest: bytes, add: AddCheck) -> None:
    if parsed.kind == NVIDIA_GPU_REPORT:
        expected, label = digest[:GPU_NONCE_SIZE], "GPU nonce"
    else:
        expected, label = digest, "REPORTDATA"
    if parsed.report_data == expected:
        add(label, PASS, f"{label} matches the SHA-512 of the results ({SCHEME})")
    else:
        add(
            label,
            FAIL,
            f"{label} does not match the results: the results were changed after attestation "
            f"({label} {_short(parsed.report_data)}, results digest {_short(expected)})",
        )


def _compare(add: AddCheck, name: str, actual: bytes, expected: bytes) -> None:
    if actual == expected:
        add(name, PASS, f"{name} is {actual.hex()} as expected")
    else:
        add(name, FAIL, f"{name} is {actual.hex()}, expected {expected.hex()}")


def _check_expectations(parsed: ParsedEvidence, expectations: Expectations, add: AddCheck) -> None:
    if isinstance(parsed, (TdQuote, TdReport)):
        if expectations.mrtd is not None:
            _compare(add, "MRTD", parsed.mrtd, expectations.mrtd)
        for index, expected in sorted(expectations.rtmrs.items()):
            _compare(add, f"RTMR{index}", parsed.rtmrs[index], expected)
    if isinstance(parsed, SnpReport) and expectations.measurement is not None:
        _compare(add, "MEASUREMENT", parsed.measurement, expectations.measurement)


def _check_posture(parsed: ParsedEvidence, expectations: Expectations, add: AddCheck) -> None:
    debug = (isinstance(parsed, (TdQuote, TdReport)) and parsed.td_attributes.debug) or (
        isinstance(parsed, SnpReport) and parsed.debug
    )
    if not debug:
        return
    what = (
        "the TD has the DEBUG attribute" if isinstance(parsed, (TdQuote, TdReport)) else "the SNP policy allows DEBUG"
    )
    if expectations.allow_debug:
        add("DEBUG", NOTE, f"{what}: NOT CONFIDENTIAL (accepted with --allow-debug)")
    else:
        add(
            "DEBUG",
            FAIL,
            f"{what}: NOT CONFIDENTIAL — the host could have changed the results before they were hashed "
            "(--allow-debug accepts this)",
        )


def _check_signature(
    parsed: ParsedEvidence,
    raw: bytes,
    auxblob: bytes | None,
    signatures: SignatureContext,
    add: AddCheck,
) -> None:
    if parsed.kind == TDX_TDREPORT:
        add(
            "MAC",
            NOTE,
            "a TDREPORT's MAC can only be checked on the platform that produced it; the quote is the "
            "remotely verifiable evidence",
        )
        return
    if parsed.kind == NVIDIA_GPU_REPORT:
        add(
            "signature",
            NOTE,
            "not checked here: verify the GPU report, its certificate chain and measurements with "
            "NVIDIA's nvtrust verifier or NRAS",
        )
        return
    report = check_signatures(parsed, raw, signatures, auxblob=auxblob)
    for step in report.steps if report is not None else []:
        add(step.name, step.outcome, step.message)


def run_quote_verifier(command: str, raw: bytes, kind: str, report_data_hex: str, timeout: float) -> tuple[bool, str]:
    """Run ``COMMAND FILE`` on the evidence; exit status 0 means the signature and collateral check out.

    The command also gets ``PYTEST_TEE_EVIDENCE_KIND`` (``tdx-quote`` / ``sev-snp-report``) and
    ``PYTEST_TEE_REPORT_DATA`` (the expected REPORTDATA, hex) in its environment.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InputError(f"--quote-verifier: cannot split {command!r} into a command line: {exc}") from None
    if not argv:
        raise InputError("--quote-verifier: the command is empty")
    with tempfile.TemporaryDirectory(prefix="pytest-tee-verify-") as tmp:
        path = Path(tmp) / f"{kind}.bin"
        path.write_bytes(raw)
        env = {**os.environ, "PYTEST_TEE_EVIDENCE_KIND": kind, "PYTEST_TEE_REPORT_DATA": report_data_hex}
        try:
            proc = subprocess.run(
                [*argv, str(path)], capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except FileNotFoundError:
            raise InputError(f"--quote-verifier: command {argv[0]!r} not found") from None
        except PermissionError:
            raise InputError(f"--quote-verifier: command {argv[0]!r} is not executable") from None
        except subprocess.TimeoutExpired:
            return False, f"{argv[0]} did not finish within {timeout:g} s"
    lines = [line.strip() for line in (proc.stdout + "\n" + proc.stderr).splitlines() if line.strip()]
    said = f": {lines[-1]}" if lines else ""
    if proc.returncode == 0:
        return True, f"accepted by {argv[0]}{said}"
    return False, f"rejected by {argv[0]} (exit {proc.returncode}){said}"


def _cross_checks(parsed_by_kind: dict[str, list[ParsedEvidence]], expectations: Expectations) -> list[Check]:
    checks = []
    tdx = [
        parsed
        for parsed in parsed_by_kind.get(TDX_TDREPORT, []) + parsed_by_kind.get(TDX_QUOTE, [])
        if isinstance(parsed, (TdReport, TdQuote))
    ]
    if len(tdx) > 1:
        differing = sorted({name for other in tdx[1:] for name in identity_differences(tdx[0], other)})
        if differing:
            checks.append(
                Check(
                    "results",
                    "consistency",
                    FAIL,
                    f"the TDX evidence items disagree on {', '.join(differing)}: they do not come from one TD",
                )
            )
        else:
            checks.append(Check("results", "consistency", PASS, "all TDX evidence items describe the same TD"))
    if not tdx and (expectations.mrtd is not None or expectations.rtmrs):
        checks.append(Check("results", "MRTD", FAIL, "MRTD/RTMR values were expected but there is no TDX evidence"))
    if SEV_SNP_REPORT not in parsed_by_kind and expectations.measurement is not None:
        checks.append(
            Check("results", "MEASUREMENT", FAIL, "an SNP measurement was expected but there is no SEV-SNP report")
        )
    return checks


def summary_line(checks: list[Check]) -> str:
    counts = Counter(check.outcome for check in checks)
    text = f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOTE]} notes"
    if counts[FAIL]:
        return f"verify: {text} — the evidence does NOT vouch for these results"
    return f"verify: {text} — the evidence binds these results"
