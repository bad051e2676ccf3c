"""Summarise the pseudo-label scores of ``sed_pseudo_label_truth.py --json`` beside a benchmark's paired gains.

Per run: weak and unlabelled precision and recall, the unlabelled clips' wrong negatives as a share of their true
positive entries, the ``--clip-gate`` what-if, and (with ``--table``) the run's event- and segment-F1 difference to
the baseline of the same seed; then the Pearson correlation of unlabelled precision with those differences, and the
per-class means over the runs.

    .venv/bin/python benchmarks/sed_pseudo_label_summary.py TRUTH.json [--table BENCHMARK.json] [--match ROW]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("truth", type=Path)
    ap.add_argument("--table", type=Path, default=None, help="a benchmark.json holding the same runs and a baseline")
    ap.add_argument("--match", default="", help="keep only runs whose path contains this (e.g. /adv_time_tri_training/)")
    args = ap.parse_args(argv)
    scores = {k: v for k, v in json.loads(args.truth.read_text(encoding="utf-8")).items() if args.match in k}
    results = json.loads(args.table.read_text(encoding="utf-8"))["results"] if args.table else None
    gains = []
    print("| run | weak P | weak R | unl. P | unl. R | unl. neg. P | wrong neg. / true pos. | gated P | gated R | Δ event | Δ segment |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run, s in scores.items():
        w, u = s["weak"]["all_classes"], s["unlabeled"]["all_classes"]
        g = s.get("unlabeled+clip_gate", {}).get("all_classes")
        wrong = (1 - u["negative_precision"]) * u["pseudo_negative"] / u["true_positive_entries"]
        delta = ["", ""]
        if results is not None:
            row, seed = Path(run).parent.name, Path(run).name.removeprefix("seed")
            a, b = results[row]["runs"][seed], results["baseline"]["runs"][seed]
            d = [100 * (a[m] - b[m]) for m in ("event_macro_f1", "segment_macro_f1")]
            gains.append((u["precision"], *d))
            delta = [f"{x:+.2f}" for x in d]
        gated = [f"{g[k]:.3f}" for k in ("precision", "recall")] if g else ["", ""]
        print(f"| {run} | {w['precision']:.3f} | {w['recall']:.3f} | {u['precision']:.3f} | {u['recall']:.3f} | "
              f"{u['negative_precision']:.3f} | {wrong:.2f} | {' | '.join(gated)} | {' | '.join(delta)} |")
    if len(gains) > 2:
        p, de, ds = np.array(gains).T
        print(f"\nPearson r of unlabelled precision with Δ event F1 {np.corrcoef(p, de)[0, 1]:.2f}, "
              f"with Δ segment F1 {np.corrcoef(p, ds)[0, 1]:.2f}")
    print("\n| class | weak P | weak R | unl. P | unl. R | unl. neg. P | true positive entries (unl.) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    first = next(iter(scores.values()))
    for cls in first["unlabeled"]:
        def mean(source: str, key: str) -> str:
            vals = [s[source][cls][key] for s in scores.values() if s[source][cls][key] is not None]
            return f"{statistics.mean(vals):.3f}" if vals else "n/a"
        print(f"| {cls} | {mean('weak', 'precision')} | {mean('weak', 'recall')} | {mean('unlabeled', 'precision')} | "
              f"{mean('unlabeled', 'recall')} | {mean('unlabeled', 'negative_precision')} | "
              f"{first['unlabeled'][cls]['true_positive_entries']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
