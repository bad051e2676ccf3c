"""The bar chart of a benchmark table: one panel per metric, one horizontal bar per system.

Each panel has its own axis in its own unit (percent for F1 and UA/WA, the
raw value for PSDS), starting at 0, so a score on a 0-1 scale never shares
the axis of a percentage and an all-zero panel still shows its full range.
A bar is the mean over seeds, its whisker the sample standard deviation and
the dots the single seeds (with two seeds or more); the value is written at
the end of the bar. The reference system's mean (the baseline) is a dashed
line across its panel. Long titles and system names are wrapped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audioadapt.evaluation.figures import new_figure, save_png, wrap

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec

#: Inches: the system-name column, one metric panel, one system's row, the title and note lines.
_NAMES_WIDTH, _PANEL_WIDTH, _ROW_HEIGHT, _LINE_HEIGHT = 2.4, 2.8, 0.38, 0.22
#: Characters per line of a wrapped system name, and of text per inch of figure width.
_NAME_CHARS, _CHARS_PER_INCH = 26, 11
#: Share of a panel's width left right of the longest bar for its value.
_TEXT_ROOM = 0.35


def _scale(metric: MetricSpec) -> float:
    return 100.0 if metric.percent else 1.0


def _bar(row: BenchmarkRow, metric: MetricSpec) -> tuple[float, float, list[float]]:
    """Mean, spread (0 when undefined) and the finite per-seed values of ``row`` in the panel's unit."""
    scale = _scale(metric)
    summary = row.summary(metric.key)
    seeds = [v * scale for v in row.values(metric.key) if math.isfinite(v)]
    spread = 0.0 if math.isnan(summary.std) else summary.std * scale
    return summary.mean * scale, spread, seeds


def _value_text(mean: float, spread: float, n: int, percent: bool) -> str:
    if math.isnan(mean):
        return "n/a"
    digits = 1 if percent else 3
    return f"{mean:.{digits}f}" + (f" ± {spread:.{digits}f}" if n > 1 else "")


def _limits(bars: list[tuple[float, float, list[float]]], metric: MetricSpec) -> tuple[float, float]:
    """The panel's x range: from 0 (or below the lowest value) to room right of the highest bar."""
    ends = [x for mean, spread, seeds in bars if not math.isnan(mean) for x in (mean + spread, *seeds)]
    starts = [x for mean, spread, seeds in bars if not math.isnan(mean) for x in (mean - spread, *seeds)]
    high, low = max(ends, default=0.0), min(starts, default=0.0)
    full = _scale(metric)  # 100 % or 1
    if high <= 0.0 and low >= 0.0:  # all zero (or nothing): the metric's whole range
        return 0.0, full
    top = max(high, 0.0) / (1.0 - _TEXT_ROOM)
    return min(low, 0.0) * 1.1, top if top > 0 else 0.05 * full


def _panel(ax: Any, table: BenchmarkTable, metric: MetricSpec, colors: list[Any], names: list[str],
           first: bool) -> None:
    bars = [_bar(row, metric) for row in table.rows]
    low, high = _limits(bars, metric)
    ys = np.arange(len(table.rows))
    for y, (mean, spread, seeds), row, color in zip(ys, bars, table.rows, colors):
        n = row.summary(metric.key).n
        if not math.isnan(mean):
            ax.barh(y, mean, height=0.62, color=color, edgecolor="black", linewidth=0.4)
            if n > 1:
                ax.errorbar(mean, y, xerr=spread, fmt="none", ecolor="black", elinewidth=1.0, capsize=3)
                ax.plot(seeds, np.full(len(seeds), y), "o", color="black", markersize=2.6, alpha=0.75,
                        markeredgewidth=0)
        right = max([0.0 if math.isnan(mean) else mean + spread, *seeds])
        ax.text(right + 0.02 * (high - low), y, _value_text(mean, spread, n, metric.percent), va="center",
                ha="left", fontsize=8)
    ref = table.reference_row()
    if ref is not None and len(table.rows) > 1:
        mean = ref.summary(metric.key).mean * _scale(metric)
        if not math.isnan(mean):
            ax.axvline(mean, color="dimgrey", linestyle="--", linewidth=0.9, zorder=0.5)
    ax.set_xlim(low, high)
    ax.set_ylim(len(table.rows) - 0.5, -0.5)  # the table's order, top to bottom
    if first:  # the panels share the y axis: the names once, left of the first panel
        ax.set_yticks(ys, names, fontsize=8.5)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("%" if metric.percent else "score", fontsize=8)
    ax.set_title(wrap(metric.label, int(_PANEL_WIDTH * _CHARS_PER_INCH)), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _note(table: BenchmarkTable) -> str:
    """What the marks mean, under the panels."""
    seeds = sorted({len(r.runs) for r in table.rows})
    counts = "/".join(str(n) for n in seeds) if seeds else "0"
    parts = [f"Bars: mean over seeds ({counts} per system)"]
    if any(n > 1 for n in seeds):
        parts.append("whiskers: ± sample std; dots: single seeds")
    ref = table.reference_row()
    if ref is not None and len(table.rows) > 1:
        parts.append(f"dashed line: {ref.label}")
    return "; ".join(parts) + "."


def plot_benchmark(table: BenchmarkTable, path: str | Path) -> Path:
    """Draw ``table`` as a PNG at ``path`` (see the module docstring); returns the path."""
    return save_png(benchmark_figure(table), path, dpi=110)


def benchmark_figure(table: BenchmarkTable) -> Any:
    """The figure :func:`plot_benchmark` writes (a matplotlib ``Figure``)."""
    import matplotlib

    n_rows, n_metrics = max(len(table.rows), 1), max(len(table.metrics), 1)
    names = [wrap(row.label, _NAME_CHARS) for row in table.rows]
    name_lines = max((n.count("\n") + 1 for n in names), default=1)
    width = _NAMES_WIDTH + _PANEL_WIDTH * n_metrics
    title = wrap(table.title, int(width * _CHARS_PER_INCH * 0.9))
    note = wrap(_note(table), int(width * _CHARS_PER_INCH * 1.2))
    label_lines = max((wrap(m.label, int(_PANEL_WIDTH * _CHARS_PER_INCH)).count("\n") + 1 for m in table.metrics),
                      default=1)
    height = (1.2 + n_rows * _ROW_HEIGHT * max(1.0, 0.75 * name_lines)
              + _LINE_HEIGHT * (title.count("\n") + note.count("\n") + label_lines + 2))
    fig = new_figure(width, height, layout="constrained")
    axes = fig.subplots(1, n_metrics, squeeze=False, sharey=True)[0]
    palette = matplotlib.colormaps["tab10" if len(table.rows) <= 10 else "tab20"]
    colors = ["lightgrey" if row.key == table.reference else palette(i % palette.N)
              for i, row in enumerate(table.rows)]
    for k, (ax, metric) in enumerate(zip(axes, table.metrics)):
        _panel(ax, table, metric, colors, names, k == 0)
    fig.suptitle(title, fontsize=10.5)
    fig.supxlabel(note, fontsize=7.5, color="dimgrey")
    return fig


__all__ = ["benchmark_figure", "plot_benchmark"]
