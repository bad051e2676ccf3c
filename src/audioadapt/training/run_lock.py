"""One training at a time per run directory.

A training holds an exclusive lock on ``run.lock`` in its run directory from
start to end, so that a second ``train`` (fresh or ``--resume``) of the same
directory fails at once instead of writing the same checkpoints and
``metrics.csv`` rows. The lock is ``fcntl.flock``: the operating system drops
it when the process ends, however it ends, so a killed training never leaves
a lock behind; the file stays, holding the pid of the last holder. Where
``fcntl`` does not exist, the lock is the file itself, created exclusively
with the holder's pid and removed on release; a file whose process is gone
is stale and taken over.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from audioadapt.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLock:
    """The lock of one run directory, held by this process until :meth:`release`.

    Parameters
    ----------
    path: the lock file.
    fd: its open descriptor.
    owns_file: remove the file on release (the fallback without ``fcntl``).
    """

    def __init__(self, path: Path, fd: int, owns_file: bool):
        self.path, self._fd, self._owns_file = path, fd, owns_file

    @classmethod
    def acquire(cls, run_dir: str | Path) -> "RunLock":
        """Lock ``run_dir`` (which must exist) or raise :class:`ConfigError` naming the holder's pid."""
        path = Path(run_dir) / LOCK_FILE
        if fcntl is not None:
            return cls(path, _flock(path), owns_file=False)
        return cls(path, _exclusive_file(path), owns_file=True)

    def release(self) -> None:
        """Give the lock up (once; later calls do nothing)."""
        if self._fd < 0:
            return
        os.close(self._fd)  # also drops the flock
        self._fd = -1
        if self._owns_file:
            self.path.unlink(missing_ok=True)


def _in_use(path: Path) -> ConfigError:
    holder = _read_pid(path)
    return ConfigError(f"{path.parent}: in use by another training (pid {holder if holder else 'unknown'}); "
                       "wait for it to end or choose another run directory")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))


def _flock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _in_use(path) from None
    except BaseException:
        os.close(fd)
        raise
    _write_pid(fd)
    return fd


def _exclusive_file(path: Path) -> int:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_pid(path)
            if holder is not None and pid_alive(holder):
                raise _in_use(path) from None
            log.warning("%s: removing the stale lock of process %s, which has ended", path, holder)
            path.unlink(missing_ok=True)
            continue
        _write_pid(fd)
        return fd
    raise _in_use(path)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would send Ctrl+C there
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


__all__ = ["LOCK_FILE", "RunLock", "pid_alive"]
