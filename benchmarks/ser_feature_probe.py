"""What a trained SER run's features let true target labels teach: a linear probe on its frozen utterance features.

For each run (``RUN_DIR``, a finished ``audioadapt ser`` run), every utterance of its target corpus is embedded
with :meth:`audioadapt.SerSystem.embed` (the unit-length feature the memory compares); a class-weighted logistic
regression is trained on the **true** emotions of the run's adaptation side and scored (UA) on its test side (the
run's own split, read from its ``data.json``). It prints, per run, the head's own UA on both sides and the probe's
UA on the test side. The probe reads target labels by design: it is a diagnostic of the representation (can a
linear head on these features, given perfect labels of the adaptation speakers, recognise the test speakers'
emotions?), never a system.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ser_feature_probe.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import audioadapt
from audioadapt.data.corpora import load_corpus
from audioadapt.data.utterances import EMOTIONS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ser_linear_probe import scaled, ua_of_probe  # noqa: E402

PROBE_SEEDS = (0, 1, 2, 3, 4)


def ua(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def probe_run(run_dir: Path) -> dict[str, float]:
    """The head's UA on the adaptation and test sides, and the probe's test UA (mean over seeds)."""
    record = json.loads((run_dir / "data.json").read_text(encoding="utf-8"))
    split = record["target_split"]
    system = audioadapt.load(run_dir, device="cpu")
    target = system.config.target
    utterances = {u.utt_id: u for u in load_corpus(target.corpus, target.root) if u.label in EMOTIONS}
    sides = {}
    for side in ("adapt", "test"):
        utts = [utterances[i] for i in split["ids"][side]]
        x = np.stack([system.embed(u.path) for u in utts])
        y = np.array([EMOTIONS.index(u.label) for u in utts])
        head = np.array([EMOTIONS.index(system.predict(u.path).label) for u in utts])
        sides[side] = (x, y, head)
    (xa, ya, ha), (xt, yt, ht) = sides["adapt"], sides["test"]
    mean, std = xa.mean(0), xa.std(0)
    xa, xt = scaled(xa, np.zeros(len(xa)), (mean, std)), scaled(xt, np.zeros(len(xt)), (mean, std))
    probe = float(np.mean([ua_of_probe(xa, ya, xt, yt, seed) for seed in PROBE_SEEDS]))
    return {"head_adapt": ua(ya, ha), "head_test": ua(yt, ht), "probe_test": probe}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    args = ap.parse_args(argv)
    print("| run | head UA, adaptation side (%) | head UA, test side (%) | probe UA, test side (%) |")
    print("|---|---:|---:|---:|")
    for run in args.runs:
        r = probe_run(run)
        print(f"| {run} | {100 * r['head_adapt']:.1f} | {100 * r['head_test']:.1f} | {100 * r['probe_test']:.1f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
