"""Where a training step of the paper-size SED model spends its time: a ``torch.profiler`` table.

Runs one warm-up and one profiled phase-1 training step of the full system (F, F1, F2, Ft, D) with the
same synthetic batch as ``sed_throughput.py`` and prints the operators sorted by their own CPU time.
``--inference`` profiles an eval-mode forward of head ft instead, ``--unfused`` keeps every conv block on
PyTorch's operators (``model.crnn.fused_cpu_max_channels=0``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sed_profile.py --batch 8 --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sed_profile.py --batch 8 --threads 1 --inference --unfused
"""

from __future__ import annotations

import argparse
import sys
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
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        work()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
