"""Linear probe of RAVDESS -> URDU transfer: utterance statistics of cached log-mels under several normalisations.

Reads the feature caches that `audioadapt ser benchmark ... cache.directory=CACHE` builds for a RAVDESS source and
an URDU target (`CACHE/source-ravdess-*`, `CACHE/target-urdu-*`), labels from the file names and folders, and
prints the UA on all URDU utterances of a class-weighted logistic regression trained on RAVDESS (mean of 3 seeds),
with and without the SER front end, for dataset, per-corpus, per-speaker and per-utterance normalisation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ser_linear_probe.py CACHE
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from audioadapt.features.config import FeatureConfig
from audioadapt.data.ser_frontend import SerFrontEndConfig, apply_frontend
from audioadapt.config.load import from_dict
C = Path(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
EMO = ["angry", "happy", "sad", "neutral"]
def load(name):
    d = next(C.glob(name + "*"))
    m = json.loads((d / "meta.json").read_text())
    off = np.load(d / "offsets.npy"); x = np.memmap(d / "features.f32", dtype=np.float32, mode="r").reshape(-1, m["n_mels"])
    return m, [np.array(x[off[i]:off[i + 1]]) for i in range(len(off) - 1)]
def lab_src(p):
    e = int(Path(p).name.split("-")[2]); return {1: "neutral", 3: "happy", 4: "sad", 5: "angry"}.get(e)
def spk_src(p): return Path(p).name.split("-")[6].split(".")[0]
def lab_tgt(p): return Path(p).parent.name.lower()
def spk_tgt(p): return Path(p).name.split("_")[1]
ms, xs = load("source-ravdess"); mt, xt = load("target-urdu")
fc = from_dict(FeatureConfig, ms["features"])
def stats(xs, fe):
    out = []
    for x in xs:
        if fe: x = apply_frontend(x, SerFrontEndConfig(), fc)
        d = np.diff(x, axis=0)
        out.append(np.concatenate([x.mean(0), x.std(0), d.std(0), np.percentile(x, [10, 90], axis=0).ravel()]))
    return np.array(out)
ps, pt = ms["paths"], mt["paths"]
ys = np.array([EMO.index(lab_src(p)) if lab_src(p) else -1 for p in ps]); yt = np.array([EMO.index(lab_tgt(p)) for p in pt])
ss = np.array([spk_src(p) for p in ps]); st = np.array([spk_tgt(p) for p in pt])
print("target speakers", len(set(st)), "source", len(set(ss)), "labels", np.bincount(ys[ys>=0]), np.bincount(yt))
def znorm(a, groups):
    a = a.copy()
    for g in set(groups):
        i = groups == g; a[i] = (a[i] - a[i].mean(0)) / (a[i].std(0) + 1e-6)
    return a
def fit_eval(Xs, ys, Xt, yt, seed=0, wd=1e-2):
    torch.manual_seed(seed)
    Xs_, Xt_ = torch.tensor(Xs, dtype=torch.float32), torch.tensor(Xt, dtype=torch.float32)
    W = torch.nn.Linear(Xs.shape[1], 4); opt = torch.optim.Adam(W.parameters(), 1e-2, weight_decay=wd)
    w = torch.tensor(1.0 / np.bincount(ys), dtype=torch.float32)
    for _ in range(500):
        opt.zero_grad(); torch.nn.functional.cross_entropy(W(Xs_), torch.tensor(ys), weight=w).backward(); opt.step()
    pred = W(Xt_).argmax(1).numpy()
    return np.mean([np.mean(pred[yt == k] == k) for k in range(4)]), np.bincount(pred, minlength=4)
keep = ys >= 0
for fe in (False, True):
    S, T = stats(xs, fe)[keep], stats(xt, fe)
    y, sp = ys[keep], ss[keep]
    variants = {
        "source z-norm": (lambda: ((S - S.mean(0)) / S.std(0), (T - S.mean(0)) / S.std(0))),
        "per-corpus z-norm": (lambda: (znorm(S, np.zeros(len(S))), znorm(T, np.zeros(len(T))))),
        "per-speaker z-norm": (lambda: (znorm(S, sp), znorm(T, st))),
    }
    for name, f in variants.items():
        A, B = f()
        r = [fit_eval(A, y, B, yt, seed) for seed in range(3)]
        print(f"frontend={fe} {name:20s} UA {np.mean([u for u, _ in r])*100:.1f}  pred counts {r[0][1]}")
print("-- per-utterance mean/var normalised log-mels first (the SER default normaliser), then the statistics")
def utt_norm(xs): return [(x - x.mean(0)) / (x.std(0) + 1e-5) for x in xs]
for fe in (False, True):
    xs_ = [apply_frontend(x, SerFrontEndConfig(), fc) for x in xs] if fe else xs
    xt_ = [apply_frontend(x, SerFrontEndConfig(), fc) for x in xt] if fe else xt
    S, T = stats(utt_norm(xs_), False)[keep], stats(utt_norm(xt_), False)
    y = ys[keep]
    for name, (A, B) in {"source z-norm": ((S - S.mean(0)) / (S.std(0) + 1e-6), (T - S.mean(0)) / (S.std(0) + 1e-6)),
                         "per-corpus z-norm": (znorm(S, np.zeros(len(S))), znorm(T, np.zeros(len(T))))}.items():
        r = [fit_eval(A, y, B, yt, seed) for seed in range(3)]
        print(f"utt-norm frontend={fe} {name:20s} UA {np.mean([u for u, _ in r])*100:.1f}  pred counts {r[0][1]}")
