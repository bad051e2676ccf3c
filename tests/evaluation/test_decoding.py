"""Decoding frame scores into events: hand-made cases and a loop-based reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.evaluation.decoding import (
    DecodeConfig,
    activity_to_regions,
    decode_batch,
    decode_scores,
    decode_timed_scores,
    frame_boundaries,
    frame_hop,
    median_filter_scores,
    postprocess_scores,
    postprocess_timed_scores,
)
from audioadapt.features.frames import FrameGrid

NO_FILTER = DecodeConfig(median_filter_seconds=0.0)


@pytest.fixture
def tenth_grid() -> FrameGrid:
    """Output frames of exactly 0.1 s (hop 10 samples at 100 Hz, no pooling)."""
    return FrameGrid(sample_rate=100, hop_length=10, n_fft=10, center=True)


def _scores(n_frames: int, active: dict[int, list[int]], n_classes: int = 2, value: float = 0.9) -> np.ndarray:
    out = np.full((n_frames, n_classes), 0.1)
    for k, frames in active.items():
        out[frames, k] = value
    return out


# --------------------------------------------------------------------------- config
def test_default_median_window_is_seven_frames_on_the_sed_grid(sed_grid):
    # 0.45 s / 62.585 ms = 7.19 frames
    assert DecodeConfig().median_filter_frames(sed_grid) == 7


def test_median_window_is_odd_and_nearest_to_the_span(tenth_grid):
    assert DecodeConfig(median_filter_seconds=0.0).median_filter_frames(tenth_grid) == 1
    assert DecodeConfig(median_filter_seconds=0.3).median_filter_frames(tenth_grid) == 3
    # 0.42 s = 4.2 frames -> rounds to 4 (even) -> 5 is the odd neighbour above 4.2
    assert DecodeConfig(median_filter_seconds=0.42).median_filter_frames(tenth_grid) == 5
    # 0.38 s = 3.8 frames -> 4 -> 3 is the odd neighbour below 3.8
    assert DecodeConfig(median_filter_seconds=0.38).median_filter_frames(tenth_grid) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": float("nan")},
        {"median_filter_seconds": -0.1},
        {"filter_order": "filter_first"},
        {"min_duration_seconds": -1.0},
        {"merge_gap_seconds": -0.5},
        {"class_thresholds": {"Dog": float("inf")}},
    ],
)
def test_invalid_decode_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        DecodeConfig(**kwargs)


def test_class_thresholds_must_name_known_classes(tenth_grid):
    cfg = DecodeConfig(class_thresholds={"Cat": 0.2})
    with pytest.raises(ValueError, match="Cat"):
        decode_scores(_scores(5, {}), ["a", "b"], tenth_grid, cfg)


# --------------------------------------------------------------------------- median filter
def test_median_filter_by_hand():
    x = np.array([0, 1, 0, 0, 1, 1, 1, 0], dtype=float)[:, None]
    # window 3 with mirrored edges: (0,0,1) (0,1,0) (1,0,0) (0,0,1) (0,1,1) (1,1,1) (1,1,0) (1,0,0)
    expected = np.array([0, 0, 0, 0, 1, 1, 1, 0], dtype=float)[:, None]
    np.testing.assert_array_equal(median_filter_scores(x, 3), expected)


def test_median_filter_mirrors_the_edges():
    # A constant-zero boundary would give 0 at the first frame; the mirrored edge keeps it at 1.
    x = np.array([1, 1, 0, 0, 0], dtype=float)[:, None]
    assert median_filter_scores(x, 3)[0, 0] == 1.0
    assert median_filter_scores(x, 5)[0, 0] == 1.0  # window (0, 1, 1, 1, 0) around frame 0


def test_median_filter_works_per_class():
    x = np.zeros((6, 2))
    x[2, 0] = 1.0  # an isolated spike in class 0 is removed
    x[1:5, 1] = 1.0  # a 4-frame run in class 1 survives
    out = median_filter_scores(x, 3)
    assert out[:, 0].sum() == 0
    np.testing.assert_array_equal(out[:, 1], [0, 1, 1, 1, 1, 0])


@pytest.mark.parametrize("n", [0, 2, -3])
def test_median_filter_rejects_even_or_empty_windows(n):
    with pytest.raises(ValueError):
        median_filter_scores(np.zeros((4, 1)), n)


# --------------------------------------------------------------------------- decoding
def test_contiguous_frames_become_one_event_per_run(tenth_grid):
    scores = _scores(10, {0: [2, 3, 4, 7], 1: [0, 1]})
    events = decode_scores(scores, ["a", "b"], tenth_grid, NO_FILTER)
    assert events == [
        Event(0.0, pytest.approx(0.2), "b"),
        Event(pytest.approx(0.2), pytest.approx(0.5), "a"),
        Event(pytest.approx(0.7), pytest.approx(0.8), "a"),
    ]


def test_threshold_is_strict(tenth_grid):
    scores = np.array([[0.5], [0.5000001], [0.5]])
    events = decode_scores(scores, ["a"], tenth_grid, NO_FILTER)
    assert [(round(e.onset, 6), round(e.offset, 6)) for e in events] == [(0.1, 0.2)]


def test_per_class_thresholds(tenth_grid):
    scores = np.array([[0.3, 0.3], [0.3, 0.3]])
    cfg = DecodeConfig(median_filter_seconds=0.0, class_thresholds={"b": 0.25})
    assert [e.label for e in decode_scores(scores, ["a", "b"], tenth_grid, cfg)] == ["b"]


def test_offsets_are_clipped_and_padding_frames_cropped(tenth_grid):
    scores = _scores(12, {0: [8, 9, 10, 11], 1: [11]})
    events = decode_scores(scores, ["a", "b"], tenth_grid, NO_FILTER, clip_seconds=1.05)
    # frames 11 (starts at 1.1 s) is past the clip: cropped; frame 10 ends at 1.1 -> clipped to 1.05
    assert events == [Event(pytest.approx(0.8), 1.05, "a")]


def test_sed_grid_event_times_use_the_output_hop(sed_grid):
    scores = np.zeros((160, 1))
    scores[16:32, 0] = 1.0
    scores[150:, 0] = 1.0
    events = decode_scores(scores, ["a"], sed_grid, NO_FILTER, clip_seconds=10.0)
    hop = 4 * 345 / 22050
    assert events[0].onset == pytest.approx(16 * hop) and events[0].offset == pytest.approx(32 * hop)
    assert events[1].offset == 10.0  # 160 * 62.585 ms = 10.014 s, clipped


def test_merge_gap_joins_close_same_class_events_only(tenth_grid):
    scores = _scores(12, {0: [1, 2, 4, 5, 9], 1: [3]})
    cfg = DecodeConfig(median_filter_seconds=0.0, merge_gap_seconds=0.15)
    events = decode_scores(scores, ["a", "b"], tenth_grid, cfg)
    # a: [0.1, 0.3] and [0.4, 0.6] are 0.1 s apart -> merged; [0.9, 1.0] is 0.3 s away -> kept apart
    assert [(e.label, round(e.onset, 6), round(e.offset, 6)) for e in events] == [
        ("a", 0.1, 0.6), ("b", 0.3, 0.4), ("a", 0.9, 1.0),
    ]


def test_merge_chains_of_events(tenth_grid):
    scores = _scores(10, {0: [0, 2, 4, 6]})
    cfg = DecodeConfig(median_filter_seconds=0.0, merge_gap_seconds=0.15)
    events = decode_scores(scores, ["a", "b"], tenth_grid, cfg)
    assert [(round(e.onset, 6), round(e.offset, 6)) for e in events] == [(0.0, 0.7)]


def test_min_duration_drops_short_events_after_merging(tenth_grid):
    scores = _scores(12, {0: [1, 3], 1: [6]})
    cfg = DecodeConfig(median_filter_seconds=0.0, merge_gap_seconds=0.15, min_duration_seconds=0.25)
    events = decode_scores(scores, ["a", "b"], tenth_grid, cfg)
    # a: two 0.1 s events merged into [0.1, 0.4] (0.3 s, kept); b: 0.1 s (dropped)
    assert [(e.label, round(e.onset, 6), round(e.offset, 6)) for e in events] == [("a", 0.1, 0.4)]


def test_median_filter_removes_spikes_and_fills_holes(tenth_grid):
    scores = _scores(12, {0: [2, 3, 4, 6, 7, 8], 1: [9]})  # hole at frame 5, spike at 9
    cfg = DecodeConfig(median_filter_seconds=0.3)  # 3 frames
    events = decode_scores(scores, ["a", "b"], tenth_grid, cfg)
    assert [(e.label, round(e.onset, 6), round(e.offset, 6)) for e in events] == [("a", 0.2, 0.9)]


def _reference_decode(scores, classes, hop, thresholds, n_filter, clip, merge_gap, min_dur, order):
    """Straightforward loop implementation used to cross-check the vectorised decoder."""
    from scipy.ndimage import median_filter

    n = scores.shape[0]
    if clip is not None:
        n = min(n, int(np.ceil(clip / hop - 1e-9)))
    scores = scores[:n]
    events = []
    for k, name in enumerate(classes):
        col = scores[:, k]
        if order == "scores_then_threshold":
            active = median_filter(col, size=n_filter, mode="reflect") > thresholds[k]
        else:
            active = median_filter((col > thresholds[k]).astype(float), size=n_filter, mode="reflect") > 0.5
        runs, start = [], None
        for i in range(n + 1):
            on = i < n and active[i]
            if on and start is None:
                start = i
            elif not on and start is not None:
                runs.append([start * hop, i * hop])
                start = None
        if clip is not None:
            runs = [[a, min(b, clip)] for a, b in runs if a < clip]
        merged = []
        for a, b in runs:
            if merged and a - merged[-1][1] < merge_gap:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        events += [(name, a, b) for a, b in merged if b - a >= min_dur]
    return sorted(events, key=lambda e: (e[1], e[2], e[0]))


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_decoder_matches_a_loop_reference(seed, sed_grid):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    hop = sed_grid.output_hop_seconds
    for _ in range(10):
        scores = rng.random((int(rng.integers(1, 170)), 3)) ** 2
        cfg = DecodeConfig(
            threshold=float(rng.choice([0.2, 0.5])),
            median_filter_seconds=float(rng.choice([0.0, 0.2, 0.45])),
            filter_order=str(rng.choice(["scores_then_threshold", "threshold_then_scores"])),
            min_duration_seconds=float(rng.choice([0.0, 0.15])),
            merge_gap_seconds=float(rng.choice([0.0, 0.1, 0.3])),
        )
        clip = None if rng.random() < 0.3 else float(rng.uniform(0.5, 10.0))
        ours = decode_scores(scores, classes, sed_grid, cfg, clip)
        expected = _reference_decode(
            scores, classes, hop, cfg.thresholds_for(classes), cfg.median_filter_frames(sed_grid), clip,
            cfg.merge_gap_seconds, cfg.min_duration_seconds, cfg.filter_order,
        )
        assert [(e.label, e.onset, e.offset) for e in ours] == [
            (lab, pytest.approx(a, abs=1e-9), pytest.approx(b, abs=1e-9)) for lab, a, b in expected
        ]


@pytest.mark.parametrize("seed", range(3))
def test_filter_orders_agree_without_ties(seed, sed_grid):
    rng = np.random.default_rng(seed)
    scores = rng.random((160, 4))  # continuous scores: no frame equals the threshold
    a = decode_scores(scores, list("abcd"), sed_grid, DecodeConfig(filter_order="scores_then_threshold"), 10.0)
    b = decode_scores(scores, list("abcd"), sed_grid, DecodeConfig(filter_order="threshold_then_scores"), 10.0)
    assert a == b and len(a) > 10


def test_postprocessed_scores_reproduce_the_events(sed_grid):
    rng = np.random.default_rng(3)
    raw = rng.random((160, 2))
    cfg = DecodeConfig()
    post = postprocess_scores(raw, sed_grid, cfg, 10.0)
    np.testing.assert_array_equal(post, median_filter_scores(raw, 7))
    events = decode_scores(raw, ["a", "b"], sed_grid, cfg, 10.0)
    again = decode_scores(post, ["a", "b"], sed_grid, NO_FILTER, 10.0)
    assert events == again


def test_frame_boundaries(sed_grid):
    bounds = frame_boundaries(160, sed_grid, 10.0)
    assert bounds.shape == (161,)
    assert bounds[0] == 0.0 and bounds[-1] == 10.0
    assert bounds[159] == pytest.approx(159 * sed_grid.output_hop_seconds)
    assert frame_boundaries(160, sed_grid)[-1] == pytest.approx(10.0136, abs=1e-4)


def test_activity_to_regions():
    active = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], dtype=bool)
    cls, start, end = activity_to_regions(active)
    assert list(zip(cls, start, end)) == [(0, 0, 2), (0, 3, 4), (1, 1, 4)]


def test_empty_and_silent_inputs(tenth_grid):
    assert decode_scores(np.zeros((0, 2)), ["a", "b"], tenth_grid) == []
    assert decode_scores(np.zeros((5, 2)), ["a", "b"], tenth_grid) == []


def test_wrong_shape_is_rejected(tenth_grid):
    with pytest.raises(ValueError, match="frame, 3"):
        decode_scores(np.zeros((5, 2)), ["a", "b", "c"], tenth_grid)


def test_decode_batch(tenth_grid):
    scores = {"x.wav": _scores(10, {0: [1, 2]}), "y.wav": _scores(10, {1: [8, 9]})}
    out = decode_batch(scores, ["a", "b"], tenth_grid, NO_FILTER, clip_seconds={"x.wav": 1.0, "y.wav": 0.95})
    assert list(out) == ["x.wav", "y.wav"]
    assert [e.label for e in out["x.wav"]] == ["a"]
    assert out["y.wav"][0].offset == 0.95
    with pytest.raises(KeyError, match="y.wav"):
        decode_batch(scores, ["a", "b"], tenth_grid, NO_FILTER, clip_seconds={"x.wav": 1.0})


# --------------------------------------------------------------------------- scores with their own frame times
@pytest.mark.parametrize("seed", range(4))
def test_timed_decoding_of_the_postprocessed_scores_gives_the_decoder_s_events(seed, sed_grid):
    """What a score file holds (filtered scores, clipped boundaries) decodes to exactly the decoder's events."""
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    for _ in range(8):
        raw = np.round(rng.random((int(rng.integers(1, 170)), 3)) * 10) / 10  # ties with the thresholds
        cfg = DecodeConfig(threshold=float(rng.choice([0.3, 0.5])),
                           median_filter_seconds=float(rng.choice([0, 0.45])),
                           filter_order=str(rng.choice(["scores_then_threshold", "threshold_then_scores"])),
                           class_thresholds={"b": 0.6}, merge_gap_seconds=float(rng.choice([0.0, 0.2])),
                           min_duration_seconds=float(rng.choice([0.0, 0.15])))
        clip = None if rng.random() < 0.3 else float(rng.uniform(0.5, 10.0))
        post = postprocess_scores(raw, sed_grid, cfg, clip)
        bounds = frame_boundaries(len(post), sed_grid, clip)
        timed = decode_timed_scores(post, bounds, classes, dataclasses.replace(cfg, median_filter_seconds=0.0))
        assert timed == decode_scores(raw, classes, sed_grid, cfg, clip)
        # the filter applied by the timed decoder itself: the same window from the frame length
        assert decode_timed_scores(raw[: len(post)], bounds, classes, cfg) == timed
        np.testing.assert_array_equal(postprocess_timed_scores(raw[: len(post)], bounds, cfg), post)


