"""Benchmark tables: several systems x several seeds -> mean +/- std per metric.

Shared by ``audioadapt sed benchmark`` (Park et al.'s Table 1: event and
segment macro F1) and ``audioadapt ser benchmark`` (UA / WA per protocol).
The runs themselves are made by :mod:`audioadapt.api.benchmark`; this module
only aggregates their headline numbers, renders the table (Markdown, JSON)
and draws it as a bar chart.

The spread is the sample standard deviation over seeds (``ddof=1``); it is
undefined (``n/a``) for a single seed. A seed whose metric is undefined
(NaN) is left out of that metric's mean; the table then shows how many
seeds the mean is over (``(n=1)``).

Systems are compared by paired per-seed differences: with a reference row
(the baseline), each other row's value minus the reference's value for the
same seed, over the seeds where both are defined, with a Student-t 95 %
confidence interval of their mean (:class:`PairedDifference`). Seeds drive
initialisation and sampling alike, so pairing removes what a seed does to
both systems.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioadapt.evaluation.report import MISSING, Report, Table, write_report


@dataclass(frozen=True)
class MetricSpec:
    """One column of a benchmark table.

    Attributes
    ----------
    key: the name of the number in each run's metrics mapping.
    label: the column header.
    percent: show as a percentage.
    """

    key: str
    label: str
    percent: bool = True


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and count of one metric over seeds."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summary of the finite values in ``values`` (NaN / None left out)."""
        finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        if finite.size == 0:
            return cls(math.nan, math.nan, 0)
        std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        return cls(float(finite.mean()), std, int(finite.size))

    def format(self, percent: bool, digits: int = 2) -> str:
        """``mean ± std`` text (``n/a`` parts when undefined)."""
        if math.isnan(self.mean):
            return MISSING
        show = _number_format(percent, digits)
        return show(self.mean) + (f" ± {show(self.std)}" if not math.isnan(self.std) else "")


