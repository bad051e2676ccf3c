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


def test_paired_difference_is_the_mean_of_per_seed_differences_with_a_t_interval():
    from scipy import stats

    from audioadapt.evaluation.benchmark import PairedDifference

    system = {0: 0.30, 1: 0.42, 2: 0.35, 3: math.nan, 4: 0.50}
    reference = {0: 0.25, 1: 0.40, 2: 0.20, 3: 0.30, 5: 0.9}
    d = PairedDifference.of(system, reference)
    diffs = np.array([0.05, 0.02, 0.15])  # seeds 0-2; seed 3 undefined, 4 and 5 unpaired
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert d.n == 3 and d.mean == pytest.approx(diffs.mean())
    assert (d.ci_low, d.ci_high) == (pytest.approx(diffs.mean() - half), pytest.approx(diffs.mean() + half))
    assert d.significant is False  # the interval reaches below 0 with 3 noisy pairs
    assert d.format(percent=True).startswith("+7.33 [")


def test_a_consistent_gain_is_significant_and_one_pair_has_no_interval():
    from audioadapt.evaluation.benchmark import PairedDifference

    d = PairedDifference.of({s: 0.5 + 0.01 * s for s in range(5)}, {s: 0.4 + 0.011 * s for s in range(5)})
    assert d.significant and d.ci_low > 0
    one = PairedDifference.of({0: 0.5}, {0: 0.4})
    assert one.n == 1 and math.isnan(one.ci_low) and not one.significant
    assert one.format(percent=True) == "+10.00"
    assert PairedDifference.of({0: 0.5}, {1: 0.4}).format(percent=True) == "n/a"


def test_tables_with_a_reference_row_show_and_record_the_paired_differences(tmp_path):
    table = _table()
    table.reference = "a"
    md = table.to_markdown()
    assert "### Paired differences to System A" in md
    assert "| System C | +10.00 [+10.00, +10.00] * | -1.0000 | 2 |" in md  # loss: seed 1 only (seed 0 NaN)
    assert "| System B | +40.00 | n/a | 1 |" in md
    assert "| System A | +" not in md
    data = json.loads(table.write(tmp_path)["json"].read_text())
    c = data["results"]["c"]["paired_difference"]
    assert c["reference"] == "a" and c["event"]["n"] == 2 and c["event"]["mean"] == pytest.approx(0.1)
    assert "paired_difference" not in data["results"]["a"]
    assert data["results"]["c"]["runs"]["1"]["event"] == 0.4  # the per-seed shape is kept
    table.reference = None
    assert "Paired differences" not in table.to_markdown()


def test_the_machines_of_the_runs_are_named_under_the_tables_and_kept_in_the_json(tmp_path):
    table = _table()
    assert "Machines" not in table.to_markdown()
    table.machines = {"CPU X, 2 CPUs": 3, "not recorded": 1}
    assert table.to_markdown().rstrip().endswith("Machines: 3 runs on CPU X, 2 CPUs; 1 run on not recorded.")
    data = json.loads(table.write(tmp_path)["json"].read_text())
    assert data["settings"]["machines"] == {"CPU X, 2 CPUs": 3, "not recorded": 1}
