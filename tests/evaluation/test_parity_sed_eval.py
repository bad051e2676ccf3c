"""Our event- and segment-based metrics against sed_eval on seeded random cases.

Every case runs sed_eval file by file over all reference files (as DCASE and
DESED do) and compares per-class and averaged F1, precision, recall and the
counts with our numpy implementation to 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from audioadapt.evaluation.sed_metrics import SedMetricConfig, event_based_metrics, segment_based_metrics

sed_eval = pytest.importorskip("sed_eval")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CLASSES = ["Alarm", "Dog", "Speech", "Never_predicted", "Never_in_reference"]
TOL = 1e-6
CASES_PER_SEED = 12


def _dicts(name, events):
    return [{"filename": name, "event_label": e.label, "onset": e.onset, "offset": e.offset} for e in events]


def _same(a: float, b: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOL


def _check_prf(where: str, theirs: dict, ours) -> None:
    for key in ("f_measure", "precision", "recall"):
        assert _same(theirs[key], getattr(ours, key)), f"{where} {key}: sed_eval {theirs[key]} ours {getattr(ours, key)}"


def _check_common(metric, ours, classes) -> None:
    res = metric.results()
    for c in classes:
        _check_prf(f"{ours.kind} {c}", res["class_wise"][c]["f_measure"], ours.class_wise[c])
        counts = metric.class_wise[c]
        row = ours.class_wise[c]
        assert (counts["Ntp"], counts["Nref"], counts["Nsys"]) == (row.tp, row.n_ref, row.n_sys), c
        assert (counts["Nfp"], counts["Nfn"]) == (row.fp, row.fn), c
        if row.n_ref > 0:  # sed_eval divides by N_ref + eps; we return NaN for N_ref == 0
            assert _same(res["class_wise"][c]["error_rate"]["error_rate"], row.error_rate), c
    _check_prf(f"{ours.kind} macro", res["class_wise_average"]["f_measure"], ours.macro)
    _check_prf(f"{ours.kind} micro", res["overall"]["f_measure"], ours.micro)
    assert (metric.overall["Ntp"], metric.overall["Nref"], metric.overall["Nsys"]) == (
        ours.micro.tp, ours.micro.n_ref, ours.micro.n_sys,
    )


def _unambiguous(reference, estimated, cfg: SedMetricConfig) -> bool:
    """True when every event has at most one collar match (label ignored) in its file.

    Then every maximum matching is the same and sed_eval's greedy substitution
    count equals ours, so the overall event error rate must agree too.
    """
    for name, ref in reference.items():
        est = estimated.get(name, [])
        hits = np.zeros((len(ref), len(est)), dtype=bool)
        for j, r in enumerate(ref):
            collar_off = max(cfg.t_collar, cfg.percentage_of_length * (r.offset - r.onset))
            for i, e in enumerate(est):
                hits[j, i] = abs(r.onset - e.onset) <= cfg.t_collar and abs(r.offset - e.offset) <= collar_off
        if (hits.sum(0) > 1).any() or (hits.sum(1) > 1).any():
            return False
    return True


def _run_event(reference, estimated, cfg: SedMetricConfig, handling):
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=CLASSES,
        t_collar=cfg.t_collar,
        percentage_of_length=cfg.percentage_of_length,
        evaluate_onset=cfg.evaluate_onset,
        evaluate_offset=cfg.evaluate_offset,
        empty_system_output_handling=handling,
    )
    for name in reference:
        metric.evaluate(_dicts(name, reference[name]), _dicts(name, estimated.get(name, [])))
    return metric


def _run_segment(reference, estimated, durations, zero_score: bool):
    metric = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=CLASSES, time_resolution=1.0)
    if zero_score:  # the constructor has no such option; the scoring methods read the attribute
        metric.empty_system_output_handling = "zero_score"
    for name in reference:
        length = None if durations is None else durations[name]
        metric.evaluate(_dicts(name, reference[name]), _dicts(name, estimated.get(name, [])), length)
    return metric


def _case(rng, sed_case):
    grid_step = 0.05 if rng.random() < 0.3 else None  # times on a grid: collar and segment ties
    return sed_case(
        rng, CLASSES, ref_only="Never_predicted", est_only="Never_in_reference",
        grid_step=grid_step, overlap=rng.random() < 0.7,
    )


@pytest.mark.parametrize("seed", range(40))
def test_event_based_matches_sed_eval(seed, sed_case):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(CASES_PER_SEED):
        reference, estimated = _case(rng, sed_case)
        zero = rng.random() < 0.75
        cfg = SedMetricConfig(event_empty_output="zero_score" if zero else "nan")
        ours = event_based_metrics(reference, estimated, CLASSES, cfg)
        metric = _run_event(reference, estimated, cfg, "zero_score" if zero else None)
        _check_common(metric, ours, CLASSES)
        if _unambiguous(reference, estimated, cfg) and ours.micro.n_ref > 0:
            assert metric.overall["Nsubs"] == ours.micro.substitutions
            assert (metric.overall["Nfp"], metric.overall["Nfn"]) == (ours.micro.insertions, ours.micro.deletions)
            er = metric.results()["overall"]["error_rate"]["error_rate"]
            assert _same(er, ours.micro.error_rate)


@pytest.mark.parametrize("seed", range(40))
def test_segment_based_matches_sed_eval(seed, sed_case):
    rng = np.random.default_rng(2000 + seed)
    for _ in range(CASES_PER_SEED):
        reference, estimated = _case(rng, sed_case)
        durations = None
        if rng.random() < 0.4:  # explicit clip lengths, some shorter than the events
            durations = {name: float(rng.choice([10.0, 9.5, 7.25])) for name in reference}
        ours = segment_based_metrics(reference, estimated, CLASSES, SedMetricConfig(), durations)
        metric = _run_segment(reference, estimated, durations, zero_score=False)
        _check_common(metric, ours, CLASSES)
        assert (metric.overall["S"], metric.overall["D"], metric.overall["I"]) == (
            ours.micro.substitutions, ours.micro.deletions, ours.micro.insertions,
        )
        if ours.micro.n_ref > 0:
            assert _same(metric.results()["overall"]["error_rate"]["error_rate"], ours.micro.error_rate)
        assert metric.evaluated_length_seconds == pytest.approx(ours.info["evaluated_seconds"])
        zero = _run_segment(reference, estimated, durations, zero_score=True)
        _check_common(zero, ours.rescore("zero_score"), CLASSES)


@pytest.mark.parametrize("setting", ["onset_only", "offset_only", "wide_collar"])
def test_other_event_settings_match_sed_eval(setting, sed_case):
    cfg = {
        "onset_only": SedMetricConfig(evaluate_offset=False),
        "offset_only": SedMetricConfig(evaluate_onset=False),
        "wide_collar": SedMetricConfig(t_collar=0.5, percentage_of_length=0.5),
    }[setting]
    rng = np.random.default_rng(["onset_only", "offset_only", "wide_collar"].index(setting) + 3000)
    for _ in range(25):
        reference, estimated = _case(rng, sed_case)
        ours = event_based_metrics(reference, estimated, CLASSES, cfg)
        _check_common(_run_event(reference, estimated, cfg, "zero_score"), ours, CLASSES)


def test_a_case_with_every_awkward_feature_matches_sed_eval():
    """Fixed case: empty reference file, empty estimate, overlapping same-class events,
    events at 0 s and at the clip end, a tiny event, collar ties."""
    from audioadapt.data.manifest import Event as E

    reference = {
        "empty.wav": [],
        "busy.wav": [E(0.0, 1.0, "Dog"), E(0.5, 1.5, "Dog"), E(9.0, 10.0, "Speech"), E(4.0, 4.01, "Alarm")],
        "silent_system.wav": [E(2.0, 3.0, "Alarm")],
    }
    estimated = {
        "empty.wav": [E(1.0, 2.0, "Speech")],
        "busy.wav": [E(0.2, 1.2, "Dog"), E(0.1, 1.0, "Dog"), E(8.8, 10.0, "Speech"), E(4.0, 4.3, "Alarm"),
                     E(5.0, 6.0, "Never_in_reference")],
    }
    cfg = SedMetricConfig()
    _check_common(_run_event(reference, estimated, cfg, "zero_score"), event_based_metrics(
        reference, estimated, CLASSES, cfg), CLASSES)
    _check_common(_run_segment(reference, estimated, None, False), segment_based_metrics(
        reference, estimated, CLASSES, cfg), CLASSES)
