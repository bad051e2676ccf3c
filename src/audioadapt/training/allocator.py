"""How the process's C allocator treats the large CPU tensors of training and inference.

PyTorch allocates CPU tensors with ``malloc``. glibc serves every request above
its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns it to the
kernel on ``free``, so each large activation of a training step costs a page
fault per 4 KiB page when it is first written, every step again. The
paper-size CRNN at batch 64 allocates dozens of such tensors (its first block's
activations are 335 MB each), and on a 2-core virtual machine these faults took
more than half of a training step.

``"retain"`` tells glibc (``mallopt``) to serve large requests from the heap
and never to give freed heap memory back to the kernel, so the memory of one
step is reused by the next without faults. On a 2-core virtual machine a
training step of the paper-size model at batch 64 went from 4.7 to 2.6 s and
inference from 0.92 to 0.66 s per batch (0.79 million faults and 2.9 s of
kernel time per step without it; ``benchmarks/results/sed_throughput_intel-xeon-amx.md``
against ``sed_throughput_intel-xeon-amx_allocator_system.md``). The price is a resident size
that stays at its peak, and a higher peak from fragmentation (3.6 instead of
2.9 GiB there), until the process ends. ``"system"`` leaves the allocator
alone. The setting is process-wide and cannot be undone for the process; it
does nothing where the C library is not glibc.

Who may change it: the trainer applies ``train.cpu_allocator`` when it
starts, and the ``audioadapt`` command (:func:`claim_process`) lets the runs
it loads apply theirs (:func:`configure_for_run`). Loading a run from Python
(``audioadapt.load``, ``predict_sed``, ``evaluate_ser_run``, ...) leaves the
process alone; a program that wants the setting calls
:func:`configure_cpu_allocator` itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
from typing import Literal

log = logging.getLogger(__name__)

CpuAllocatorMode = Literal["retain", "system"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_NEVER = -1  # mallopt(3): "-1 disables trimming completely"

_applied: CpuAllocatorMode | None = None
_claimed = False


def configure_cpu_allocator(mode: CpuAllocatorMode) -> bool:
    """Apply ``mode`` to this process's allocator; returns whether the allocator was changed.

    ``"retain"`` is applied once per process (later calls return ``False``);
    ``"system"`` never changes anything, and cannot undo an earlier ``"retain"``.
    """
    global _applied
    _check(mode)
    if mode == "system" or _applied == "retain":
        if mode == "system" and _applied == "retain":
            log.info("the CPU allocator already retains freed memory in this process; 'system' cannot undo it")
        return False
    libc = _glibc()
    if libc is None:
        log.debug("CPU allocator: not glibc, left as it is")
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER) == 1
    if not ok:
        log.warning("CPU allocator: glibc refused the mallopt settings; left as it is")
        return False
    _applied = "retain"
    log.debug("CPU allocator: large blocks come from the heap and freed memory is kept for reuse")
    return True


def _check(mode: str) -> None:
    if mode not in ("retain", "system"):
        raise ValueError(f"unknown CPU allocator mode {mode!r} (expected 'retain' or 'system')")


def claim_process() -> None:
    """Declare this process an ``audioadapt`` command: runs it loads may set its allocator from now on."""
    global _claimed
    _claimed = True


def configure_for_run(mode: CpuAllocatorMode) -> bool:
    """Apply a loaded run's ``train.cpu_allocator`` if this process is claimed (:func:`claim_process`).

    In any other process (a notebook, a program using the library) nothing
    changes and ``False`` is returned; ``mode`` is checked either way.
    """
    _check(mode)
    return configure_cpu_allocator(mode) if _claimed else False


def applied_mode() -> CpuAllocatorMode | None:
    """``"retain"`` once this process's allocator was changed, else ``None``."""
    return _applied


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


__all__ = ["CpuAllocatorMode", "applied_mode", "claim_process", "configure_cpu_allocator", "configure_for_run"]
