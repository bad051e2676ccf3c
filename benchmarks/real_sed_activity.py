"""How much of its annotated extent each Kitchen20 event category actually sounds.

For the first ``--takes`` recordings of each category in ``../shared/data/kitchen20/manifest.csv``: the extent
from the first to the last sample whose 20 ms moving-average power is within 30 dB of the recording's peak (the
generator's default annotation), and the share of that extent within 30 dB and within 20 dB of the peak. Medians
per category. The figures quoted in ``recipes/real_sed/README.md`` and ``docs/conventions.md``:

    .venv/bin/python benchmarks/real_sed_activity.py
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

CATEGORIES = ("chopping", "clean-dishes", "cutlery", "plates", "drawer", "blender", "frying-pan")


def activity(x: np.ndarray, sr: int, window: float = 0.02) -> tuple[float, float, float] | None:
    """(extent in seconds, share within 30 dB of the peak, share within 20 dB), or ``None`` if silent."""
    w = int(window * sr)
    power = np.convolve(x**2, np.ones(w) / w, "same")
    if power.max() <= 0:
        return None
    on = np.flatnonzero(power >= power.max() * 1e-3)
    span = slice(on[0], on[-1] + 1)
    return ((on[-1] - on[0] + 1) / sr, float((power[span] >= power.max() * 1e-3).mean()),
            float((power[span] >= power.max() * 1e-2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("../shared/data/kitchen20"))
    ap.add_argument("--takes", type=int, default=30, help="recordings per category (default 30)")
    args = ap.parse_args()
    by = defaultdict(list)
    with open(args.root / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by[row["category"]].append(row["path"])
    print("| category | median extent (s) | active within 30 dB | active within 20 dB |\n|---|---:|---:|---:|")
    for cat in CATEGORIES:
        stats = []
        for path in by[cat][: args.takes]:
            x, sr = sf.read(args.root / path)
            a = activity(x.mean(1) if x.ndim > 1 else x, sr)
            if a is not None:
                stats.append(a)
        ext, a30, a20 = (np.median([s[i] for s in stats]) for i in range(3))
        print(f"| {cat} | {ext:.2f} | {a30:.2f} | {a20:.2f} |")


if __name__ == "__main__":
    main()
