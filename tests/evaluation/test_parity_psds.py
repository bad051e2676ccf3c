"""PSDS and intersection-based F1 equal sed_scores_eval 0.0.4 on random cases."""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.errors import DataError
from audioadapt.evaluation.psds import PSDS1, PSDS2, IntersectionF1Config, PsdsConfig, intersection_f1, psds
from audioadapt.features.frames import FrameGrid

sse = pytest.importorskip("sed_scores_eval")
from sed_scores_eval import intersection_based  # noqa: E402
from sed_scores_eval.base_modules.scores import create_score_dataframe  # noqa: E402

pytestmark = pytest.mark.usefixtures("writable_sed_scores_eval")

TOL = 1e-6
GRIDS = [
    FrameGrid(sample_rate=22050, hop_length=345, n_fft=2048, time_pooling=(2, 2)),  # 62.585 ms
    FrameGrid(sample_rate=10, hop_length=1, n_fft=1),  # 0.1 s: inexact boundaries, ties at the criteria
    FrameGrid(sample_rate=16000, hop_length=256, n_fft=1024, time_pooling=(4,)),  # 64 ms
]
CONFIGS = {
    "psds1": PSDS1,
    "psds2": PSDS2,
    "library_defaults": PsdsConfig(dtc=0.5, gtc=0.5, alpha_st=0.0, max_efpr=50.0),
    "strong_ct": PsdsConfig(dtc=0.3, gtc=0.6, cttc=0.2, alpha_ct=1.0, alpha_st=0.5, max_efpr=200.0),
}


def random_case(seed: int, n_classes: int | None = None, max_clips: int = 8):
    """Scores and ground truth with the awkward cases mixed in.

    Clips of different lengths and frame rates, clips without events, events
    on frame boundaries, at 0 s and touching the clip end, overlapping events of
    different classes, tied (quantised) and smoothed scores.
    """
    rng = np.random.default_rng(seed)
    K = int(n_classes or rng.integers(1, 6))
    classes = [f"class_{k}" for k in range(K)]
    scores, timestamps, gt, durations = {}, {}, {}, {}
    quantise = rng.random() < 0.3
    stretch = float(rng.choice([1.0, 1.1, 10.0, 60.0]))
    for i in range(int(rng.integers(1, max_clips + 1))):
        grid = GRIDS[int(rng.integers(len(GRIDS)))]
        n = int(rng.integers(1, 120))
        ts = grid.output_timestamps(n)
        end = float(ts[-1])
        events = []
        if rng.random() > 0.2:  # else: a clip without events
            for label in classes:
                t = 0.0
                for _ in range(int(rng.integers(0, 4))):
                    if rng.random() < 0.3:  # on frame boundaries
                        a, b = sorted(rng.choice(n + 1, 2, replace=False))
                        on, off = float(ts[a]), float(ts[b])
                    else:
                        on = float(rng.uniform(0.0, end))
                        off = float(min(end, on + rng.uniform(0.01, 0.5 * end + 0.1)))
                        if rng.random() < 0.15:
                            off = end  # touching the clip end
                        if rng.random() < 0.1:
                            on = 0.0
                    if on >= t and off > on:
                        events.append(Event(on, off, label))
                        t = off + 1e-3
        s = rng.random((n, K))
        for ev in events:  # informative: scores rise on events
            k = classes.index(ev.label)
            s[grid.seconds_to_output_frame(ev.onset):grid.seconds_to_output_frame(ev.offset, "ceil"), k] += 0.45
        if rng.random() < 0.4:
            s = _smooth(s, 5)
        if quantise:
            s = np.round(s * 4) / 4  # many ties, plateaus and equal maxima/minima
        name = f"clip_{i:02d}.wav"
        scores[name], timestamps[name], gt[name] = s, ts, events
        durations[name] = end * stretch  # longer audio: more of the curve below max_efpr
    for k, label in enumerate(classes):  # the reference needs every class somewhere
        if not any(ev.label == label for evs in gt.values() for ev in evs):
            name = min(gt)
            end = float(timestamps[name][-1])
            gt[name] = gt[name] + [Event(0.4 * end, 0.6 * end, label)]
    return classes, scores, timestamps, gt, durations


