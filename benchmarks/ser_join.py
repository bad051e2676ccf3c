"""Join rows of several SER benchmarks into one table with paired per-seed differences to the first.

Each argument is ``LABEL=FOLDER[@ROW]``: the protocol folder of an ``audioadapt ser benchmark`` call
(``<out>/<protocol>``) and the row to take from it (default ``snsa_f``), shown as ``LABEL``; the first is the
reference. Used to choose a setting on a labelled pair that is never a benchmark's target (two folders that differ
in that setting), and to put rows run under different settings or seeds side by side (each row keeps its own
seeds; a difference is taken over the seeds both rows have).

    .venv/bin/python benchmarks/ser_join.py "per utterance=BENCH_A/transductive" \
        "source statistics=BENCH_B/transductive" --out benchmarks/results/NAME
    .venv/bin/python benchmarks/ser_join.py "SNSA-F=A/held_out_speaker" "NNPM=A/held_out_speaker@nnpm" \
        "NNPM, literal=B/held_out_speaker@nnpm" --out ... --title ...
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from audioadapt.api.ser_benchmark import SER_METRICS, STAGE1_ROW
from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable


def read_row(spec: str) -> BenchmarkRow:
    """``LABEL=FOLDER[@ROW]`` -> that row of the folder's table (default: the source-only row), relabelled."""
    label, sep, where = spec.partition("=")
    folder, _, key = where.partition("@")
    if not sep or not label or not folder:
        raise SystemExit(f"expected LABEL=FOLDER[@ROW], got {spec!r}")
    data = json.loads((Path(folder) / "benchmark.json").read_text(encoding="utf-8"))
    if (key or STAGE1_ROW) not in data["results"]:
        raise SystemExit(f"{folder}/benchmark.json has no row {key or STAGE1_ROW!r} (rows: {list(data['results'])})")
    row = data["results"][key or STAGE1_ROW]
    def value(metric: str, i: int) -> float:
        stored = row["metrics"][metric]["values"][i]
        return math.nan if stored is None else float(stored)  # JSON keeps an undefined value as null

    runs = {int(seed): {m.key: value(m.key, i) for m in SER_METRICS if m.key in row["metrics"]}
            for i, seed in enumerate(row["seeds"])}
    return BenchmarkRow(re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_"), label, runs,
                        {"folder": str(folder), "row": key or STAGE1_ROW,
                         "common_settings": data["settings"]["common_settings"],
                         "source": data["settings"]["source"], "target": data["settings"]["target"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+", help="LABEL=FOLDER[@ROW], the reference first")
    parser.add_argument("--out", required=True, help="output stem (writes .md, .json, .png)")
    parser.add_argument("--title", default="SNSA-F: one setting changed")
    parser.add_argument("--note", default="UA and WA on the other corpus, Source UA on the source speakers held out "
                                          "of training (the stage-1 selection value).",
                        help="what the columns are (before the standard sentences)")
    args = parser.parse_args()
    rows = [read_row(spec) for spec in args.rows]
    table = BenchmarkTable("ser_setting_choice", args.title, SER_METRICS, rows, reference=rows[0].key,
                           settings={"rows": args.rows},
                           note=f"Mean ± sample standard deviation over seeds. {args.note} Paired differences: "
                                "each row minus the first, seed by seed over the seeds both have, Student-t 95 % "
                                "interval.")
    out = Path(args.out)
    table.write(out.parent, stem=out.name)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
