"""SED evaluation from frame-score files alone: PSDS threshold-free, F1 at the decode thresholds.

``audioadapt sed evaluate --scores DIR --ref REF.tsv [--durations D.tsv]``
reads a folder of score files (:mod:`audioadapt.evaluation.score_files`,
as ``sed predict --scores`` and ``sed evaluate RUN --scores`` write them, or
any system writing sed_scores_eval's format) and computes

* PSDS1 and PSDS2 (DCASE scenarios) on the exact PSD-ROC over every score
  level, without any threshold;
* event-based (collar), segment-based and clip-level F1 of the events
  decoded at the decode thresholds (``score > threshold``).

Score files hold post-processed scores (``sed`` writes them median-filtered),
so their default decoding (:data:`SCORE_FILE_DECODE`) filters nothing; a
``decode.median_filter_seconds`` override filters them first, for PSDS and
F1 alike. Reference, durations and score files are matched by audio id (the
file name without extension), as sed_scores_eval matches them. Without a
durations file each clip lasts until the end of its score file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from audioadapt.errors import DataError
from audioadapt.evaluation.api import SedEvaluation, evaluate_sed
from audioadapt.evaluation.decode_settings import apply_decode_overrides, decode_record, sets_thresholds
from audioadapt.evaluation.decoding import DecodeConfig, decode_timed_scores, frame_hop, postprocess_timed_scores
from audioadapt.evaluation.psds import PsdsConfig, dcase_scenarios, psds_scenarios
from audioadapt.evaluation.score_files import SCORE_SUFFIX, ScoreSet, audio_ids, read_score_folder
from audioadapt.evaluation.sed_metrics import SedMetricConfig

#: Decoding of score files: their scores are already post-processed, so no second median filter.
SCORE_FILE_DECODE = DecodeConfig(median_filter_seconds=0.0)
#: What the inputs of a report say when the clip lengths come from the score files.
DURATIONS_FROM_SCORES = "the end of each score file"


def evaluate_score_files(
    scores_dir: str | Path,
    ref_tsv: str | Path,
    durations_tsv: str | Path | None = None,
    overrides: Iterable[str] = (),
    metrics: SedMetricConfig = SedMetricConfig(),
    psds: Mapping[str, PsdsConfig] | None = None,
    decode: DecodeConfig = SCORE_FILE_DECODE,
) -> SedEvaluation:
    """Evaluate a folder of score files against a reference TSV (DCASE strong format).

    Parameters
    ----------
    scores_dir: the folder of score files (one per clip, sub-folders read too).
    ref_tsv: reference events (``filename onset offset event_label``); every
        label must be a score column, and every reference file needs a score
        file and the reverse.
    durations_tsv: clip lengths (``filename duration``); default: the end of
        each score file.
    overrides: ``decode.key=value`` changes of ``decode`` (thresholds, median
        filter, ...), checked against the score files' classes.
    metrics: metric settings.
    psds: named PSDS scenarios (default: DCASE PSDS1 and PSDS2).
    decode: the decoding before overrides.

    The report records the scenario parameters, the decode settings and the
    overrides. A scenario that cannot be computed (a class without reference
    events) is reported as not computed, with a warning.
    """
    from audioadapt.data.dcase import read_durations_tsv, read_strong_tsv

    overrides = list(overrides)
    scenarios = dcase_scenarios() if psds is None else dict(psds)
    found = read_score_folder(scores_dir)
    classes = found.classes
    decode = apply_decode_overrides(decode, overrides, classes)
    reference = read_strong_tsv(ref_tsv, classes=classes, classes_from=f"the score files in {scores_dir}")
    ids = _matched_ids(reference, found, ref_tsv, scores_dir)
    if durations_tsv is None:
        ends = found.end_times()
        durations = {name: ends[key] for name, key in ids.items()}
    else:
        listed = read_durations_tsv(durations_tsv)
        lacking = [name for name in reference if name not in listed]
        if lacking:
            raise DataError(f"no duration for {len(lacking)} reference file(s), e.g. {lacking[0]!r}", durations_tsv)
        durations = {name: listed[name] for name in reference}
    scores = {key: _postprocessed(found, key, decode) for key in ids.values()}
    estimated = {name: decode_timed_scores(scores[key], found.timestamps[key], classes,
                                           _without_filter(decode)) for name, key in ids.items()}
    inputs = {"scores": str(scores_dir), "reference": str(ref_tsv), "score_files": len(found.scores),
              "durations": DURATIONS_FROM_SCORES if durations_tsv is None else str(durations_tsv),
              "decode": decode_record(decode, _common_hop(found)), "decode_overrides": overrides,
              "thresholds": {"source": "override" if sets_thresholds(overrides) else "score-file decoding defaults"}}
    evaluation = evaluate_sed(reference, estimated, classes, metrics, durations, inputs)
    ground_truth = {ids[name]: list(events) for name, events in reference.items()}
    by_id = {ids[name]: seconds for name, seconds in durations.items()}
    evaluation.add_psds(scenarios, psds_scenarios(scenarios, scores, found.timestamps, classes, ground_truth, by_id))
    return evaluation


def _matched_ids(reference: Mapping[str, Any], found: ScoreSet, ref_tsv: str | Path,
                 scores_dir: str | Path) -> dict[str, str]:
    """``{reference filename: audio id}``; a reference file without a score file, or the reverse, is an error."""
    ids = audio_ids(reference, ref_tsv)
    missing = [name for name, key in ids.items() if key not in found.scores]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(f"{len(missing)} of the {len(ids)} reference file(s) have no score file in {scores_dir}: "
                        f"{shown} (expected {ids[missing[0]]}{SCORE_SUFFIX})", ref_tsv)
    extra = sorted(set(found.scores) - set(ids.values()))
    if extra:
        raise DataError(f"{len(extra)} score file(s) are for clips absent from the reference {ref_tsv}, e.g. "
                        f"{extra[0]}{SCORE_SUFFIX}; score a folder holding exactly the reference's clips", scores_dir)
    return ids


def _postprocessed(found: ScoreSet, key: str, decode: DecodeConfig) -> Any:
    try:
        return postprocess_timed_scores(found.scores[key], found.timestamps[key], decode)
    except ValueError as exc:
        folder = found.folder if found.folder is not None else Path(".")
        raise DataError(f"cannot median-filter these scores: {exc}", folder / f"{key}{SCORE_SUFFIX}") from None


def _without_filter(decode: DecodeConfig) -> DecodeConfig:
    """``decode`` for scores it has already filtered."""
    return dataclasses.replace(decode, median_filter_seconds=0.0)


def _common_hop(found: ScoreSet) -> float | None:
    """The frame length shared by every score file, or ``None`` when they differ (or are uneven)."""
    hops = set()
    for ts in found.timestamps.values():
        try:
            hops.add(round(frame_hop(ts), 9))
        except ValueError:
            return None
    return hops.pop() if len(hops) == 1 else None


__all__ = ["DURATIONS_FROM_SCORES", "SCORE_FILE_DECODE", "evaluate_score_files"]
