"""Collecting attestation evidence: TDREPORT (ioctl), TD quote / SEV-SNP report (configfs-tsm), NVIDIA GPU report.

Everything is read through a sysroot and the few operations only a kernel can perform (the ioctl, creating and
removing a configfs-tsm entry) go through an ``AttestationIO``, so that ``simulate.py`` can stand in for a TD in
tests while the file reads and writes stay the real ones. Every failure becomes a ``CollectionFailure`` with a
reason; nothing here raises to the caller. Call it after all timed work: a quote takes a second or more.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytest_tee.attestation.evidence import (
    NVIDIA_GPU_REPORT,
    PARSERS,
    SEV_SNP_REPORT,
    TDX_QUOTE,
    TDX_TDREPORT,
    ParsedEvidence,
)
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.nvidia import GPU_NONCE_SIZE
from pytest_tee.attestation.tdx import REPORT_DATA_SIZE, TDREPORT_SIZE

TDX_CMD_GET_REPORT0 = 0xC4405401  # _IOWR('T', 1, struct tdx_report_req{u8 reportdata[64]; u8 tdreport[1024]})
TDX_GUEST_DEVICE = "/dev/tdx_guest"
TSM_REPORT_DIR = "/sys/kernel/config/tsm/report"
TSM_PROVIDERS = {"tdx_guest": TDX_QUOTE, "sev_guest": SEV_SNP_REPORT}
DEFAULT_TIMEOUT_S = 60.0  # the kernel itself gives the host's quote service 30 s
TDREPORT_TIMEOUT_S = 10.0  # one TDCALL: anything slower is a broken system

NO_DEVICE = "no-device"
NO_PROVIDER = "no-provider"
PERMISSION = "permission"
TIMEOUT = "timeout"
BUSY = "busy"
CONFLICT = "conflict"
ERROR = "error"

NVML_CC_ENVIRONMENTS = {0: "unavailable", 1: "sim", 2: "prod"}

T = TypeVar("T")


@dataclass
class EvidenceItem:
    """One piece of evidence as collected: raw bytes plus where and how they were obtained."""

    kind: str  # "tdx-tdreport" | "tdx-quote" | "sev-snp-report" | "nvidia-gpu-report"
    source: str  # e.g. "configfs-tsm /sys/kernel/config/tsm/report (provider tdx_guest)"
    raw: bytes = field(repr=False)
    context: dict[str, Any] = field(default_factory=dict)  # facts from collection (provider, GPU name, CC state)
    attachments: dict[str, bytes] = field(default_factory=dict, repr=False)  # SNP auxblob, GPU certificate chain

    def parsed(self) -> ParsedEvidence:
        return PARSERS[self.kind](self.raw)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "size": len(self.raw),
            "sha256": hashlib.sha256(self.raw).hexdigest(),
            "raw": base64.b64encode(self.raw).decode("ascii"),
        }
        try:
            parsed = self.parsed()
        except EvidenceFormatError as exc:
            data.update(format=None, fields=None, parse_error=str(exc))
        else:
            data.update(format=parsed.format, fields=parsed.to_dict())
        data["context"] = dict(self.context)
        data["attachments"] = {name: base64.b64encode(blob).decode("ascii") for name, blob in self.attachments.items()}
        return data


@dataclass(frozen=True)
class CollectionFailure:
    kind: str  # the evidence that could not be collected
    source: str
    reason: str  # "no-device" | "no-provider" | "permission" | "timeout" | "busy" | "conflict" | "error"
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "reason": self.reason, "detail": self.detail}


@dataclass
class Collection:
    items: list[EvidenceItem]
    failures: list[CollectionFailure]
    seconds: float = 0.0


class CollectionFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _system_ioctl(fd: int, request: int, buffer: bytearray) -> Any:
    import fcntl  # not on Windows; only needed where a TD can exist

    return fcntl.ioctl(fd, request, buffer, True)


@dataclass
class AttestationIO:
    """What only a kernel does: the ioctl and creating/removing a configfs-tsm entry (populated by configfs).

    Reads and writes of ``provider``, ``inblob``, ``outblob``, ``generation`` are ordinary file I/O and stay so.
    """

    ioctl: Callable[[int, int, bytearray], Any] = _system_ioctl
    make_report_entry: Callable[[Path], None] = os.mkdir
    remove_report_entry: Callable[[Path], None] = os.rmdir


_installed_io: AttestationIO | None = None


def default_io() -> AttestationIO:
    """The I/O collection uses when none is passed: the system's, or one a simulator installed."""
    return _installed_io or AttestationIO()


