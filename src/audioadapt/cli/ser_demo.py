"""``audioadapt ser demo``: SNSA-F against NNPM on a generated two-language corpus."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.ser_demo import DEMO_PROTOCOL, DEMO_ROWS
    from audioadapt.cli.common import IntermixedParser, add_progress_argument
    from audioadapt.data.synthetic.sizes import SER_SIZE_PRESETS

    p = sub.add_parser(
        "demo",
        help="generate a two-language emotion corpus, train SNSA-F and NNPM, print their target scores",
        description="Generate a procedural two-language speech-emotion corpus (audioadapt synth ser), print its "
        "counts, then train the source-only SNSA-F and NNPM with the ser_demo preset's small network and short "
        "schedule (NNPM's stage 2 starts from the SNSA-F run) and print UA and WA on the target test side. Steps "
        "already done in OUT are reused; an interrupted run resumes.",
    )
    p.__class__ = IntermixedParser
    p.add_argument("--out", type=Path, default=Path("runs/ser_demo"), help="output folder (default: runs/ser_demo)")
    p.add_argument("--size", choices=list(SER_SIZE_PRESETS), default="small", help="corpus size (default: small)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    p.add_argument("--train-seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--rows", nargs="+", default=list(DEMO_ROWS), metavar="ROW",
                   help=f"systems to train (default: {' '.join(DEMO_ROWS)})")
    p.add_argument("--protocol", choices=["held_out_speaker", "transductive", "paper"], default=DEMO_PROTOCOL,
                   help=f"target protocol (default: {DEMO_PROTOCOL})")
    p.add_argument("--no-train", dest="train", action="store_false", help="only generate and describe the corpus")
    p.add_argument("--workers", type=int, help="processes generating audio (default: all cores)")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="changes to every row, after the demo's")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.ser_demo import run_ser_demo
    from audioadapt.cli.common import report_failures

    result = run_ser_demo(args.out, args.size, args.seed, train=args.train, rows=args.rows, protocol=args.protocol,
                          train_seed=args.train_seed, overrides=args.overrides, workers=args.workers,
                          progress=args.progress)
    print(f"\n## Corpus ({result.data_root})\n")
    print(result.stats_markdown)
    if result.results_markdown is not None:
        print(f"## Results ({result.results_dir})\n")
        print(result.results_markdown)
        print(f"\nPer-class tables: {result.results_dir}/runs/<row>/seed{args.train_seed}/eval_test.md; "
              f"chart: {result.results_dir}/benchmark.png")
        return report_failures(result.summary.get("failures", {}))
    return 0
