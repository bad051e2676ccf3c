"""Decode-at-threshold + our metrics against sed_scores_eval's threshold F-scores.

Random frame scores are post-processed once; sed_scores_eval receives the
post-processed scores with the frame boundaries of our decoder and thresholds
them itself, while we decode events at the same threshold and score them. The
collar-based (0.2 / 0.2 / 20 %) and segment-based (1 s) results must agree to
1e-6, which pins the threshold semantics (``score > threshold``) and the
event timestamps.
"""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.evaluation.decoding import DecodeConfig, decode_scores, frame_boundaries, postprocess_scores
from audioadapt.evaluation.sed_metrics import SedMetricConfig, event_based_metrics, segment_based_metrics

sed_scores_eval = pytest.importorskip("sed_scores_eval")
from sed_scores_eval import collar_based, segment_based  # noqa: E402
from sed_scores_eval.base_modules.detection import scores_to_event_list  # noqa: E402
from sed_scores_eval.base_modules.scores import create_score_dataframe  # noqa: E402

pytestmark = pytest.mark.usefixtures("writable_sed_scores_eval")

CLASSES = ["Blender", "Cat", "Speech"]
TOL = 1e-6


def _scores_for(rng, events, grid, n_frames):
    """Noisy, locally smooth scores that follow the reference activity.

    Scores are multiples of 1/20, so many equal the threshold exactly and the
    strict ``score > threshold`` rule is exercised.
    """
    starts = grid.output_frame_to_seconds(np.arange(n_frames))
    act = np.zeros((n_frames, len(CLASSES)))
    for ev in events:
        act[(starts >= ev.onset) & (starts < ev.offset), CLASSES.index(ev.label)] = 0.75
    noisy = act + rng.normal(0.1, 0.3, size=act.shape)
    kernel = np.ones(3) / 3
    smooth = np.stack([np.convolve(noisy[:, k], kernel, mode="same") for k in range(len(CLASSES))], axis=1)
    return np.round(np.clip(smooth, 0.0, 1.0) * 20) / 20


def _make_case(rng, sed_case, grid, cfg: DecodeConfig, clip: float):
    reference, _ = sed_case(rng, CLASSES, max_files=5, max_events=6, overlap=False)
    reference = {k: [e for e in v if e.offset <= clip] for k, v in reference.items()}
    for c in CLASSES:  # sed_scores_eval needs at least one reference event per class
        if not any(e.label == c for evs in reference.values() for e in evs):
            onset = float(rng.uniform(0, clip - 2))
            reference[f"extra_{c}.wav"] = [Event(onset, onset + 1.5, c)]
    n_frames = grid.num_output_frames_for_seconds(clip)
    scores, detected, durations = {}, {}, {}
    for name, events in reference.items():
        raw = _scores_for(rng, events, grid, n_frames)
        post = postprocess_scores(raw, grid, cfg, clip)
        scores[name] = create_score_dataframe(post, frame_boundaries(len(post), grid, clip), CLASSES)
        detected[name] = decode_scores(raw, CLASSES, grid, cfg, clip)
        durations[name] = clip
    ground_truth = {k: [(e.onset, e.offset, e.label) for e in v] for k, v in reference.items()}
    return reference, ground_truth, scores, detected, durations


def _compare(theirs, ours, check_precision_macro: bool) -> None:
    f, p, r, stats = theirs
    for c in CLASSES:
        row = ours.class_wise[c]
        assert (stats[c]["tps"], stats[c]["fps"], stats[c]["n_ref"]) == (row.tp, row.fp, row.n_ref), c
        assert f[c] == pytest.approx(row.f_measure, abs=TOL), c
        assert r[c] == pytest.approx(row.recall, abs=TOL), c
        if row.n_sys > 0:  # without detections sed_scores_eval reports precision 1, zero_score 0
            assert p[c] == pytest.approx(row.precision, abs=TOL), c
    assert f["macro_average"] == pytest.approx(ours.macro.f_measure, abs=TOL)
    assert r["macro_average"] == pytest.approx(ours.macro.recall, abs=TOL)
    if check_precision_macro:
        assert p["macro_average"] == pytest.approx(ours.macro.precision, abs=TOL)
    assert f["micro_average"] == pytest.approx(ours.micro.f_measure, abs=TOL)
    assert p["micro_average"] == pytest.approx(ours.micro.precision, abs=TOL)
    assert r["micro_average"] == pytest.approx(ours.micro.recall, abs=TOL)


