"""The fused block-tail kernel against PyTorch's operators, per channel count, on this CPU.

Times the tail of a conv block (BatchNorm, channel GLU, dropout, average pooling) on a given
convolution output, in training (forward and backward, batch statistics, dropout) and in eval mode
(forward under ``inference_mode``, running statistics), once through :mod:`audioadapt.models.fused_tail`
and once through the operators of :class:`~audioadapt.models.blocks.ConvBlock`. The two are interleaved
in one process (warm-up, then ``--iters`` rounds of one call each), so that a busy machine slows both
alike; the ratio of the medians is the number to compare.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fused_tail_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sed_throughput  # noqa: E402  (machine description and load average)

from audioadapt.models.blocks import ConvBlock  # noqa: E402
from audioadapt.models.fused_tail import (fused_block_tail, fused_block_tail_eval,  # noqa: E402
                                          fused_tail_available, vector_width)
from audioadapt.training.allocator import configure_cpu_allocator  # noqa: E402
from audioadapt.training.loop import TrainConfig  # noqa: E402

#: (channels, (time, freq) pooling, frames, mel bins) of the small CRNN's blocks (filters 16/32/64 on
#: 320 x 64 inputs) and an 8-channel block at the first block's size
SHAPES = ((8, (2, 2), 320, 64), (16, (2, 2), 320, 64), (32, (2, 2), 160, 32), (64, (1, 2), 80, 16))


def tail_pair(channels: int, pool: tuple[int, int], y: torch.Tensor, train: bool) -> tuple[Callable, Callable]:
    """``(operators, kernel)``: the block tail of ``y`` through PyTorch's operators and through the kernel."""
    torch.manual_seed(0)
    block = ConvBlock(channels, channels, 3, pool, 0.5, "glu", 1e-3, 0.99).to(memory_format=torch.channels_last)
    weight, bias = block.act.linear.weight, block.act.linear.bias
    if train:
        y = y.detach().requires_grad_()

        def operators():
            block.pool(block.dropout(block.act(block.norm(y)))).sum().backward()

        def kernel():
            d = block.dropout
            fused_block_tail(y, block.norm, weight, bias, d.draws(y), d.threshold, d.scale, pool).sum().backward()

        block.train()
        return operators, kernel

    block.eval()

    def operators_eval():
        with torch.inference_mode():
            scale, shift = block.running_affine()
            block.pool(block.act(y * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)))

    def kernel_eval():
        with torch.inference_mode():
            scale, shift = block.running_affine()
            fused_block_tail_eval(y, scale, shift, weight, bias, pool)

    return operators_eval, kernel_eval


def interleaved(fns: dict[str, Callable], warmup: int, iters: int) -> dict[str, float]:
    """Median seconds of each function, timed in turn ``iters`` times after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8, help="clips per batch (default 8)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=9)
    args = ap.parse_args(argv)
    configure_cpu_allocator(TrainConfig.cpu_allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not fused_tail_available():
        print("the fused kernel cannot be built here (no C compiler?)", file=sys.stderr)
        return 1
    m = sed_throughput.machine_info()
    print(f"CPU {m['cpu']} ({m['cpu_kind']}), {torch.get_num_threads()} thread(s), kernel vectors of "
          f"{vector_width()} floats; load {sed_throughput.load_avg()}; median of {args.iters} after {args.warmup}")
    print("| channels | mode | operators ms | kernel ms | kernel / operators |")
    print("|---:|---|---:|---:|---:|")
    for channels, pool, frames, mels in SHAPES:
        y = torch.randn(args.batch, channels, frames, mels).contiguous(memory_format=torch.channels_last)
        for mode in ("train", "eval"):
            ops, kernel = tail_pair(channels, pool, y, mode == "train")
            t = interleaved({"operators": ops, "kernel": kernel}, args.warmup, args.iters)
            print(f"| {channels} | {mode} | {1e3 * t['operators']:.1f} | {1e3 * t['kernel']:.1f} | "
                  f"{t['kernel'] / t['operators']:.2f} |", flush=True)
    print(f"load at the end {sed_throughput.load_avg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
