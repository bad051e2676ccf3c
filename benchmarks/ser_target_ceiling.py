"""What true target labels can teach under each target protocol: a within-corpus supervised linear probe.

NNPM's oracle row gives the memory mechanism the true emotions of the target's adaptation side. Whether such labels
can help on the test side depends on the split: where most speakers act one emotion (URDU), labels learnt on some
speakers teach their voices. This probe measures it without any trained model: a class-weighted logistic regression
on per-utterance log-mel statistics (those of ``ser_linear_probe.py``, scaled with the corpus's own statistics),
trained on the true labels of the adaptation side and scored (UA) on the test side, for

* ``held_out_speaker``: the split the SER benchmark makes (``audioadapt.data.protocols.make_split``, the default
  ``random_state``), no speaker on both sides;
* ``paper``: the stratified random 67/33 split (speakers on both sides; EMO-DB: speaker 15 tests).

It also prints each corpus's speaker/label purity (the share of utterances carrying their speaker's most frequent
emotion). It reads the feature caches that ``audioadapt ser benchmark ... cache.directory=CACHE`` builds
(``CACHE/*-<corpus>-*``); a corpus is ``NAME:PATH`` as on the ``ser`` command line.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ser_target_ceiling.py CACHE urdu:../shared/data/urdu \\
        ravdess:../shared/data/ravdess [csv:emodb4.csv ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from audioadapt.data.corpora import load_corpus
from audioadapt.data.protocols import ProtocolConfig, make_split, speaker_label_purity
from audioadapt.data.utterances import EMOTIONS
from audioadapt.features.cache import FeatureCache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ser_linear_probe import scaled, statistics, ua_of_probe  # noqa: E402

PROBE_SEEDS = (0, 1, 2, 3, 4)


def probe_split(name: str, root: str, cache_dir: Path, protocol: str) -> tuple[float, float, int, int]:
    """Mean and std over :data:`PROBE_SEEDS` of the probe's test UA, and the two sides' sizes."""
    utterances = [u for u in load_corpus(name, root) if u.label in EMOTIONS]
    split = make_split(utterances, ProtocolConfig(protocol=protocol))  # type: ignore[arg-type]
    cache = FeatureCache.open(next(cache_dir.glob(f"*-{name}-*")))
    sides = []
    for utts in (split.adapt, split.test):
        positions = cache.positions([u.path for u in utts])
        if any(i is None for i in positions):
            sys.exit(f"{cache.directory}: the cache lacks utterances of {name}; run a SER benchmark on it first")
        sides.append((statistics([cache[i] for i in positions]), np.array([EMOTIONS.index(u.label) for u in utts])))
    (xa, ya), (xt, yt) = sides
    mean, std = xa.mean(0), xa.std(0)
    xa, xt = scaled(xa, np.zeros(len(xa)), (mean, std)), scaled(xt, np.zeros(len(xt)), (mean, std))
    uas = [ua_of_probe(xa, ya, xt, yt, seed) for seed in PROBE_SEEDS]
    return float(np.mean(uas)), float(np.std(uas, ddof=1)), len(ya), len(yt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", type=Path, metavar="CACHE", help="cache.directory of the SER runs")
    ap.add_argument("corpora", nargs="+", metavar="NAME:PATH", help="corpora to probe")
    args = ap.parse_args(argv)
    print("| corpus | speaker/label purity | protocol | adapt | test | probe UA on the test side (%) |")
    print("|---|---:|---|---:|---:|---:|")
    for spec in args.corpora:
        name, _, root = spec.partition(":")
        purity = speaker_label_purity(u for u in load_corpus(name, root) if u.label in EMOTIONS)
        for protocol in ("held_out_speaker", "paper"):
            mean, std, n_adapt, n_test = probe_split(name, root, args.cache, protocol)
            shown = "n/a" if purity is None else f"{purity:.2f}"
            print(f"| {spec} | {shown} | {protocol} | {n_adapt} | {n_test} | {100 * mean:.1f} ± {100 * std:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
