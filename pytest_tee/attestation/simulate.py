"""A simulated TDX / SEV-SNP guest for tests and demonstrations: a sysroot tree plus the kernel's side of the ABI.

The collector's file I/O runs unchanged against it: ``provider`` and ``generation`` are files, ``inblob`` and
``outblob`` are FIFOs served by a helper thread that, like configfs-tsm, takes the single ``inblob`` write, bumps
``generation`` and produces the report when ``outblob`` is read — a quote whose REPORTDATA is the ``inblob``. Only
what a kernel does by magic is swapped in through ``AttestationIO``: the ioctl, and populating / removing a report
entry on mkdir / rmdir.

The evidence is signed by self-made hierarchies (``simulated_pki``): it verifies only against
``SIMULATED_ANCHORS``, which tests pass through the test-only ``anchors=`` keyword; the command line, trusting only
the vendors' roots, rejects it on ``root pin``.

    with SimulatedTd(tmp_path / "td") as td:        # installs td.io as the default collection I/O
        block = attest_document(doc, sysroot=td.sysroot)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_tee.attestation.collect import (
    TDX_CMD_GET_REPORT0,
    TDX_GUEST_DEVICE,
    TSM_REPORT_DIR,
    AttestationIO,
    install_io,
    under,
)
from pytest_tee.attestation.sev import SNP_POLICY_DEBUG, SnpReport
from pytest_tee.attestation.simulated_pki import SimulatedAmdPki, SimulatedIntelPki
from pytest_tee.attestation.tdx import (
    REPORT_DATA_SIZE,
    TD_ATTRIBUTE_MASKS,
    TD_IDENTITY_FIELDS,
    TDREPORT_SIZE,
    TdAttributes,
    TdQuote,
    TdReport,
    Xfam,
    parse_quote,
    quote_from_tdreport,
    tdreport_from_quote,
)

DEFAULT_TD_ATTRIBUTES = TD_ATTRIBUTE_MASKS["SEPT_VE_DISABLE"]
DEFAULT_XFAM = 0x61AE7  # x87 SSE AVX AVX-512 PKRU CET AMX, as on a Sapphire Rapids TD
DEFAULT_CPU_FLAGS = (
    "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile amx_int8 "
    "hypervisor tdx_guest"
)
RELEASE_TIMEOUT_S = 5.0
POLL_S = 0.005


def simulated_measurement(label: str) -> bytes:
    return hashlib.sha384(f"pytest-tee simulated {label}".encode()).digest()


class _SimulatedTsm:
    """configfs-tsm ``report`` entries served by threads; subclasses say which provider and what outblob is."""

    provider = ""

    def __init__(
        self,
        sysroot: str | os.PathLike[str],
        *,
        respond: bool = True,
        delay_s: float = 0.0,
        interloper: bool = False,
    ) -> None:
        self.sysroot = Path(sysroot)
        self.respond = respond  # False: take inblob, never produce outblob (a hung quote service)
        self.delay_s = delay_s
        self.interloper = interloper  # True: another writer bumps generation behind our back
        self.requests: list[bytes] = []  # every inblob received, for tests to inspect
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[threading.Event, threading.Thread]] = {}
        self._previous_io: AttestationIO | None = None
        self._installed = False
        self.io = AttestationIO(
            ioctl=self._ioctl, make_report_entry=self._make_entry, remove_report_entry=self._remove_entry
        )

    @property
    def report_dir(self) -> Path:
        return under(self.sysroot, TSM_REPORT_DIR)

    def start(self) -> _SimulatedTsm:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self._create_nodes()
        return self

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            entries = list(self._entries)
        for entry in entries:
            self._remove_entry(entry)
        for thread in self._threads:
            thread.join(RELEASE_TIMEOUT_S)
        if self._installed:
            install_io(self._previous_io)
            self._installed = False

    def __enter__(self) -> Any:
        self.start()
        self._previous_io = install_io(self.io)
        self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what subclasses provide -------------------------------------------------------------------------------
    def _create_nodes(self) -> None:
        pass

    def outblob(self, inblob: bytes) -> bytes:
        raise NotImplementedError

    def _ioctl(self, fd: int, request: int, buffer: bytearray) -> int:
        raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))

    # -- configfs-tsm ------------------------------------------------------------------------------------------
    def _make_entry(self, entry: Path) -> None:
        os.mkdir(entry)
        (entry / "provider").write_text(f"{self.provider}\n")
        (entry / "generation").write_text("0\n")
        os.mkfifo(entry / "inblob")
        os.mkfifo(entry / "outblob")
        gone = threading.Event()
        thread = threading.Thread(
            target=self._serve, args=(entry, gone), name=f"simulated tsm {entry.name}", daemon=True
        )
        with self._lock:
            self._entries[entry] = (gone, thread)
        self._threads.append(thread)
        thread.start()

    def _serve(self, entry: Path, gone: threading.Event) -> None:
        # Non-blocking FIFO ends polled here, so the thread stops as soon as the entry is removed or we close.
        def stopped() -> bool:
            return gone.is_set() or self._closing.is_set()

        try:
            data = _read_fifo_until_eof(entry / "inblob", stopped)
            if data is None:
                return
            self.requests.append(data)
            writes = 3 if self.interloper else 1
            (entry / "generation").write_text(f"{writes}\n")
            if not self.respond:
                while not stopped():
                    time.sleep(POLL_S)
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            # The kernel refuses (EINVAL) an inblob that is not 64 bytes; an empty outblob stands in for that.
            blob = self.outblob(data) if len(data) == REPORT_DATA_SIZE else b""
            _write_fifo_when_read(entry / "outblob", blob, stopped)
        except OSError:
            pass  # the entry was removed under us, or the reader went away

    def _remove_entry(self, entry: Path) -> None:
        with self._lock:
            gone, thread = self._entries.pop(entry, (None, None))
        if gone is None or thread is None:
            return
        gone.set()
        # A collector thread may still be blocked opening a FIFO (after a timeout): give it its partner.
        _release_fifo(entry / "inblob", os.O_RDONLY)
        _release_fifo(entry / "outblob", os.O_WRONLY)
        thread.join(RELEASE_TIMEOUT_S)
        for name in ("inblob", "outblob", "provider", "generation", "auxblob"):
            with contextlib.suppress(FileNotFoundError):
                (entry / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(entry)


def _read_fifo_until_eof(path: Path, stopped: Callable[[], bool]) -> bytes | None:
    """Everything one writer sends (configfs takes inblob from a single write); None when told to stop first."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    try:
        while not stopped():
            # Linux reports no hang-up on a FIFO no writer has opened yet, so this waits for the collector.
            readable, _, _ = select.select([fd], [], [], POLL_S)
            if not readable:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                return None if stopped() else b"".join(chunks)
            chunks.append(chunk)
        return None
    finally:
        os.close(fd)