def install_io(io: AttestationIO | None) -> AttestationIO | None:
    """Make ``io`` the default (``None`` restores the system's); returns the previous one. For simulations."""
    global _installed_io
    previous = _installed_io
    _installed_io = io
    return previous


def under(sysroot: str | os.PathLike[str], path: str) -> Path:
    return Path(sysroot) / path.lstrip("/")


def run_with_timeout(work: Callable[[], T], timeout: float, what: str) -> T:
    """Run blocking kernel I/O in a daemon thread so a hung quote service cannot hang the session."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"pytest-tee {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise CollectionFailed(TIMEOUT, f"{what} did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def failure_from_oserror(exc: OSError, what: str, missing: str = NO_DEVICE) -> CollectionFailed:
    name = errno.errorcode.get(exc.errno or 0, "error")
    text = f"{what}: {exc.strerror or exc} ({name})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CollectionFailed(PERMISSION, text + " — run as root or grant access to the device")
    if exc.errno == errno.ENXIO:
        return CollectionFailed(NO_PROVIDER, text + " — no attestation provider is registered with configfs-tsm")
    if exc.errno == errno.ENOENT:
        return CollectionFailed(missing, text)
    if exc.errno == errno.ETIMEDOUT:
        return CollectionFailed(TIMEOUT, text + " — the host's quote generation service did not answer")
    if exc.errno == errno.EBUSY:
        return CollectionFailed(BUSY, text + " — a previous request is still in flight")
    if exc.errno == errno.EIO:
        return CollectionFailed(
            ERROR, text + " — the TDCALL/hypercall failed (is a quote service running on the host?)"
        )
    return CollectionFailed(ERROR, text)


def _guarded(what: str, work: Callable[[], T], missing: str = NO_DEVICE) -> T:
    try:
        return work()
    except OSError as exc:
        raise failure_from_oserror(exc, what, missing) from exc


def collect_tdreport(
    report_data: bytes,
    *,
    sysroot: str | os.PathLike[str] = "/",
    io: AttestationIO | None = None,
    timeout: float = TDREPORT_TIMEOUT_S,
) -> EvidenceItem:
    """TDREPORT via ``ioctl(/dev/tdx_guest, TDX_CMD_GET_REPORT0)`` with ``report_data`` as REPORTDATA."""
    _check_report_data(report_data)
    io = io or default_io()
    device = under(sysroot, TDX_GUEST_DEVICE)
    if not device.exists():
        raise CollectionFailed(
            NO_DEVICE,
            f"{TDX_GUEST_DEVICE} is absent (not a TDX guest, a kernel before 6.2, the tdx_guest module not loaded, "
            "or a paravisor such as Azure's that hides it)",
        )

    def work() -> bytes:
        fd = _guarded(f"open {TDX_GUEST_DEVICE}", lambda: os.open(device, os.O_RDWR))
        try:
            buffer = bytearray(report_data) + bytearray(TDREPORT_SIZE)
            for attempt in range(3):
                try:
                    io.ioctl(fd, TDX_CMD_GET_REPORT0, buffer)
                    break
                except OSError as exc:
                    # EBUSY: an RTMR extend raced the report (TDCALL_OPERAND_BUSY); the kernel asks us to retry.
                    if exc.errno == errno.EBUSY and attempt < 2:
                        time.sleep(0.05)
                        continue
                    raise failure_from_oserror(exc, f"ioctl TDX_CMD_GET_REPORT0 on {TDX_GUEST_DEVICE}") from exc
            return bytes(buffer[REPORT_DATA_SIZE:])
        finally:
            os.close(fd)

    raw = run_with_timeout(work, timeout, "TDREPORT ioctl")
    return EvidenceItem(TDX_TDREPORT, f"{TDX_GUEST_DEVICE} ioctl TDX_CMD_GET_REPORT0", raw)


def collect_tsm_report(
    report_data: bytes,
    *,
    sysroot: str | os.PathLike[str] = "/",
    io: AttestationIO | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> EvidenceItem:
    """A TD quote (provider ``tdx_guest``) or SEV-SNP report (``sev_guest``) through configfs-tsm.

    mkdir a unique entry, check ``provider``, write the 64-byte ``inblob`` in one write, read ``outblob``,
    re-check ``generation`` (another writer would have bumped it), rmdir.
    """
    _check_report_data(report_data)
    io = io or default_io()
    base = under(sysroot, TSM_REPORT_DIR)
    if not base.is_dir():
        raise CollectionFailed(
            NO_PROVIDER,
            f"{TSM_REPORT_DIR} is absent (a kernel before 6.7, CONFIG_TSM_REPORTS off, or configfs not mounted at "
            "/sys/kernel/config)",
        )
    name = f"pytest-tee-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    entry = base / name
    shown = f"{TSM_REPORT_DIR}/{name}"

    def work() -> EvidenceItem:
        _guarded(f"mkdir {shown}", lambda: io.make_report_entry(entry), NO_PROVIDER)
        try:
            return _exchange(entry, shown, report_data)
        finally:
            # A leftover entry is harmless: the kernel frees it at reboot.
            with contextlib.suppress(OSError):
                io.remove_report_entry(entry)

    return run_with_timeout(work, timeout, "configfs-tsm report")


def _exchange(entry: Path, shown: str, report_data: bytes) -> EvidenceItem:
    provider = _guarded(f"read {shown}/provider", lambda: (entry / "provider").read_text().strip())
    kind = TSM_PROVIDERS.get(provider)
    if kind is None:
        raise CollectionFailed(
            NO_PROVIDER,
            f"configfs-tsm provider {provider!r} is not supported (supported: {', '.join(TSM_PROVIDERS)})",
        )
    before = _read_generation(entry, shown)
    _guarded(f"write {shown}/inblob", lambda: _write_once(entry / "inblob", report_data))
    outblob = _guarded(f"read {shown}/outblob", lambda: (entry / "outblob").read_bytes())
    after = _read_generation(entry, shown)
    if after != before + 1:
        raise CollectionFailed(
            CONFLICT,
            f"{shown}/generation went from {before} to {after} around our single inblob write: another writer "
            "changed inblob, so the report may not carry our REPORTDATA",
        )
    if not outblob:
        raise CollectionFailed(ERROR, f"{shown}/outblob was empty")
    attachments = {}
    if kind == SEV_SNP_REPORT:
        auxblob = _read_optional(entry / "auxblob")  # the VCEK/ASK/ARK certificates, when the host supplies them
        if auxblob:
            attachments["auxblob"] = auxblob
    return EvidenceItem(
        kind,
        f"configfs-tsm {TSM_REPORT_DIR} (provider {provider})",
        outblob,
        context={"provider": provider, "generation": after},
        attachments=attachments,
    )


def _read_generation(entry: Path, shown: str) -> int:
    text = _guarded(f"read {shown}/generation", lambda: (entry / "generation").read_text().strip())
    try:
        return int(text)
    except ValueError:
        raise CollectionFailed(ERROR, f"{shown}/generation holds {text!r}, not a number") from None


def _write_once(path: Path, data: bytes) -> None:
    # configfs takes the blob from a single write(); a short write would leave a partial inblob.
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise CollectionFailed(ERROR, f"wrote {written} of {len(data)} bytes to {path.name}")


def _read_optional(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _check_report_data(report_data: bytes) -> None:
    if len(report_data) != REPORT_DATA_SIZE:
        raise ValueError(f"REPORTDATA must be {REPORT_DATA_SIZE} bytes, got {len(report_data)}")


def _nvml_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "NoPermission" in name:
        return PERMISSION
    if any(token in name for token in ("NotSupported", "LibraryNotFound", "DriverNotLoaded", "NotFound")):
        return NO_DEVICE
    if "Timeout" in name:
        return TIMEOUT
    return ERROR


def _as_bytes(array: Any, size: int) -> bytes:
    return bytes(bytearray(array[:size]))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def collect_nvidia_reports(
    nonce: bytes, *, nvml: Any | None = None
) -> tuple[list[EvidenceItem], list[CollectionFailure]]:
    """One GPU attestation report per confidential-computing GPU, bound to ``nonce`` (32 bytes), through NVML."""
    if len(nonce) != GPU_NONCE_SIZE:
        raise ValueError(f"the GPU nonce must be {GPU_NONCE_SIZE} bytes, got {len(nonce)}")
    source = "NVML nvmlDeviceGetConfComputeGpuAttestationReport"

    def failed(reason: str, detail: str) -> tuple[list[EvidenceItem], list[CollectionFailure]]:
        return [], [CollectionFailure(NVIDIA_GPU_REPORT, source, reason, detail)]

    if nvml is None:
        try:
            import pynvml
        except ImportError:
            return failed(NO_PROVIDER, "nvidia-ml-py (pynvml) is not installed: pip install 'pytest-tee[cuda]'")
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return failed(_nvml_reason(exc), f"NVML did not initialise: {exc}")
    items: list[EvidenceItem] = []
    failures: list[CollectionFailure] = []
    try:
        try:
            state = nvml.nvmlSystemGetConfComputeState()
        except Exception as exc:
            return failed(_nvml_reason(exc), f"no confidential-computing state from NVML: {exc}")
        if not state.ccFeature:
            return failed(NO_DEVICE, "confidential computing is off on this system's GPUs (NVML ccFeature = 0)")
        for index in range(nvml.nvmlDeviceGetCount()):
            context = {
                "index": index,
                "cc_environment": NVML_CC_ENVIRONMENTS.get(state.environment, str(state.environment)),
                "devtools_mode": bool(state.devToolsMode),
            }
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                context["name"] = _text(nvml.nvmlDeviceGetName(handle))
                report = nvml.nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce)
                raw = _as_bytes(report.attestationReport, report.attestationReportSize)
            except Exception as exc:
                failures.append(
                    CollectionFailure(NVIDIA_GPU_REPORT, f"{source} (GPU {index})", _nvml_reason(exc), str(exc))
                )
                continue
            attachments = {}
            try:
                certificate = nvml.nvmlDeviceGetConfComputeGpuCertificate(handle)
                attachments["attestation_cert_chain"] = _as_bytes(
                    certificate.attestationCertChain, certificate.attestationCertChainSize
                )
            except Exception as exc:
                context["cert_chain_error"] = str(exc)
            items.append(EvidenceItem(NVIDIA_GPU_REPORT, f"{source} (GPU {index})", raw, context, attachments))
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return items, failures


def collect_evidence(
    report_data: bytes,
    *,
    sysroot: str | os.PathLike[str] = "/",
    io: AttestationIO | None = None,
    nvml: Any | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    gpu: bool = True,
) -> Collection:
    """Everything this machine can attest, bound to ``report_data``; the GPU nonce is its first 32 bytes."""
    _check_report_data(report_data)
    started = time.monotonic()
    items: list[EvidenceItem] = []
    failures: list[CollectionFailure] = []
    attempts: list[tuple[str, str, Callable[[], EvidenceItem]]] = [
        (
            TDX_TDREPORT,
            TDX_GUEST_DEVICE,
            lambda: collect_tdreport(report_data, sysroot=sysroot, io=io, timeout=min(timeout, TDREPORT_TIMEOUT_S)),
        ),
        (
            "tsm-report",
            TSM_REPORT_DIR,
            lambda: collect_tsm_report(report_data, sysroot=sysroot, io=io, timeout=timeout),
        ),
    ]
    for kind, source, attempt in attempts:
        try:
            items.append(attempt())
        except CollectionFailed as exc:
            failures.append(CollectionFailure(kind, source, exc.reason, exc.detail))
        except Exception as exc:  # a bug or an odd kernel must not cost the user their results
            failures.append(CollectionFailure(kind, source, ERROR, f"{type(exc).__name__}: {exc}"))
    if gpu:
        try:
            gpu_items, gpu_failures = run_with_timeout(
                lambda: collect_nvidia_reports(report_data[:GPU_NONCE_SIZE], nvml=nvml), timeout, "NVML GPU report"
            )
        except CollectionFailed as exc:
            gpu_items, gpu_failures = [], [CollectionFailure(NVIDIA_GPU_REPORT, "NVML", exc.reason, exc.detail)]
        except Exception as exc:
            gpu_items, gpu_failures = [], [CollectionFailure(NVIDIA_GPU_REPORT, "NVML", ERROR, str(exc))]
        items.extend(gpu_items)
        failures.extend(gpu_failures)
    return Collection(items, failures, time.monotonic() - started)
