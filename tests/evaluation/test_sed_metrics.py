"""Event, segment and clip metrics on small cases whose answers are worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from audioadapt.data.manifest import Event as E
from audioadapt.errors import DataError
from audioadapt.evaluation.sed_metrics import (
    FScoreResult,
    SedMetricConfig,
    clip_metrics,
    clip_metrics_from_probabilities,
    event_based_metrics,
    events_to_tags,
    resolve_classes,
    segment_based_metrics,
)


def _f1(tp, n_ref, n_sys):
    p, r = tp / n_sys, tp / n_ref
    return 2 * p * r / (p + r)


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs",
    [
        {"t_collar": 0.0},
        {"percentage_of_length": 1.5},
        {"evaluate_onset": False, "evaluate_offset": False},
        {"segment_length": 0.0},
        {"event_empty_output": "drop"},
        {"extra_prediction_files": "ignore"},
        {"time_decimals": -1},
    ],
)
def test_invalid_metric_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        SedMetricConfig(**kwargs)


def test_dcase_defaults():
    cfg = SedMetricConfig()
    assert (cfg.t_collar, cfg.percentage_of_length, cfg.segment_length) == (0.2, 0.2, 1.0)
    assert (cfg.event_empty_output, cfg.segment_empty_output) == ("zero_score", "nan")


# --------------------------------------------------------------------------- event-based
def test_onset_and_offset_collars():
    ref = {"f": [E(1.0, 3.0, "a")]}
    # offset collar: max(0.2, 0.2 * 2.0 s) = 0.4 s
    assert event_based_metrics(ref, {"f": [E(1.15, 3.35, "a")]}).class_wise["a"].tp == 1
    assert event_based_metrics(ref, {"f": [E(1.25, 3.0, "a")]}).class_wise["a"].tp == 0  # onset off by 0.25
    assert event_based_metrics(ref, {"f": [E(1.0, 3.45, "a")]}).class_wise["a"].tp == 0  # offset off by 0.45
    long_ref = {"f": [E(0.0, 5.0, "a")]}  # offset collar 1.0 s
    assert event_based_metrics(long_ref, {"f": [E(0.1, 5.9, "a")]}).class_wise["a"].tp == 1
    assert event_based_metrics(long_ref, {"f": [E(0.1, 6.1, "a")]}).class_wise["a"].tp == 0
    wrong_label = {"f": [E(1.0, 3.0, "b")]}
    assert event_based_metrics(ref, wrong_label).class_wise["a"].tp == 0


def test_onset_only_evaluation_ignores_offsets():
    cfg = SedMetricConfig(evaluate_offset=False)
    res = event_based_metrics({"f": [E(1.0, 3.0, "a")]}, {"f": [E(1.1, 9.0, "a")]}, cfg=cfg)
    assert res.class_wise["a"].tp == 1


def test_optimal_matching_beats_greedy():
    # e1 fits both references, e2 only r1. Greedy in reference order gives r1 <- e1 and
    # leaves r2 unmatched (1 TP); the optimal matching pairs r1-e2 and r2-e1 (2 TP).
    ref = {"f": [E(0.0, 1.0, "a"), E(0.3, 1.3, "a")]}
    est = {"f": [E(0.15, 1.15, "a"), E(0.0, 1.0, "a")]}
    row = event_based_metrics(ref, est).class_wise["a"]
    assert (row.tp, row.fp, row.fn) == (2, 0, 0)


def test_duplicate_detections_count_once():
    ref = {"f": [E(2.0, 4.0, "a")]}
    est = {"f": [E(2.0, 4.0, "a"), E(2.05, 4.05, "a")]}
    row = event_based_metrics(ref, est).class_wise["a"]
    assert (row.tp, row.fp, row.fn) == (1, 1, 0)
    assert row.precision == 0.5 and row.recall == 1.0 and row.f_measure == pytest.approx(2 / 3)


def test_macro_and_micro_by_hand():
    ref = {
        "x.wav": [E(0.0, 1.0, "a"), E(2.0, 3.0, "a"), E(5.0, 6.0, "b")],
        "y.wav": [E(1.0, 2.0, "b")],
    }
    est = {
        "x.wav": [E(0.05, 1.05, "a"), E(7.0, 8.0, "a"), E(5.0, 6.1, "b")],
        "y.wav": [E(4.0, 5.0, "b")],
    }
    res = event_based_metrics(ref, est, ["a", "b"])
    # a: tp 1, n_ref 2, n_sys 2; b: tp 1, n_ref 2, n_sys 2
    assert res.class_wise["a"].f_measure == pytest.approx(0.5)
    assert res.class_wise["b"].f_measure == pytest.approx(0.5)
    assert res.macro.f_measure == pytest.approx(0.5)
    assert (res.micro.tp, res.micro.n_ref, res.micro.n_sys) == (2, 4, 4)
    assert res.micro.f_measure == pytest.approx(0.5)
    # error rate of a: (fn + fp) / n_ref = 2 / 2
    assert res.class_wise["a"].error_rate == pytest.approx(1.0)


def test_empty_reference_file_turns_detections_into_false_positives():
    ref = {"x.wav": [E(1.0, 2.0, "a")], "empty.wav": []}
    est = {"x.wav": [E(1.0, 2.0, "a")], "empty.wav": [E(3.0, 4.0, "a")]}
    row = event_based_metrics(ref, est).class_wise["a"]
    assert (row.tp, row.fp, row.fn) == (1, 1, 0)
    assert row.f_measure == pytest.approx(_f1(1, 1, 2))


def test_zero_score_versus_nan_drop():
    ref = {"f": [E(0.0, 1.0, "a"), E(2.0, 3.0, "b")]}
    est = {"f": [E(0.0, 1.0, "a")]}  # b never predicted
    zero = event_based_metrics(ref, est, ["a", "b"], SedMetricConfig(event_empty_output="zero_score"))
    nan = event_based_metrics(ref, est, ["a", "b"], SedMetricConfig(event_empty_output="nan"))
    assert zero.class_wise["b"].precision == 0.0 and zero.class_wise["b"].f_measure == 0.0
    assert zero.macro.f_measure == pytest.approx(0.5) and zero.macro.n_classes == 2
    assert math.isnan(nan.class_wise["b"].precision) and math.isnan(nan.class_wise["b"].f_measure)
    assert nan.macro.f_measure == pytest.approx(1.0) and nan.macro.n_classes == 1
    assert zero.rescore("nan").macro.f_measure == pytest.approx(1.0)


def test_class_absent_from_reference_is_left_out_of_the_macro_average():
    ref = {"f": [E(0.0, 1.0, "a")]}
    est = {"f": [E(0.0, 1.0, "a"), E(5.0, 6.0, "c")]}
    res = event_based_metrics(ref, est, ["a", "c"])
    assert math.isnan(res.class_wise["c"].recall) and math.isnan(res.class_wise["c"].f_measure)
    assert math.isnan(res.class_wise["c"].error_rate)
    assert res.macro.f_measure == pytest.approx(1.0)
    assert res.micro.f_measure == pytest.approx(_f1(1, 1, 2))  # the FP still counts overall


def test_substitutions_use_a_maximum_matching():
    # Leftover pairs with matching collars but other labels are substitutions. Here both b
    # detections fit r1, only e1 fits r2: a maximum matching finds 2 substitutions (sed_eval's
    # greedy scan in list order would pair r1-e1 and find 1).
    ref = {"f": [E(0.0, 1.0, "a"), E(0.3, 1.3, "a")]}
    est = {"f": [E(0.15, 1.15, "b"), E(0.0, 1.0, "b")]}
    micro = event_based_metrics(ref, est, ["a", "b"]).micro
    assert (micro.substitutions, micro.deletions, micro.insertions) == (2, 0, 0)
    assert micro.error_rate == pytest.approx(1.0)


def test_extra_prediction_files_error_or_count_as_false_positives():
    ref = {"x.wav": [E(0.0, 1.0, "a")]}
    est = {"x.wav": [E(0.0, 1.0, "a")], "other.wav": [E(0.0, 1.0, "a")]}
    with pytest.raises(DataError, match="other.wav"):
        event_based_metrics(ref, est)
    res = event_based_metrics(ref, est, cfg=SedMetricConfig(extra_prediction_files="false_positive"))
    assert (res.class_wise["a"].tp, res.class_wise["a"].fp) == (1, 1)
    assert res.info["files"] == 2


def test_bad_events_and_labels_are_rejected():
    with pytest.raises(DataError, match="invalid event"):
        event_based_metrics({"f": [E(2.0, 1.0, "a")]}, {})
    with pytest.raises(DataError, match="'z'"):
        event_based_metrics({"f": [E(0.0, 1.0, "a")]}, {"f": [E(0.0, 1.0, "z")]}, classes=["a"])
    with pytest.raises(ValueError, match="duplicate"):
        resolve_classes(["a", "a"], {})


def test_classes_default_to_the_sorted_labels_of_both_sides():
    assert resolve_classes(None, {"f": [E(0, 1, "b")]}, {"f": [E(0, 1, "a")]}) == ("a", "b")


# --------------------------------------------------------------------------- segment-based
def test_segments_by_hand():
    ref = {"f": [E(0.5, 2.2, "a")]}  # segments 0, 1, 2
    est = {"f": [E(1.9, 3.1, "a")]}  # segments 1, 2, 3
    res = segment_based_metrics(ref, est)
    row = res.class_wise["a"]
    assert (row.tp, row.fp, row.fn) == (2, 1, 1)
    assert row.f_measure == pytest.approx(2 / 3)
    assert res.info["evaluated_seconds"] == pytest.approx(3.1)  # the largest offset of the file
    cropped = segment_based_metrics(ref, est, durations={"f": 3.0})  # segment 3 is past the clip
    assert (cropped.class_wise["a"].tp, cropped.class_wise["a"].fp, cropped.class_wise["a"].fn) == (2, 0, 1)


def test_segment_boundaries_are_floor_and_ceil():
    ref = {"f": [E(1.0, 2.0, "a")]}  # exactly segment 1
    res = segment_based_metrics(ref, {"f": [E(1.99, 2.01, "a")]}, durations={"f": 4.0})
    assert (res.class_wise["a"].tp, res.class_wise["a"].fp) == (1, 1)  # touches segments 1 and 2


def test_segment_overall_error_counts():
    # segment 0: ref {a}, sys {b} -> one substitution; segment 1: ref {a, b}, sys {} -> 2 deletions;
    # segment 2: ref {}, sys {a} -> 1 insertion
    ref = {"f": [E(0.0, 2.0, "a"), E(1.0, 2.0, "b")]}
    est = {"f": [E(0.0, 1.0, "b"), E(2.0, 3.0, "a")]}
    micro = segment_based_metrics(ref, est, ["a", "b"]).micro
    assert (micro.substitutions, micro.deletions, micro.insertions) == (1, 2, 1)
    assert micro.error_rate == pytest.approx(4 / 3)


def test_segment_nan_drop_and_zero_scored_variant():
    ref = {"f": [E(0.0, 2.0, "a"), E(0.0, 1.0, "b")]}
    est = {"f": [E(0.0, 2.0, "a")]}
    res = segment_based_metrics(ref, est, ["a", "b"])
    assert res.empty_output == "nan"
    assert math.isnan(res.class_wise["b"].f_measure)
    assert res.macro.f_measure == pytest.approx(1.0)  # b silently dropped, as sed_eval does
    zero = res.rescore("zero_score")
    assert zero.class_wise["b"].f_measure == 0.0 and zero.macro.f_measure == pytest.approx(0.5)
    assert zero.settings["empty_output"] == "zero_score"


def test_files_without_events_have_no_segments_unless_durations_are_given():
    ref = {"x": [E(0.0, 1.0, "a")], "empty": []}
    res = segment_based_metrics(ref, {"x": [E(0.0, 1.0, "a")]})
    assert res.info["evaluated_seconds"] == pytest.approx(1.0)
    res = segment_based_metrics(ref, {"x": [E(0.0, 1.0, "a")]}, durations={"x": 10.0, "empty": 10.0})
    assert res.info["evaluated_seconds"] == pytest.approx(20.0)
    assert res.class_wise["a"].f_measure == 1.0
    with pytest.raises(DataError, match="empty"):
        segment_based_metrics(ref, {}, durations={"x": 10.0})


# --------------------------------------------------------------------------- clip-level
def test_clip_f1_by_hand():
    ref = {"1": {"a"}, "2": {"a", "b"}, "3": set(), "4": {"b"}}
    est = {"1": {"a"}, "2": {"b"}, "3": {"a"}}
    res = clip_metrics(ref, est, ["a", "b", "c"])
    # a: tp 1, fp 1, fn 1 -> 2/4; b: tp 1, fp 0, fn 1 -> 2/3; c: undefined -> 0
    assert res.class_wise["a"].f_measure == pytest.approx(0.5)
    assert res.class_wise["b"].f_measure == pytest.approx(2 / 3)
    assert res.class_wise["c"].f_measure == 0.0
    assert res.macro.f_measure == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert res.micro.f_measure == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))


def test_clip_f1_from_probabilities_uses_a_strict_threshold():
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    probs = np.array([[0.9, 0.5], [0.5, 0.7], [0.2, 0.51]])
    res = clip_metrics_from_probabilities(labels, probs, ["a", "b"])
    # a: predicted only on clip 0 (0.5 is not > 0.5): tp 1, fn 1; b: tp 2, fp 0
    assert (res.class_wise["a"].tp, res.class_wise["a"].fn) == (1, 1)
    assert (res.class_wise["b"].tp, res.class_wise["b"].fp) == (2, 0)
    with pytest.raises(ValueError):
        clip_metrics_from_probabilities(labels, probs[:, :1], ["a", "b"])


def test_events_to_tags():
    tags = events_to_tags({"x": [E(0, 1, "a"), E(2, 3, "a"), E(1, 2, "b")], "y": []})
    assert tags == {"x": frozenset({"a", "b"}), "y": frozenset()}


# --------------------------------------------------------------------------- results
def test_result_serialises_nan_as_null():
    res = FScoreResult.from_counts("event", ["a", "b"], [1, 0], [2, 0], [1, 0], "nan")
    payload = res.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["class_wise"]["b"]["f_measure"] is None
    assert payload["class_wise"]["a"]["f_measure"] == pytest.approx(_f1(1, 2, 1))
    assert payload["macro"]["n_classes"] == 1


def test_rescore_keeps_counts_and_overall_errors():
    res = segment_based_metrics({"f": [E(0, 2, "a"), E(0, 1, "b")]}, {"f": [E(0, 1, "b"), E(2, 3, "a")]})
    again = res.rescore("zero_score")
    assert again.micro.substitutions == res.micro.substitutions
    assert [again.class_wise[c].tp for c in again.classes] == [res.class_wise[c].tp for c in res.classes]
