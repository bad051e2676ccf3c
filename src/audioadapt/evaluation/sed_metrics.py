"""Event-based, segment-based and clip-level SED metrics in numpy.

The event- and segment-based metrics reproduce ``sed_eval.sound_event``
(``EventBasedMetrics`` with optimal matching, ``SegmentBasedMetrics``) as
DCASE task 4 uses them; ``tests/evaluation/test_parity_sed_eval.py`` checks
them against sed_eval itself. Conventions worth knowing:

* Every *reference* file is evaluated, including files without events (any
  detection there is a false positive). Prediction files absent from the
  reference are an error by default (usually a filename mismatch), or are
  evaluated as event-free references (``extra_prediction_files``).
* Undefined ratios follow one of three documented conventions
  (:data:`EmptyOutput`). With sed_eval's default (``"nan"``) a class the system
  never outputs has NaN precision and F, and the class-wise (macro) average is
  a NaN-mean, so that class silently drops out. ``"zero_score"`` scores its
  precision 0 instead (DCASE event-based setting). In both, a class absent from
  the reference has NaN recall and F and is left out of the macro average.
* Error rates are ``(S + D + I) / N_ref`` and NaN when ``N_ref == 0`` (sed_eval
  divides by ``N_ref + eps`` instead, giving huge numbers). Event-based
  substitutions are counted by a maximum matching of the still-unmatched
  reference/system pairs that satisfy the collars (whatever their labels);
  sed_eval counts them greedily in list order, so the overall event error rate
  can differ from sed_eval's when those pairs are ambiguous. F-scores,
  precisions, recalls and all class-wise counts do not depend on this.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.errors import DataError

from audioadapt.evaluation.results import _EMPTY_OUTPUTS, AverageResult, ClassResult, EmptyOutput, FScoreResult

EventLists = Mapping[str, Sequence[Event]]


@dataclass(frozen=True)
class SedMetricConfig:
    """Metric settings: the one home of the DCASE task 4 evaluation defaults.

    Attributes
    ----------
    t_collar:
        Onset collar in seconds (also the minimum offset collar): 0.2.
    percentage_of_length:
        Offset collar as a fraction of the reference event length; the collar
        is ``max(t_collar, percentage_of_length * length)``. DCASE uses 0.2
        (sed_eval's own default is 0.5).
    evaluate_onset, evaluate_offset:
        Which boundaries must match (both, as in DCASE).
    event_empty_output:
        Undefined-ratio convention of the event-based metric:
        ``"zero_score"`` as in DCASE (sed_eval ``empty_system_output_handling``).
    segment_length:
        Segment length of the segment-based metric in seconds: 1.0.
    segment_empty_output:
        ``"nan"``: sed_eval's ``SegmentBasedMetrics`` has no zero_score option,
        so classes never detected drop out of its macro average; this is how
        the DCASE numbers were computed.
    clip_threshold:
        Threshold on clip probabilities for clip-level F1 (``p > threshold``).
    clip_empty_output:
        ``"zero"``: per-class clip F1 ``2TP / (2TP + FP + FN)``, 0 when
        undefined, macro over all classes (DCASE 2019 baseline).
    extra_prediction_files:
        ``"error"`` raises when predictions name files absent from the
        reference; ``"false_positive"`` evaluates them as event-free files.
    time_decimals:
        ``None`` compares collars exactly (sed_eval). An integer rounds
        ``|deviation| - collar`` to that many decimals first, as
        sed_scores_eval does (its default is 6).
    """

    t_collar: float = 0.2
    percentage_of_length: float = 0.2
    evaluate_onset: bool = True
    evaluate_offset: bool = True
    event_empty_output: EmptyOutput = "zero_score"
    segment_length: float = 1.0
    segment_empty_output: EmptyOutput = "nan"
    clip_threshold: float = 0.5
    clip_empty_output: EmptyOutput = "zero"
    extra_prediction_files: Literal["error", "false_positive"] = "error"
    time_decimals: int | None = None

    def __post_init__(self) -> None:
        if not self.t_collar > 0:
            raise ValueError(f"t_collar must be > 0, got {self.t_collar}")
        if not 0 <= self.percentage_of_length <= 1:
            raise ValueError(f"percentage_of_length must be in [0, 1], got {self.percentage_of_length}")
        if not (self.evaluate_onset or self.evaluate_offset):
            raise ValueError("evaluate_onset and evaluate_offset cannot both be false")
        if not self.segment_length > 0:
            raise ValueError(f"segment_length must be > 0, got {self.segment_length}")
        for name in ("event_empty_output", "segment_empty_output", "clip_empty_output"):
            if getattr(self, name) not in _EMPTY_OUTPUTS:
                raise ValueError(f"{name} must be one of {_EMPTY_OUTPUTS}, got {getattr(self, name)!r}")
        if self.extra_prediction_files not in ("error", "false_positive"):
            raise ValueError(
                f"extra_prediction_files must be 'error' or 'false_positive', got {self.extra_prediction_files!r}"
            )
        if self.time_decimals is not None and self.time_decimals < 0:
            raise ValueError(f"time_decimals must be >= 0 or None, got {self.time_decimals}")


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# Input checks shared by the metrics
# ---------------------------------------------------------------------------
def resolve_classes(classes: Sequence[str] | None, *event_maps: Mapping[str, Any]) -> tuple[str, ...]:
    """The class list: ``classes`` checked against every label, or the sorted labels found.

    ``event_maps`` map filenames to events (or to tag sets).
    """
    seen: dict[str, str] = {}
    for mapping in event_maps:
        for name, items in mapping.items():
            for item in items:
                label = item.label if isinstance(item, Event) else item
                seen.setdefault(label, name)
    if classes is None:
        return tuple(sorted(seen))
    classes = tuple(classes)
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class names in {list(classes)}")
    unknown = sorted(set(seen) - set(classes))
    if unknown:
        raise DataError(f"label {unknown[0]!r} (in {seen[unknown[0]]!r}) is not one of the classes {list(classes)}")
    return classes


def _aligned_files(reference: Mapping[str, Any], estimated: Mapping[str, Any], cfg: SedMetricConfig) -> list[str]:
    extra = [name for name in estimated if name not in reference]
    if extra and cfg.extra_prediction_files == "error":
        shown = ", ".join(repr(n) for n in extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise DataError(
            f"{len(extra)} predicted file(s) are not in the reference: {shown} "
            "(check the filename column, or count them as false positives)"
        )
    return list(reference) + extra


def _event_arrays(events: Sequence[Event], index: Mapping[str, int], name: str):
    n = len(events)
    on = np.fromiter((e.onset for e in events), dtype=np.float64, count=n)
    off = np.fromiter((e.offset for e in events), dtype=np.float64, count=n)
    cls = np.fromiter((index[e.label] for e in events), dtype=np.int64, count=n)
    bad = ~(np.isfinite(on) & np.isfinite(off) & (on >= 0) & (off >= on))
    if bad.any():
        raise DataError(f"{name!r}: invalid event {events[int(np.argmax(bad))]} (need 0 <= onset <= offset)")
    return on, off, cls


# ---------------------------------------------------------------------------
# Event-based
# ---------------------------------------------------------------------------
def _max_matching(hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum bipartite matching of a ``(ref, sys)`` boolean matrix: matched masks."""
    rows = np.zeros(hit.shape[0], dtype=bool)
    cols = np.zeros(hit.shape[1], dtype=bool)
    if not hit.any():
        return rows, cols
    if (hit.sum(0) <= 1).all() and (hit.sum(1) <= 1).all():
        return hit.any(1), hit.any(0)
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    match = maximum_bipartite_matching(csr_matrix(hit), perm_type="column")
    rows = match >= 0
    cols[match[rows]] = True
    return rows, cols


def _within(deviation: np.ndarray, collar: np.ndarray | float, decimals: int | None) -> np.ndarray:
    if decimals is None:
        return deviation <= collar
    return np.round(deviation - collar, decimals) <= 0


def _collar_hits(r_on, r_off, e_on, e_off, cfg: SedMetricConfig) -> np.ndarray:
    """``(ref, sys)`` matrix of pairs whose boundaries match within the collars."""
    hit = np.ones((len(r_on), len(e_on)), dtype=bool)
    if cfg.evaluate_onset:
        hit &= _within(np.abs(r_on[:, None] - e_on[None, :]), cfg.t_collar, cfg.time_decimals)
    if cfg.evaluate_offset:
        collar = np.maximum(cfg.t_collar, cfg.percentage_of_length * (r_off - r_on))[:, None]
        hit &= _within(np.abs(r_off[:, None] - e_off[None, :]), collar, cfg.time_decimals)
    return hit


def event_based_metrics(
    reference: EventLists,
    estimated: EventLists,
    classes: Sequence[str] | None = None,
    cfg: SedMetricConfig | None = None,
) -> FScoreResult:
    """Collar-based event F1 per class (sed_eval ``EventBasedMetrics``, optimal matching).

    Parameters
    ----------
    reference:
        ``{filename: events}`` for every evaluated file (empty for event-free clips).
    estimated:
        ``{filename: events}`` of the system; missing files have no detections.
    classes:
        Class order; by default the sorted labels found in both inputs.
    cfg:
        Metric settings (``SedMetricConfig()`` when omitted).
    """
    cfg = SedMetricConfig() if cfg is None else cfg
    classes = resolve_classes(classes, reference, estimated)
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    tp, n_ref, n_sys = (np.zeros(k, dtype=np.int64) for _ in range(3))
    subs = 0
    files = _aligned_files(reference, estimated, cfg)
    for name in files:
        r_on, r_off, r_cls = _event_arrays(reference.get(name, ()), index, name)
        e_on, e_off, e_cls = _event_arrays(estimated.get(name, ()), index, name)
        n_ref += np.bincount(r_cls, minlength=k)
        n_sys += np.bincount(e_cls, minlength=k)
        if len(r_on) == 0 or len(e_on) == 0:
            continue
        hits = _collar_hits(r_on, r_off, e_on, e_off, cfg)
        ref_done = np.zeros(len(r_on), dtype=bool)
        sys_done = np.zeros(len(e_on), dtype=bool)
        for c in np.intersect1d(r_cls, e_cls):
            ri, ei = np.flatnonzero(r_cls == c), np.flatnonzero(e_cls == c)
            rows, cols = _max_matching(hits[np.ix_(ri, ei)])
            tp[c] += int(rows.sum())
            ref_done[ri[rows]] = True
            sys_done[ei[cols]] = True
        rows, _ = _max_matching(hits[np.ix_(~ref_done, ~sys_done)])
        subs += int(rows.sum())
    tot_tp = int(tp.sum())
    settings = {
        "t_collar": cfg.t_collar,
        "percentage_of_length": cfg.percentage_of_length,
        "evaluate_onset": cfg.evaluate_onset,
        "evaluate_offset": cfg.evaluate_offset,
        "event_matching_type": "optimal",
        "empty_output": cfg.event_empty_output,
        "time_decimals": cfg.time_decimals,
    }
    overall = (subs, int(n_ref.sum()) - tot_tp - subs, int(n_sys.sum()) - tot_tp - subs)
    return FScoreResult.from_counts(
        "event", classes, tp, n_ref, n_sys, cfg.event_empty_output, overall, settings, {"files": len(files)}
    )


# ---------------------------------------------------------------------------
# Segment-based
# ---------------------------------------------------------------------------
def _segment_roll(on, off, cls, n_seg: int, n_classes: int, res: float) -> np.ndarray:
    """``(segment, class)`` activity: an event covers segments floor(on/res) .. ceil(off/res) - 1."""
    delta = np.zeros((n_seg + 1, n_classes), dtype=np.int64)
    k0 = np.minimum(np.floor(on / res), n_seg).astype(np.int64)
    k1 = np.minimum(np.ceil(off / res), n_seg).astype(np.int64)
    ok = k1 > k0
    np.add.at(delta, (k0[ok], cls[ok]), 1)
    np.add.at(delta, (k1[ok], cls[ok]), -1)
    return np.cumsum(delta, axis=0)[:n_seg] > 0


def segment_based_metrics(
    reference: EventLists,
    estimated: EventLists,
    classes: Sequence[str] | None = None,
    cfg: SedMetricConfig | None = None,
    durations: Mapping[str, float] | None = None,
) -> FScoreResult:
    """Segment F1 per class (sed_eval ``SegmentBasedMetrics``).

    Each file is cut into ``ceil(length / segment_length)`` segments, where
    ``length`` is ``durations[file]`` if given, else the largest offset of the
    file's reference and estimated events (sed_eval's default, as DCASE ran
    it; a file without any event then has no segment). A class is active in a
    segment when an event covers part of it; counts are summed over files.
    """
    cfg = SedMetricConfig() if cfg is None else cfg
    classes = resolve_classes(classes, reference, estimated)
    index = {c: i for i, c in enumerate(classes)}
    k, res = len(classes), float(cfg.segment_length)
    tp, n_ref, n_sys = (np.zeros(k, dtype=np.int64) for _ in range(3))
    s_tot = d_tot = i_tot = 0
    seconds = 0.0
    files = _aligned_files(reference, estimated, cfg)
    for name in files:
        r_on, r_off, r_cls = _event_arrays(reference.get(name, ()), index, name)
        e_on, e_off, e_cls = _event_arrays(estimated.get(name, ()), index, name)
        if durations is not None:
            if name not in durations:
                raise DataError(f"no duration for file {name!r}")
            length = float(durations[name])
        else:
            length = float(max(0.0, r_off.max(initial=0.0), e_off.max(initial=0.0)))
        seconds += length
        n_seg = int(math.ceil(length / res))
        ref = _segment_roll(r_on, r_off, r_cls, n_seg, k, res)
        sys = _segment_roll(e_on, e_off, e_cls, n_seg, k, res)
        both = ref & sys
        tp += both.sum(0)
        n_ref += ref.sum(0)
        n_sys += sys.sum(0)
        nr, ns, nt = ref.sum(1), sys.sum(1), both.sum(1)
        s_tot += int((np.minimum(nr, ns) - nt).sum())
        d_tot += int(np.maximum(0, nr - ns).sum())
        i_tot += int(np.maximum(0, ns - nr).sum())
    settings = {
        "segment_length": res,
        "empty_output": cfg.segment_empty_output,
        "durations": "given" if durations is not None else "max_offset",
    }
    info = {"files": len(files), "evaluated_seconds": seconds}
    return FScoreResult.from_counts(
        "segment", classes, tp, n_ref, n_sys, cfg.segment_empty_output, (s_tot, d_tot, i_tot), settings, info
    )


# ---------------------------------------------------------------------------
# Clip-level (weak)
# ---------------------------------------------------------------------------
def events_to_tags(events: EventLists) -> dict[str, frozenset[str]]:
    """Clip tags implied by strong events: the set of labels per file."""
    return {name: frozenset(e.label for e in evs) for name, evs in events.items()}


def clip_metrics(
    reference: Mapping[str, Collection[str]],
    estimated: Mapping[str, Collection[str]],
    classes: Sequence[str] | None = None,
    cfg: SedMetricConfig | None = None,
) -> FScoreResult:
    """Clip-level (tagging) F1 from tag sets ``{filename: labels}``.

    Per class ``2TP / (2TP + FP + FN)`` over files (``clip_empty_output``
    decides undefined values; default 0, macro over all classes).
    """
    cfg = SedMetricConfig() if cfg is None else cfg
    classes = resolve_classes(classes, reference, estimated)
    files = _aligned_files(reference, estimated, cfg)
    ref = np.array([[c in set(reference.get(f, ())) for c in classes] for f in files], dtype=bool)
    est = np.array([[c in set(estimated.get(f, ())) for c in classes] for f in files], dtype=bool)
    return _clip_from_matrices(ref.reshape(len(files), len(classes)), est.reshape(len(files), len(classes)),
                               classes, cfg, {"source": "tags"})


def clip_metrics_from_probabilities(
    reference: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], cfg: SedMetricConfig | None = None
) -> FScoreResult:
    """Clip-level F1 from ``(clip, class)`` 0/1 labels and ``(clip, class)`` probabilities.

    A class is predicted when ``probability > cfg.clip_threshold``.
    """
    cfg = SedMetricConfig() if cfg is None else cfg
    reference = np.asarray(reference)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if reference.shape != probabilities.shape or reference.ndim != 2 or reference.shape[1] != len(classes):
        raise ValueError(
            f"reference {reference.shape} and probabilities {probabilities.shape} must both be (clip, {len(classes)})"
        )
    return _clip_from_matrices(reference > 0.5, probabilities > cfg.clip_threshold, tuple(classes), cfg,
                               {"source": "probabilities", "threshold": cfg.clip_threshold})


def _clip_from_matrices(ref: np.ndarray, est: np.ndarray, classes, cfg: SedMetricConfig, settings) -> FScoreResult:
    tp = (ref & est).sum(0)
    return FScoreResult.from_counts(
        "clip", classes, tp, ref.sum(0), est.sum(0), cfg.clip_empty_output,
        settings={**settings, "empty_output": cfg.clip_empty_output}, info={"files": int(ref.shape[0])},
    )


__all__ = [
    "AverageResult",
    "ClassResult",
    "EmptyOutput",
    "FScoreResult",
    "SedMetricConfig",
    "clip_metrics",
    "clip_metrics_from_probabilities",
    "event_based_metrics",
    "events_to_tags",
    "resolve_classes",
    "segment_based_metrics",
]
