"""A fused CPU kernel for the training-mode tail of the CRNN's few-channel conv blocks.

In training, a :class:`~audioadapt.models.blocks.ConvBlock` computes
``avgpool(dropout(ChannelGLU(BatchNorm(conv(x)))))``. On CPU, the first blocks'
activations are large (the paper-size model's first block: 84 million values per
batch of 64) and have few channels, so PyTorch's one-operator-at-a-time
execution of BatchNorm, the GLU's 1x1 map, sigmoid and product, the dropout mask
and the pooling, and of their backward passes, is bound by memory traffic: about
a third of a training step. The C kernels in ``fused_tail.c`` do the same
arithmetic in one pass over the convolution's output forward (writing only the
pooled result) and one backward (recomputing the activations instead of reading
them back), plus a statistics pass and the BatchNorm input-gradient pass.

The kernels are compiled with the system C compiler on first use (``cc -O3
-march=native``) into a per-user cache directory, loaded with :mod:`ctypes` and
run on ``torch.get_num_threads()`` threads (ctypes releases the GIL). They are
registered as ``torch.library`` operators (``audioadapt::fused_tail_stats``,
``fused_tail_train`` with its backward, ``fused_tail_eval``), each with a fake
implementation that only computes output shapes, so ``torch.jit.trace``,
``torch.export`` and ``torch.compile`` see one operator node where they would
otherwise trace into ctypes and fail. Where no
compiler works, :func:`fused_tail_available` is false and the blocks use PyTorch
operators; the model's numbers are the same either way up to float rounding
(``tests/models/test_fused_tail.py``). Dropout draws come from the same generator and rule as
:class:`~audioadapt.models.blocks.MaskDropout` (8-bit draws, ``p`` a multiple of 1/256).

The channel loops use vectors as wide as the instruction set the kernels are compiled for
(:func:`vector_width`: 16 floats with AVX-512, 8 with AVX/AVX2, 4 otherwise), and the channel map keeps
a block of at most half the vector registers as accumulators. The first version used 16-float
vectors everywhere; on a CPU without AVX-512, GCC split them into pieces kept on the stack. Measured on a
2-core AMD EPYC (AVX2 + FMA, no AVX-512; shared, load 3-5; one thread, variants interleaved in one
process, median of 9; ``benchmarks/fused_tail_speed.py``), the block tail alone at batch 8 with the small
CRNN's shapes, as a fraction of the operator path's time at 8 / 16 / 32 / 64 channels (ISA width: the
range over three runs; 16-float: one run beside it):

=======================  =========  =========  =========  =========
variant                  8          16         32         64
=======================  =========  =========  =========  =========
16-float, train          0.77       0.97       2.62       1.29
16-float, eval           0.38       1.13       3.50       2.02
ISA width, train         0.73-0.77  0.44-0.46  0.55-0.64  0.59-0.85
ISA width, eval          0.23-0.34  0.41-0.47  0.44-0.68  0.60-0.75
=======================  =========  =========  =========  =========

(train: forward and backward; eval: forward under ``inference_mode``.) On CPUs with AVX-512 the
channel map is the one measured on the Xeon (``benchmarks/results/sed_throughput_intel-xeon-amx.md``);
the dL/dW accumulation now keeps its inputs in registers too, which was not re-timed on that kind. Paper-size full system on the EPYC
(batch 8, one thread, interleaved, median of 5): training step 0.94 and inference 0.92 of the operator
path's time (16-float version: 1.28 and 1.41); the convolutions and the BiGRU take most of the step there.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch

from .. import cpus

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("fused_tail.c")
#: compile flags. -ffast-math lets GCC call glibc's vector expf; it is given to the compile step only,
#: since linking with it adds crtfastmath.o, which would switch the whole process to flush-to-zero.
#: -mprefer-vector-width=512 lets the loop vectoriser use the widest registers the CPU has (GCC's tuning
#: for AMD Zen asks for 128-bit ones); the explicit vector types of fused_tail.c follow the ISA anyway.
#: Small channel loops are not peeled completely, so that they stay vector loops (a GCC option; other
#: compilers get the portable set).
_FLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp-simd",
          "--param=max-completely-peel-times=1", "-fPIC")
_PORTABLE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-fPIC")
#: channel counts with a specialised (compile-time) entry point in fused_tail.c; others use the generic one
_SPECIALISED = (8, 16, 32, 64)
_KERNELS = ("tail_stats", "tail_forward", "tail_backward", "tail_input_grad")
_LOCK = threading.Lock()
_I64, _F32, _PTR = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "audioadapt" / "kernels"


def _build(compiler: str, target: Path) -> bool:
    """Compile ``fused_tail.c`` into ``target`` (atomically); ``False`` with a warning if no flag set works."""
    errors = []
    for flags in (_FLAGS, _PORTABLE_FLAGS):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built, obj = Path(tmp) / target.name, Path(tmp) / "fused_tail.o"
                subprocess.run([compiler, *flags, "-c", "-o", str(obj), str(_SOURCE)], check=True,
                               capture_output=True, timeout=120)
                subprocess.run([compiler, "-shared", "-o", str(built), str(obj), "-lm"], check=True,
                               capture_output=True, timeout=120)
                os.replace(built, target)  # atomic: other processes see the whole file or none
            return True
        except (OSError, subprocess.SubprocessError) as exc:
            detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[:300]
            errors.append(f"{exc} {detail}".strip())
    log.warning("fused CPU kernels: building %s failed (%s); the conv blocks use PyTorch operators",
                _SOURCE.name, " | ".join(errors))
    return False


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """The compiled kernels, building them on first use; ``None`` where that is not possible."""
    if platform.system() == "Windows":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("fused CPU kernels: no C compiler found; the conv blocks use PyTorch operators")
        return None
    try:
        source = _SOURCE.read_bytes()
    except OSError as exc:
        log.warning("fused CPU kernels: cannot read %s (%s); the conv blocks use PyTorch operators", _SOURCE, exc)
        return None
    # -march=native code is only valid on this CPU model: a home directory shared by a cluster's
    # different nodes gets one library per kind of CPU
    identity = " ".join((compiler, *_FLAGS, platform.machine(), cpus.cpu_identity()))
    key = hashlib.sha256(source + identity.encode()).hexdigest()[:16]
    target = _cache_dir() / f"fused_tail_{key}.so"
    with _LOCK:
        if not target.exists() and not _build(compiler, target):
            return None
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            log.warning("fused CPU kernels: cannot load %s (%s); the conv blocks use PyTorch operators", target, exc)
            return None
    argtypes = {"tail_stats": [_PTR, _I64, _I64, _I64, _PTR, _PTR],
                "tail_forward": [_PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _I64, _F32, _PTR] + [_I64] * 7,
                "tail_backward": [_PTR] * 8 + [_I64, _F32] + [_PTR] * 7 + [_I64] * 7,
                "tail_input_grad": [_PTR] * 5 + [_I64] * 3}
    for name in _KERNELS:
        for suffix in ("any", *map(str, _SPECIALISED)):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = argtypes[name]
            fn.restype = None
    lib.tail_vector_width.argtypes, lib.tail_vector_width.restype = [], _I64
    return lib


def vector_width() -> int:
    """Floats per vector register the kernels were compiled for: 16 (AVX-512), 8 (AVX/AVX2), else 4; 0 unbuilt."""
    lib = _library()
    return 0 if lib is None else int(lib.tail_vector_width())


def _kernel(name: str, channels: int):
    """The entry point of kernel ``name`` for ``channels`` (specialised where one exists)."""
    suffix = str(channels) if channels in _SPECIALISED else "any"
    return getattr(_library(), f"{name}_{suffix}")


@torch.compiler.assume_constant_result
def fused_tail_available() -> bool:
    """Whether the fused kernels are built and loadable on this machine."""
    return _library() is not None


def _pool(workers: int) -> ThreadPoolExecutor:
    """The kernel threads of this process (a forked child gets its own: the parent's threads are not in it)."""
    return _pool_of(os.getpid(), workers)


@lru_cache(maxsize=8)
def _pool_of(pid: int, workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audioadapt-kernel")


def _split(total: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, total))
    bounds = [total * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _run(kernel, total: int, args: Callable[[int, int, int], tuple]) -> None:
    """Run ``kernel(*args(part, lo, hi))`` over ``[0, total)`` split into one range per torch thread."""
    threads = torch.get_num_threads()
    jobs = [_pool(threads).submit(kernel, *args(part, lo, hi))
            for part, (lo, hi) in enumerate(_split(total, threads))]
    for job in jobs:
        job.result()


def _parts(total: int, size: int) -> torch.Tensor:
    """Zeroed float64 accumulators, one row of ``size`` per range :func:`_run` makes of ``total``."""
    return torch.zeros(len(_split(total, torch.get_num_threads())), size, dtype=torch.float64)


def _pooled_forward(y: torch.Tensor, a: torch.Tensor, c: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                    draws: torch.Tensor | None, threshold: int, scale: float,
                    pool: tuple[int, int]) -> torch.Tensor:
    """``avgpool(keep * (W h + b) * sigmoid(h))`` with ``h = a * y + c`` per channel (no autograd)."""
    n, ch, t, f = y.shape
    pt, pf = pool
    a, c, b = a.contiguous(), c.contiguous(), bias.detach().contiguous()
    wt = weight.detach().t().contiguous()
    out = torch.empty((n, ch, t // pt, f // pf), dtype=y.dtype, memory_format=torch.channels_last)
    _run(_kernel("tail_forward", ch), n * (t // pt),
         lambda part, r0, r1: (_ptr(y), _ptr(a), _ptr(c), _ptr(wt), _ptr(b), _ptr(draws), threshold, scale,
                               _ptr(out), t, f, ch, pt, pf, r0, r1))
    return out


def _pooled_shape(y: torch.Tensor, pool: Sequence[int]) -> tuple:
    n, ch, t, f = y.shape
    return n, ch, t // pool[0], f // pool[1]


# -- the kernels as torch.library operators ---------------------------------------------------------
# Registered operators (with shape-only "fake" versions) let torch.jit.trace, torch.export and
# torch.compile record a call to the kernel as one node instead of tracing into ctypes.

@torch.library.custom_op("audioadapt::fused_tail_stats", mutates_args=())
def _stats_op(y: torch.Tensor) -> torch.Tensor:
    """Per-channel sums, then sums of squares, of channels-last ``y``: ``(2 * channel,)`` float64."""
    n, ch, t, f = y.shape
    pixels = n * t * f
    parts = _parts(pixels, 2 * ch)  # per range: sum, sum of squares
    _run(_kernel("tail_stats", ch), pixels,
         lambda part, p0, p1: (_ptr(y), p0, p1, ch, _ptr(parts[part]), _ptr(parts[part, ch:])))
    return parts.sum(0)


@_stats_op.register_fake
def _(y: torch.Tensor) -> torch.Tensor:
    return y.new_empty((2 * y.shape[1],), dtype=torch.float64)


def _affine(gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor,
            invstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, c)`` with ``BatchNorm(y) = a * y + c`` for the batch statistics ``mean``, ``invstd``."""
    a = gamma * invstd
    return a, beta - mean * a


@torch.library.custom_op("audioadapt::fused_tail_train", mutates_args=())
def _train_op(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
              mean: torch.Tensor, invstd: torch.Tensor, draws: Optional[torch.Tensor], threshold: int, scale: float,
              pool: list[int]) -> torch.Tensor:
    """The training tail's pooled output for the batch statistics ``mean``, ``invstd``."""
    a, c = _affine(gamma, beta, mean, invstd)
    return _pooled_forward(y, a, c, weight, bias, draws, threshold, scale, tuple(pool))


@torch.library.custom_op("audioadapt::fused_tail_train_backward", mutates_args=())
def _train_backward_op(grad_out: torch.Tensor, y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                       weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor,
                       draws: Optional[torch.Tensor], threshold: int, scale: float,
                       pool: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`_train_op` for ``(y, gamma, beta, weight, bias)``, BatchNorm's statistics included."""
    a, c = _affine(gamma, beta, mean, invstd)
    a, c = a.contiguous(), c.contiguous()
    w = weight.detach().contiguous()
    wt, b = w.t().contiguous(), bias.detach().contiguous()
    pt, pf = pool
    n, ch, t, f = y.shape
    gp = grad_out.contiguous(memory_format=torch.channels_last)
    covered = t % pt == 0 and f % pf == 0
    gh = (torch.empty_like if covered else torch.zeros_like)(y, memory_format=torch.channels_last)
    rows = n * (t // pt)
    # per range: dL/dW (ch x ch), dL/db, sum(dL/dh), sum(dL/dh * xhat)
    acc = _parts(rows, ch * ch + 3 * ch)
    _run(_kernel("tail_backward", ch), rows,
         lambda part, r0, r1: (_ptr(gp), _ptr(y), _ptr(a), _ptr(c), _ptr(w), _ptr(wt), _ptr(b), _ptr(draws),
                               threshold, scale, _ptr(mean), _ptr(invstd), _ptr(gh), _ptr(acc[part]),
                               _ptr(acc[part, ch * ch:]), _ptr(acc[part, ch * ch + ch:]),
                               _ptr(acc[part, ch * ch + 2 * ch:]), t, f, ch, pt, pf, r0, r1))
    total = acc.sum(0)
    grad_w = total[: ch * ch].view(ch, ch).to(y.dtype)
    grad_b, sum_gh, sum_ghx = (total[ch * ch + k * ch: ch * ch + (k + 1) * ch] for k in range(3))
    m = n * t * f
    mean_gh, mean_ghx = sum_gh / m, sum_ghx / m
    a64, invstd64 = a.double(), invstd.double()
    coef_y = -a64 * mean_ghx * invstd64
    const = -a64 * mean_gh - coef_y * mean.double()
    coef_y32, const32 = coef_y.float(), const.float()  # referenced here until the jobs finish
    _run(_kernel("tail_input_grad", ch), m,
         lambda part, p0, p1: (_ptr(gh), _ptr(y), _ptr(a), _ptr(coef_y32), _ptr(const32), p0, p1, ch))
    # dL/dgamma = sum(dL/dh * xhat), dL/dbeta = sum(dL/dh)
    return gh, sum_ghx.to(y.dtype), sum_gh.to(y.dtype), grad_w, grad_b.to(y.dtype)


@_train_op.register_fake
def _(y, gamma, beta, weight, bias, mean, invstd, draws, threshold, scale, pool):
    return torch.empty(_pooled_shape(y, pool), dtype=y.dtype, device=y.device, memory_format=torch.channels_last)


@_train_backward_op.register_fake
def _(grad_out, y, gamma, beta, weight, bias, mean, invstd, draws, threshold, scale, pool):
    ch = y.shape[1]
    return (torch.empty_like(y, memory_format=torch.channels_last), y.new_empty((ch,)), y.new_empty((ch,)),
            y.new_empty((ch, ch)), y.new_empty((ch,)))


def _train_setup(ctx, inputs, output) -> None:
    y, gamma, beta, weight, bias, mean, invstd, draws, threshold, scale, pool = inputs
    ctx.save_for_backward(y, gamma, beta, weight, bias, mean, invstd, draws)
    ctx.setup = (threshold, scale, pool)


def _train_backward(ctx, grad_out):
    grads = _train_backward_op(grad_out, *ctx.saved_tensors, *ctx.setup)
    return (*grads, None, None, None, None, None, None)


_train_op.register_autograd(_train_backward, setup_context=_train_setup)


@torch.library.custom_op("audioadapt::fused_tail_eval", mutates_args=())
def _eval_op(y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
             pool: list[int]) -> torch.Tensor:
    """The eval-mode tail's pooled output (no autograd)."""
    y = y.contiguous(memory_format=torch.channels_last)
    return _pooled_forward(y, scale, shift, weight, bias, None, 0, 1.0, tuple(pool))


@_eval_op.register_fake
def _(y, scale, shift, weight, bias, pool):
    return torch.empty(_pooled_shape(y, pool), dtype=y.dtype, device=y.device, memory_format=torch.channels_last)


def fused_block_tail(y: torch.Tensor, norm: torch.nn.BatchNorm2d, weight: torch.Tensor, bias: torch.Tensor,
                     draws: torch.Tensor | None, threshold: int, scale: float,
                     pool: tuple[int, int]) -> torch.Tensor:
    """``avgpool(dropout((W h + b) * sigmoid(h)))`` with ``h = norm(y)`` in training mode, fused.

    ``y``: the convolution's output, float32, channels-last, on CPU. ``norm``'s running statistics are
    updated as :class:`torch.nn.BatchNorm2d` does. ``draws``: int8 dropout draws in ``y``'s layout
    (``None``: no dropout); an element is kept where its draw is ``>= threshold`` and scaled by ``scale``.
    """
    n, ch, t, f = y.shape
    y = y.contiguous(memory_format=torch.channels_last)
    pixels = n * t * f
    with torch.no_grad():
        sums = _stats_op(y)
        mean64 = sums[:ch] / pixels
        var64 = (sums[ch:] / pixels - mean64 * mean64).clamp(min=0.0)
        if norm.track_running_stats and norm.running_mean is not None:
            norm.num_batches_tracked.add_(1)
            momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
            unbiased = var64 * pixels / max(pixels - 1, 1)
            norm.running_mean.mul_(1 - momentum).add_(mean64.to(norm.running_mean.dtype), alpha=momentum)
            norm.running_var.mul_(1 - momentum).add_(unbiased.to(norm.running_var.dtype), alpha=momentum)
        mean = mean64.to(y.dtype)
        invstd = torch.rsqrt(var64 + norm.eps).to(y.dtype)
    return _train_op(y, norm.weight, norm.bias, weight, bias, mean, invstd, draws, threshold, scale, list(pool))


def fused_block_tail_eval(y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
    """The eval-mode tail, ``avgpool((W h + b) * sigmoid(h))`` with ``h = scale * y + shift``
    (the BatchNorm with its running statistics, :meth:`~audioadapt.models.blocks.ConvBlock.running_affine`).

    No autograd: for ``torch.no_grad()`` / ``torch.inference_mode()`` forwards.
    """
    return _eval_op(y, scale, shift, weight, bias, list(pool))


__all__ = ["fused_block_tail", "fused_block_tail_eval", "fused_tail_available", "vector_width"]
