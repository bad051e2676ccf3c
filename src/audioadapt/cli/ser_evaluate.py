"""``audioadapt ser evaluate``: UA, WA, per-class recall and confusion matrix of a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import add_progress_argument

    p = sub.add_parser(
        "evaluate",
        help="score a trained SER run on its target test side",
        description="Predict the target test side of a run (and EMO-DB's validation speaker, reported only) "
        "with its checkpoint and print UA, WA, per-class recall and the confusion matrix. Writes "
        "eval_<side>.json, eval_<side>.md, confusion_<side>.png and predictions_<side>.csv into RUN_DIR.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("--checkpoint", default="last", metavar="last|best|PATH",
                   help="checkpoint to evaluate: last (the run's result, default), best (the stage-1 epoch "
                   "selected on the source validation) or a file")
    p.add_argument("--target", metavar="CORPUS:PATH",
                   help="the run's target corpus at another place (default: where the run read it)")
    add_progress_argument(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.ser import evaluate_ser_run
    from audioadapt.cli.outputs import check_run_output

    check_run_output(args.run_dir)
    results = evaluate_ser_run(args.run_dir, checkpoint=args.checkpoint, target=args.target)
    for side, metrics in results.items():
        print(f"# target {side}\n")
        print(metrics.to_markdown())
        print(f"wrote {args.run_dir / f'eval_{side}.json'}, {args.run_dir / f'eval_{side}.md'} and "
              f"{args.run_dir / f'confusion_{side}.png'}\n")
    return 0
