"""Evaluation: decoding frame scores into events, SED metrics and reports.

* :mod:`~audioadapt.evaluation.decoding`: median filter + threshold -> events;
* :mod:`~audioadapt.evaluation.sed_metrics`: event/segment/clip F1 in numpy,
  equal to sed_eval (and sed_scores_eval) on the DCASE settings;
* :mod:`~audioadapt.evaluation.report`: JSON + Markdown reports;
* :mod:`~audioadapt.evaluation.api`: ``evaluate_sed_files`` and friends.
"""

from __future__ import annotations

from audioadapt.evaluation.api import SedEvaluation, evaluate_sed, evaluate_sed_files
from audioadapt.evaluation.decoding import (
    DecodeConfig,
    decode_batch,
    decode_scores,
    frame_boundaries,
    median_filter_scores,
    postprocess_scores,
)
from audioadapt.evaluation.report import Report, Table, fscore_table, package_versions, write_report
from audioadapt.evaluation.sed_metrics import (
    FScoreResult,
    SedMetricConfig,
    clip_metrics,
    clip_metrics_from_probabilities,
    event_based_metrics,
    events_to_tags,
    segment_based_metrics,
)

__all__ = [
    "DecodeConfig",
    "FScoreResult",
    "Report",
    "SedEvaluation",
    "SedMetricConfig",
    "Table",
    "clip_metrics",
    "clip_metrics_from_probabilities",
    "decode_batch",
    "decode_scores",
    "evaluate_sed",
    "evaluate_sed_files",
    "event_based_metrics",
    "events_to_tags",
    "fscore_table",
    "frame_boundaries",
    "median_filter_scores",
    "package_versions",
    "postprocess_scores",
    "segment_based_metrics",
    "write_report",
]
