"""Reports: Markdown tables, JSON with versions, and the SED evaluation report."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from audioadapt.data.manifest import Event as E
from audioadapt.evaluation.api import evaluate_sed
from audioadapt.evaluation.report import (
    MISSING,
    Report,
    Table,
    checkpoint_line,
    format_value,
    fscore_table,
    package_versions,
    write_report,
)
from audioadapt.evaluation.sed_metrics import FScoreResult


def test_format_value():
    assert format_value(0.12345, percent=True) == "12.35"
    assert format_value(0.5) == "0.5000"
    assert format_value(float("nan")) == MISSING
    assert format_value(None) == MISSING
    assert format_value(7) == "7"


def test_table_markdown():
    table = Table("T", ["name", "F1 (%)", "n"], [["a", 0.5, 3], ["b", float("nan"), 0]], frozenset({"F1 (%)"}))
    lines = table.to_markdown().splitlines()
    assert lines[0] == "### T"
    assert lines[2] == "| name | F1 (%) | n |"
    assert lines[3] == "|---|---:|---:|"
    assert lines[4] == "| a | 50.00 | 3 |"
    assert lines[5] == f"| b | {MISSING} | 0 |"


def test_package_versions_lists_installed_packages_only():
    versions = package_versions(("numpy", "surely_not_an_installed_package_xyz"))
    assert set(versions) == {"numpy"}
    import numpy

    assert versions["numpy"] == numpy.__version__


def test_fscore_table_rows_and_columns():
    event = FScoreResult.from_counts("event", ["a", "b"], [1, 0], [2, 1], [1, 0], "zero_score")
    segment = FScoreResult.from_counts("segment", ["a", "b"], [3, 0], [4, 2], [3, 0], "nan")
    table = fscore_table("x", {"event": event, "segment": segment}, measures={"event": ("f_measure",),
                         "segment": ("f_measure", "recall")}, count=("event", "n_ref"))
    assert table.columns == ["class", "event n_ref", "event F1 (%)", "segment F1 (%)", "segment R (%)"]
    assert [row[0] for row in table.rows] == ["a", "b", "macro", "micro"]
    assert table.rows[0][1:] == [2, pytest.approx(2 / 3), pytest.approx(6 / 7), pytest.approx(0.75)]
    assert table.rows[1][2] == 0.0 and math.isnan(table.rows[1][3])  # zero_score vs nan
    assert table.rows[3][1] == 3  # micro n_ref
    other = FScoreResult.from_counts("clip", ["a"], [1], [1], [1], "zero")
    with pytest.raises(ValueError, match="different classes"):
        fscore_table("x", {"event": event, "clip": other})


def test_report_entries_are_unique():
    report = Report("sed", {"x": 1})
    report.add_entry("psds1", 0.35)
    with pytest.raises(ValueError, match="psds1"):
        report.add_entry("psds1", 0.4)


def test_write_report_json_and_markdown(tmp_path):
    report = Report("ser", {"ua": float("nan"), "wa": 0.5}, settings={"k": (1, 2)}, entries={"ua": 0.25})
    report.tables.append(Table("Confusion", ["true", "pred"], [["x", 1]]))
    json_path, md_path = write_report(report, tmp_path / "out" / "results.json")
    assert md_path == tmp_path / "out" / "results.md"
    data = json.loads(json_path.read_text())
    assert data["kind"] == "ser"
    assert data["results"] == {"ua": None, "wa": 0.5}
    assert data["settings"] == {"k": [1, 2]}
    assert "numpy" in data["versions"]
    import torch

    assert data["versions"]["torch"] == torch.__version__  # the metrics of an evaluation depend on it too
    md = md_path.read_text()
    assert "### Confusion" in md and "| ua | 0.2500 |" in md
    with pytest.raises(ValueError):
        write_report(report, tmp_path / "r.md", tmp_path / "r.md")


def _evaluation():
    ref = {"x.wav": [E(0.0, 1.0, "Dog"), E(2.0, 4.0, "Speech")], "empty.wav": []}
    est = {"x.wav": [E(0.1, 1.1, "Dog")], "empty.wav": [E(5.0, 6.0, "Speech")]}
    return evaluate_sed(ref, est)


def test_sed_evaluation_report_contents(tmp_path):
    evaluation = _evaluation()
    # Dog: tp 1 of 1 -> F 1; Speech: tp 0, one FP -> F 0 (zero_score); macro 0.5
    entries = evaluation.entries()
    assert entries["event_macro_f1"] == pytest.approx(0.5)
    assert evaluation.inputs["reference_files_without_events"] == 1
    evaluation.extra["psds1"] = 0.42
    json_path, md_path = write_report(evaluation.report(), tmp_path / "sed.json")
    data = json.loads(json_path.read_text())
    assert data["entries"]["psds1"] == 0.42
    assert set(data["results"]) == {"event", "segment", "segment_zero_score", "clip"}
    assert data["settings"]["t_collar"] == 0.2 and data["settings"]["percentage_of_length"] == 0.2
    assert {"numpy", "audioadapt"} <= set(data["versions"])
    for name in ("sed_eval", "sed_scores_eval"):
        if importlib.util.find_spec(name) is not None:
            assert name in data["versions"]
    md = md_path.read_text()
    assert "| Dog | 1 | 100.00 |" in md
    assert "| psds1 | 0.4200 |" in md
    assert md == evaluation.to_markdown()


def test_extra_entries_may_not_replace_built_in_ones():
    evaluation = _evaluation()
    evaluation.extra["event_macro_f1"] = 1.0
    with pytest.raises(ValueError, match="event_macro_f1"):
        evaluation.entries()


def test_checkpoint_line_names_the_seed_and_a_flat_selection():
    inputs = {"checkpoint": "run/best.pt", "checkpoint_role": "best", "global_epoch": 4, "seed": 2,
              "selection": {"metric": "selection", "mode": "max", "first_value": 0.0, "validations": 4,
                            "never_rose": True}}
    assert checkpoint_line(inputs) == ("Checkpoint: `run/best.pt` (best, epoch 4, seed 2). The selection metric "
                                       "(selection) never rose above its first value 0.0000 in 4 validated epochs: "
                                       "this is the last of the tied epochs")
    risen = {**inputs, "selection": {**inputs["selection"], "never_rose": False}}
    assert checkpoint_line(risen) == "Checkpoint: `run/best.pt` (best, epoch 4, seed 2)"
    assert checkpoint_line({"checkpoint": "x.pt"}) == "Checkpoint: `x.pt` (file, epoch ?)"