def test_median_window_from_a_frame_length_matches_the_grid_s(sed_grid, tenth_grid):
    for seconds in (0.0, 0.2, 0.38, 0.42, 0.45, 1.0):
        cfg = DecodeConfig(median_filter_seconds=seconds)
        for grid in (sed_grid, tenth_grid):
            assert cfg.median_filter_frames_for_hop(grid.output_hop_seconds) == cfg.median_filter_frames(grid)


def test_frame_hop_allows_a_shorter_last_frame_only():
    assert frame_hop(np.array([0.0, 0.1, 0.2, 0.25])) == pytest.approx(0.1)
    assert frame_hop(np.array([0.0, 0.3])) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="not equally long"):
        frame_hop(np.array([0.0, 0.1, 0.3, 0.4]))
    with pytest.raises(ValueError, match="not equally long"):
        frame_hop(np.array([0.0, 0.1, 0.2, 0.35]))
    # without a median filter, uneven frames decode fine; with one they are refused
    scores = np.array([[0.9], [0.1], [0.9]])
    uneven = np.array([0.0, 0.5, 0.6, 2.0])
    assert decode_timed_scores(scores, uneven, ["a"], NO_FILTER) == [Event(0.0, 0.5, "a"), Event(0.6, 2.0, "a")]
    with pytest.raises(ValueError, match="median filter needs a fixed frame length"):
        decode_timed_scores(scores, uneven, ["a"], DecodeConfig(median_filter_seconds=1.0))
    with pytest.raises(ValueError, match="4 boundaries"):
        decode_timed_scores(scores, uneven[:3], ["a"], NO_FILTER)
