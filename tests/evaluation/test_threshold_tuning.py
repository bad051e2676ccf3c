"""Per-class threshold tuning and the thresholds file beside a checkpoint."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.decoding import DecodeConfig, decode_timed_scores, frame_boundaries
from audioadapt.evaluation.sed_metrics import SedMetricConfig, event_based_metrics, segment_based_metrics
from audioadapt.evaluation.threshold_tuning import ThresholdTuningConfig, tune_thresholds
from audioadapt.evaluation.tuned_thresholds import TunedThresholds, thresholds_path
from audioadapt.features.frames import FrameGrid

TENTH = FrameGrid(sample_rate=100, hop_length=10, n_fft=10, center=True)  # 0.1 s frames
CLASSES = ["A", "B", "C"]


def _hand_case():
    """A: its event scores 0.8, a false alarm 0.4. B: its event scores 0.3, a false alarm 0.2. C: no events."""
    s = np.full((40, 3), 0.05)
    s[5:15, 0], s[25:30, 0] = 0.8, 0.4
    s[5:15, 1], s[30:35, 1] = 0.3, 0.2
    scores = {"x.wav": s}
    bounds = {"x.wav": frame_boundaries(40, TENTH, 4.0)}
    reference = {"x.wav": [Event(0.5, 1.5, "A"), Event(0.5, 1.5, "B")]}
    return scores, bounds, reference


def test_each_class_gets_the_threshold_of_its_best_f1_nearest_its_start():
    scores, bounds, reference = _hand_case()
    result = tune_thresholds(scores, bounds, reference, CLASSES, DecodeConfig(threshold=0.5), durations={"x.wav": 4})
    # A: F1 1 for thresholds 0.40-0.79, 0.5 is among them; B: F1 1 for 0.20-0.29, nearest 0.5 is 0.29
    assert result.thresholds == {"A": 0.5, "B": 0.29, "C": 0.5}
    a, b, c = (result.classes[k] for k in CLASSES)
    assert (a.f1, a.f1_before, a.tuned, a.n_ref) == (1.0, 1.0, True, 1)
    assert (b.f1, b.f1_before, b.threshold_before) == (1.0, 0.0, 0.5)
    assert not c.tuned and c.threshold == c.threshold_before == 0.5 and np.isnan(c.f1)
    assert (result.macro_before, result.macro_after) == (0.5, 1.0)
    # from another start, A moves to the nearest end of its plateau
    low = tune_thresholds(scores, bounds, reference, CLASSES, DecodeConfig(threshold=0.3, class_thresholds={"C": 0.7}))
    assert low.thresholds == {"A": 0.4, "B": 0.29, "C": 0.7}
    data = json.loads(json.dumps(result.to_dict()))  # JSON-ready: NaN becomes null
    assert data["per_class"]["C"]["f1"] is None and data["objective"] == "event" and data["step"] == 0.01


@pytest.mark.parametrize("objective", ["event", "segment"])
@pytest.mark.parametrize("seed", range(3))
def test_tuned_thresholds_reach_the_best_f1_of_every_candidate(objective, seed, sed_grid):
    rng = np.random.default_rng(seed)
    scores, bounds, reference = {}, {}, {}
    for i in range(4):
        n = 60
        events = [Event(float(a), float(a) + float(rng.uniform(0.3, 1.2)), str(rng.choice(CLASSES)))
                  for a in rng.uniform(0, 2.5, size=3)]
        starts = sed_grid.output_frame_to_seconds(np.arange(n))
        s = rng.random((n, 3)) * 0.6
        for ev in events:
            s[(starts >= ev.onset) & (starts < ev.offset), CLASSES.index(ev.label)] += 0.35
        scores[f"{i}.wav"], bounds[f"{i}.wav"] = np.round(s, 2), frame_boundaries(n, sed_grid, 3.7)
        reference[f"{i}.wav"] = events
    for c in CLASSES:  # every class present, so every class is tuned
        reference["0.wav"].append(Event(3.0, 3.6, c))
    reference = {k: sorted(v) for k, v in reference.items()}
    decode = DecodeConfig(threshold=0.5, min_duration_seconds=0.1, merge_gap_seconds=0.1)
    durations = {k: 3.7 for k in scores}
    cfg = ThresholdTuningConfig(objective=objective, step=0.05)
    result = tune_thresholds(scores, bounds, reference, CLASSES, decode, SedMetricConfig(), durations, cfg)

    def per_class(thresholds: dict[str, float]) -> dict[str, float]:
        trial = dataclasses.replace(decode, median_filter_seconds=0.0, class_thresholds=thresholds)
        events = {k: decode_timed_scores(v, bounds[k], CLASSES, trial) for k, v in scores.items()}
        if objective == "event":
            out = event_based_metrics(reference, events, CLASSES)
        else:
            out = segment_based_metrics(reference, events, CLASSES, durations=durations).rescore("zero_score")
        return {c: out.class_wise[c].f_measure for c in CLASSES}

    best = {c: max(per_class({k: t for k in CLASSES})[c] for t in cfg.candidates()) for c in CLASSES}
    reached = per_class(result.thresholds)
    assert reached == pytest.approx(best)
    assert {c: r.f1 for c, r in result.classes.items()} == pytest.approx(best)
    assert result.macro_after == pytest.approx(np.mean(list(best.values())))
    assert result.macro_after >= result.macro_before


def test_tuning_settings_are_checked():
    assert list(ThresholdTuningConfig(step=0.25).candidates()) == [0.25, 0.5, 0.75]
    assert len(ThresholdTuningConfig().candidates()) == 99
    with pytest.raises(ConfigError, match="objective must be one of event, segment"):
        ThresholdTuningConfig(objective="clip")
    with pytest.raises(ConfigError, match="step must be in"):
        ThresholdTuningConfig(step=0.0)


# --------------------------------------------------------------------------- the file
def test_thresholds_file_round_trip_and_errors(tmp_path):
    assert thresholds_path(tmp_path / "run" / "best.pt") == tmp_path / "run" / "best.thresholds.json"
    tuned = TunedThresholds({"A": 0.4, "B": 0.29}, "synthetic_valid", "/data/x", "event", "run/best.pt", "abc",
                            {"median_filter_seconds": 0.45}, {"macro_f1_after": 1.0})
    path = tuned.save(tmp_path / "best.thresholds.json")
    assert TunedThresholds.load(path) == tuned
    assert json.loads(path.read_text())["format_version"] == 1
    path.write_text("{not json")
    with pytest.raises(DataError, match=f"{path}: cannot read the tuned thresholds"):
        TunedThresholds.load(path)
    path.write_text(json.dumps({"thresholds": {"A": 0.4}}))
    with pytest.raises(DataError, match="lacks split, data_root, objective, checkpoint, checkpoint_sha256"):
        TunedThresholds.load(path)
    path.write_text(json.dumps({**tuned.to_dict(), "thresholds": {"A": "high"}}))
    with pytest.raises(DataError, match="'thresholds' must map each class to a finite number"):
        TunedThresholds.load(path)
