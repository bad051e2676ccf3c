"""Benchmark tables: mean +/- sample std over seeds, NaN handling, Markdown / JSON / PNG."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec, Summary

METRICS = (MetricSpec("event", "Event F1"), MetricSpec("loss", "Loss", percent=False))


def test_summary_is_mean_and_sample_std():
    s = Summary.of([0.2, 0.3, 0.4])
    assert s.mean == pytest.approx(0.3) and s.std == pytest.approx(np.std([0.2, 0.3, 0.4], ddof=1)) and s.n == 3
    assert s.format(percent=True) == "30.00 ± 10.00"


def test_summary_leaves_out_undefined_values_and_has_no_spread_for_one_value():
    s = Summary.of([0.5, math.nan, None])
    assert (s.mean, s.n) == (0.5, 1) and math.isnan(s.std)
    assert s.format(percent=True) == "50.00"
    empty = Summary.of([math.nan])
    assert empty.n == 0 and empty.format(percent=False) == "n/a"


def _table() -> BenchmarkTable:
    rows = [BenchmarkRow("a", "System A", {0: {"event": 0.1, "loss": 1.0}, 1: {"event": 0.3, "loss": 3.0}}),
            BenchmarkRow("b", "System B", {0: {"event": 0.5}}),
            BenchmarkRow("c", "System C", {0: {"event": 0.2, "loss": math.nan}, 1: {"event": 0.4, "loss": 2.0}})]
    return BenchmarkTable("test_benchmark", "Toy table", METRICS, rows, settings={"seeds": [0, 1]}, note="toy")


def test_markdown_has_one_line_per_system_and_the_per_seed_lines():
    md = _table().to_markdown()
    assert "| System A | 20.00 ± 14.14 | 2.0000 ± 1.4142 | 2 |" in md
    assert "| System B | 50.00 | n/a | 1 |" in md
    assert "| System C | 30.00 ± 14.14 | 2.0000 (n=1) | 2 |" in md
    assert "| System A | 1 | 30.00 | 3.0000 |" in md  # per-seed table


def test_write_produces_json_markdown_and_plot(tmp_path):
    paths = _table().write(tmp_path)
    data = json.loads(paths["json"].read_text())
    a = data["results"]["a"]
    assert a["metrics"]["event"]["values"] == [0.1, 0.3] and a["seeds"] == [0, 1]
    assert a["metrics"]["event"]["mean"] == pytest.approx(0.2)
    assert data["results"]["b"]["metrics"]["loss"]["mean"] is None  # NaN -> null
    assert data["entries"]["a.event"] == pytest.approx(0.2)
    assert "versions" in data
    assert paths["markdown"].read_text().startswith("### Toy table\n")
    assert paths["plot"].stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp*"))
