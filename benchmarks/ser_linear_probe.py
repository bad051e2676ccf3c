"""Linear probe of RAVDESS -> URDU transfer: utterance statistics of cached log-mels under several normalisations.

Reads the feature caches that ``audioadapt ser benchmark ... cache.directory=CACHE`` builds for a RAVDESS source and
an URDU target (``CACHE/source-ravdess-*``, ``CACHE/target-urdu-*``) and the two corpora's labels and speakers
through their loaders, and prints the UA on all URDU utterances of a class-weighted logistic regression trained on
RAVDESS (mean of 3 seeds), with and without the SER front end (``dataset.frontend`` defaults), on statistics of
the log-mels as cached and of the log-mels after the SER default normaliser (per utterance), each scaled with
RAVDESS's statistics, each corpus's own or each speaker's own.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ser_linear_probe.py CACHE [--source DIR] [--target DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from audioadapt.config.ser import default_ser_normalizer
from audioadapt.data.corpora import load_corpus
from audioadapt.data.ser_frontend import SerFrontEndConfig, apply_frontend
from audioadapt.data.utterances import EMOTIONS
from audioadapt.features.cache import FeatureCache
from audioadapt.features.normalization import Normalizer


def corpus_features(cache_dir: Path, corpus: str, root: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The cached log-mels of ``corpus``'s four-emotion utterances, their class indices and speakers."""
    cache = FeatureCache.open(next(cache_dir.glob(f"*-{corpus}-*")))
    utterances = [u for u in load_corpus(corpus, root) if u.label in EMOTIONS]
    positions = cache.positions([u.path for u in utterances])
    missing = [str(u.path) for u, i in zip(utterances, positions) if i is None]
    if missing:
        sys.exit(f"{cache.directory}: no features of {len(missing)} utterance(s), e.g. {missing[0]}")
    return ([cache[i] for i in positions], np.array([EMOTIONS.index(u.label) for u in utterances]),
            np.array([str(u.speaker) for u in utterances]))


def statistics(features: list[np.ndarray]) -> np.ndarray:
    """Per mel bin: mean, std, std of the frame differences, 10th and 90th percentiles, per utterance."""
    return np.array([np.concatenate([x.mean(0), x.std(0), np.diff(x, axis=0).std(0),
                                     np.percentile(x, [10, 90], axis=0).ravel()]) for x in features])


def scaled(a: np.ndarray, groups: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``a`` standardised with each group's own mean and std, or with ``reference`` (mean, std) when given."""
    out = a.copy()
    for g in set(groups):
        i = groups == g
        mean, std = reference if reference is not None else (a[i].mean(0), a[i].std(0))
        out[i] = (a[i] - mean) / (std + 1e-6)
    return out


def ua_of_probe(xs: np.ndarray, ys: np.ndarray, xt: np.ndarray, yt: np.ndarray, seed: int) -> float:
    """UA on (xt, yt) of a class-weighted logistic regression fitted on (xs, ys)."""
    torch.manual_seed(seed)
    k = len(EMOTIONS)
    head = torch.nn.Linear(xs.shape[1], k)
    opt = torch.optim.Adam(head.parameters(), 1e-2, weight_decay=1e-2)
    weight = torch.tensor(1.0 / np.bincount(ys, minlength=k), dtype=torch.float32)
    x, y = torch.tensor(xs, dtype=torch.float32), torch.tensor(ys)
    for _ in range(500):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(x), y, weight=weight).backward()
        opt.step()
    pred = head(torch.tensor(xt, dtype=torch.float32)).argmax(1).numpy()
    return float(np.mean([np.mean(pred[yt == c] == c) for c in range(k) if (yt == c).any()]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", type=Path, metavar="CACHE", help="cache.directory of the SER runs")
    ap.add_argument("--source", type=Path, default=Path("../shared/data/ravdess"), help="the RAVDESS copy")
    ap.add_argument("--target", type=Path, default=Path("../shared/data/urdu"), help="the URDU copy")
    args = ap.parse_args(argv)
    src, ys, ss = corpus_features(args.cache, "ravdess", args.source)
    tgt, yt, st = corpus_features(args.cache, "urdu", args.target)
    config = FeatureCache.open(next(args.cache.glob("*-ravdess-*"))).feature_config
    per_utterance = Normalizer(default_ser_normalizer(), config.n_mels)
    print(f"RAVDESS: {len(src)} utterances, {len(set(ss))} speakers; URDU: {len(tgt)} utterances, "
          f"{len(set(st))} speakers")
    print("| log-mels | front end | scaled with | UA (%) |")
    print("|---|---|---|---:|")
    for normalised in (False, True):
        for frontend in (False, True):
            def prepare(features: list[np.ndarray]) -> np.ndarray:
                out = [apply_frontend(x, SerFrontEndConfig(), config) if frontend else x for x in features]
                if normalised:
                    out = [per_utterance(torch.from_numpy(np.array(x))).numpy() for x in out]
                return statistics(out)

            s, t = prepare(src), prepare(tgt)
            variants = {"RAVDESS statistics": (scaled(s, np.zeros(len(s)), (s.mean(0), s.std(0))),
                                               scaled(t, np.zeros(len(t)), (s.mean(0), s.std(0)))),
                        "each corpus's own": (scaled(s, np.zeros(len(s))), scaled(t, np.zeros(len(t)))),
                        "each speaker's own": (scaled(s, ss), scaled(t, st))}
            for name, (a, b) in variants.items():
                ua = np.mean([ua_of_probe(a, ys, b, yt, seed) for seed in range(3)])
                what = "per-utterance normalised (SER default)" if normalised else "as cached"
                print(f"| {what} | {'on' if frontend else 'off'} | {name} | {100 * ua:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
