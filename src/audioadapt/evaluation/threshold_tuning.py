"""Per-class decision thresholds that maximise each class's F1 on a labelled split.

The decoder's events of one class depend on that class's threshold only (the
median filter, gap merging and minimum duration work per class), and so do
its event-based and segment-based counts. Each class's threshold is therefore
tuned on its own: every candidate threshold is applied to all classes at
once, and each class keeps the candidate with its best F1 (ties: the
candidate nearest to its starting threshold). A class without reference
events on the split has no F1 to maximise and keeps its starting threshold.

The scores handed in are the decoder's threshold-free scores (cropped and
median-filtered, see :func:`~audioadapt.evaluation.decoding.postprocess_scores`),
so a candidate threshold yields exactly the events the decoder yields with it.
F1 follows the DCASE settings of :class:`~audioadapt.evaluation.sed_metrics.SedMetricConfig`:
collar-based with ``zero_score`` (``objective="event"``), or 1 s segments
with a never-detected class scored 0 (``objective="segment"``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError
from audioadapt.evaluation.decoding import DecodeConfig, decode_timed_scores
from audioadapt.evaluation.results import FScoreResult
from audioadapt.evaluation.sed_metrics import SedMetricConfig, event_based_metrics, segment_based_metrics

Objective = Literal["event", "segment"]
OBJECTIVES: tuple[str, ...] = ("event", "segment")


@dataclass(frozen=True)
class ThresholdTuningConfig:
    """How thresholds are tuned.

    Attributes
    ----------
    objective: the F1 each class's threshold maximises: ``"event"``
        (collar-based) or ``"segment"`` (1 s segments).
    step: spacing of the candidate thresholds ``step, 2 step, ..., < 1``.
    """

    objective: Objective = "event"
    step: float = 0.01

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 0 < self.step <= 0.5:
            raise ConfigError(f"the threshold step must be in (0, 0.5], got {self.step}")

    def candidates(self) -> np.ndarray:
        """The candidate thresholds, increasing, in (0, 1)."""
        count = int(math.floor(1.0 / self.step + 1e-9))
        values = np.round(np.arange(1, count + 1) * self.step, 10)
        return values[values < 1.0]


@dataclass(frozen=True)
class ClassTuning:
    """One class's outcome.

    Attributes
    ----------
    threshold: the chosen threshold.
    threshold_before: the starting threshold.
    f1: the objective's F1 at ``threshold``.
    f1_before: the objective's F1 at ``threshold_before``.
    n_ref: reference events (or active segments) of the class on the split.
    tuned: false when the class has no reference on the split and keeps
        its starting threshold.
    """

    threshold: float
    threshold_before: float
    f1: float
    f1_before: float
    n_ref: int
    tuned: bool


@dataclass(frozen=True)
class TuningResult:
    """Per-class thresholds with the F1 they reach.

    Attributes
    ----------
    objective: ``"event"`` or ``"segment"``.
    classes: per class its :class:`ClassTuning`.
    macro_before, macro_after: the objective's macro F1 (mean over the classes
        with reference events) at the starting and at the tuned thresholds.
    step: the spacing of the candidates.
    """

    objective: str
    classes: dict[str, ClassTuning]
    macro_before: float
    macro_after: float
    step: float

    @property
    def thresholds(self) -> dict[str, float]:
        return {c: t.threshold for c, t in self.classes.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (NaN as ``None``)."""
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and math.isnan(v) else v

        return {"objective": self.objective, "step": self.step,
                "macro_f1_before": clean(self.macro_before), "macro_f1_after": clean(self.macro_after),
                "per_class": {c: {k: clean(v) for k, v in dataclasses.asdict(t).items()}
                              for c, t in self.classes.items()}}


def _class_scores(objective: str, reference: Mapping[str, Sequence[Event]], estimated: Mapping[str, list[Event]],
                  classes: Sequence[str], metrics: SedMetricConfig,
                  durations: Mapping[str, float] | None) -> FScoreResult:
    if objective == "event":
        return event_based_metrics(reference, estimated, classes, metrics)
    return segment_based_metrics(reference, estimated, classes, metrics, durations).rescore("zero_score")


def _decode_all(scores: Mapping[str, np.ndarray], timestamps: Mapping[str, np.ndarray], classes: Sequence[str],
                decode: DecodeConfig) -> dict[str, list[Event]]:
    return {name: decode_timed_scores(s, timestamps[name], classes, decode) for name, s in scores.items()}


def tune_thresholds(
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray],
    reference: Mapping[str, Sequence[Event]],
    classes: Sequence[str],
    decode: DecodeConfig,
    metrics: SedMetricConfig = SedMetricConfig(),
    durations: Mapping[str, float] | None = None,
    cfg: ThresholdTuningConfig = ThresholdTuningConfig(),
) -> TuningResult:
    """Tune one threshold per class on a labelled split.

    Parameters
    ----------
    scores: per clip its threshold-free ``(frame, class)`` scores (already
        median-filtered: ``decode``'s median filter is not applied again).
    timestamps: per clip its ``frame + 1`` frame boundaries in seconds.
    reference: per clip its reference events (every scored clip).
    classes: class names in score column order.
    decode: the decoder whose thresholds are tuned; its thresholds are the
        starting point, its gap merging and minimum duration apply.
    metrics: metric settings.
    durations: clip lengths for the segment objective (default: as
        :func:`~audioadapt.evaluation.sed_metrics.segment_based_metrics`).
    cfg: objective and candidates.
    """
    classes = tuple(classes)
    base = dataclasses.replace(decode, median_filter_seconds=0.0)
    start = base.thresholds_for(classes)
    candidates = cfg.candidates()
    table = np.empty((len(candidates), len(classes)))
    for i, t in enumerate(candidates):
        trial = dataclasses.replace(base, threshold=float(t), class_thresholds=None)
        result = _class_scores(cfg.objective, reference, _decode_all(scores, timestamps, classes, trial), classes,
                               metrics, durations)
        table[i] = [result.class_wise[c].f_measure for c in classes]
    before = _class_scores(cfg.objective, reference, _decode_all(scores, timestamps, classes, base), classes,
                           metrics, durations)
    chosen: dict[str, float] = {}
    for k, c in enumerate(classes):
        column = table[:, k]
        if np.all(np.isnan(column)):
            chosen[c] = float(start[k])
            continue
        best = np.nanmax(column)
        ties = np.flatnonzero(column >= best - 1e-12)
        chosen[c] = float(candidates[ties[np.argmin(np.abs(candidates[ties] - start[k]))]])
    tuned = dataclasses.replace(base, class_thresholds=chosen)
    after = _class_scores(cfg.objective, reference, _decode_all(scores, timestamps, classes, tuned), classes,
                          metrics, durations)
    per_class = {
        c: ClassTuning(threshold=chosen[c], threshold_before=float(start[k]), f1=after.class_wise[c].f_measure,
                       f1_before=before.class_wise[c].f_measure, n_ref=after.class_wise[c].n_ref,
                       tuned=not np.all(np.isnan(table[:, k])))
        for k, c in enumerate(classes)
    }
    return TuningResult(cfg.objective, per_class, before.macro.f_measure, after.macro.f_measure, cfg.step)


__all__ = ["OBJECTIVES", "ClassTuning", "Objective", "ThresholdTuningConfig", "TuningResult", "tune_thresholds"]
