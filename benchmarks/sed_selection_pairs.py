"""Compare two rows of finished ``sed benchmark`` runs seed by seed on the internal selection metric.

Reads ``OUT/runs/<row>/seed<k>/cell.json`` (the best selection value each run reached; no real-domain label) and
prints, for each pair ``A:B``, both values per seed and on how many seeds A is higher.

    .venv/bin/python benchmarks/sed_selection_pairs.py OUT adv_time:paper_adv_time [A:B ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def selection(out: Path, row: str) -> dict[str, float]:
    """``{seed: best selection value}`` of the finished runs of ``row`` under ``out``."""
    return {p.name.removeprefix("seed"): json.loads((p / "cell.json").read_text(encoding="utf-8"))["selection"]["value"]
            for p in sorted((out / "runs" / row).glob("seed*")) if (p / "cell.json").is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the benchmark's --out folder")
    ap.add_argument("pairs", nargs="+", metavar="A:B")
    args = ap.parse_args(argv)
    total = wins = 0
    for pair in args.pairs:
        a, b = pair.split(":")
        sa, sb = selection(args.out, a), selection(args.out, b)
        seeds = sorted(set(sa) & set(sb), key=int)
        higher = sum(sa[s] > sb[s] for s in seeds)
        total, wins = total + len(seeds), wins + higher
        print(f"{a} vs {b}: " + ", ".join(f"seed {s} {sa[s]:.3f}/{sb[s]:.3f}" for s in seeds)
              + f"; {a} higher on {higher} of {len(seeds)}")
    print(f"first row higher on {wins} of {total} seed pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
