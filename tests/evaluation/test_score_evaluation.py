"""Evaluation from score files alone: a hand-checked case, errors, and parity with sed_scores_eval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audioadapt.data.dcase import write_durations_tsv, write_strong_tsv
from audioadapt.data.manifest import Event
from audioadapt.errors import DataError
from audioadapt.evaluation.decoding import DecodeConfig, frame_boundaries, postprocess_scores
from audioadapt.evaluation.psds import PSDS1, PSDS2, PsdsConfig
from audioadapt.evaluation.report import write_report
from audioadapt.evaluation.score_evaluation import DURATIONS_FROM_SCORES, evaluate_score_files
from audioadapt.evaluation.score_files import write_score_files
from audioadapt.evaluation.sed_metrics import SedMetricConfig
from audioadapt.features.frames import FrameGrid

TENTH = FrameGrid(sample_rate=100, hop_length=10, n_fft=10, center=True)  # 0.1 s frames


def _frames(n: int, active: dict[int, list[range]], value: float = 0.9) -> np.ndarray:
    out = np.full((n, 2), 0.1)
    for k, spans in active.items():
        for span in spans:
            out[span, k] = value
    return out


@pytest.fixture
def hand_case(tmp_path):
    """Two classes, three 2 s clips of 0.1 s frames.

    a.wav: Dog 0.5-1.0 s detected exactly (scores 0.9); Cat 1.2-1.8 s missed.
    b.wav: nothing in the reference; a Dog detection 0.0-0.3 s (false positive, scores 0.55).
    c.wav: Cat 0.0-2.0 s detected exactly (scores 0.6: gone at threshold 0.7).
    """
    classes = ["Cat", "Dog"]
    scores = {"a.wav": _frames(20, {1: [range(5, 10)]}), "b.wav": _frames(20, {1: [range(0, 3)]}, value=0.55),
              "c.wav": _frames(20, {0: [range(0, 20)]}, value=0.6)}
    bounds = {name: frame_boundaries(20, TENTH, 2.0) for name in scores}
    write_score_files(tmp_path / "scores", scores, bounds, classes)
    ref = write_strong_tsv(tmp_path / "ref.tsv", {
        "a.wav": [Event(0.5, 1.0, "Dog"), Event(1.2, 1.8, "Cat")], "b.wav": [], "c.wav": [Event(0.0, 2.0, "Cat")]})
    return tmp_path, ref


def test_f1_at_the_threshold_and_psds_from_score_files(hand_case):
    tmp, ref = hand_case
    evaluation = evaluate_score_files(tmp / "scores", ref)
    event = evaluation.event.class_wise
    # Cat: 1 of 2 found, no false positive -> F1 2/3; Dog: 1 TP, 1 FP -> F1 2/3
    assert (event["Cat"].tp, event["Cat"].fn, event["Cat"].fp) == (1, 1, 0)
    assert (event["Dog"].tp, event["Dog"].fp) == (1, 1)
    assert evaluation.entries()["event_macro_f1"] == pytest.approx(2 / 3)
    assert evaluation.inputs["durations"] == DURATIONS_FROM_SCORES
    assert evaluation.segment.info["evaluated_seconds"] == pytest.approx(6.0)
    # PSDS is threshold-free: the same at any decode threshold, and the parameters are reported
    assert set(evaluation.psds) == {"psds1", "psds2"}
    # PSDS1: at levels above 0.55 Dog is found without false positive (TP ratio 1) and Cat half (0.5); any lower
    # level adds a false positive in 6 s of audio (600 per hour > max_efpr 100): mean 0.75 - std 0.25 = 0.5
    assert evaluation.extra["psds1"] == pytest.approx(0.5)
    stricter = evaluate_score_files(tmp / "scores", ref, overrides=["decode.threshold=0.7"])
    assert stricter.extra == evaluation.extra
    assert stricter.event.class_wise["Cat"].tp == 0  # c.wav's 0.6 scores are below 0.7
    assert stricter.inputs["decode_overrides"] == ["decode.threshold=0.7"]
    assert stricter.inputs["thresholds"] == {"source": "override"}
    assert stricter.inputs["decode"]["threshold"] == 0.7 and stricter.inputs["decode"]["median_filter_frames"] == 1


def test_the_report_carries_the_psds_parameters_and_the_decoding(hand_case):
    tmp, ref = hand_case
    evaluation = evaluate_score_files(tmp / "scores", ref, overrides=["decode.class_thresholds.Cat=0.7"])
    json_path, md_path = write_report(evaluation.report(), tmp / "out" / "r.json")
    data = json.loads(json_path.read_text())
    assert data["results"]["psds"]["psds2"]["parameters"] == {"dtc": 0.1, "gtc": 0.1, "cttc": 0.3, "alpha_ct": 0.5,
                                                              "alpha_st": 1.0, "max_efpr": 100.0}
    assert data["results"]["psds"]["psds1"]["value"] == data["entries"]["psds1"]
    assert set(data["results"]["psds"]["psds1"]["per_class"]) == {"Cat", "Dog"}
    assert data["inputs"]["decode"]["class_thresholds"] == {"Cat": 0.7}
    markdown = md_path.read_text()
    assert "### PSDS" in markdown
    assert "| psds2 | " in markdown and "| 0.1 | 0.1 | 0.3 | 0.5 | 1 | 100 |" in markdown
    assert "| psds1 | " in markdown and "| 0.7 | 0.7 | - | 0 | 1 | 100 |" in markdown
    assert "### Decoding" in markdown and "| class thresholds | Cat 0.7 |" in markdown
    assert "| overrides | `decode.class_thresholds.Cat=0.7` |" in markdown


def test_a_median_filter_override_filters_the_score_files(hand_case, tmp_path):
    tmp, ref = hand_case
    # 0.3 s = 3 frames of 0.1 s: a one-frame spike goes, the 5-frame detection stays
    evaluation = evaluate_score_files(tmp / "scores", ref, overrides=["decode.median_filter_seconds=0.3"])
    assert evaluation.inputs["decode"]["median_filter_frames"] == 3
    spiky = _frames(20, {1: [range(5, 10), range(14, 15)]})
    write_score_files(tmp_path / "spiky", {"a.wav": spiky}, {"a.wav": frame_boundaries(20, TENTH, 2.0)},
                      ["Cat", "Dog"])
    one = write_strong_tsv(tmp_path / "one.tsv", {"a.wav": [Event(0.5, 1.0, "Dog"), Event(1.2, 1.8, "Cat")]})
    assert evaluate_score_files(tmp_path / "spiky", one).event.class_wise["Dog"].fp == 1
    assert evaluate_score_files(tmp_path / "spiky", one,
                                overrides=["decode.median_filter_seconds=0.3"]).event.class_wise["Dog"].fp == 0


def test_durations_file_and_its_errors(hand_case):
    tmp, ref = hand_case
    durations = write_durations_tsv(tmp / "d.tsv", {"a.wav": 4.0, "b.wav": 4.0, "c.wav": 4.0})
    longer = evaluate_score_files(tmp / "scores", ref, durations)
    assert longer.inputs["durations"] == str(durations)
    assert longer.segment.info["evaluated_seconds"] == pytest.approx(12.0)
    short = write_durations_tsv(tmp / "short.tsv", {"a.wav": 2.0})
    with pytest.raises(DataError) as err:
        evaluate_score_files(tmp / "scores", ref, short)
    assert str(err.value) == f"{short}: no duration for 2 reference file(s), e.g. 'b.wav'"


def test_reference_and_score_files_must_match(hand_case):
    tmp, _ = hand_case
    more = write_strong_tsv(tmp / "more.tsv", {"a.wav": [], "b.wav": [], "c.wav": [], "d.wav": [], "e.wav": []})
    with pytest.raises(DataError) as err:
        evaluate_score_files(tmp / "scores", more)
    assert str(err.value) == (f"{more}: 2 of the 5 reference file(s) have no score file in {tmp / 'scores'}: "
                              "'d.wav', 'e.wav' (expected d.tsv)")
    fewer = write_strong_tsv(tmp / "fewer.tsv", {"a.wav": [Event(0.5, 1.0, "Dog")], "b.wav": []})
    with pytest.raises(DataError) as err:
        evaluate_score_files(tmp / "scores", fewer)
    assert str(err.value) == (f"{tmp / 'scores'}: 1 score file(s) are for clips absent from the reference {fewer}, "
                              "e.g. c.tsv; score a folder holding exactly the reference's clips")
    unknown = tmp / "unknown.tsv"
    unknown.write_text("filename\tonset\toffset\tevent_label\na.wav\t0.5\t1.0\tDog\nb.wav\t0.1\t0.4\tBird\n"
                       "c.wav\t\t\t\n")
    with pytest.raises(DataError, match=f"{unknown}:3: unknown label 'Bird'; the classes \\(from the score files in "):
        evaluate_score_files(tmp / "scores", unknown)


def test_a_class_without_reference_events_leaves_psds_not_computed(hand_case, caplog):
    tmp, _ = hand_case
    dogs = write_strong_tsv(tmp / "dogs.tsv", {"a.wav": [Event(0.5, 1.0, "Dog")], "b.wav": [], "c.wav": []})
    evaluation = evaluate_score_files(tmp / "scores", dogs)
    assert evaluation.extra == {"psds1": None, "psds2": None}
    assert "psds1 not computed" in caplog.text and "Cat" in caplog.text
    assert "| psds1 | n/a |" in evaluation.to_markdown()
    assert evaluation.event.class_wise["Dog"].tp == 1  # the F1 part is still reported


# --------------------------------------------------------------------------- parity with sed_scores_eval
CLASSES = ["Blender", "Cat", "Speech"]


def _scores_for(rng, events, grid, n_frames):
    starts = grid.output_frame_to_seconds(np.arange(n_frames))
    act = np.zeros((n_frames, len(CLASSES)))
    for ev in events:
        act[(starts >= ev.onset) & (starts < ev.offset), CLASSES.index(ev.label)] = 0.6
    noisy = act + rng.normal(0.2, 0.25, size=act.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def _write_case(tmp_path, rng, sed_case, grid, clip: float):
    reference, _ = sed_case(rng, CLASSES, max_files=6, max_events=6, overlap=False)
    reference = {k: [e for e in v if e.offset <= clip] for k, v in reference.items()}
    for c in CLASSES:  # PSDS needs every class in the reference
        if not any(e.label == c for evs in reference.values() for e in evs):
            reference[f"extra_{c}.wav"] = [Event(1.0, 3.5, c)]
    n = grid.num_output_frames_for_seconds(clip)
    scores, bounds = {}, {}
    for name, events in reference.items():
        scores[name] = postprocess_scores(_scores_for(rng, events, grid, n), grid, DecodeConfig(), clip)
        bounds[name] = frame_boundaries(len(scores[name]), grid, clip)
    write_score_files(tmp_path / "scores", scores, bounds, CLASSES)
    ref = write_strong_tsv(tmp_path / "ref.tsv", reference)
    durations = write_durations_tsv(tmp_path / "durations.tsv", {name: clip for name in reference})
    return ref, durations


@pytest.mark.usefixtures("writable_sed_scores_eval")
@pytest.mark.parametrize("seed", range(4))
def test_score_file_evaluation_matches_sed_scores_eval_on_the_same_files(seed, tmp_path, sed_case, sed_grid):
    pytest.importorskip("sed_scores_eval")
    from sed_scores_eval import collar_based, intersection_based, segment_based

    rng = np.random.default_rng(seed)
    threshold = [0.5, 0.35, 0.6, 0.5][seed]
    ref, durations = _write_case(tmp_path, rng, sed_case, sed_grid, 10.0)
    scores_dir = tmp_path / "scores"
    scenarios = {"psds1": PSDS1, "psds2": PSDS2,
                 "other": PsdsConfig(dtc=0.5, gtc=0.5, cttc=0.3, alpha_ct=1.0, alpha_st=0.0, max_efpr=50.0)}
    ours = evaluate_score_files(scores_dir, ref, durations, [f"decode.threshold={threshold}"],
                                SedMetricConfig(time_decimals=6), scenarios)
    for name, cfg in scenarios.items():
        value, *_ = intersection_based.psds(
            scores=str(scores_dir), ground_truth=str(ref), audio_durations=str(durations), dtc_threshold=cfg.dtc,
            gtc_threshold=cfg.gtc, cttc_threshold=cfg.cttc, alpha_ct=cfg.alpha_ct, alpha_st=cfg.alpha_st,
            max_efpr=cfg.max_efpr)
        assert ours.extra[name] == pytest.approx(value, abs=1e-6), name
    f, p, r, stats = collar_based.fscore(scores=str(scores_dir), ground_truth=str(ref), threshold=threshold,
                                         onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2)
    for c in CLASSES:
        row = ours.event.class_wise[c]
        assert (row.tp, row.fp, row.n_ref) == (stats[c]["tps"], stats[c]["fps"], stats[c]["n_ref"]), c
        assert row.f_measure == pytest.approx(f[c], abs=1e-6), c
    assert ours.event.micro.f_measure == pytest.approx(f["micro_average"], abs=1e-6)
    f, p, r, stats = segment_based.fscore(scores=str(scores_dir), ground_truth=str(ref),
                                          audio_durations=str(durations), threshold=threshold, segment_length=1.0)
    for c in CLASSES:
        row = ours.segment_zero_score.class_wise[c]
        assert (row.tp, row.fp, row.n_ref) == (stats[c]["tps"], stats[c]["fps"], stats[c]["n_ref"]), c
        assert row.f_measure == pytest.approx(f[c], abs=1e-6), c
    assert ours.segment_zero_score.macro.f_measure == pytest.approx(f["macro_average"], abs=1e-6)
