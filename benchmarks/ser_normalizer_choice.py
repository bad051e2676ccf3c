"""Join two one-row SER benchmarks that differ only in a setting into one table with paired per-seed differences.

Used to choose the input normaliser of a source corpus on a labelled cross-corpus pair that is never a
benchmark's target (RAVDESS -> EMO-DB): each argument is the protocol folder of an ``audioadapt ser benchmark
--rows snsa_f`` call (``<out>/<protocol>``), labelled ``LABEL=FOLDER``; the first is the reference.

    .venv/bin/python benchmarks/ser_normalizer_choice.py "per utterance=BENCH_A/transductive" \\
        "source statistics=BENCH_B/transductive" --out benchmarks/results/NAME
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from audioadapt.api.ser_benchmark import SER_METRICS, STAGE1_ROW
from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable


def read_row(spec: str) -> BenchmarkRow:
    """``LABEL=FOLDER`` -> the folder's source-only row, relabelled, with its run settings."""
    label, sep, folder = spec.partition("=")
    if not sep or not label or not folder:
        raise SystemExit(f"expected LABEL=FOLDER, got {spec!r}")
    data = json.loads((Path(folder) / "benchmark.json").read_text(encoding="utf-8"))
    row = data["results"][STAGE1_ROW]
    runs = {int(seed): {m.key: row["metrics"][m.key]["values"][i] for m in SER_METRICS if m.key in row["metrics"]}
            for i, seed in enumerate(row["seeds"])}
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    return BenchmarkRow(key, label, runs, {"folder": str(folder), "common_settings": data["settings"]["common_settings"],
                                           "source": data["settings"]["source"],
                                           "target": data["settings"]["target"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+", help="LABEL=FOLDER, the reference first")
    parser.add_argument("--out", required=True, help="output stem (writes .md, .json, .png)")
    parser.add_argument("--title", default="SNSA-F: one setting changed")
    args = parser.parse_args()
    rows = [read_row(spec) for spec in args.rows]
    table = BenchmarkTable("ser_setting_choice", args.title, SER_METRICS, rows, reference=rows[0].key,
                           settings={"rows": args.rows},
                           note="Mean ± sample standard deviation over seeds; UA and WA on the other corpus, "
                                "Source UA on the source speakers held out of training (the stage-1 selection "
                                "value). Paired differences: each row minus the first, seed by seed, Student-t 95 % "
                                "interval.")
    out = Path(args.out)
    table.write(out.parent, stem=out.name)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