def _write_fifo_when_read(path: Path, blob: bytes, stopped: Callable[[], bool]) -> None:
    """Write ``blob`` once a reader opens the FIFO, as outblob produces the report when it is read."""
    while True:
        if stopped():
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            time.sleep(POLL_S)
    try:
        os.set_blocking(fd, True)
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _release_fifo(path: Path, side: int) -> None:
    """Open the other end of a FIFO for a moment, so a thread blocked opening it goes on (and meets EOF/EPIPE)."""
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            os.close(os.open(path, side | os.O_NONBLOCK))
    except OSError:
        pass  # ENXIO: no reader waiting; ENOENT: already gone


class SimulatedTd(_SimulatedTsm):
    """A TDX guest: ``/dev/tdx_guest`` answering TDX_CMD_GET_REPORT0 and configfs-tsm provider ``tdx_guest``.

    ``quote_template`` (a real quote's bytes) makes the quotes by patching that quote — its TD identity, with
    REPORTDATA replaced — so they carry real-world structure (certification data, signature sizes) and a real
    signature that no longer verifies. Without it the quotes are synthetic v4 (or ``quote_version=5``) quotes
    signed by ``pki`` (a ``SimulatedIntelPki``; ``sign=False`` leaves them unsigned). ``debug``, ``td_attributes``
    and ``xfam`` change the TD's attributes in both the TDREPORT and the quote.
    """

    provider = "tdx_guest"

    def __init__(
        self,
        sysroot: str | os.PathLike[str],
        *,
        quote_template: bytes | None = None,
        quote_version: int = 4,
        debug: bool = False,
        td_attributes: int | None = None,
        xfam: int | None = None,
        mrtd: bytes | None = None,
        rtmrs: tuple[bytes, bytes, bytes, bytes] | None = None,
        cpu_flags: str = DEFAULT_CPU_FLAGS,
        write_cpuinfo: bool = True,
        pki: SimulatedIntelPki | None = None,
        sign: bool = True,
        **tsm_options: Any,
    ) -> None:
        super().__init__(sysroot, **tsm_options)
        self.pki = (pki or SimulatedIntelPki()) if sign else None
        self.template = parse_quote(quote_template) if quote_template is not None else None
        self.cpu_flags = cpu_flags
        self.write_cpuinfo = write_cpuinfo
        base = tdreport_from_quote(self.template) if self.template else _default_tdreport()
        attributes = base.td_attributes.value if td_attributes is None else td_attributes
        if debug:
            attributes |= TD_ATTRIBUTE_MASKS["DEBUG"]
        changes: dict[str, Any] = {"td_attributes": TdAttributes(attributes)}
        if xfam is not None:
            changes["xfam"] = Xfam(xfam)
        if mrtd is not None:
            changes["mrtd"] = mrtd
        if rtmrs is not None:
            changes.update(rtmr0=rtmrs[0], rtmr1=rtmrs[1], rtmr2=rtmrs[2], rtmr3=rtmrs[3])
        self.identity: TdReport = replace(base, **changes)
        self.quote_version = quote_version
        self.ioctl_calls = 0

    @property
    def device(self) -> Path:
        return under(self.sysroot, TDX_GUEST_DEVICE)

    def _create_nodes(self) -> None:
        self.device.parent.mkdir(parents=True, exist_ok=True)
        self.device.touch()
        cpuinfo = under(self.sysroot, "/proc/cpuinfo")
        if self.write_cpuinfo and not cpuinfo.exists():
            cpuinfo.parent.mkdir(parents=True, exist_ok=True)
            cpuinfo.write_text(
                "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: pytest-tee simulated TDX guest\n"
                f"flags\t\t: {self.cpu_flags}\n\n"
            )

    def tdreport(self, report_data: bytes) -> TdReport:
        return replace(self.identity, report_data=report_data)

    def quote(self, report_data: bytes) -> TdQuote:
        report = self.tdreport(report_data)
        if self.template is None:
            quote = quote_from_tdreport(report, version=self.quote_version)
            return self.pki.sign_quote(quote) if self.pki is not None else quote
        return replace(self.template, **{name: getattr(report, name) for name in TD_IDENTITY_FIELDS})

    def outblob(self, inblob: bytes) -> bytes:
        return self.quote(inblob).to_bytes()

    def _ioctl(self, fd: int, request: int, buffer: bytearray) -> int:
        if request != TDX_CMD_GET_REPORT0 or not _same_file(fd, self.device):
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        if len(buffer) != REPORT_DATA_SIZE + TDREPORT_SIZE:
            raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
        self.ioctl_calls += 1
        buffer[REPORT_DATA_SIZE:] = self.tdreport(bytes(buffer[:REPORT_DATA_SIZE])).to_bytes()
        return 0


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _default_tdreport() -> TdReport:
    return TdReport(
        report_type=0x81,
        report_subtype=0,
        report_version=0,
        cpusvn=bytes(16),
        tee_tcb_info_hash=bytes(48),
        tee_info_hash=bytes(48),
        report_data=bytes(64),
        mac=bytes(32),
        tee_tcb_valid=bytes.fromhex("ff01000000000000"),
        tee_tcb_svn=bytes.fromhex("03000400000000000000000000000000"),
        mrseam=simulated_measurement("MRSEAM"),
        mrsignerseam=bytes(48),
        seam_attributes=bytes(8),
        tee_tcb_svn2=bytes(16),
        td_attributes=TdAttributes(DEFAULT_TD_ATTRIBUTES),
        xfam=Xfam(DEFAULT_XFAM),
        mrtd=simulated_measurement("MRTD"),
        mrconfigid=bytes(48),
        mrowner=bytes(48),
        mrownerconfig=bytes(48),
        rtmr0=simulated_measurement("RTMR0"),
        rtmr1=simulated_measurement("RTMR1"),
        rtmr2=simulated_measurement("RTMR2"),
        rtmr3=bytes(48),
        servtd_hash=bytes(48),
    )


