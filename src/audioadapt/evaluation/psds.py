"""PSDS on the exact PSD-ROC and intersection-based F1, in numpy.

The definitions follow ``sed_scores_eval`` 0.0.4 (``intersection_based.psds``),
which computes the PSD-ROC over *every* distinct score instead of the 50
operating points of psds_eval:

* per class, over all decision levels: TP ratio ``tps / n_ref`` and effective
  FP rate ``(fps + alpha_ct * mean_o(cts_o / t_ref_o) * D) / D`` per hour, where
  ``D`` is the total audio duration and ``t_ref_o`` the total ground-truth
  duration of other class ``o``;
* each class ROC is sorted, made monotone (cumulative maximum of the TP ratio)
  and cut at ``max_efpr``;
* the PSD-ROC is ``max(mean - alpha_st * std, 0)`` of the per-class step
  curves on the union of their eFPR values, extended flat to ``max_efpr``;
* PSDS is its staircase area up to ``max_efpr`` divided by ``max_efpr``.

Use :data:`PSDS1` / :data:`PSDS2` for the DCASE scenarios. Note that
sed_scores_eval's own defaults are ``alpha_ct = alpha_st = 0``, while DCASE
uses ``alpha_st = 1``.

:func:`intersection_f1` scores one threshold with the same criteria, as
``sed_scores_eval.intersection_based.fscore``: every detection failing the DTC
is a false positive (cross-triggers included; they are also counted apart).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.intersection import ClassStatistics, pack_inputs, statistics_at, statistics_curve

log = logging.getLogger(__name__)

#: The eFPR unit: false positives per hour.
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class PsdsConfig:
    """PSDS parameters; the defaults are the DCASE scenario 1.

    Attributes
    ----------
    dtc: detection tolerance criterion, fraction of a detection that must
        intersect same-class ground truth.
    gtc: ground-truth intersection criterion, fraction of an event that the
        relevant detections must cover.
    cttc: cross-trigger tolerance criterion, or ``None`` (required exactly
        when ``alpha_ct > 0``).
    alpha_ct: weight of the cross-trigger rate in the effective FP rate.
    alpha_st: weight of the across-class standard deviation of the TP ratio.
    max_efpr: eFPR (per hour) up to which the area is taken.
    """

    dtc: float = 0.7
    gtc: float = 0.7
    cttc: float | None = None
    alpha_ct: float = 0.0
    alpha_st: float = 1.0
    max_efpr: float = 100.0

    def __post_init__(self) -> None:
        for name in ("dtc", "gtc") + (("cttc",) if self.cttc is not None else ()):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"psds.{name} must be in (0, 1], got {value}")
        if self.alpha_ct < 0 or self.alpha_st < 0:
            raise ConfigError(f"psds.alpha_ct and alpha_st must be >= 0, got {self.alpha_ct}, {self.alpha_st}")
        if (self.alpha_ct > 0) != (self.cttc is not None):
            raise ConfigError(
                f"psds.cttc must be given exactly when alpha_ct > 0 (cttc={self.cttc}, alpha_ct={self.alpha_ct})"
            )
        if not self.max_efpr > 0:
            raise ConfigError(f"psds.max_efpr must be positive, got {self.max_efpr}")

    def parameters(self) -> dict[str, float | None]:
        """The parameters by name, as reports record them."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def scenario1(cls) -> "PsdsConfig":
        """DCASE PSDS1: tight localisation, no cross-trigger penalty."""
        return cls()

    @classmethod
    def scenario2(cls) -> "PsdsConfig":
        """DCASE PSDS2: loose localisation, cross-triggers penalised."""
        return cls(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5)


PSDS1 = PsdsConfig.scenario1()
PSDS2 = PsdsConfig.scenario2()


def dcase_scenarios() -> dict[str, PsdsConfig]:
    """The DCASE scenarios by report name: ``{"psds1": PSDS1, "psds2": PSDS2}``."""
    return {"psds1": PsdsConfig.scenario1(), "psds2": PsdsConfig.scenario2()}


@dataclass(frozen=True)
class RocCurve:
    """One class's ROC over all decision levels, sorted by eFPR.

    Attributes
    ----------
    efpr: (point,) effective false positives per hour, strictly increasing.
    tpr: (point,) fraction of the class's events detected, non-decreasing.
    levels: (point,) a score level reaching the point when frames with
        score ``>= level`` are active (``inf``: nothing active). Where several
        levels give the same point, sed_scores_eval may name another of them.
    """

    efpr: np.ndarray
    tpr: np.ndarray
    levels: np.ndarray


