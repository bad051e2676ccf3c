"""Choose hyper-parameters on the internal selection metric: a grid of settings x seeds.

A sweep trains one benchmark row with every combination of the given values
(``--grid method.grl_weight.end=0.03,0.1,0.3``) and every seed, and ranks
the combinations by each run's *internal* selection metric at its selected
epoch: for SED the synthetic-valid event F1 + weak-valid clip F1, computed on
clips held out of the training splits. It never predicts or scores the
real-domain validation split: a choice made on the split that is then reported
would overstate what the system does on unseen data. The runs are cells of
:func:`audioadapt.api.benchmark.run_grid`, so an interrupted sweep resumes.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audioadapt.api.benchmark import RowSpec
from audioadapt.errors import ConfigError

#: Prefix of the validation columns in a run's ``metrics.csv``.
VAL_PREFIX = "val/"


@dataclass(frozen=True)
class SweepAxis:
    """One swept setting and its values (YAML scalars or flow collections, as in overrides)."""

    key: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SweepAxis:
        """``key.path=v1,v2,...``; commas inside brackets or braces belong to a value (``[1, 2],[3, 4]``)."""
        key, sep, rest = text.partition("=")
        key = key.strip()
        if not sep or not key or not rest.strip():
            raise ConfigError(f"--grid {text!r}: expected key.path=value1,value2,...")
        values = tuple(v.strip() for v in _split_top_level(rest))
        if any(not v for v in values):
            raise ConfigError(f"--grid {text!r}: empty value")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {text!r}: a value is given twice")
        return cls(key, values)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def grid_points(axes: Sequence[SweepAxis]) -> list[tuple[str, ...]]:
    """Every combination of the axes' values as ``key=value`` overrides, first axis slowest."""
    if not axes:
        raise ConfigError("a sweep needs at least one --grid key=values")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--grid names a key twice: {keys}")
    return [tuple(f"{a.key}={v}" for a, v in zip(axes, combo))
            for combo in itertools.product(*(a.values for a in axes))]


def sweep_rows(row: RowSpec, points: Iterable[Sequence[str]]) -> list[tuple[RowSpec, tuple[str, ...]]]:
    """One row per grid point (its own run folder ``<row>-<n>``, labelled by its settings) with the point."""
    out = []
    for i, point in enumerate(points):
        label = ", ".join(point)
        out.append((RowSpec(f"{row.key}-{i}", label, row.preset, row.overrides), tuple(point)))
    return out


def selected_epoch_metrics(run_dir: str | Path, global_epoch: int | None) -> dict[str, float]:
    """The ``val/`` columns of ``metrics.csv`` at ``global_epoch`` (the run's selected epoch), without the prefix."""
    path = Path(run_dir) / "metrics.csv"
    if global_epoch is None:
        return {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("global_epoch") == str(global_epoch)]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the run's metrics: {exc}") from exc
    out: dict[str, float] = {}
    for row in rows:  # the last row of that epoch holds its validation
        for key, value in row.items():
            if key and key.startswith(VAL_PREFIX) and value not in ("", None):
                out[key[len(VAL_PREFIX):]] = _float(value)
    return out


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


__all__ = ["SweepAxis", "VAL_PREFIX", "grid_points", "selected_epoch_metrics", "sweep_rows"]
