"""``audioadapt sed demo``: the main job on embedded, generated data."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioadapt.data.synthetic.sizes import SIZE_PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.demo import DEMO_PROFILE, DEMO_ROWS
    from audioadapt.cli.common import IntermixedParser, add_progress_argument

    p = sub.add_parser(
        "demo",
        help="generate the embedded SED dataset, describe it, train and evaluate",
        description="Generate a synthetic domain-shift SED dataset (DCASE 2019 layout), build its feature "
        "caches and print its statistics, then train Park et al.'s baseline and their best system (Adv.time + "
        "Tri-training) on a CPU-sized network (the sed_cpu profile) and print the results table on the "
        "real-domain validation set. Steps already done in OUT are reused; an interrupted run resumes.",
    )
    p.__class__ = IntermixedParser
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    p.add_argument("--size", choices=list(SIZE_PRESETS), default="small", help="dataset size (default: small)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    p.add_argument("--train-seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--rows", nargs="+", default=list(DEMO_ROWS), metavar="ROW",
                   help=f"Table 1 rows to train (default: {' '.join(DEMO_ROWS)})")
    p.add_argument("--profile", default=DEMO_PROFILE, help=f"benchmark profile (default: {DEMO_PROFILE})")
    p.add_argument("--no-train", dest="train", action="store_false", help="only generate and describe the data")
    p.add_argument("--workers", type=int, help="processes generating audio (default: all cores)")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="changes to every row, after the profile")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.demo import run_sed_demo
    from audioadapt.cli.common import report_failures

    result = run_sed_demo(args.out, args.size, args.seed, train=args.train, rows=args.rows, profile=args.profile,
                          train_seed=args.train_seed, overrides=args.overrides, workers=args.workers,
                          progress=args.progress)
    print(f"\n## Dataset ({result.data_root})\n")
    print(result.stats_markdown)
    if result.results_markdown is not None:
        print(f"## Results ({result.results_dir})\n")
        print(result.results_markdown)
        print(f"\nPer-class tables: {result.results_dir}/runs/<row>/seed{args.train_seed}/eval_validation.md; "
              f"chart: {result.results_dir}/benchmark.png")
        return report_failures(result.summary.get("failures", {}))
    return 0