@dataclass(frozen=True)
class PsdRoc:
    """The PSD-ROC: effective TP ratio against effective FP rate per hour.

    ``efpr`` ends with ``max_efpr``; ``etpr = max(tpr_mean - alpha_st * tpr_std, 0)``.
    """

    efpr: np.ndarray
    etpr: np.ndarray
    tpr_mean: np.ndarray
    tpr_std: np.ndarray


@dataclass(frozen=True)
class PsdsResult:
    """PSDS with the curves it comes from.

    Attributes
    ----------
    value: the PSDS, in [0, 1].
    roc: the PSD-ROC.
    class_rocs: per-class ROC curves.
    class_values: per-class area (PSDS of one class, no ``alpha_st``).
    config: the parameters used.
    """

    value: float
    roc: PsdRoc
    class_rocs: dict[str, RocCurve]
    class_values: dict[str, float]
    config: PsdsConfig

    def summary(self) -> dict[str, object]:
        """A JSON-friendly summary (value, per-class values, parameters)."""
        return {
            "psds": self.value,
            "per_class": dict(self.class_values),
            "config": self.config.parameters(),
        }


def psds(
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray] | np.ndarray,
    classes: Sequence[str],
    ground_truth: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
    cfg: PsdsConfig,
) -> PsdsResult:
    """PSDS of frame scores on the exact PSD-ROC.

    Parameters
    ----------
    scores: per clip a ``(frame, class)`` array (e.g. median-filtered
        probabilities).
    timestamps: per clip its ``frame + 1`` boundaries in seconds (see
        :meth:`audioadapt.features.frames.FrameGrid.output_timestamps`), or one
        array shared by all clips.
    classes: class names in score column order.
    ground_truth: per clip its events (empty for clips without events); every
        class needs at least one event overall.
    durations: per clip the audio length in seconds; their sum normalises the
        FP rate.
    cfg: PSDS parameters, e.g. :data:`PSDS1` or :data:`PSDS2`.

    With a single class there is nothing to cross-trigger, so ``alpha_ct``
    has no effect (sed_scores_eval fails on that case).
    """
    packed = pack_inputs(scores, timestamps, classes, ground_truth)
    total = _total_duration(durations, packed.clips)
    stats = statistics_curve(packed, cfg.dtc, cfg.gtc, cfg.cttc)
    class_rocs = {
        c: _class_roc(st, k, int(packed.n_ref[k]), packed.t_ref, total, cfg)
        for k, (c, st) in enumerate(zip(packed.classes, stats))
    }
    roc = _psd_roc(list(class_rocs.values()), cfg)
    return PsdsResult(
        value=_staircase_area(roc.etpr, roc.efpr, cfg.max_efpr) / cfg.max_efpr,
        roc=roc,
        class_rocs=class_rocs,
        class_values={c: _staircase_area(r.tpr, r.efpr, cfg.max_efpr) / cfg.max_efpr for c, r in class_rocs.items()},
        config=cfg,
    )


def psds_scenarios(
    scenarios: Mapping[str, PsdsConfig],
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray] | np.ndarray,
    classes: Sequence[str],
    ground_truth: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
) -> dict[str, PsdsResult | None]:
    """:func:`psds` of each named scenario (e.g. ``{"psds1": PSDS1, "psds2": PSDS2}``).

    A scenario that cannot be computed on these inputs (a class without any
    reference event, durations that do not match) is ``None``, with a warning
    saying why, so that the other metrics of an evaluation are still reported.
    """
    out: dict[str, PsdsResult | None] = {}
    for name, cfg in scenarios.items():
        try:
            out[name] = psds(scores, timestamps, classes, ground_truth, durations, cfg)
        except (DataError, ConfigError, ValueError) as exc:
            log.warning("%s not computed: %s", name, exc)
            out[name] = None
    return out


def _total_duration(durations: Mapping[str, float], clips: Sequence[str]) -> float:
    if set(durations) != set(clips):
        missing, extra = sorted(set(clips) - set(durations)), sorted(set(durations) - set(clips))
        raise DataError(f"durations do not match the scored clips: missing {missing[:5]}, unexpected {extra[:5]}")
    total = 0.0
    for clip, value in durations.items():
        if not (np.isfinite(value) and value > 0):
            raise DataError(f"clip {clip!r}: duration must be positive, got {value}")
        total += float(value)
    return total


