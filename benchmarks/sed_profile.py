"""Where a training step of the paper-size SED model spends its time: a ``torch.profiler`` table.

Runs one warm-up and one profiled phase-1 training step of the full system (F, F1, F2, Ft, D) with the
same synthetic batch as ``sed_throughput.py`` and prints the operators sorted by their own CPU time.
``--inference`` profiles an eval-mode forward of head ft instead, ``--unfused`` keeps every conv block on
PyTorch's operators (``model.crnn.fused_cpu_max_channels=0``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sed_profile.py --batch 8 --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sed_profile.py --batch 8 --threads 1 --inference --unfused
    .venv/bin/python benchmarks/sed_profile.py --batch 64 --threads 2 --markdown benchmarks/results/sed_profile_<cpu kind>.md

``--markdown`` appends the machine (CPU model, flags, kind, torch build, load) and the table, with the share of
the step each operator family takes (convolution, recurrent, matrix products, element-wise and normalisation,
the fused kernel, and "other": views, copies, autograd bookkeeping, the optimizer), to a Markdown file; run it once per variant to gather them in one file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sed_throughput  # noqa: E402  (the benchmark's model, batch and step)

from audioadapt.features.config import FeatureConfig  # noqa: E402
from audioadapt.features.logmel import LogMel  # noqa: E402
from audioadapt.training.allocator import configure_cpu_allocator  # noqa: E402
from audioadapt.training.loop import TrainConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8, help="clips per batch (default 8)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--rows", type=int, default=22, help="operators to list (default 22)")
    ap.add_argument("--inference", action="store_true", help="profile an inference forward instead of a step")
    ap.add_argument("--unfused", action="store_true", help="every conv block on PyTorch's operators")
    ap.add_argument("--markdown", type=Path, default=None, help="append the machine and the table to this file")
    args = ap.parse_args(argv)
    configure_cpu_allocator(TrainConfig.cpu_allocator)  # as in training
    if args.threads:
        torch.set_num_threads(args.threads)
    feat_cfg = FeatureConfig()
    frames = LogMel(feat_cfg).num_frames(round(feat_cfg.sample_rate * feat_cfg.clip_seconds))
    runner = sed_throughput.Runner("full", feat_cfg, args.batch, frames, ("unfused",) if args.unfused else ())
    features = runner.batch["features"]
    work = (lambda: runner.infer(features)) if args.inference else runner.train_step
    work()
    load_before = sed_throughput.load_avg()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        work()
        wall = time.perf_counter() - start
    averages = prof.key_averages()
    table = averages.table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(table)
    if args.markdown is not None:
        what = ("inference forward (head ft, eval mode)" if args.inference else "phase-1 training step") + \
            (", every block on PyTorch operators" if args.unfused else "")
        shares = family_shares({e.key: e.self_cpu_time_total for e in averages})
        write_markdown(args.markdown, what, args.batch, wall, shares, table,
                       {**sed_throughput.machine_info(), "load_before": load_before,
                        "load_after": sed_throughput.load_avg()})
        print(f"appended to {args.markdown}")
    return 0


#: Operator families of :func:`family_shares`, matched in this order on the profiler's operator names.
FAMILIES = (
    ("fused block tail (our kernel)", ("audioadapt::", "fused_tail")),
    ("convolution", ("conv", "mkldnn_convolution")),
    ("recurrent (GRU)", ("gru", "rnn")),
    ("matrix products", ("addmm", "mm", "bmm", "matmul", "linear")),
    ("normalisation", ("batch_norm", "native_batch_norm")),
    ("element-wise and pooling", ("mul", "add", "sigmoid", "tanh", "glu", "max_pool", "avg_pool", "copy_", "fill_",
                                  "where", "clamp", "sub", "div", "exp", "log", "threshold", "dropout", "bernoulli")),
)


def family_shares(self_us: dict[str, float]) -> list[tuple[str, float]]:
    """Share of the profiled self CPU time per operator family (the rest under "other"), largest first."""
    total = sum(self_us.values()) or 1.0
    out: dict[str, float] = {}
    for name, us in self_us.items():
        low = name.lower()
        family = next((f for f, keys in FAMILIES if any(k in low for k in keys)), "other")
        out[family] = out.get(family, 0.0) + us
    return sorted(((f, v / total) for f, v in out.items()), key=lambda kv: -kv[1])


def write_markdown(path: Path, what: str, batch: int, wall: float, shares: list[tuple[str, float]], table: str,
                   machine: dict) -> None:
    """Append one profile (machine, family shares, operator table) to ``path``."""
    lines = [f"## {what}, batch {batch}", "",
             f"{machine['cpu']} ({machine['cpu_kind']}; torch CPU capability {machine['torch_cpu_capability']}), "
             f"{machine['cores']} cores, {machine['torch_threads']} torch threads; torch {machine['torch']}, "
             f"Python {machine['python']}; {machine['date']}; load average before {machine['load_before']}, after "
             f"{machine['load_after']}.", "", f"Command: `{machine['command']}`", "",
             f"Wall time of the profiled call: {wall:.2f} s (the profiler adds some).", "",
             "| operator family | share of self CPU time |", "|---|---:|",
             *(f"| {f} | {100 * v:.1f} % |" for f, v in shares), "", "```", table.rstrip(), "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
