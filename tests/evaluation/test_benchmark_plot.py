"""The benchmark bar chart: a panel per metric in its own unit, error bars from the seeds, wrapped text."""

from __future__ import annotations

import math

import pytest

from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec
from audioadapt.evaluation.benchmark_plot import benchmark_figure, plot_benchmark

METRICS = (MetricSpec("event", "Event-based macro F1"), MetricSpec("psds1", "PSDS1", percent=False))


def _table(rows, title="SED benchmark on tiny (validation split)", reference="base") -> BenchmarkTable:
    return BenchmarkTable("sed_benchmark", title, METRICS, rows, reference=reference)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_one_panel_per_metric_each_in_its_own_unit():
    rows = [BenchmarkRow("base", "Our baseline", {0: {"event": 0.2, "psds1": 0.1}, 1: {"event": 0.3, "psds1": 0.2}}),
            BenchmarkRow("adv", "Adv.time", {0: {"event": 0.4, "psds1": 0.3}, 1: {"event": 0.5, "psds1": 0.35}})]
    fig = benchmark_figure(_table(rows))
    event, psds = fig.axes
    assert (event.get_title(), psds.get_title()) == ("Event-based macro F1", "PSDS1")
    assert (event.get_xlabel(), psds.get_xlabel()) == ("%", "score")
    assert 50 < event.get_xlim()[1] <= 100 and 0.35 < psds.get_xlim()[1] < 1  # PSDS never on the % axis
    assert [b.get_width() for b in event.patches] == pytest.approx([25.0, 45.0])
    assert _texts(event) == ["25.0 ± 7.1", "45.0 ± 7.1"] and _texts(psds) == ["0.150 ± 0.071", "0.325 ± 0.035"]
    assert len(event.collections) >= 2  # whiskers: the seeds' sample std
    assert [t.get_text() for t in event.get_yticklabels()] == ["Our baseline", "Adv.time"]
    assert any(line.get_linestyle() == "--" and line.get_xdata()[0] == pytest.approx(25.0) for line in event.lines)


def test_an_all_zero_chart_shows_the_metric_s_whole_range():
    rows = [BenchmarkRow(k, k, {s: {"event": 0.0, "psds1": 0.0} for s in (0, 1, 2)}) for k in ("base", "adv")]
    event, psds = benchmark_figure(_table(rows)).axes
    assert event.get_xlim() == (0.0, 100.0) and psds.get_xlim() == (0.0, 1.0)
    assert _texts(event) == ["0.0 ± 0.0", "0.0 ± 0.0"]


def test_one_seed_has_no_whiskers_and_an_undefined_value_says_n_a():
    rows = [BenchmarkRow("base", "Our baseline", {0: {"event": 0.2, "psds1": math.nan}}),
            BenchmarkRow("adv", "Adv.time", {0: {"event": 0.3, "psds1": 0.25}})]
    fig = benchmark_figure(_table(rows))
    event, psds = fig.axes
    assert not event.collections  # neither whiskers nor seed dots
    assert _texts(event) == ["20.0", "30.0"] and _texts(psds) == ["n/a", "0.250"]
    assert "1 per system" in fig._supxlabel.get_text() and "whiskers" not in fig._supxlabel.get_text()


def test_long_titles_and_names_are_wrapped_and_the_file_is_written(tmp_path):
    long_name = "Mean teacher (DCASE 2019 baseline method) with a frame-level domain classifier"
    rows = [BenchmarkRow("base", "Our baseline", {0: {"event": 0.2, "psds1": 0.1}}),
            BenchmarkRow("mt", long_name, {0: {"event": 0.3, "psds1": 0.2}})]
    title = "Park et al.'s Table 1 rows on the generated small dataset (seed 0), real-domain validation clips, " * 2
    table = _table(rows, title=title)
    fig = benchmark_figure(table)
    assert fig._suptitle.get_text().count("\n") >= 1
    label = fig.axes[0].get_yticklabels()[1].get_text()
    assert "\n" in label and label.replace("\n", " ") == long_name
    path = plot_benchmark(table, tmp_path / "benchmark.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".*tmp"))
