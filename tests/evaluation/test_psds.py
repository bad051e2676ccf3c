"""PSDS and intersection-based F1 on hand-made cases with known answers."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.intersection import (
    _nearest_smaller,
    component_intervals,
    pack_inputs,
    statistics_at,
)
from audioadapt.evaluation.psds import (
    PSDS1,
    PSDS2,
    IntersectionF1Config,
    PsdsConfig,
    intersection_f1,
    plot_psd_roc,
    psds,
)
from audioadapt.features.frames import FrameGrid

# 0.25 s output frames: every boundary is exact in binary floating point
GRID = FrameGrid(sample_rate=100, hop_length=25, n_fft=25)
CLIP_FRAMES = 40  # 10 s
TS = GRID.output_timestamps(CLIP_FRAMES)


def frames(onset: float, offset: float) -> slice:
    return slice(GRID.seconds_to_output_frame(onset), GRID.seconds_to_output_frame(offset, rounding="ceil"))


def silent_set(n_clips: int, classes):
    """``n_clips`` 10 s clips with zero scores and no events."""
    scores = {f"clip{i:02d}": np.zeros((CLIP_FRAMES, len(classes))) for i in range(n_clips)}
    gt = {name: [] for name in scores}
    return scores, gt


def durations_of(scores):
    return {name: float(TS[-1]) for name in scores}


# -- configuration ----------------------------------------------------------------
def test_dcase_scenarios():
    assert (PSDS1.dtc, PSDS1.gtc, PSDS1.cttc, PSDS1.alpha_ct, PSDS1.alpha_st, PSDS1.max_efpr) == (
        0.7, 0.7, None, 0.0, 1.0, 100.0)
    assert (PSDS2.dtc, PSDS2.gtc, PSDS2.cttc, PSDS2.alpha_ct, PSDS2.alpha_st, PSDS2.max_efpr) == (
        0.1, 0.1, 0.3, 0.5, 1.0, 100.0)
    assert PsdsConfig.scenario1() == PSDS1 and PsdsConfig.scenario2() == PSDS2


@pytest.mark.parametrize("kwargs", [
    dict(cttc=0.3),  # cttc without alpha_ct
    dict(alpha_ct=0.5),  # alpha_ct without cttc
    dict(dtc=0.0),
    dict(gtc=1.5),
    dict(alpha_st=-1.0),
    dict(max_efpr=0.0),
])
def test_psds_config_rejects(kwargs):
    with pytest.raises(ConfigError):
        PsdsConfig(**kwargs)


def test_f1_config_rejects():
    with pytest.raises(ConfigError):
        IntersectionF1Config(gtc=0.0)
    with pytest.raises(ConfigError):
        IntersectionF1Config(cttc=2.0)


# -- PSDS known answers -------------------------------------------------------------
def test_perfect_detector_scores_one():
    classes = ["a", "b"]
    scores, gt = silent_set(3, classes)
    # overlapping events of different classes, an event touching the clip end, an empty clip
    gt["clip00"] = [Event(1.0, 3.0, "a"), Event(2.0, 5.0, "b")]
    gt["clip01"] = [Event(8.0, 10.0, "b"), Event(0.0, 1.5, "a")]
    for name, events in gt.items():
        for ev in events:
            scores[name][frames(ev.onset, ev.offset), classes.index(ev.label)] = 1.0
    for cfg in (PSDS1, PSDS2):
        res = psds(scores, TS, classes, gt, durations_of(scores), cfg)
        assert res.value == pytest.approx(1.0)
        assert res.class_values == pytest.approx({"a": 1.0, "b": 1.0})


def test_false_positive_rate_is_per_hour_of_audio():
    # 36 clips of 10 s = 360 s, so one false positive is 10 per hour
    scores, gt = silent_set(36, ["a"])
    gt["clip00"] = [Event(2.0, 4.0, "a")]
    scores["clip00"][frames(2.0, 4.0), 0] = 0.6
    scores["clip01"][frames(5.0, 6.0), 0] = 0.9  # scored above the true event
    res = psds(scores, TS, ["a"], gt, durations_of(scores), PSDS1)
    roc = res.class_rocs["a"]
    np.testing.assert_allclose(roc.efpr, [0.0, 10.0])
    np.testing.assert_allclose(roc.tpr, [0.0, 1.0])
    assert roc.levels[1] == pytest.approx(0.6)
    assert res.value == pytest.approx(0.9)  # (100 - 10) / 100
    np.testing.assert_allclose(res.roc.efpr, [0.0, 10.0, 100.0])
    np.testing.assert_allclose(res.roc.etpr, [0.0, 1.0, 1.0])
    half = psds(scores, TS, ["a"], gt, durations_of(scores), PsdsConfig(max_efpr=50.0))
    assert half.value == pytest.approx(0.8)  # (50 - 10) / 50
    # the same audio declared twice as long halves the rate
    longer = {k: 2 * v for k, v in durations_of(scores).items()}
    assert psds(scores, TS, ["a"], gt, longer, PSDS1).value == pytest.approx(0.95)


@pytest.mark.parametrize("alpha_st, expected", [(0.0, 0.5), (0.5, 0.25), (1.0, 0.0)])
def test_alpha_st_penalises_unstable_classes(alpha_st, expected):
    scores, gt = silent_set(36, ["a", "b"])
    gt["clip00"] = [Event(2.0, 4.0, "a"), Event(6.0, 8.0, "b")]
    scores["clip00"][frames(2.0, 4.0), 0] = 1.0  # a perfect, b never found
    res = psds(scores, TS, ["a", "b"], gt, durations_of(scores), PsdsConfig(alpha_st=alpha_st))
    # TP ratios (1, 0) everywhere below max_efpr: mean 0.5, std 0.5
    assert res.value == pytest.approx(expected)
    assert res.class_values == pytest.approx({"a": 1.0, "b": 0.0})


def test_cross_triggers_raise_the_effective_fp_rate():
    scores, gt = silent_set(36, ["a", "b"])
    gt["clip00"] = [Event(2.0, 4.0, "b"), Event(6.0, 8.0, "a")]
    scores["clip00"][frames(2.0, 4.0), 0] = 0.8  # "a" fires on the "b" event
    scores["clip00"][frames(6.0, 8.0), 0] = 0.5
    for i in range(1, 23):  # more "b" events: 2 + 22 * 8 = 178 s of "b"
        gt[f"clip{i:02d}"] = [Event(1.0, 9.0, "b")]
    for name, events in gt.items():
        for ev in events:
            if ev.label == "b":
                scores[name][frames(ev.onset, ev.offset), 1] = 0.7
    t_ref_b, total = 178.0, 360.0
    res2 = psds(scores, TS, ["a", "b"], gt, durations_of(scores), PSDS2)
    efpr = (1 / total + PSDS2.alpha_ct * 1 / t_ref_b) * 3600.0  # one FP that is also a cross-trigger
    np.testing.assert_allclose(res2.class_rocs["a"].efpr, [0.0, efpr])
    np.testing.assert_allclose(res2.class_rocs["a"].tpr, [0.0, 1.0])
    # at eFPR 0 the TP ratios are (0, 1): mean - std = 0; from efpr on both are 1
    assert res2.value == pytest.approx((100.0 - efpr) / 100.0)
    res1 = psds(scores, TS, ["a", "b"], gt, durations_of(scores), PSDS1)
    assert res1.value == pytest.approx(0.9)


def test_single_class_has_no_cross_triggers():
    scores, gt, durations = _informative_set(seed=2, n_clips=8)
    scores = {k: v[:, :1] for k, v in scores.items()}
    gt = {k: [e for e in v if e.label == "a"] for k, v in gt.items()}
    with_ct = psds(scores, TS, ["a"], gt, durations, PSDS2)
    without = psds(scores, TS, ["a"], gt, durations, PsdsConfig(dtc=PSDS2.dtc, gtc=PSDS2.gtc))
    assert 0.0 < with_ct.value == pytest.approx(without.value)


def test_monotone_score_transform_and_clip_order_do_not_matter():
    scores, gt, durations = _informative_set(seed=3, n_clips=12)
    classes = ["a", "b", "c"]
    ref = psds(scores, TS, classes, gt, durations, PSDS1)
    assert 0.0 < ref.value < 1.0
    warped = {k: 1 / (1 + np.exp(-8 * (v - 0.3))) for k, v in reversed(list(scores.items()))}
    assert psds(warped, TS, classes, gt, durations, PSDS1).value == pytest.approx(ref.value, abs=1e-12)
    per_clip_ts = {k: TS for k in scores}
    assert psds(scores, per_clip_ts, classes, gt, durations, PSDS1).value == pytest.approx(ref.value, abs=1e-12)


def test_roc_levels_reproduce_their_points():
    """Detecting ``score >= level`` at a ROC point's level gives that point's counts."""
    scores, gt, _ = _informative_set(seed=5, n_clips=10)
    durations = {k: 600.0 for k in scores}  # long audio: many points below max_efpr
    classes = ["a", "b", "c"]
    res = psds(scores, TS, classes, gt, durations, PSDS1)
    packed = pack_inputs(scores, TS, classes, gt)
    total = sum(durations.values())
    checked = 0
    for k, name in enumerate(classes):
        roc = res.class_rocs[name]
        for level, tpr, efpr in zip(roc.levels, roc.tpr, roc.efpr):
            thr = np.full(len(classes), np.inf)
            thr[k] = np.nextafter(level, -np.inf)
            tps, fps, _ = statistics_at(packed, thr, PSDS1.dtc, PSDS1.gtc, None)
            assert tps[k] / packed.n_ref[k] == pytest.approx(tpr)
            assert fps[k] / total * 3600 == pytest.approx(efpr)
            checked += 1
    assert checked > 2 * len(classes)  # more than the empty points


# -- intersection F1 known answers ------------------------------------------------
def _one_clip(events, detections, classes=("a",)):
    """One 10 s clip; ``detections`` are (onset, offset, label) scored 1."""
    s = np.zeros((CLIP_FRAMES, len(classes)))
    for on, off, label in detections:
        s[frames(on, off), classes.index(label)] = 1.0
    return {"x": s}, {"x": list(events)}


@pytest.mark.parametrize("gtc, tp", [(0.5, 1), (0.75, 1), (0.8, 0)])
def test_gtc_sums_over_relevant_detections(gtc, tp):
    scores, gt = _one_clip([Event(0.0, 4.0, "a")], [(0.0, 1.5, "a"), (2.0, 3.5, "a")])
    res = intersection_f1(scores, TS, ["a"], gt, 0.5, IntersectionF1Config(gtc=gtc))
    row = res.class_wise["a"]
    assert (row.tp, row.fp, row.fn) == (tp, 0, 1 - tp)  # 3 s of 4 covered: 0.75 passes at equality
    assert row.precision == 1.0  # no false detection (and by convention when nothing is detected)
    assert row.f_measure == pytest.approx(float(tp))


@pytest.mark.parametrize("dtc, relevant", [(0.75, True), (0.8, False)])
def test_dtc_is_a_fraction_of_the_detection(dtc, relevant):
    scores, gt = _one_clip([Event(0.25, 2.0, "a")], [(0.0, 1.0, "a")])  # 0.75 of the detection is on the event
    res = intersection_f1(scores, TS, ["a"], gt, 0.5, IntersectionF1Config(dtc=dtc, gtc=0.1))
    assert res.class_wise["a"].fp == (0 if relevant else 1)
    assert res.class_wise["a"].tp == (1 if relevant else 0)


def test_dtc_equality_survives_float_error():
    grid = FrameGrid(sample_rate=10, hop_length=1, n_fft=1)  # 0.1 s frames: inexact boundaries
    ts = grid.output_timestamps(100)
    s = np.zeros((100, 1))
    s[0:10, 0] = 1.0  # detection (0, 1.0); the event starts at 0.7: exactly 30 % of the detection
    assert ts[10] - ts[7] < 0.3 * (ts[10] - ts[0])  # the float intersection misses the exact fraction ...
    gt = {"x": [Event(float(ts[7]), 2.0, "a")]}
    res = intersection_f1({"x": s}, ts, ["a"], gt, 0.5, IntersectionF1Config(dtc=0.3, gtc=0.1))
    assert (res.class_wise["a"].tp, res.class_wise["a"].fp) == (1, 0)  # ... but rounding to 1 us keeps it


def test_f1_counts_classes_apart_and_cross_triggers():
    classes = ("a", "b")
    events = [Event(1.0, 3.0, "a"), Event(2.0, 5.0, "b"), Event(8.0, 10.0, "a")]
    detections = [(1.0, 3.0, "a"), (8.0, 10.0, "a"), (2.0, 5.0, "b"), (6.0, 7.0, "b"), (2.5, 4.5, "a")]
    # the "b" run (6, 7) lies on no event: a false positive
    scores, gt = _one_clip(events, detections, classes)
    res = intersection_f1(scores, TS, list(classes), gt, {"a": 0.5, "b": 0.5}, IntersectionF1Config())
    a, b = res.class_wise["a"], res.class_wise["b"]
    assert (a.tp, a.fp, a.n_ref) == (2, 0, 2)  # (1, 3) and (2.5, 4.5) merge into one run: 2 of 3.5 s on "a"
    assert (b.tp, b.fp, b.n_ref) == (1, 1, 1)
    assert b.precision == pytest.approx(0.5) and b.f_measure == pytest.approx(2 / 3)
    assert res.macro.f_measure == pytest.approx((1.0 + 2 / 3) / 2)
    assert (res.micro.tp, res.micro.fp) == (3, 1)
    assert res.micro.f_measure == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    assert res.cross_triggers == {"a": {"b": 0}, "b": {"a": 0}}  # the "b" false positive lies on no "a"


def test_f1_cross_trigger_counted():
    classes = ("a", "b")
    scores, gt = _one_clip([Event(1.0, 3.0, "a"), Event(5.0, 7.0, "b")], [(5.0, 6.0, "a")], classes)
    res = intersection_f1(scores, TS, list(classes), gt, 0.5, IntersectionF1Config())
    assert res.class_wise["a"].fp == 1 and res.cross_triggers["a"] == {"b": 1}
    no_ct = intersection_f1(scores, TS, list(classes), gt, 0.5, IntersectionF1Config(cttc=None))
    assert no_ct.cross_triggers == {} and no_ct.class_wise["a"].fp == 1
    assert res.to_dict()["class_wise"]["a"]["fp"] == 1


# -- input validation ----------------------------------------------------------------
def _valid():
    scores = {"x": np.zeros((CLIP_FRAMES, 2)), "y": np.zeros((CLIP_FRAMES, 2))}
    gt = {"x": [Event(1.0, 2.0, "a")], "y": [Event(3.0, 4.0, "b")]}
    return scores, gt, {"x": 10.0, "y": 10.0}


@pytest.mark.parametrize("mutate, match", [
    (lambda s, g, d: g.pop("y"), "missing"),
    (lambda s, g, d: d.pop("y"), "durations"),
    (lambda s, g, d: g.update(y=[]), "class\\(es\\) \\['b'\\]"),
    (lambda s, g, d: g.update(y=[Event(3.0, 4.0, "b"), Event(3.5, 5.0, "b")]), "'y'.*overlapping"),
    (lambda s, g, d: g.update(y=[Event(3.0, 4.0, "b"), Event(4.0, 5.0, "b")]), "touching"),
    (lambda s, g, d: g.update(y=[Event(3.0, 4.0, "c")]), "'c'"),
    (lambda s, g, d: g.update(y=[Event(4.0, 3.0, "b")]), "onset < offset"),
    (lambda s, g, d: g.update(y=[(3.0, "b")]), "expected an Event"),
    (lambda s, g, d: s["x"].__setitem__((0, 0), np.nan), "'x'.*NaN"),
    (lambda s, g, d: s.update(x=np.zeros((CLIP_FRAMES, 3))), "shape"),
    (lambda s, g, d: s.update(x=np.zeros((CLIP_FRAMES - 1, 2))), "boundaries"),
    (lambda s, g, d: d.update(x=0.0), "duration"),
])
def test_bad_inputs_raise_data_error(mutate, match):
    scores, gt, durations = _valid()
    mutate(scores, gt, durations)
    with pytest.raises(DataError, match=match):
        psds(scores, TS, ["a", "b"], gt, durations, PSDS1)


def test_bad_timestamps_and_thresholds():
    scores, gt, durations = _valid()
    with pytest.raises(DataError, match="increasing"):
        psds(scores, TS[::-1].copy(), ["a", "b"], gt, durations, PSDS1)
    with pytest.raises(DataError, match="threshold"):
        intersection_f1(scores, TS, ["a", "b"], gt, {"a": 0.5}, IntersectionF1Config())


# -- internals against brute force -----------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=25))
def test_detections_over_all_levels_match_brute_force(values):
    s = np.asarray(values, dtype=np.float64)[:, None]
    packed = pack_inputs({"x": s}, np.arange(len(s) + 1.0), ["a"], {"x": [Event(0.0, 1.0, "a")]})
    p = _nearest_smaller(packed.x, -1)
    for i in np.flatnonzero(packed.x > -np.inf):
        j = i - 1
        while packed.x[j] >= packed.x[i]:
            j -= 1
        assert p[i] == j
    levels, _, first, end, birth, death = component_intervals(packed)
    for u in np.unique(s):
        on = np.r_[False, s[:, 0] >= u, False].astype(int)
        runs = set(zip(np.flatnonzero(np.diff(on) == 1), np.flatnonzero(np.diff(on) == -1)))
        alive = (levels[birth] >= u) & ((death < 0) | (levels[np.maximum(death, 0)] < u))
        assert set(zip(first[alive], end[alive])) == runs


@pytest.mark.parametrize("cttc", [None, 0.3])
def test_blocks_and_chunks_do_not_change_the_counts(cttc, monkeypatch):
    from audioadapt.evaluation import intersection

    scores, gt, _ = _informative_set(seed=4, n_clips=9)
    packed = pack_inputs(scores, TS, ["a", "b", "c"], gt)
    ref = intersection.statistics_curve(packed, 0.5, 0.5, cttc)
    assert sum(len(curve.levels) for curve in ref) > 100
    for block, chunk in [(30, 7), (100, 50)]:  # one sequence per block (shorter than a clip); a few
        monkeypatch.setattr(intersection, "_BLOCK_FRAMES", block)
        monkeypatch.setattr(intersection, "_CHUNK", chunk)
        for curve, st_ref in zip(intersection.statistics_curve(packed, 0.5, 0.5, cttc), ref):
            for field in ("levels", "tps", "fps", "cts"):
                np.testing.assert_array_equal(getattr(curve, field), getattr(st_ref, field))


# -- plotting and speed ----------------------------------------------------------------------
def test_plot_writes_png(tmp_path):
    scores, gt, durations = _informative_set(seed=1, n_clips=6)
    res = psds(scores, TS, ["a", "b", "c"], gt, durations, PSDS2)
    for per_class in (False, True):
        out = plot_psd_roc(res, tmp_path / f"roc_{per_class}.png", per_class=per_class)
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_dcase_sized_set_is_fast():
    """200 clips x 160 frames x 10 classes in a few seconds."""
    rng = np.random.default_rng(0)
    classes = [f"c{k}" for k in range(10)]
    grid = FrameGrid(sample_rate=22050, hop_length=345, n_fft=2048, time_pooling=(2, 2))
    ts = grid.output_timestamps(160)
    scores, gt = {}, {}
    for i in range(200):
        scores[f"f{i:03d}"] = rng.random((160, 10))
        gt[f"f{i:03d}"] = [Event(on, on + rng.uniform(0.2, 2.0), c)
                          for k, c in enumerate(classes) if rng.random() < 0.3 or i == k
                          for on in [rng.uniform(0.0, 8.0)]]
    durations = {k: float(ts[-1]) for k in scores}
    start = time.perf_counter()
    psds(scores, ts, classes, gt, durations, PSDS1)
    psds(scores, ts, classes, gt, durations, PSDS2)
    intersection_f1(scores, ts, classes, gt, 0.5, IntersectionF1Config())
    assert time.perf_counter() - start < 8.0


# -- helpers ------------------------------------------------------------------------------
def _informative_set(seed: int, n_clips: int):
    """Noisy scores that rise on the events, three classes, some empty clips."""
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    scores, gt = {}, {}
    for i in range(n_clips):
        events = []
        for label in classes:
            if rng.random() < 0.6 or i == 0:
                on = float(rng.integers(0, 30)) / 4
                events.append(Event(on, min(10.0, on + float(rng.integers(2, 12)) / 4), label))
        s = rng.random((CLIP_FRAMES, 3))
        for ev in events:
            s[frames(ev.onset, ev.offset), classes.index(ev.label)] += 0.6
        scores[f"clip{i:02d}"], gt[f"clip{i:02d}"] = s, events
    return scores, gt, {k: 10.0 for k in scores}