def _class_roc(st: ClassStatistics, k: int, n_ref: int, t_ref: np.ndarray, total: float, cfg: PsdsConfig) -> RocCurve:
    tpr = st.tps / max(n_ref, 1)
    efpr = st.fps / total
    if cfg.alpha_ct != 0.0:
        others = [o for o in range(len(t_ref)) if o != k]
        ct_rates = np.stack([st.cts[:, o] / max(t_ref[o], 1e-12) for o in others]) if others else np.zeros((1, len(tpr)))
        efpr = efpr + cfg.alpha_ct * np.mean(ct_rates, axis=0)
    efpr = efpr * SECONDS_PER_HOUR
    # sort by (eFPR, TPR), keep points where the TPR rises, then the best TPR per eFPR
    order = np.lexsort((tpr, efpr))
    tpr, efpr, levels = tpr[order], efpr[order], st.levels[order]
    run_max = np.maximum.accumulate(tpr)
    keep = np.concatenate([[0], np.flatnonzero(run_max[1:] > run_max[:-1]) + 1])
    tpr, efpr, levels = tpr[keep], efpr[keep], levels[keep]
    last = np.concatenate([efpr[1:] != efpr[:-1], [True]])
    tpr, efpr, levels = tpr[last], efpr[last], levels[last]
    inside = efpr <= cfg.max_efpr
    return RocCurve(efpr=efpr[inside], tpr=tpr[inside], levels=levels[inside])


def _psd_roc(rocs: Sequence[RocCurve], cfg: PsdsConfig) -> PsdRoc:
    grid = np.unique(np.concatenate([r.efpr for r in rocs]))
    curves = np.stack([_step_at(r.efpr, r.tpr, grid) for r in rocs])
    mean, std = np.mean(curves, axis=0), np.std(curves, axis=0)
    etpr = np.maximum(mean - cfg.alpha_st * std, 0.0)
    return PsdRoc(
        efpr=np.append(grid, cfg.max_efpr),
        etpr=np.append(etpr, etpr[-1]),
        tpr_mean=np.append(mean, mean[-1]),
        tpr_std=np.append(std, std[-1]),
    )


