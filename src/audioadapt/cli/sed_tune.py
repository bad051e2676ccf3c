"""``audioadapt sed tune-thresholds``: per-class decision thresholds of a run, stored beside its checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.sed_thresholds import DEFAULT_TUNING_SPLIT
    from audioadapt.cli.common import add_progress_argument
    from audioadapt.evaluation.threshold_tuning import OBJECTIVES

    p = sub.add_parser(
        "tune-thresholds",
        help="tune one decision threshold per class of a SED run on a labelled split",
        description="Predict a strongly labelled split with the run's checkpoint and choose, for each class, "
        "the threshold (0.01 to 0.99) that maximises its F1 there, with the run's other decode settings. The "
        "thresholds, the split, the objective and the F1 before and after go into <checkpoint>.thresholds.json "
        "beside the checkpoint (e.g. RUN_DIR/best.thresholds.json); 'sed predict' and 'sed evaluate' use them "
        "from then on (--no-tuned-thresholds or a decode.threshold/decode.class_thresholds override to not). "
        f"The default split is {DEFAULT_TUNING_SPLIT}, the internal held-out synthetic clips; 'sed evaluate' "
        "refuses to report the split the thresholds were tuned on unless given --allow-tuned-split.",
    )
    add_progress_argument(p)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("--split", default=DEFAULT_TUNING_SPLIT, choices=("synthetic_valid", "validation"),
                   help=f"the split to tune on (default: {DEFAULT_TUNING_SPLIT}; 'validation' is the real-domain "
                   "split that evaluations report)")
    p.add_argument("--objective", default="event", choices=OBJECTIVES,
                   help="the F1 each threshold maximises: event (collar-based, default) or segment (1 s)")
    p.add_argument("--checkpoint", default="best", metavar="best|last|PATH", help="checkpoint (default: best)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed_thresholds import tune_sed_thresholds
    from audioadapt.evaluation.report import Table
    from audioadapt.evaluation.tuned_thresholds import thresholds_path

    tuned, result = tune_sed_thresholds(args.run_dir, split=args.split, objective=args.objective,
                                        checkpoint=args.checkpoint)
    rows = [[c, r.n_ref, r.threshold_before, r.threshold, r.f1_before, r.f1] for c, r in result.classes.items()]
    rows.append(["macro", None, None, None, result.macro_before, result.macro_after])
    f1 = f"{args.objective} F1"
    scores = [f"{f1} before (%)", f"{f1} (%)"]
    table = Table(f"Class thresholds tuned on {args.split} for {f1}",
                  ["class", "n_ref", "threshold before", "threshold", *scores], rows, frozenset(scores),
                  note="A class without reference events on the split keeps its threshold.")
    print(table.to_markdown())
    print(f"\nwrote {thresholds_path(Path(tuned.checkpoint))}")
    return 0