class SimulatedSnpGuest(_SimulatedTsm):
    """An SEV-SNP guest: ``/dev/sev-guest``, the ``sev-guest`` platform device, configfs-tsm provider ``sev_guest``."""

    provider = "sev_guest"

    def __init__(
        self,
        sysroot: str | os.PathLike[str],
        *,
        debug: bool = False,
        vmpl: int = 0,
        measurement: bytes | None = None,
        pki: SimulatedAmdPki | None = None,
        sign: bool = True,
        auxblob: bytes | None = None,
        **tsm_options: Any,
    ) -> None:
        super().__init__(sysroot, **tsm_options)
        self.pki = (pki or SimulatedAmdPki()) if sign else None
        # The host's certificate table (VCEK, ASK, ARK), served as configfs-tsm auxblob; b"" serves none.
        self.auxblob = auxblob if auxblob is not None else (self.pki.cert_table() if self.pki else b"")
        policy = 0x30000 | (SNP_POLICY_DEBUG if debug else 0)  # SMT allowed + the must-be-one bit
        self.identity = SnpReport(
            version=2,
            guest_svn=0,
            policy=policy,
            family_id=bytes(16),
            image_id=bytes(16),
            vmpl=vmpl,
            signature_algo=1,
            current_tcb=0,
            platform_info=0x1,
            key_info=0,
            report_data=bytes(64),
            measurement=measurement or simulated_measurement("SNP MEASUREMENT"),
            host_data=bytes(32),
            id_key_digest=bytes(48),
            author_key_digest=bytes(48),
            report_id=hashlib.sha256(b"pytest-tee simulated report id").digest(),
            report_id_ma=b"\xff" * 32,
            reported_tcb=0,
            chip_id=bytes(64),
            committed_tcb=0,
            launch_tcb=0,
            signature=bytes(512),
        )

    def _create_nodes(self) -> None:
        under(self.sysroot, "/dev").mkdir(parents=True, exist_ok=True)
        under(self.sysroot, "/dev/sev-guest").touch()
        under(self.sysroot, "/sys/devices/platform/sev-guest").mkdir(parents=True, exist_ok=True)

    def report(self, report_data: bytes) -> SnpReport:
        report = replace(self.identity, report_data=report_data)
        return self.pki.sign_report(report) if self.pki is not None else report

    def _make_entry(self, entry: Path) -> None:
        super()._make_entry(entry)
        if self.auxblob:
            (entry / "auxblob").write_bytes(self.auxblob)

    def outblob(self, inblob: bytes) -> bytes:
        return self.report(inblob).to_bytes()
