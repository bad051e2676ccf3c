"""Result types of the F-score metrics: per-class counts, averages, rescoring.

Shared by the event-, segment- and clip-level metrics of
:mod:`audioadapt.evaluation.sed_metrics` and by the reports. Undefined ratios
follow one of three conventions (:data:`EmptyOutput`); see that module's
docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

EmptyOutput = Literal["zero_score", "nan", "zero"]

_EMPTY_OUTPUTS = ("zero_score", "nan", "zero")

def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class ClassResult:
    """Counts and scores of one class (or of all classes pooled: micro).

    ``fp = n_sys - tp`` and ``fn = n_ref - tp``; ``substitutions``,
    ``deletions`` and ``insertions`` are the error-rate counts (for a single
    class: 0, ``fn`` and ``fp``).
    """

    tp: int
    fp: int
    fn: int
    n_ref: int
    n_sys: int
    precision: float
    recall: float
    f_measure: float
    substitutions: int
    deletions: int
    insertions: int
    error_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _nan_to_none(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class AverageResult:
    """Class-wise (macro) average; ``n_classes`` counts the classes with a defined F."""

    f_measure: float
    precision: float
    recall: float
    n_classes: int

    def to_dict(self) -> dict[str, Any]:
        return {k: _nan_to_none(v) for k, v in asdict(self).items()}


def _prf(tp: int, n_ref: int, n_sys: int, empty_output: str) -> tuple[float, float, float]:
    """Precision, recall and F1 under one undefined-ratio convention."""
    if empty_output == "zero":
        p = tp / n_sys if n_sys else 0.0
        r = tp / n_ref if n_ref else 0.0
        f = 2.0 * tp / (n_sys + n_ref) if (n_sys + n_ref) else 0.0
        return p, r, f
    if n_sys == 0:
        p = 0.0 if empty_output == "zero_score" else math.nan
    else:
        p = tp / n_sys
    r = tp / n_ref if n_ref else math.nan
    if p == 0 and r == 0:
        f = 0.0
    elif math.isnan(p) or math.isnan(r):
        f = math.nan
    else:
        f = 2.0 * p * r / (p + r)
    return p, r, f


def _class_result(
    tp: int, n_ref: int, n_sys: int, empty_output: str, substitutions: int = 0
) -> ClassResult:
    p, r, f = _prf(tp, n_ref, n_sys, empty_output)
    fp, fn = n_sys - tp, n_ref - tp
    dels, ins = fn - substitutions, fp - substitutions
    er = (substitutions + dels + ins) / n_ref if n_ref else math.nan
    return ClassResult(
        int(tp), int(fp), int(fn), int(n_ref), int(n_sys), p, r, f, int(substitutions), int(dels), int(ins), er
    )


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


@dataclass(frozen=True)
class FScoreResult:
    """One metric's per-class table with macro and micro averages.

    Attributes
    ----------
    kind: ``"event"``, ``"segment"`` or ``"clip"``.
    empty_output: the undefined-ratio convention the scores use.
    classes: class order of the table.
    class_wise: per-class counts and scores.
    macro: class-wise average (NaN-mean of the per-class values).
    micro: all classes pooled (sed_eval's "overall").
    settings: the metric settings that produced it.
    info: evaluated files and seconds, and similar bookkeeping.

    Everything is derived from the per-class counts and the pooled error
    counts, so :meth:`rescore` can switch the undefined-ratio convention.
    """

    kind: str
    empty_output: str
    classes: tuple[str, ...]
    class_wise: dict[str, ClassResult]
    macro: AverageResult
    micro: ClassResult
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls,
        kind: str,
        classes: Sequence[str],
        tp: Sequence[int],
        n_ref: Sequence[int],
        n_sys: Sequence[int],
        empty_output: str,
        overall_error: tuple[int, int, int] | None = None,
        settings: Mapping[str, Any] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> "FScoreResult":
        """Build the table from per-class counts.

        ``overall_error`` is ``(substitutions, deletions, insertions)`` of the
        pooled row; by default no substitutions, ``fn`` deletions, ``fp`` insertions.
        """
        if empty_output not in _EMPTY_OUTPUTS:
            raise ValueError(f"empty_output must be one of {_EMPTY_OUTPUTS}, got {empty_output!r}")
        rows = {c: _class_result(int(t), int(r), int(s), empty_output) for c, t, r, s in zip(classes, tp, n_ref, n_sys)}
        tot_tp, tot_ref, tot_sys = int(np.sum(tp)), int(np.sum(n_ref)), int(np.sum(n_sys))
        micro = _class_result(tot_tp, tot_ref, tot_sys, empty_output)
        if overall_error is not None:
            s, d, i = (int(v) for v in overall_error)
            er = (s + d + i) / tot_ref if tot_ref else math.nan
            micro = replace(micro, substitutions=s, deletions=d, insertions=i, error_rate=er)
        fs = [r.f_measure for r in rows.values()]
        macro = AverageResult(
            f_measure=_nanmean(fs),
            precision=_nanmean([r.precision for r in rows.values()]),
            recall=_nanmean([r.recall for r in rows.values()]),
            n_classes=int(np.sum(~np.isnan(np.asarray(fs, dtype=np.float64)))) if fs else 0,
        )
        return cls(kind, empty_output, tuple(classes), rows, macro, micro, dict(settings or {}), dict(info or {}))

    def rescore(self, empty_output: EmptyOutput) -> "FScoreResult":
        """The same counts scored under another undefined-ratio convention."""
        rows = [self.class_wise[c] for c in self.classes]
        m = self.micro
        settings = {**self.settings, "empty_output": empty_output}
        return FScoreResult.from_counts(
            self.kind, self.classes, [r.tp for r in rows], [r.n_ref for r in rows], [r.n_sys for r in rows],
            empty_output, (m.substitutions, m.deletions, m.insertions), settings, self.info,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready view (NaN becomes ``None``)."""
        return {
            "kind": self.kind,
            "empty_output": self.empty_output,
            "classes": list(self.classes),
            "class_wise": {c: self.class_wise[c].to_dict() for c in self.classes},
            "macro": self.macro.to_dict(),
            "micro": self.micro.to_dict(),
            "settings": dict(self.settings),
            "info": dict(self.info),
        }


__all__ = ["AverageResult", "ClassResult", "EmptyOutput", "FScoreResult"]
