"""Speech-emotion metrics: UA, WA, per-class scores and the confusion matrix.

* **UA** (unweighted accuracy) is the macro recall, the mean of
  ``TP_c / N_c`` over the classes present in the reference; classes with no
  reference utterance are left out of the mean and listed in
  :attr:`SerMetrics.absent_classes`.
* **WA** (weighted accuracy) is the overall accuracy ``sum_c TP_c / sum_c N_c``.

Everything is derived from one confusion matrix (rows = true class, columns =
predicted class), so a stored matrix (:meth:`SerMetrics.from_dict`) gives back
every number. Undefined ratios are NaN (``None`` in JSON): recall of a class
without reference utterances, precision of a class never predicted; F1 is
``2 TP / (2 TP + FP + FN)``, NaN only when the class is in neither side.
:func:`aggregate_runs` pools several runs (seeds) into mean and standard
deviation; one test utterance can move WA by several points on small target
sets, so report the spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import DataError
from audioadapt.evaluation.report import MISSING, Report, Table

#: Lower clip of the true-class probability in the log-loss (as scikit-learn's former default).
LOG_LOSS_EPS = 1e-15

#: Tolerance on each probability row summing to 1.
PROBABILITY_SUM_TOL = 1e-3


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    if not classes or not all(isinstance(c, str) and c for c in classes):
        raise DataError(f"classes must be a non-empty list of class names, got {list(classes)}")
    if len(set(classes)) != len(classes):
        raise DataError(f"classes contain duplicates: {list(classes)}")
    return classes


@dataclass(frozen=True)
class SerMetrics:
    """Speech-emotion results of one set of predictions.

    Attributes
    ----------
    classes: class names, in index order.
    confusion: ``(true class, predicted class)`` utterance counts.
    log_loss: mean negative log-probability (nats) of the true class, if probabilities were given.
    """

    classes: tuple[str, ...]
    confusion: np.ndarray
    log_loss: float | None = None

    def __post_init__(self) -> None:
        classes = _check_classes(self.classes)
        conf = np.asarray(self.confusion)
        if conf.shape != (len(classes), len(classes)):
            raise DataError(f"confusion matrix has shape {conf.shape}, expected {(len(classes),) * 2}")
        if conf.dtype.kind not in "iu" and not (np.isfinite(conf).all() and (conf == np.round(conf)).all()):
            raise DataError("confusion matrix must hold whole utterance counts")
        if (conf < 0).any():
            raise DataError("confusion matrix has negative counts")
        conf = conf.astype(np.int64)
        conf.setflags(write=False)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "confusion", conf)

    # -- counts ------------------------------------------------------------
    @property
    def support(self) -> np.ndarray:
        """Reference utterances per class, ``(class,)``."""
        return self.confusion.sum(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted utterances per class, ``(class,)``."""
        return self.confusion.sum(axis=0)

    @property
    def n_utterances(self) -> int:
        return int(self.confusion.sum())

    @property
    def n_correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def absent_classes(self) -> tuple[str, ...]:
        """Classes without reference utterances (left out of UA)."""
        return tuple(c for c, n in zip(self.classes, self.support) if n == 0)

    # -- ratios ------------------------------------------------------------
    @property
    def recall(self) -> np.ndarray:
        """Per-class recall ``TP / N``, ``(class,)``; NaN for absent classes."""
        return _ratio(np.diag(self.confusion).astype(float), self.support)

    @property
    def precision(self) -> np.ndarray:
        """Per-class precision ``TP / predicted``, ``(class,)``; NaN for never-predicted classes."""
        return _ratio(np.diag(self.confusion).astype(float), self.predicted)

    @property
    def f1(self) -> np.ndarray:
        """Per-class F1 ``2 TP / (N + predicted)``, ``(class,)``."""
        return _ratio(2.0 * np.diag(self.confusion), self.support + self.predicted)

    @property
    def ua(self) -> float:
        """Unweighted accuracy: mean recall over the classes present in the reference."""
        present = self.support > 0
        return float(self.recall[present].mean()) if present.any() else math.nan

    @property
    def wa(self) -> float:
        """Weighted accuracy: correct / all utterances."""
        return self.n_correct / self.n_utterances if self.n_utterances else math.nan

    @property
    def row_normalized(self) -> np.ndarray:
        """Confusion matrix over the class support, ``(true class, predicted class)``; NaN rows if absent."""
        return _ratio(self.confusion.astype(float), np.broadcast_to(self.support[:, None], self.confusion.shape))

    # -- output ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (NaN becomes ``None``)."""

        def num(x: float) -> float | None:
            return None if x is None or math.isnan(x) else float(x)

        return {
            "classes": list(self.classes),
            "n_utterances": self.n_utterances,
            "n_correct": self.n_correct,
            "ua": num(self.ua),
            "wa": num(self.wa),
            "log_loss": num(self.log_loss),
            "ua_classes": [c for c in self.classes if c not in self.absent_classes],
            "absent_classes": list(self.absent_classes),
            "class_wise": {
                c: {"support": int(self.support[i]), "predicted": int(self.predicted[i]),
                    "recall": num(self.recall[i]), "precision": num(self.precision[i]), "f1": num(self.f1[i])}
                for i, c in enumerate(self.classes)
            },
            "confusion": self.confusion.tolist(),
            "confusion_axes": ["true", "predicted"],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SerMetrics:
        """Rebuild from :meth:`to_dict` output (only ``classes``, ``confusion`` and ``log_loss`` are read)."""
        try:
            return cls(tuple(data["classes"]), np.asarray(data["confusion"]), data.get("log_loss"))
        except KeyError as err:
            raise DataError(f"SER results lack the key {err.args[0]!r}") from None

    def class_table(self) -> Table:
        """Per-class support, predictions, recall, precision and F1."""
        cols = ["class", "support", "predicted", "recall (%)", "precision (%)", "F1 (%)"]
        rows = [[c, int(self.support[i]), int(self.predicted[i]), self.recall[i], self.precision[i], self.f1[i]]
                for i, c in enumerate(self.classes)]
        absent = ", ".join(self.absent_classes) or "none"
        note = (f"UA = mean recall over the {len(self.classes) - len(self.absent_classes)} classes present "
                f"in the reference (absent: {absent}); WA = {self.n_correct}/{self.n_utterances} correct.")
        return Table("Per-class results", cols, rows, frozenset(cols[3:]), note)

    def confusion_table(self) -> Table:
        """Confusion matrix with counts and row-normalised percentages."""
        norm = self.row_normalized
        rows = []
        for i, c in enumerate(self.classes):
            cells = [f"{n} ({MISSING if math.isnan(p) else f'{100 * p:.1f} %'})"
                     for n, p in zip(self.confusion[i], norm[i])]
            rows.append([c, *cells, int(self.support[i])])
        return Table("Confusion matrix", ["true \\ predicted", *self.classes, "support"], rows,
                     note="Rows: true class; columns: predicted class; percentages of the row's support.")

    def entries(self) -> dict[str, Any]:
        """Headline numbers: UA, WA, utterance count and (if known) the log-loss."""
        out: dict[str, Any] = {"ua": self.ua, "wa": self.wa, "n_utterances": self.n_utterances}
        if self.log_loss is not None:
            out["log_loss"] = self.log_loss
        return out

    def report(self, settings: Mapping[str, Any] | None = None, inputs: Mapping[str, Any] | None = None) -> Report:
        """The JSON/Markdown :class:`~audioadapt.evaluation.report.Report` of these results."""
        return Report("ser", self.to_dict(), dict(settings or {}), self.entries(),
                      [self.class_table(), self.confusion_table()], dict(inputs or {}))

    def to_markdown(self) -> str:
        return self.report().to_markdown()


def _as_indices(labels: Any, classes: tuple[str, ...], name: str) -> np.ndarray:
    """Class indices ``(utterance,)`` from indices or class names; raises :class:`DataError`."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one label per utterance (1-D), got shape {arr.shape}")
    if arr.dtype.kind in "USO":
        lookup = {c: i for i, c in enumerate(classes)}
        out = np.empty(arr.shape, dtype=np.int64)
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, str) and v in lookup:
                out[i] = lookup[v]
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                out[i] = v
            else:
                raise DataError(f"{name}: utterance {i + 1} has label {v!r}, not one of {list(classes)}")
    elif arr.dtype.kind in "iu" or arr.size == 0:
        out = arr.astype(np.int64)
    else:
        raise DataError(f"{name} must hold integer class indices or class names, got dtype {arr.dtype}")
    bad = np.flatnonzero((out < 0) | (out >= len(classes)))
    if bad.size:
        i = int(bad[0])
        hint = " (negative labels mark unlabelled utterances; leave them out)" if out[i] < 0 else ""
        raise DataError(f"{name}: utterance {i + 1} has class index {int(out[i])}, outside 0..{len(classes) - 1} "
                        f"for classes {list(classes)}{hint}")
    return out


def _log_loss(probabilities: Any, y_true: np.ndarray, n_classes: int) -> float:
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (len(y_true), n_classes):
        raise DataError(f"probabilities have shape {p.shape}, expected (utterance, class) = {(len(y_true), n_classes)}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise DataError("probabilities must be finite values in [0, 1]")
    off = np.flatnonzero(np.abs(p.sum(axis=1) - 1.0) > PROBABILITY_SUM_TOL)
    if off.size:
        i = int(off[0])
        raise DataError(f"probabilities of utterance {i + 1} sum to {p[i].sum():.6g}, not 1 (pass softmax outputs)")
    true_p = np.clip(p[np.arange(len(y_true)), y_true], LOG_LOSS_EPS, 1.0)
    return float(-np.log(true_p).mean())


def ser_metrics(
    y_true: Sequence[int] | Sequence[str] | np.ndarray,
    y_pred: Sequence[int] | Sequence[str] | np.ndarray,
    classes: Sequence[str] = EMOTIONS,
    *,
    probabilities: np.ndarray | None = None,
) -> SerMetrics:
    """UA, WA, per-class scores and the confusion matrix of emotion predictions.

    Parameters
    ----------
    y_true, y_pred:
        Reference and predicted labels ``(utterance,)``: indices into
        ``classes`` or class names.
    classes:
        Class names in index order.
    probabilities:
        Optional class posteriors ``(utterance, class)`` (rows sum to 1); gives
        :attr:`SerMetrics.log_loss`.

    Raises
    ------
    DataError
        On lengths that differ, no utterances, unknown labels or malformed probabilities.
    """
    classes = _check_classes(classes)
    t = _as_indices(y_true, classes, "y_true")
    p = _as_indices(y_pred, classes, "y_pred")
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} utterances but y_pred has {len(p)}")
    if len(t) == 0:
        raise DataError("no utterances to evaluate")
    c = len(classes)
    confusion = np.bincount(t * c + p, minlength=c * c).reshape(c, c)
    loss = None if probabilities is None else _log_loss(probabilities, t, c)
    return SerMetrics(classes, confusion, loss)


def per_speaker(
    speakers: Sequence[str | None],
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str] = EMOTIONS,
) -> tuple[dict[str, dict[str, Any]], Table]:
    """Accuracy per speaker, with the speaker's emotions and most frequent prediction (JSON record and table).

    On a small test side a few speakers can hold most of a class (URDU under held-out speakers: one speaker has
    22 of the 24 angry test utterances), so one speaker's errors move UA by many points; this breakdown shows it.
    Utterances without a speaker id are grouped as ``"(none)"``.
    """
    classes = _check_classes(classes)
    t = _as_indices(y_true, classes, "y_true")
    p = _as_indices(y_pred, classes, "y_pred")
    if not len(speakers) == len(t) == len(p):
        raise DataError(f"{len(speakers)} speakers, {len(t)} reference and {len(p)} predicted labels")
    names = np.array(["(none)" if s is None else str(s) for s in speakers], dtype=object)
    record: dict[str, dict[str, Any]] = {}
    rows = []
    for name in sorted(set(names)):
        i = names == name
        true_counts = np.bincount(t[i], minlength=len(classes))
        pred_counts = np.bincount(p[i], minlength=len(classes))
        correct = int((t[i] == p[i]).sum())
        record[name] = {"utterances": int(i.sum()), "correct": correct, "accuracy": correct / int(i.sum()),
                        "true": {c: int(n) for c, n in zip(classes, true_counts) if n},
                        "predicted": {c: int(n) for c, n in zip(classes, pred_counts) if n}}
        shown = ", ".join(f"{c} {n}" for c, n in record[name]["true"].items())
        rows.append([name, int(i.sum()), shown, classes[int(pred_counts.argmax())], record[name]["accuracy"]])
    table = Table("Per-speaker results", ["speaker", "utterances", "true emotions", "most predicted",
                                          "accuracy (%)"], rows, frozenset({"accuracy (%)"}),
                  note="A speaker who holds most of a class moves that class's recall, and UA, alone.")
    return record, table


@dataclass(frozen=True)
class SerAggregate:
    """Several runs (seeds, splits) of the same evaluation: mean and spread.

    Attributes
    ----------
    runs: the per-run results, all with the same classes.
    names: one name per run (e.g. ``"seed 0"``).
    ddof: delta degrees of freedom of the standard deviations (1: sample std).
    """

    runs: tuple[SerMetrics, ...]
    names: tuple[str, ...]
    ddof: int

    @property
    def classes(self) -> tuple[str, ...]:
        return self.runs[0].classes

    @property
    def ua(self) -> np.ndarray:
        """UA per run, ``(run,)``."""
        return np.array([r.ua for r in self.runs])

    @property
    def wa(self) -> np.ndarray:
        """WA per run, ``(run,)``."""
        return np.array([r.wa for r in self.runs])

    def _std(self, x: np.ndarray) -> float:
        return float(np.std(x, ddof=self.ddof)) if len(x) > self.ddof else math.nan

    @property
    def ua_mean(self) -> float:
        """Mean UA over the runs."""
        return float(self.ua.mean())

    @property
    def ua_std(self) -> float:
        """Standard deviation of UA (NaN when there are no more runs than ``ddof``)."""
        return self._std(self.ua)

    @property
    def wa_mean(self) -> float:
        """Mean WA over the runs."""
        return float(self.wa.mean())

    @property
    def wa_std(self) -> float:
        """Standard deviation of WA (NaN when there are no more runs than ``ddof``)."""
        return self._std(self.wa)

    @property
    def recall_mean(self) -> np.ndarray:
        """Per-class recall averaged over the runs where the class is present, ``(class,)``."""
        rec = np.array([r.recall for r in self.runs])
        present = ~np.isnan(rec)
        return _ratio(np.where(present, rec, 0.0).sum(axis=0), present.sum(axis=0))

    @property
    def confusion_sum(self) -> np.ndarray:
        """Confusion matrices summed over the runs, ``(true class, predicted class)``."""
        return np.sum([r.confusion for r in self.runs], axis=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view with the mean, std and every run."""
        return {
            "classes": list(self.classes),
            "n_runs": len(self.runs),
            "ddof": self.ddof,
            "ua_mean": self.ua_mean, "ua_std": self.ua_std,
            "wa_mean": self.wa_mean, "wa_std": self.wa_std,
            "recall_mean": dict(zip(self.classes, self.recall_mean.tolist())),
            "confusion_sum": self.confusion_sum.tolist(),
            "runs": {n: r.to_dict() for n, r in zip(self.names, self.runs)},
        }

    def report(self, settings: Mapping[str, Any] | None = None, inputs: Mapping[str, Any] | None = None) -> Report:
        """Report with one row per run and the mean and std rows."""
        cols = ["run", "utterances", "UA (%)", "WA (%)"]
        rows: list[list[Any]] = [[n, r.n_utterances, r.ua, r.wa] for n, r in zip(self.names, self.runs)]
        rows.append(["mean", None, self.ua_mean, self.wa_mean])
        rows.append([f"std (ddof {self.ddof})", None, self.ua_std, self.wa_std])
        table = Table("Runs", cols, rows, frozenset(cols[2:]))
        entries = {"ua_mean": self.ua_mean, "ua_std": self.ua_std, "wa_mean": self.wa_mean,
                   "wa_std": self.wa_std, "n_runs": len(self.runs)}
        return Report("ser", self.to_dict(), dict(settings or {}), entries, [table], dict(inputs or {}))


def aggregate_runs(
    runs: Sequence[SerMetrics] | Mapping[str, SerMetrics], *, ddof: int = 1
) -> SerAggregate:
    """Mean and standard deviation of UA and WA over runs.

    Parameters
    ----------
    runs:
        Per-run results, or run name -> result.
    ddof:
        Delta degrees of freedom of the std (1: sample std, NaN for a single run).
    """
    if isinstance(runs, Mapping):
        names, values = tuple(str(k) for k in runs), tuple(runs.values())
    else:
        values = tuple(runs)
        names = tuple(f"run {i + 1}" for i in range(len(values)))
    if not values:
        raise DataError("no runs to aggregate")
    if ddof < 0:
        raise DataError(f"ddof must be >= 0, got {ddof}")
    for name, r in zip(names, values):
        if r.classes != values[0].classes:
            raise DataError(f"{name} has classes {list(r.classes)}, but {names[0]} has {list(values[0].classes)}")
    return SerAggregate(values, names, ddof)


def plot_confusion_matrix(
    metrics: SerMetrics, path: str | Path, normalize: bool = True, title: str | None = None
) -> Path:
    """Write the confusion matrix as a PNG; returns the path.

    Cells show the count and the row-normalised percentage. ``normalize``
    colours the cells by the row-normalised fraction (else by the count).
    Uses matplotlib's Agg canvas, leaving the global backend untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    conf, norm, classes = metrics.confusion, metrics.row_normalized, metrics.classes
    colour = np.nan_to_num(norm) if normalize else conf
    vmax = 1.0 if normalize else max(1, int(conf.max()))
    size = 1.2 + 1.1 * len(classes)
    fig = Figure(figsize=(size + 1.2, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(colour, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(image, ax=ax, label="fraction of the true class" if normalize else "utterances")
    for i in range(len(classes)):
        for j in range(len(classes)):
            pct = MISSING if math.isnan(norm[i, j]) else f"{100 * norm[i, j]:.1f} %"
            dark = colour[i, j] > 0.6 * vmax
            ax.text(j, i, f"{conf[i, j]}\n{pct}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [f"{c} ({n})" for c, n in zip(classes, metrics.support)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (support)")
    ax.set_title(title or f"UA {100 * metrics.ua:.2f} %, WA {100 * metrics.wa:.2f} %", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


__all__ = [
    "LOG_LOSS_EPS",
    "PROBABILITY_SUM_TOL",
    "SerAggregate",
    "SerMetrics",
    "aggregate_runs",
    "plot_confusion_matrix",
    "ser_metrics",
]
