"""The CPUs this process may use, and how its compute threads wait.

PyTorch sizes its intra-op thread pool from the machine's cores, not from
what the process is allowed to use: a container limited to two CPUs by a
cgroup quota on a 64-core host would start 64 threads that time-share two
CPUs. :func:`available_cpus` is the smaller of the CPU affinity mask and the
cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), and
:func:`configure_threads` caps torch's thread count there (divided among the
ranks that ``torchrun`` starts on one machine), or sets the count asked for.

How idle threads wait matters as much on a busy machine. PyTorch's CPU
operators run in GNU OpenMP parallel regions, whose idle threads spin for a
while before they sleep. With other processes competing for the cores, that
spinning takes CPU time from the thread everyone waits for: a training job on
a 2-core machine with three CPU-bound competitors took 4.5x its quiet wall
time and twice its quiet CPU time. Passive waiting (``OMP_WAIT_POLICY=PASSIVE``)
makes idle threads sleep at once. OpenMP reads the variable only when its
runtime is loaded, i.e. when ``torch`` is first imported, so
:func:`prefer_passive_waiting` must run before that; the ``audioadapt``
command does it first thing, unless ``OMP_WAIT_POLICY`` is already set in the
environment (then that value is kept). ``benchmarks/contention.py`` measures
the effect (``benchmarks/results/sed_contention.md``).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: The OpenMP wait policy the ``audioadapt`` command asks for.
PASSIVE = "PASSIVE"
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CPUINFO = Path("/proc/cpuinfo")


def affinity_cpus() -> int:
    """Number of CPUs in this process's affinity mask (all CPUs where there is no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _own_cgroups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup v2 path and v1 ``cpu`` controller path (``None`` when absent)."""
    text = _read(proc_cgroup)
    v2 = v1 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _quota_v2(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = float(fields[0]), float(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = float(quota or "-1"), float(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and each of its parents up to ``root``, innermost first."""
    parts = [p for p in relative.split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_cpu_quota(root: Path = _CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs' worth of time this process's cgroups allow (the tightest along the hierarchy); ``None`` = unlimited."""
    v2, v1 = _own_cgroups(proc_cgroup)
    limits: list[float] = []
    if v2 is not None:
        limits += [q for d in _ancestors(root, v2) if (q := _quota_v2(d)) is not None]
    if v1 is not None:
        for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            if (root / mount).is_dir():
                limits += [q for d in _ancestors(root / mount, v1) if (q := _quota_v1(d)) is not None]
                break
    return min(limits) if limits else None


def available_cpus() -> int:
    """CPUs this process can compute on: the affinity mask, capped by the cgroup quota (rounded up), >= 1."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


#: CPU feature flags that change which kernels (and so which rounding) torch uses, in the order they are named.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def cpu_model(cpuinfo: Path = _CPUINFO, wanted: Sequence[str] = _ISA_FLAGS) -> tuple[str, list[str]]:
    """The CPU's model name and which of the ``wanted`` feature flags it has, in their order (Linux); elsewhere the
    processor string and no flags."""
    text = _read(cpuinfo)
    if text is None:
        return platform.processor() or platform.machine() or "unknown CPU", []
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name or platform.processor() or platform.machine() or "unknown CPU", [f for f in wanted if f in flags]


def cpu_identity(cpuinfo: Path = _CPUINFO) -> str:
    """What code compiled with ``-march=native`` depends on: the model name and every feature-flag and (Arm) CPU
    part line, deduplicated and sorted, joined by ``|`` (Linux); elsewhere the processor string."""
    text = _read(cpuinfo)
    if text is None:
        return platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    return "|".join(sorted({line.strip() for line in text.splitlines() if line.split(":")[0].strip() in wanted}))


def machine_description(cpuinfo: Path = _CPUINFO) -> str:
    """One line naming the machine a result came from: CPU model and vector units, usable CPUs, OS and the GPU.

    The GPU is named only when torch is already imported and sees CUDA (this never imports torch). Floating-point
    results of one seed differ between CPU kinds (other kernels, other rounding), so benchmark records keep it.
    """
    name, isa = cpu_model(cpuinfo)
    parts = [name + (f" ({', '.join(isa)})" if isa else ""), f"{available_cpus()} CPUs",
             f"{platform.system()} {platform.machine()}".strip()]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(torch.cuda.current_device()))
    return ", ".join(parts)


def local_ranks() -> int:
    """Processes ``torchrun`` started on this machine (``LOCAL_WORLD_SIZE``; 1 otherwise)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def default_num_threads() -> int:
    """This process's share of :func:`available_cpus` among the local ranks, >= 1."""
    return max(1, available_cpus() // local_ranks())


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count; returns the count now in force.

    ``num_threads`` is set as given. ``None`` only caps torch's current count
    at :func:`default_num_threads` (torch starts one thread per core of the
    machine, whatever the process may use), so a lower count chosen earlier
    with ``torch.set_num_threads`` stays, and ``OMP_NUM_THREADS`` in the
    environment counts as the user's choice and is left in force.
    """
    import torch

    current = torch.get_num_threads()
    if num_threads is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return current
        count = min(current, default_num_threads())
    else:
        count = int(num_threads)
    if count < 1:
        raise ValueError(f"num_threads must be >= 1, got {count}")
    if count != current:
        torch.set_num_threads(count)
        log.info("torch computes with %d thread(s) (was %d)", count, current)
    return count


def prefer_passive_waiting() -> bool:
    """Ask OpenMP to let idle threads sleep instead of spinning; ``True`` when it will take effect.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set. It
    has no effect once ``torch`` has been imported in this process.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = PASSIVE
    return "torch" not in sys.modules


__all__ = ["PASSIVE", "affinity_cpus", "available_cpus", "cgroup_cpu_quota", "configure_threads", "cpu_identity",
           "cpu_model", "default_num_threads", "local_ranks", "machine_description", "prefer_passive_waiting"]