def _smooth(s: np.ndarray, width: int) -> np.ndarray:
    """Moving average over frames (edges repeated), like a smoothed network output."""
    padded = np.pad(s, ((width // 2, width // 2), (0, 0)), mode="edge")
    c = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (c[width:] - c[:-width]) / width


def _reference_inputs(classes, scores, timestamps, gt):
    if not isinstance(timestamps, dict):
        timestamps = {k: timestamps for k in scores}
    frames = {k: create_score_dataframe(v, timestamps[k], classes) for k, v in scores.items()}
    events = {k: [(e.onset, e.offset, e.label) for e in v] for k, v in gt.items()}
    return frames, events


def _check_psds(case, cfg: PsdsConfig, compare_levels: bool):
    classes, scores, timestamps, gt, durations = case
    mine = psds(scores, timestamps, classes, gt, durations, cfg)
    frames, events = _reference_inputs(classes, scores, timestamps, gt)
    value, class_values, (etpr, efpr), class_rocs = intersection_based.psds(
        frames, events, durations, dtc_threshold=cfg.dtc, gtc_threshold=cfg.gtc, cttc_threshold=cfg.cttc,
        alpha_ct=cfg.alpha_ct, alpha_st=cfg.alpha_st, max_efpr=cfg.max_efpr,
    )
    assert mine.value == pytest.approx(value, abs=TOL)
    assert mine.roc.efpr.shape == efpr.shape
    np.testing.assert_allclose(mine.roc.efpr, efpr, rtol=0, atol=TOL)
    np.testing.assert_allclose(mine.roc.etpr, etpr, rtol=0, atol=TOL)
    for c in classes:
        tpr, c_efpr, levels = class_rocs[c]
        roc = mine.class_rocs[c]
        assert roc.tpr.shape == tpr.shape, c
        np.testing.assert_allclose(roc.tpr, tpr, rtol=0, atol=TOL)
        np.testing.assert_allclose(roc.efpr, c_efpr, rtol=0, atol=TOL)
        if compare_levels:
            np.testing.assert_array_equal(roc.levels, levels)
        assert mine.class_values[c] == pytest.approx(class_values[c], abs=TOL)
    return mine


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("seed", range(40))
def test_psds_matches_sed_scores_eval(seed, name):
    cfg = CONFIGS[name]
    case = random_case(seed, n_classes=None if cfg.cttc is None else int(2 + seed % 4))
    # With a CTTC the library takes its general path and reports the same levels; without one it
    # may report a tied, equivalent level for clips without events of the class.
    _check_psds(case, cfg, compare_levels=cfg.cttc is not None)


@pytest.mark.parametrize("cfg", [PSDS1, PSDS2], ids=["psds1", "psds2"])
def test_psds_matches_on_a_dcase_sized_set(cfg, sed_grid):
    rng = np.random.default_rng(7)
    classes = [f"c{k}" for k in range(10)]
    ts = sed_grid.output_timestamps(160)
    scores, gt = {}, {}
    for i in range(40):
        events = []
        for k, c in enumerate(classes):
            if rng.random() < 0.35 or i == k:
                on = float(rng.uniform(0, 8))
                events.append(Event(on, min(float(ts[-1]), on + float(rng.uniform(0.2, 4))), c))
        s = rng.random((160, 10))
        for ev in events:
            k = classes.index(ev.label)
            s[sed_grid.seconds_to_output_frame(ev.onset):sed_grid.seconds_to_output_frame(ev.offset, "ceil"), k] += 0.35
        scores[f"f{i:02d}"] = _smooth(s, 7)
        gt[f"f{i:02d}"] = events
    durations = {k: float(ts[-1]) for k in scores}
    mine = _check_psds((classes, scores, ts, gt, durations), cfg, compare_levels=cfg.cttc is not None)
    assert 0.05 < mine.value < 0.95 and len(mine.roc.efpr) > 8  # a discriminating case


@pytest.mark.parametrize("seed", range(40))
def test_intersection_f1_matches_sed_scores_eval(seed):
    classes, scores, timestamps, gt, _ = random_case(1000 + seed)
    rng = np.random.default_rng(seed)
    threshold = float(rng.choice([0.5, 0.75, rng.uniform(0.2, 1.2)]))
    if seed % 3 == 0:
        threshold = {c: float(rng.uniform(0.3, 1.1)) for c in classes}
    cfg = IntersectionF1Config(dtc=float(rng.choice([0.5, 0.3, 0.7])), gtc=float(rng.choice([0.5, 0.2, 0.8])))
    mine = intersection_f1(scores, timestamps, classes, gt, threshold, cfg)
    frames, events = _reference_inputs(classes, scores, timestamps, gt)
    f, p, r, stats = intersection_based.fscore(frames, events, threshold, dtc_threshold=cfg.dtc,
                                               gtc_threshold=cfg.gtc)
    for c in classes:
        row = mine.class_wise[c]
        assert (row.tp, row.fp, row.n_ref) == (stats[c]["tps"], stats[c]["fps"], stats[c]["n_ref"])
        assert (row.f_measure, row.precision, row.recall) == pytest.approx((f[c], p[c], r[c]), abs=TOL)
    assert (mine.macro.f_measure, mine.macro.precision, mine.macro.recall) == pytest.approx(
        (f["macro_average"], p["macro_average"], r["macro_average"]), abs=TOL)
    assert (mine.micro.f_measure, mine.micro.precision, mine.micro.recall) == pytest.approx(
        (f["micro_average"], p["micro_average"], r["micro_average"]), abs=TOL)


def test_both_refuse_a_class_without_ground_truth():
    classes, scores, timestamps, gt, durations = random_case(3, n_classes=3)
    gt = {k: [e for e in v if e.label != "class_2"] for k, v in gt.items()}
    frames, events = _reference_inputs(classes, scores, timestamps, gt)
    with pytest.raises(AssertionError, match="class_2"):
        intersection_based.psds(frames, events, durations, dtc_threshold=0.7, gtc_threshold=0.7, alpha_st=1.0)
    with pytest.raises(DataError, match="class_2"):
        psds(scores, timestamps, classes, gt, durations, PSDS1)
    with pytest.raises(DataError, match="class_2"):
        intersection_f1(scores, timestamps, classes, gt, 0.5, IntersectionF1Config())