def _number_format(percent: bool, digits: int, sign: str = "") -> Callable[[float], str]:
    """``value -> text`` in percent (``digits`` decimals) or as a plain number (two more decimals)."""
    scale, places = (100.0, digits) if percent else (1.0, digits + 2)
    return lambda value: f"{scale * value:{sign}.{places}f}"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences (system - reference) with its confidence interval.

    Attributes
    ----------
    mean: mean difference over the paired seeds.
    ci_low, ci_high: Student-t interval of the mean (NaN with fewer than 2 pairs).
    n: number of seeds where both values are defined.
    confidence: the interval's level.
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95

    @classmethod
    def of(cls, values: Mapping[int, float], reference: Mapping[int, float],
           confidence: float = 0.95) -> PairedDifference:
        """Pair ``values`` with ``reference`` by seed; seeds where either is undefined are left out."""
        from scipy import stats

        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
        diffs = np.array([values[s] - reference[s] for s in sorted(set(values) & set(reference))
                          if _finite(values[s]) and _finite(reference[s])], dtype=np.float64)
        n = int(diffs.size)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0, confidence)
        mean = float(diffs.mean())
        if n < 2:
            return cls(mean, math.nan, math.nan, n, confidence)
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
        return cls(mean, mean - half, mean + half, n, confidence)

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0."""
        return _finite(self.ci_low) and (self.ci_low > 0 or self.ci_high < 0)

    def format(self, percent: bool, digits: int = 2) -> str:
        """``+1.23 [+0.10, +2.36]`` (``n/a`` parts when undefined)."""
        if math.isnan(self.mean):
            return MISSING
        show = _number_format(percent, digits, sign="+")
        return show(self.mean) + (f" [{show(self.ci_low)}, {show(self.ci_high)}]" if _finite(self.ci_low) else "")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass
class BenchmarkRow:
    """One system of the table and its per-seed numbers.

    Attributes
    ----------
    key: a short, directory-safe identifier (``adv_time_tri_training``).
    label: the name shown in the table (``Adv.time + Tri-training``).
    runs: seed -> that run's metrics (metric key -> value).
    settings: what defines the row (preset, overrides), for the JSON.
    """

    key: str
    label: str
    runs: dict[int, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def values(self, metric: str) -> list[float]:
        """The per-seed values of ``metric``, in seed order (NaN where a run lacks it)."""
        return [float(self.runs[s].get(metric, math.nan)) for s in sorted(self.runs)]

    def by_seed(self, metric: str) -> dict[int, float]:
        """Seed -> value of ``metric`` (NaN where a run lacks it)."""
        return {s: float(self.runs[s].get(metric, math.nan)) for s in sorted(self.runs)}

    def summary(self, metric: str) -> Summary:
        return Summary.of(self.values(metric))


@dataclass
class BenchmarkTable:
    """A benchmark's rows, columns and settings; renders to a :class:`Report`.

    Attributes
    ----------
    kind: ``"sed_benchmark"``, ``"ser_benchmark"``, ...
    title: the table title.
    metrics: the columns.
    rows: the systems, in table order.
    settings: how the runs were made (dataset, seeds, common overrides).
    note: text under the table (what the numbers are, where they come from).
    reference: key of the row the others are compared with (paired per-seed
        differences); ``None`` or a key absent from ``rows``: no comparison.
    machines: machine description -> number of the table's runs made there
        (one seed's numbers differ between CPU kinds); empty: not known.
    """

    kind: str
    title: str
    metrics: tuple[MetricSpec, ...]
    rows: list[BenchmarkRow]
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    reference: str | None = None
    machines: dict[str, int] = field(default_factory=dict)

    def reference_row(self) -> BenchmarkRow | None:
        """The row the others are compared with, if it is in the table."""
        return next((r for r in self.rows if r.key == self.reference), None)

    def difference(self, row: BenchmarkRow, metric: str) -> PairedDifference | None:
        """``row`` minus the reference row on ``metric``, paired by seed (``None`` without a reference)."""
        ref = self.reference_row()
        if ref is None:
            return None
        return PairedDifference.of(row.by_seed(metric), ref.by_seed(metric))

    def difference_table(self) -> Table | None:
        """Paired per-seed differences of every other row to the reference row, with 95 % intervals."""
        ref = self.reference_row()
        if ref is None:
            return None
        columns = ["system", *(f"Δ {m.label}" + (" (points)" if m.percent else "") for m in self.metrics), "pairs"]
        body = []
        for row in self.rows:
            if row is ref:
                continue
            diffs = [self.difference(row, m.key) for m in self.metrics]
            cells = [d.format(m.percent) + (" *" if d.significant else "") for d, m in zip(diffs, self.metrics)]
            body.append([row.label, *cells, max((d.n for d in diffs), default=0)])
        note = (f"Each system minus {ref.label}, seed by seed, mean and Student-t 95 % confidence interval over "
                "the seeds both have; * marks an interval that excludes 0.")
        return Table(f"Paired differences to {ref.label}", columns, body, note=note)

    def table(self) -> Table:
        columns = ["system", *(m.label + (" (%)" if m.percent else "") for m in self.metrics), "seeds"]
        body = []
        for row in self.rows:
            cells: list[Any] = [row.label]
            for m in self.metrics:
                summary = row.summary(m.key)
                partial = 0 < summary.n < len(row.runs)
                cells.append(summary.format(m.percent) + (f" (n={summary.n})" if partial else ""))
            cells.append(len(row.runs))
            body.append(cells)
        return Table(self.title, columns, body, note=self.note)

    def seed_table(self) -> Table:
        """Every run's numbers, one line per (system, seed)."""
        columns = ["system", "seed", *(m.label for m in self.metrics)]
        percent = frozenset(m.label for m in self.metrics if m.percent)
        body = [[row.label, seed, *(row.runs[seed].get(m.key, math.nan) for m in self.metrics)]
                for row in self.rows for seed in sorted(row.runs)]
        return Table("Per-seed results", columns, body, percent)

    def to_results(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for row in self.rows:
            out[row.key] = {
                "label": row.label,
                "settings": row.settings,
                "seeds": sorted(row.runs),
                "metrics": {m.key: {**dataclasses.asdict(row.summary(m.key)), "values": row.values(m.key)}
                            for m in self.metrics},
                "runs": {str(s): row.runs[s] for s in sorted(row.runs)},
            }
            ref = self.reference_row()
            if ref is not None and row is not ref:
                out[row.key]["paired_difference"] = {
                    "reference": ref.key,
                    **{m.key: dataclasses.asdict(self.difference(row, m.key)) for m in self.metrics}}
        return out

    def _tables(self) -> list[Table]:
        diff = self.difference_table()
        return [self.table(), *([diff] if diff is not None else []), self.seed_table()]

    def report(self) -> Report:
        entries = {f"{row.key}.{m.key}": row.summary(m.key).mean for row in self.rows for m in self.metrics}
        settings = {**self.settings, "reference": self.reference, **({"machines": self.machines} if self.machines else {})}
        return Report(self.kind, self.to_results(), settings=settings,
                      entries=entries, tables=self._tables())

    def to_markdown(self) -> str:
        """The table, the paired differences, then the per-seed numbers (the Report's Markdown without the entry list)."""
        parts = [t.to_markdown() for t in self._tables()]
        if self.machines:
            parts.append("Machines: " + "; ".join(f"{n} run{'s' if n != 1 else ''} on {name}"
                                                 for name, n in self.machines.items()) + ".")
        return "\n\n".join(parts) + "\n"

    def plot(self, path: str | Path) -> Path:
        """A bar chart: one panel per metric, one bar per system (see :mod:`~audioadapt.evaluation.benchmark_plot`)."""
        from audioadapt.evaluation.benchmark_plot import plot_benchmark

        return plot_benchmark(self, path)

    def write(self, out_dir: str | Path, stem: str = "benchmark") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out_dir``."""
        out_dir = Path(out_dir)
        json_path, md_path = write_report(self.report(), out_dir / f"{stem}.json")
        tmp = md_path.with_suffix(".md.tmp")
        tmp.write_text(self.to_markdown(), encoding="utf-8")
        tmp.replace(md_path)
        png = self.plot(out_dir / f"{stem}.png")
        return {"json": json_path, "markdown": md_path, "plot": png}


__all__ = ["BenchmarkRow", "BenchmarkTable", "MetricSpec", "PairedDifference", "Summary"]
