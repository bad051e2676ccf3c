"""First and last stage-2 epoch of the NNPM diagnostics that SER runs log in ``metrics.csv``.

For each run folder (or each ``seed*`` folder of a benchmark row folder) it prints the first -> last value of
the set's majority/head agreement, the purity of the positive slots (only where the run was made with
``diagnostics.target_truth=true``), the empty share, the size of a non-empty set and its number of emotions,
the head's accuracy on the adaptation side against the pseudo targets' truth, the positive and negative parts
of the target loss, the cosine of the mined hard negatives, for DANN runs the domain loss, and, where the run was
made with ``diagnostics.gradient_every``, the gradient norm of each loss term on the encoder and their cosine;
then the range of each over the runs. These are the
numbers quoted in ``results/ser_ravdess_urdu.md`` and ``results/ser_emodb_urdu.md``.

    .venv/bin/python benchmarks/ser_nnpm_logs.py WORK/ser/held_out_speaker/runs/nnpm [RUN_DIR ...] [--window K]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from audioadapt.training.logging import METRICS_FILE, read_metrics

COLUMNS = ("pml_head_vote_agreement", "pml_purity", "pml_empty_fraction", "pml_mean_size_nonempty",
           "pml_mean_distinct_emotions", "head_target_accuracy", "target_loss_positive", "target_loss_negative",
           "hard_negative_similarity", "domain", "grad_source", "grad_target", "grad_target_positive",
           "grad_target_negative", "grad_cos_target_source", "grad_domain", "grad_cos_domain_y")


def stage2_rows(run_dir: Path) -> list[dict[str, str]]:
    """The stage-2 epoch rows of a run's ``metrics.csv`` (those with a training loss)."""
    return [r for r in read_metrics(run_dir / METRICS_FILE) if r.get("phase") == "stage2" and r.get("train/loss")]


def first_last(rows: list[dict[str, str]], column: str, window: int = 1) -> tuple[float, float] | None:
    """The column's mean over the first and over the last ``window`` rows that have it, or ``None``."""
    values = [float(r[f"train/{column}"]) for r in rows if r.get(f"train/{column}") not in (None, "")]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    k = min(window, len(values))
    return sum(values[:k]) / k, sum(values[-k:]) / k


def run_dirs(paths: list[str]) -> list[Path]:
    """The run folders named, a row folder standing for its ``seed*`` folders."""
    out = []
    for p in map(Path, paths):
        seeds = sorted(p.glob("seed*"), key=lambda d: int(d.name[4:]) if d.name[4:].isdigit() else -1)
        out += [d for d in seeds if (d / METRICS_FILE).is_file()] or [p]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders, or row folders holding seed* runs")
    parser.add_argument("--window", type=int, default=1,
                        help="average the first and the last this many epochs (default 1: the epochs themselves)")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("--window must be >= 1")
    spans: dict[str, list[tuple[float, float]]] = {c: [] for c in COLUMNS}
    for run in run_dirs(args.runs):
        rows = stage2_rows(run)
        parts = []
        for column in COLUMNS:
            pair = first_last(rows, column, args.window)
            if pair is not None:
                spans[column].append(pair)
                parts.append(f"{column} {pair[0]:.2f} -> {pair[1]:.2f}")
        print(f"{run} ({len(rows)} stage-2 epochs): " + "; ".join(parts))
    for column, pairs in spans.items():
        if pairs:
            firsts, lasts = zip(*pairs)
            print(f"{column}: {min(firsts):.2f}-{max(firsts):.2f} -> {min(lasts):.2f}-{max(lasts):.2f} "
                  f"over {len(pairs)} runs")


if __name__ == "__main__":
    main()
