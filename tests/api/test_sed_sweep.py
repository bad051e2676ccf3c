"""``audioadapt sed sweep``: grid axes, ranking on the internal selection metric, no validation split read."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from audioadapt.api.benchmark import RowSpec
from audioadapt.api.sweep import SweepAxis, grid_points, selected_epoch_metrics, sweep_rows
from audioadapt.cli.main import main
from audioadapt.errors import ConfigError


def test_axes_split_values_at_top_level_commas_only():
    axis = SweepAxis.parse("model.crnn.pooling=[[2, 4], [2, 8]],[[1, 4], [2, 8]]")
    assert axis == SweepAxis("model.crnn.pooling", ("[[2, 4], [2, 8]]", "[[1, 4], [2, 8]]"))
    assert SweepAxis.parse("a.b = 0.1, 0.3").values == ("0.1", "0.3")
    for bad in ("a.b", "=1,2", "a.b=", "a.b=1,,2", "a.b=1,1"):
        with pytest.raises(ConfigError, match="--grid"):
            SweepAxis.parse(bad)


def test_grid_points_are_every_combination_in_order():
    axes = [SweepAxis("x", ("1", "2")), SweepAxis("y", ("a", "b", "c"))]
    points = grid_points(axes)
    assert len(points) == 6 and points[0] == ("x=1", "y=a") and points[-1] == ("x=2", "y=c")
    rows = sweep_rows(RowSpec("adv_time", "Adv.time", "sed_adv_time", ("z=0",)), points[:2])
    assert [(r.key, r.label, r.overrides) for r, _ in rows] == [("adv_time-0", "x=1, y=a", ("z=0",)),
                                                               ("adv_time-1", "x=1, y=b", ("z=0",))]
    with pytest.raises(ConfigError, match="twice"):
        grid_points([SweepAxis("x", ("1",)), SweepAxis("x", ("2",))])
    with pytest.raises(ConfigError, match="at least one"):
        grid_points([])


def test_selected_epoch_metrics_read_the_validation_columns_of_that_epoch(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "phase,epoch,global_epoch,train/loss,val/selection,val/weak_clip_f1\n"
        "phase1,1,1,0.9,0.2,0.1\nphase1,2,2,0.8,0.5,\nphase2,1,3,0.7,0.4,0.3\n", encoding="utf-8")
    assert selected_epoch_metrics(tmp_path, 2) == {"selection": 0.5}
    assert selected_epoch_metrics(tmp_path, 3) == {"selection": 0.4, "weak_clip_f1": 0.3}
    assert selected_epoch_metrics(tmp_path, None) == {}


def test_sweep_ranks_points_without_reading_the_validation_split(sed_tiny_dataset, sed_tiny_profile, tmp_path,
                                                                 capsys):
    data = tmp_path / "data"
    shutil.copytree(sed_tiny_dataset, data, ignore=shutil.ignore_patterns("cache"))
    for folder in ("metadata/validation", "audio/validation"):  # the sweep must not need them
        shutil.rmtree(data / folder)
    out = tmp_path / "sweep"
    args = ["sed", "sweep", "--row", "baseline", "--data", str(data), "--out", str(out), "--profile",
            str(sed_tiny_profile), "--grid", "train.lr=1e-2,1e-4", "--seeds", "0"]
    assert main(args) == 0
    result = json.loads((out / "sweep.json").read_text())["results"]
    assert set(result) == {"baseline-0", "baseline-1"}
    means = [row["metrics"]["selection"]["mean"] for row in result.values()]
    assert means == sorted(means, reverse=True)  # ranked best first
    for key, row in result.items():
        assert row["settings"]["point"] == [f"train.lr={'1e-2' if key.endswith('-0') else '1e-4'}"]
        run = out / "runs" / key / "seed0"
        assert not list(run.glob("eval_*"))  # nothing was scored on a labelled real-domain split
    assert "train.lr=1e-2" in capsys.readouterr().out
    lrs = {key: yaml.safe_load((out / "runs" / key / "seed0" / "config.yaml").read_text())["train"]["lr"]
           for key in result}
    assert lrs == {"baseline-0": 1e-2, "baseline-1": 1e-4}  # the point wins over the profile's lr
    assert main(args) == 0  # a second call reuses the finished runs
    other = [a if a != "train.lr=1e-2,1e-4" else "train.lr=1e-3,1e-4" for a in args]
    assert main(other) == 2  # another grid in the same folder would mix points up
    assert "baseline-0/seed0 (train.lr)" in capsys.readouterr().err


def test_sweep_refuses_unknown_rows_and_bad_points(sed_tiny_dataset, tmp_path, capsys):
    base = ["sed", "sweep", "--data", str(sed_tiny_dataset), "--out", str(tmp_path / "s"), "--seeds", "0"]
    assert main([*base, "--row", "nope", "--grid", "train.lr=1e-3"]) == 2
    assert "unknown benchmark row" in capsys.readouterr().err
    assert main([*base, "--row", "baseline", "--grid", "train.lrr=1e-3"]) == 2
    assert "unknown config key 'train.lrr'" in capsys.readouterr().err
    assert not (tmp_path / "s" / "runs").exists()
