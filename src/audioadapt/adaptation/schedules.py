"""Schedules as pure functions of the training progress ``p`` in ``[0, 1]``.

* :func:`sigmoid_ramp`: the GRL weight of Ganin & Lempitsky (2015),
  ``max_value * (2 / (1 + exp(-steepness * p)) - 1)``, rising from 0 to about
  ``max_value`` (0.9999 of it at ``p = 1`` for steepness 10).
* :func:`constant`: the same value throughout.
* :func:`linear_ramp`: from ``start`` to ``end`` (e.g. a memory rate 0 -> 0.4).

* :func:`warmed_up`: 0 during a warm-up share of the progress, then the
  progress rescaled to ``[0, 1]`` over the rest.

What ``p`` counts (a whole run or one phase) is the caller's choice.
:class:`ScheduleConfig` holds one schedule; its defaults are the GRL schedule
of the SED method as Ganin & Lempitsky give it (sigmoid ramp to 1 from the
start, no warm-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


def _check_progress(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"progress must lie in [0, 1], got {p}")
    return p


def sigmoid_ramp(p: float, max_value: float, steepness: float) -> float:
    """``max_value * (2 / (1 + exp(-steepness * p)) - 1)``; 0 at ``p = 0``."""
    p = _check_progress(p)
    return max_value * (2.0 / (1.0 + math.exp(-steepness * p)) - 1.0)


def constant(p: float, value: float) -> float:
    """``value`` whatever the progress (``p`` is still checked)."""
    _check_progress(p)
    return value


def linear_ramp(p: float, start: float, end: float) -> float:
    """Straight line from ``start`` at ``p = 0`` to ``end`` at ``p = 1``."""
    p = _check_progress(p)
    return start + (end - start) * p


def warmed_up(p: float, warmup: float) -> float | None:
    """The progress after a warm-up: ``None`` while ``p < warmup``, then ``(p - warmup) / (1 - warmup)``."""
    p = _check_progress(p)
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must lie in [0, 1), got {warmup}")
    if p < warmup:
        return None
    return (p - warmup) / (1.0 - warmup)


@dataclass(frozen=True)
class ScheduleConfig:
    """One scalar schedule.

    Attributes
    ----------
    kind: ``sigmoid_ramp``, ``constant`` or ``linear``.
    start: value at ``p = 0`` for ``linear`` (unused otherwise).
    end: final value: ``max_value`` of the sigmoid ramp, the constant, or the
        end of the linear ramp.
    steepness: the ``10`` of the GRL ramp.
    warmup: share of the progress, in ``[0, 1)``, during which the value is
        0; the schedule then runs over the rest of the progress, rescaled to
        ``[0, 1]`` (``warmup: 0.3`` with the sigmoid ramp: 0 for the first
        30 % of the updates, then the ramp to ``end``). A warm-up of N epochs
        out of E is ``N / E``. 0 (default): none.
    """

    kind: Literal["sigmoid_ramp", "constant", "linear"] = "sigmoid_ramp"
    start: float = 0.0
    end: float = 1.0
    steepness: float = 10.0
    warmup: float = 0.0

    def __post_init__(self) -> None:
        for name in ("start", "end", "steepness", "warmup"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if self.steepness <= 0:
            raise ValueError(f"steepness must be positive, got {self.steepness}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must lie in [0, 1), got {self.warmup}")

    def value(self, p: float) -> float:
        """The schedule at progress ``p`` (0 during the warm-up)."""
        q = warmed_up(p, self.warmup)
        return 0.0 if q is None else self._value(q)

    def _value(self, p: float) -> float:
        if self.kind == "sigmoid_ramp":
            return sigmoid_ramp(p, self.end, self.steepness)
        if self.kind == "constant":
            return constant(p, self.end)
        return linear_ramp(p, self.start, self.end)


__all__ = ["ScheduleConfig", "constant", "linear_ramp", "sigmoid_ramp", "warmed_up"]