SETTINGS = [
    # (median filter seconds, filter order, threshold, clip seconds)
    (0.45, "scores_then_threshold", 0.5, 10.0),
    (0.0, "scores_then_threshold", 0.5, 10.0),
    (0.2, "scores_then_threshold", 0.3, 10.0),
    (0.45, "scores_then_threshold", 0.7, 9.3),
    (0.45, "threshold_then_scores", 0.5, 10.0),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("seed", range(4))
def test_collar_and_segment_fscore_match_sed_scores_eval(setting, seed, sed_case, sed_grid):
    median, order, threshold, clip = setting
    cfg = DecodeConfig(threshold=threshold, median_filter_seconds=median, filter_order=order)
    rng = np.random.default_rng(seed + 100 * SETTINGS.index(setting))
    for _ in range(3):
        reference, ground_truth, scores, detected, durations = _make_case(rng, sed_case, sed_grid, cfg, clip)

        # The events sed_scores_eval sees at this threshold are exactly ours.
        theirs_events = scores_to_event_list(scores, threshold)
        for name in reference:
            ours_events = [(e.onset, e.offset, e.label) for e in detected[name]]
            assert len(theirs_events[name]) == len(ours_events), name
            for a, b in zip(sorted(theirs_events[name]), sorted(ours_events)):
                assert a[2] == b[2] and a[0] == pytest.approx(b[0], abs=1e-9) and a[1] == pytest.approx(b[1], abs=1e-9)

        collar = collar_based.fscore(
            scores, ground_truth, threshold, onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2
        )
        ours = event_based_metrics(reference, detected, CLASSES, SedMetricConfig(time_decimals=6))
        all_detected = all(ours.class_wise[c].n_sys > 0 for c in CLASSES)
        _compare(collar, ours, all_detected)

        segment = segment_based.fscore(scores, ground_truth, durations, threshold, segment_length=1.0)
        ours_seg = segment_based_metrics(reference, detected, CLASSES, SedMetricConfig(), durations)
        _compare(segment, ours_seg.rescore("zero_score"), all(ours_seg.class_wise[c].n_sys > 0 for c in CLASSES))


def test_per_class_thresholds_match_sed_scores_eval(sed_case, sed_grid):
    thresholds = {"Blender": 0.35, "Cat": 0.6, "Speech": 0.5}
    cfg = DecodeConfig(threshold=0.5, class_thresholds=thresholds)
    rng = np.random.default_rng(7)
    for _ in range(4):
        reference, ground_truth, scores, detected, _ = _make_case(rng, sed_case, sed_grid, cfg, 10.0)
        collar = collar_based.fscore(
            scores, ground_truth, thresholds, onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2
        )
        ours = event_based_metrics(reference, detected, CLASSES, SedMetricConfig(time_decimals=6))
        _compare(collar, ours, all(ours.class_wise[c].n_sys > 0 for c in CLASSES))


def test_reference_times_on_collar_boundaries(sed_grid):
    """Reference boundaries exactly one collar away from frame boundaries: sed_scores_eval
    rounds the deviation to 6 decimals, which ``time_decimals=6`` reproduces."""
    hop = sed_grid.output_hop_seconds
    n = sed_grid.num_output_frames_for_seconds(10.0)
    raw = np.zeros((n, len(CLASSES)))
    raw[20:40, 0] = 1.0  # Blender detected on frames [20, 40)
    raw[60:70, 1] = 1.0
    raw[100:130, 2] = 1.0
    cfg = DecodeConfig(median_filter_seconds=0.0)
    detected = {"a.wav": decode_scores(raw, CLASSES, sed_grid, cfg, 10.0)}
    ref = {"a.wav": [
        Event(20 * hop + 0.2, 40 * hop - 0.2, "Blender"),  # both deviations exactly at the collar
        Event(60 * hop - 0.2, 70 * hop + 0.2, "Cat"),
        Event(100 * hop + 0.200006, 130 * hop, "Speech"),  # just outside
    ]}
    post = postprocess_scores(raw, sed_grid, cfg, 10.0)
    scores = {"a.wav": create_score_dataframe(post, frame_boundaries(len(post), sed_grid, 10.0), CLASSES)}
    gt = {k: [(e.onset, e.offset, e.label) for e in v] for k, v in ref.items()}
    theirs = collar_based.fscore(scores, gt, 0.5, onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2)
    ours = event_based_metrics(ref, detected, CLASSES, SedMetricConfig(time_decimals=6))
    assert [ours.class_wise[c].tp for c in CLASSES] == [1, 1, 0]
    _compare(theirs, ours, True)
    # sed_eval compares exactly: 40 * hop - (40 * hop - 0.2) is 0.2 + 2e-16 in floats, a miss.
    exact = event_based_metrics(ref, detected, CLASSES, SedMetricConfig())
    assert [exact.class_wise[c].tp for c in CLASSES] == [0, 0, 0]
