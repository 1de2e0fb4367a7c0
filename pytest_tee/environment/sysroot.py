"""Read ``/proc``, ``/sys`` and ``/dev`` facts under a sysroot directory, never raising.

Every probe names the path as the probed system sees it (``/proc/cpuinfo``); :class:`Sysroot` maps it under the
root directory. A sysroot may be partial — often all one has from a remote machine is a cpuinfo or a dmesg
excerpt — so a missing file is an answer, not an error: "absent" where the sysroot holds that tree (``/dev``,
``/sys``…), "unknown" where it does not. Captured trees stand in for device nodes with empty regular files, and
for ``/dev/cpu/N/cpuid`` with a regular file holding the 16 register bytes of each leaf at the offsets the device
uses (see ``docs/environments.md``).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# dmesg excerpts are the largest thing read; a runaway file must not eat the session's memory.
MAX_READ_BYTES = 16 * 2**20
_CHUNK_BYTES = 64 * 2**10


def _read_bounded(handle: BinaryIO) -> bytes:
    # Small reads: some procfs files (sysctls) refuse one huge read with ENOMEM.
    chunks: list[bytes] = []
    total = 0
    while total < MAX_READ_BYTES:
        chunk = handle.read(_CHUNK_BYTES)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class FileRead:
    """The text of one probed file, or why there is none (``reason`` is "ok" when ``text`` is set)."""

    text: str | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.text is not None

    def stripped(self) -> str | None:
        return None if self.text is None else self.text.strip()


def describe_os_error(exc: OSError) -> str:
    """A short finding for an OSError: "absent", "permission denied", or the errno name and message."""
    if isinstance(exc, FileNotFoundError):
        return "absent"
    if isinstance(exc, PermissionError):
        return "permission denied"
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"unreadable ({name}: {exc.strerror or exc})"


class Sysroot:
    """Resolves probed absolute paths under ``root``; ``live`` is true when ``root`` is this machine's ``/``."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)
        self._real_root = os.path.realpath(self.root)
        self.live = self._real_root == os.path.realpath("/")

    def __repr__(self) -> str:
        return f"Sysroot({str(self.root)!r})"

    def path(self, probed: str) -> Path:
        """The local path of ``probed`` (an absolute path on the probed system)."""
        return self.root / probed.lstrip("/")

    def _resolve(self, probed: str) -> tuple[Path | None, str]:
        local = self.path(probed)
        if self.live:
            return local, "ok"
        # A captured tree may hold absolute symlinks; following one would read this machine, not the sysroot.
        real = os.path.realpath(local)
        if real != self._real_root and not real.startswith(self._real_root.rstrip(os.sep) + os.sep):
            return None, "unreadable (a symlink leaves the sysroot)"
        return local, "ok"

    def captured(self, probed: str) -> bool:
        """Whether the sysroot holds the top-level directory of ``probed`` (``/dev`` for ``/dev/tdx_guest``).

        A partial tree without ``/dev`` cannot say that a device is absent, only that it is unknown.
        """
        top = probed.strip("/").split("/", 1)[0]
        return self.live or (self.root / top).is_dir()

    def absent(self, probed: str) -> str:
        """The finding for a path that is not there: "absent", or "unknown" when its tree was not captured."""
        if self.captured(probed):
            return "absent"
        return f"unknown (no /{probed.strip('/').split('/', 1)[0]} in the sysroot)"

    def read_text(self, probed: str) -> FileRead:
        """The decoded text of ``probed`` (undecodable bytes replaced), or None with the reason."""
        local, reason = self._resolve(probed)
        if local is None:
            return FileRead(None, reason)
        try:
            with open(local, "rb", buffering=0) as handle:
                raw = _read_bounded(handle)
        except FileNotFoundError:
            return FileRead(None, self.absent(probed))
        except OSError as exc:
            return FileRead(None, describe_os_error(exc))
        return FileRead(raw.decode("utf-8", errors="replace"), "ok")

    def pread(self, probed: str, size: int, offset: int) -> tuple[bytes | None, str]:
        """``size`` bytes at ``offset`` (the cpuid/msr device protocol), or None with the reason."""
        local, reason = self._resolve(probed)
        if local is None:
            return None, reason
        try:
            fd = os.open(local, os.O_RDONLY)
        except FileNotFoundError:
            return None, self.absent(probed)
        except OSError as exc:
            return None, describe_os_error(exc)
        try:
            data = os.pread(fd, size, offset)
        except OSError as exc:
            return None, describe_os_error(exc)
        finally:
            os.close(fd)
        if len(data) < size:
            return None, "no data at this offset"
        return data, "ok"

    def exists(self, probed: str) -> bool:
        local, _ = self._resolve(probed)
        return local is not None and os.path.lexists(local)

    def is_dir(self, probed: str) -> bool:
        local, _ = self._resolve(probed)
        return local is not None and local.is_dir()

    def node_kind(self, probed: str) -> str | None:
        """How ``probed`` exists: "character device", "directory", "stand-in file", ... or None when absent."""
        local, _ = self._resolve(probed)
        if local is None:
            return None
        try:
            mode = os.lstat(local).st_mode
        except OSError:
            return None
        if stat.S_ISCHR(mode):
            return "character device"
        if stat.S_ISBLK(mode):
            return "block device"
        if stat.S_ISDIR(mode):
            return "directory"
        if stat.S_ISLNK(mode):
            return "symlink"
        if stat.S_ISREG(mode):
            return "regular file" if self.live else "stand-in file"
        return "special file"

    def listdir(self, probed: str) -> tuple[list[str] | None, str]:
        local, reason = self._resolve(probed)
        if local is None:
            return None, reason
        try:
            return sorted(os.listdir(local)), "ok"
        except FileNotFoundError:
            return None, self.absent(probed)
        except OSError as exc:
            return None, describe_os_error(exc)
