"""Evaluation: decoding frame scores into events, SED metrics and reports.

* :mod:`~audioadapt.evaluation.decoding`: median filter + threshold -> events;
* :mod:`~audioadapt.evaluation.sed_metrics`: event/segment/clip F1 in numpy,
  equal to sed_eval (and sed_scores_eval) on the DCASE settings;
* :mod:`~audioadapt.evaluation.psds`: PSDS (DCASE scenarios 1 and 2) and
  intersection-based F1 from frame scores, equal to sed_scores_eval;
* :mod:`~audioadapt.evaluation.ser_metrics`: UA, WA, per-class recall and
  confusion matrices for speech emotion recognition;
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
from audioadapt.evaluation.psds import (
    PSDS1,
    PSDS2,
    IntersectionF1Config,
    PsdsConfig,
    PsdsResult,
    intersection_f1,
    plot_psd_roc,
    psds,
)
from audioadapt.evaluation.report import Report, Table, fscore_table, package_versions, write_report
from audioadapt.evaluation.ser_metrics import (
    SerAggregate,
    SerMetrics,
    aggregate_runs,
    plot_confusion_matrix,
    ser_metrics,
)
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
    "IntersectionF1Config",
    "PSDS1",
    "PSDS2",
    "PsdsConfig",
    "PsdsResult",
    "Report",
    "SedEvaluation",
    "SedMetricConfig",
    "SerAggregate",
    "SerMetrics",
    "Table",
    "aggregate_runs",
    "clip_metrics",
    "clip_metrics_from_probabilities",
    "decode_batch",
    "decode_scores",
    "evaluate_sed",
    "evaluate_sed_files",
    "event_based_metrics",
    "events_to_tags",
    "fscore_table",
    "intersection_f1",
    "plot_confusion_matrix",
    "plot_psd_roc",
    "psds",
    "frame_boundaries",
    "median_filter_scores",
    "package_versions",
    "postprocess_scores",
    "segment_based_metrics",
    "ser_metrics",
    "write_report",
]
