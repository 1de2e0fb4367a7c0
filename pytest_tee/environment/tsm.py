"""configfs-tsm (``/sys/kernel/config/tsm/report``, Linux 6.7+): which attestation provider the kernel registered.

The directory existing proves nothing — without a provider ``mkdir`` fails with ENXIO — so on a live system the
probe creates a uniquely named entry, reads ``provider`` and removes the entry again (what the CoCo attestation
agent does). Under any other sysroot nothing is ever created: ``provider`` files of entries already captured in
the tree are read instead. ENXIO, EACCES and ENOENT mean "unavailable", not "not a TEE".
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot, describe_os_error

TSM_REPORT_DIR = "/sys/kernel/config/tsm/report"
SIGNAL_TSM = "configfs-tsm provider"
PROVIDER_SUPPORTS = {"tdx_guest": "tdx", "sev_guest": "sev-snp", "arm_cca_guest": "cca"}


def _live_provider(sysroot: Sysroot) -> tuple[str | None, str]:
    entry = sysroot.path(f"{TSM_REPORT_DIR}/pytest-tee-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.mkdir(entry)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None, "unavailable: no provider registered (mkdir: ENXIO)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return None, "unavailable: mkdir not permitted (needs root)"
        return None, f"unavailable: mkdir {describe_os_error(exc)}"
    try:
        provider = sysroot.read_text(f"{TSM_REPORT_DIR}/{entry.name}/provider").stripped()
    finally:
        # A leftover entry would be harmless (it holds nothing until inblob is written), so no error is raised.
        with contextlib.suppress(OSError):
            os.rmdir(entry)
    if not provider:
        return None, "unavailable: entry created but provider unreadable"
    return provider, "ok"


def _captured_provider(sysroot: Sysroot) -> tuple[str | None, str]:
    entries, reason = sysroot.listdir(TSM_REPORT_DIR)
    if entries is None:
        return None, reason
    for name in entries:
        provider = sysroot.read_text(f"{TSM_REPORT_DIR}/{name}/provider").stripped()
        if provider:
            return provider, "ok"
    return None, "present, but no captured report entry names a provider (unknown)"


def probe(sysroot: Sysroot) -> tuple[Evidence, str | None]:
    """The evidence entry and the provider name (None when unavailable or unknown)."""
    if not sysroot.captured(TSM_REPORT_DIR):
        return Evidence(SIGNAL_TSM, TSM_REPORT_DIR, sysroot.absent(TSM_REPORT_DIR)), None
    if not sysroot.is_dir(TSM_REPORT_DIR):
        parent = "/sys/kernel/config"
        why = "configfs not mounted" if not sysroot.is_dir(parent) else "no tsm/report (kernel < 6.7 or no TSM)"
        return Evidence(SIGNAL_TSM, TSM_REPORT_DIR, f"absent ({why})"), None
    provider, reason = _live_provider(sysroot) if sysroot.live else _captured_provider(sysroot)
    if provider is None:
        return Evidence(SIGNAL_TSM, TSM_REPORT_DIR, reason), None
    return Evidence(SIGNAL_TSM, TSM_REPORT_DIR, f"provider {provider}", PROVIDER_SUPPORTS.get(provider)), provider