def _step_at(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Right-continuous step function through ``(x, y)`` at ``grid``: 0 before ``x[0]``, ``y[-1]`` after."""
    if len(x) == 0:
        return np.zeros(len(grid))
    idx = np.searchsorted(x, grid, side="right") - 1
    return np.where(idx >= 0, y[np.maximum(idx, 0)], 0.0)


def _staircase_area(y: np.ndarray, x: np.ndarray, max_x: float) -> float:
    """Area under the step curve ``(x, y)`` from its first point up to ``max_x``."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    cut = np.searchsorted(x, max_x, side="right")
    x = np.append(x[:cut], max_x)
    return float(np.sum(y[:cut] * np.diff(x)))


def plot_psd_roc(result: PsdsResult, path: str | Path, *, per_class: bool = False, title: str | None = None) -> Path:
    """Write the PSD-ROC (and optionally the per-class ROCs) to a PNG file.

    Returns the path written. Uses matplotlib's Agg canvas, leaving the global
    backend untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg, roc = result.config, result.roc
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if per_class:
        for name, r in result.class_rocs.items():
            ax.step(np.append(r.efpr, cfg.max_efpr), np.append(r.tpr, r.tpr[-1:]), where="post", lw=0.8, alpha=0.7,
                    label=name)
    ax.step(roc.efpr, roc.etpr, where="post", color="k", lw=2, label="PSD-ROC")
    ax.fill_between(roc.efpr, roc.etpr, step="post", alpha=0.2, color="tab:blue")
    if cfg.alpha_st > 0:
        ax.step(roc.efpr, roc.tpr_mean, where="post", color="k", ls="--", lw=1, label="mean TPR")
    ax.set_xlim(0, cfg.max_efpr)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("effective FP rate per hour")
    ax.set_ylabel("effective TP ratio")
    ax.set_title(title or (
        f"PSDS {result.value:.4f} (dtc {cfg.dtc}, gtc {cfg.gtc}, cttc {cfg.cttc}, "
        f"a_ct {cfg.alpha_ct}, a_st {cfg.alpha_st})"
    ), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


# -- intersection-based F1 at one threshold ----------------------------------------
@dataclass(frozen=True)
class IntersectionF1Config:
    """Criteria of the intersection-based F1 (DCASE: dtc = gtc = 0.5, cttc 0.3).

    ``cttc`` does not change the F1; it only sorts the false positives into
    cross-triggers per other class (``None``: not counted).
    """

    dtc: float = 0.5
    gtc: float = 0.5
    cttc: float | None = 0.3

    def __post_init__(self) -> None:
        for name in ("dtc", "gtc") + (("cttc",) if self.cttc is not None else ()):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"intersection_f1.{name} must be in (0, 1], got {value}")


@dataclass(frozen=True)
class IntersectionCounts:
    """Counts and scores of one class, or of all classes pooled (micro).

    ``tp`` counts detected ground-truth events, ``fp`` detections failing the
    DTC, ``fn = n_ref - tp``. Per class, precision is 1 when nothing is
    detected; pooled, it is 0 then (as sed_scores_eval).
    """

    tp: int
    fp: int
    fn: int
    n_ref: int
    precision: float
    recall: float
    f_measure: float


@dataclass(frozen=True)
class F1Average:
    """Class-wise mean of the per-class scores."""

    f_measure: float
    precision: float
    recall: float


@dataclass(frozen=True)
class IntersectionF1Result:
    """Intersection-based F1 per class with macro and micro averages.

    Attributes
    ----------
    classes: class order.
    class_wise: per-class counts and scores.
    macro: mean of the per-class scores.
    micro: scores of the pooled counts.
    cross_triggers: detection class -> other class -> false positives that
        satisfy the CTTC with that class (empty without a CTTC).
    thresholds: the decision threshold of each class (frames with score
        ``> threshold`` are active).
    config: the criteria used.
    """

    classes: tuple[str, ...]
    class_wise: dict[str, IntersectionCounts]
    macro: F1Average
    micro: IntersectionCounts
    cross_triggers: dict[str, dict[str, int]]
    thresholds: dict[str, float]
    config: IntersectionF1Config

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly copy."""
        from dataclasses import asdict

        return asdict(self)


def intersection_f1(
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray] | np.ndarray,
    classes: Sequence[str],
    ground_truth: Mapping[str, Sequence[Event]],
    threshold: float | Mapping[str, float],
    cfg: IntersectionF1Config,
) -> IntersectionF1Result:
    """Intersection-based F1 of the detections ``score > threshold``.

    Inputs as in :func:`psds`; ``threshold`` is one value or one per class.
    """
    packed = pack_inputs(scores, timestamps, classes, ground_truth)
    names = packed.classes
    if isinstance(threshold, Mapping):
        missing = [c for c in names if c not in threshold]
        if missing:
            raise DataError(f"no threshold given for class(es) {missing}")
        thr = np.array([float(threshold[c]) for c in names])
    else:
        thr = np.full(len(names), float(threshold))
    tps, fps, cts = statistics_at(packed, thr, cfg.dtc, cfg.gtc, cfg.cttc)
    rows = {c: _counts(int(tps[k]), int(fps[k]), int(packed.n_ref[k]), pooled=False) for k, c in enumerate(names)}
    cross = {}
    if cts is not None:
        cross = {c: {o: int(cts[k, j]) for j, o in enumerate(names) if j != k} for k, c in enumerate(names)}
    return IntersectionF1Result(
        classes=names,
        class_wise=rows,
        macro=F1Average(
            f_measure=float(np.mean([r.f_measure for r in rows.values()])),
            precision=float(np.mean([r.precision for r in rows.values()])),
            recall=float(np.mean([r.recall for r in rows.values()])),
        ),
        micro=_counts(int(tps.sum()), int(fps.sum()), int(packed.n_ref.sum()), pooled=True),
        cross_triggers=cross,
        thresholds={c: float(t) for c, t in zip(names, thr)},
        config=cfg,
    )


def _counts(tp: int, fp: int, n_ref: int, pooled: bool) -> IntersectionCounts:
    precision = tp / max(tp + fp, 1) if (pooled or tp + fp > 0) else 1.0
    recall = tp / max(n_ref, 1)
    f = 2.0 * precision * recall / max(precision + recall, 1e-15)
    return IntersectionCounts(tp, fp, n_ref - tp, n_ref, precision, recall, f)
