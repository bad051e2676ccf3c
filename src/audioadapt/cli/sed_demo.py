"""``audioadapt sed demo``: the main job on embedded, generated data."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioadapt.data.synthetic.sizes import SIZE_PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate the embedded SED dataset, describe it, train and evaluate",
        description="Generate a synthetic domain-shift SED dataset (DCASE 2019 layout), build its feature "
        "caches and print its statistics, then train the demo preset (Adv.time + Tri-training on a "
        "CPU-sized network) and print its results on the real-domain validation set. Steps already "
        "done in OUT are reused.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    p.add_argument("--size", choices=list(SIZE_PRESETS), default="small", help="dataset size (default: small)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    p.add_argument("--preset", default="sed_demo", help="system to train (default: sed_demo)")
    p.add_argument("--no-train", dest="train", action="store_false", help="only generate and describe the data")
    p.add_argument("--workers", type=int, help="processes generating audio (default: all cores)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="changes to the preset")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.demo import run_sed_demo

    result = run_sed_demo(args.out, args.size, args.seed, train=args.train, preset=args.preset,
                          overrides=args.overrides, workers=args.workers, progress=args.progress)
    print(f"\n## Dataset ({result.data_root})\n")
    print(result.stats_markdown)
    if result.results_markdown is not None:
        print(f"## Results of {args.preset} ({result.run_dir})\n")
        print(result.results_markdown)
        print(f"Per-class tables: {result.run_dir}/eval_validation.md")
    return 0
