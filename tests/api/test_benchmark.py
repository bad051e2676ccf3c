"""The benchmark grid runner: finished cells are skipped, cut-short ones resumed, failures recorded."""

from __future__ import annotations

import json

import pytest

from audioadapt.api.benchmark import (CELL_FILE, Cell, Profile, RowSpec, check_finished, parse_seeds, read_profile,
                                      run_grid, select_rows, split_profile)
from audioadapt.errors import ConfigError, DataError

ROWS = (RowSpec("a", "A", "preset_a"), RowSpec("b", "B", "preset_b", ("x.y=1",)))


def _grid(seeds=(0, 1)):
    return [Cell(r, s) for r in ROWS for s in seeds]


def test_every_cell_runs_once_and_is_skipped_afterwards(tmp_path):
    calls = []

    def run_cell(cell, run_dir, resume):
        calls.append((cell.row.key, cell.seed, resume))
        run_dir.mkdir(parents=True)
        return {"score": cell.seed + (10 if cell.row.key == "b" else 0)}

    result = run_grid(_grid(), tmp_path, run_cell)
    assert sorted(calls) == [("a", 0, False), ("a", 1, False), ("b", 0, False), ("b", 1, False)]
    assert result.metrics[("b", 1)] == {"score": 11.0}
    saved = json.loads((tmp_path / "runs" / "b" / "seed1" / CELL_FILE).read_text())
    assert saved["metrics"] == {"score": 11.0} and saved["overrides"] == ["x.y=1"]
    calls.clear()
    again = run_grid(_grid(), tmp_path, run_cell)
    assert calls == [] and again.metrics == result.metrics
    run_grid(_grid(), tmp_path, lambda c, d, r: calls.append(c) or (d.mkdir(parents=True), {"score": 0})[1],
             rerun=True)
    assert len(calls) == 4


def test_a_cell_with_a_checkpoint_is_resumed_and_one_without_is_restarted(tmp_path):
    with_ckpt = Cell(ROWS[0], 0).run_dir(tmp_path)
    with_ckpt.mkdir(parents=True)
    (with_ckpt / "last.pt").write_bytes(b"x")
    without = Cell(ROWS[0], 1).run_dir(tmp_path)
    without.mkdir(parents=True)
    (without / "config.yaml").write_text("stale")
    seen = {}

    def run_cell(cell, run_dir, resume):
        seen[cell.seed] = (resume, run_dir.exists())
        run_dir.mkdir(parents=True, exist_ok=True)
        return {"score": 1.0}

    run_grid(_grid()[:2], tmp_path, run_cell)
    assert seen == {0: (True, True), 1: (False, False)}


def test_failures_are_recorded_and_the_grid_goes_on(tmp_path):
    def run_cell(cell, run_dir, resume):
        if cell.row.key == "a":
            raise DataError("broken clip", "x.wav")
        run_dir.mkdir(parents=True)
        return {"score": 2.0}

    result = run_grid(_grid(), tmp_path, run_cell)
    assert set(result.failures) == {("a", 0), ("a", 1)} and "broken clip" in result.failures[("a", 0)]
    assert set(result.metrics) == {("b", 0), ("b", 1)}
    assert "DataError" in (tmp_path / "runs" / "a" / "seed0" / "error.txt").read_text()
    assert not (tmp_path / "runs" / "a" / "seed0" / CELL_FILE).exists()
    with pytest.raises(DataError):
        run_grid(_grid(), tmp_path / "strict", run_cell, keep_going=False)


def test_profile_keys_a_row_ignores_are_left_out_with_the_reason():
    applied, skipped = split_profile({"train.epochs": 3, "method.phase2_epochs": 2, "model.crnn.filters": [8, 16]},
                                     {"method.phase2_epochs": "no tri-training"})
    assert applied == ["train.epochs=3", "model.crnn.filters=[8, 16]"]
    assert skipped == {"method.phase2_epochs": "no tri-training"}


def test_profile_rows_section_and_overrides(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train: {epochs: 3}\nrows:\n  b: {train: {epochs: 5}, x: {z: 2}}\n")
    prof = read_profile(path)
    assert prof.items_for("a") == {"train.epochs": 3}
    assert prof.items_for("b") == {"train.epochs": 5, "x.z": 2}
    forced = prof.with_overrides({"train.epochs": 9})
    assert forced.items_for("b") == {"train.epochs": 9, "x.z": 2}
    prof.check_rows(["a", "b"])
    with pytest.raises(ConfigError, match="unknown benchmark row"):
        prof.check_rows(["a"], str(path))
    assert read_profile(None) == Profile()
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows: [1, 2]\n")
    with pytest.raises(ConfigError, match="rows"):
        read_profile(bad)


def test_a_profile_extends_another_row_section_by_row_section(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 3, lr: 0.1}\nrows:\n  b: {train: {epochs: 5}, x: {z: 2}}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\ntrain: {lr: 0.2}\nrows:\n  b: {x: {z: 7}}\n  a: {y: 1}\n")
    prof = read_profile(child)
    assert prof.items_for("a") == {"train.epochs": 3, "train.lr": 0.2, "y": 1}
    assert prof.items_for("b") == {"train.epochs": 5, "train.lr": 0.2, "x.z": 7}
    shipped = tmp_path / "cpu.yaml"  # a shipped profile by name
    shipped.write_text("extends: sed_cpu\nrows:\n  mean_teacher: {method: {synthetic_clip_loss: false}}\n")
    items = read_profile(shipped).items_for("mean_teacher")
    assert items["method.synthetic_clip_loss"] is False and items["method.mean_teacher.ema_decay"] == 0.99
    assert items["train.epochs"] == read_profile("sed_cpu").items_for("mean_teacher")["train.epochs"]
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="in a loop"):
        read_profile(tmp_path / "loop.yaml")
    (tmp_path / "odd.yaml").write_text("extends: [base.yaml]\n")
    with pytest.raises(ConfigError, match="must name one profile"):
        read_profile(tmp_path / "odd.yaml")
    (tmp_path / "gone.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        read_profile(tmp_path / "gone.yaml")


def test_row_and_seed_selection():
    assert [r.key for r in select_rows(ROWS, ["b"])] == ["b"]
    assert select_rows(ROWS, None) == list(ROWS)
    with pytest.raises(ConfigError, match="unknown benchmark row"):
        select_rows(ROWS, ["c"])
    assert parse_seeds([2, 1, 2]) == (2, 1)
    with pytest.raises(ConfigError):
        parse_seeds([])


def test_the_benchmark_bar_obeys_train_progress_bar(tmp_path, capsys):
    def run_cell(cell, run_dir, resume):
        run_dir.mkdir(parents=True, exist_ok=True)
        return {"score": 1.0}

    run_grid(_grid(), tmp_path / "on", run_cell)
    assert "benchmark" in capsys.readouterr().err  # the library shows the bar where it is asked for
    run_grid(_grid(), tmp_path / "off", run_cell, progress=False)
    assert capsys.readouterr().err == ""
    assert Profile().progress_bar()
    assert not Profile().with_overrides({"train.progress_bar": False}).progress_bar()


def test_a_cell_keeps_the_run_s_selection_and_a_flat_one_is_logged(tmp_path, caplog):
    def run_cell(cell, run_dir, resume):
        run_dir.mkdir(parents=True, exist_ok=True)
        never = cell.seed == 1
        selection = {"metric": "selection", "value": 0.0, "global_epoch": 4, "never_rose": never}
        (run_dir / "summary.json").write_text(json.dumps({"selection": selection}))
        return {"score": 1.0}

    run_grid(_grid(), tmp_path, run_cell)
    cell = json.loads((Cell(ROWS[0], 1).run_dir(tmp_path) / CELL_FILE).read_text())
    assert cell["selection"] == {"metric": "selection", "value": 0.0, "global_epoch": 4, "never_rose": True}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"benchmark cell {r} seed 1: the selection metric selection never rose above its first value; "
                        "its numbers are those of the last tied epoch (4)" for r in ("a", "b")]


def test_each_cell_records_its_machine_and_the_grid_counts_them(tmp_path, monkeypatch):
    import audioadapt.api.benchmark as bench

    monkeypatch.setattr(bench, "machine_description", lambda: "CPU X, 2 CPUs, Linux x86_64")

    def run_cell(cell, run_dir, resume):
        run_dir.mkdir(parents=True)
        return {"score": 1.0}

    run_grid(_grid()[:3], tmp_path, run_cell)
    saved = json.loads((Cell(ROWS[0], 0).run_dir(tmp_path) / CELL_FILE).read_text())
    assert saved["machine"] == "CPU X, 2 CPUs, Linux x86_64"
    # a cell written before runs named their machine
    legacy = Cell(ROWS[1], 1).run_dir(tmp_path)
    legacy.mkdir(parents=True)
    (legacy / CELL_FILE).write_text(json.dumps({"metrics": {"score": 3.0}}))
    monkeypatch.setattr(bench, "machine_description", lambda: "CPU Y, 2 CPUs, Linux x86_64")
    result = run_grid(_grid(), tmp_path, run_cell)
    assert result.machine_counts(["a", "b"], [0, 1]) == {"CPU X, 2 CPUs, Linux x86_64": 3,
                                                        bench.UNRECORDED_MACHINE: 1}
    assert result.machine_counts(["a"], [0]) == {"CPU X, 2 CPUs, Linux x86_64": 1}


def test_finished_cells_of_other_settings_are_refused_before_anything_runs(tmp_path):
    def run_cell(cell, run_dir, resume):
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(f"train:\n  lr: 0.1\n  progress_bar: true\nold_key: {cell.seed}\n")
        return {"score": 1.0}

    run_grid(_grid(), tmp_path, run_cell)
    same = {"train": {"lr": 0.1, "progress_bar": False}, "new_key": 3}  # added keys and logging do not count

    def config_of(lr):
        return lambda cell: {**same, "train": {**same["train"], "lr": lr}, "old_key": cell.seed}

    calls = []
    run_grid(_grid(), tmp_path, lambda c, d, r: calls.append(c), config_of=config_of(0.1))
    assert calls == []
    with pytest.raises(ConfigError, match=r"4 finished run\(s\).*a/seed0 \(train.lr\).*--rerun"):
        run_grid(_grid(), tmp_path, lambda c, d, r: calls.append(c), config_of=config_of(0.2))
    assert calls == []
    check_finished(_grid(), tmp_path, config_of(0.2), ignore=("train",))  # ignored prefixes may differ
    with pytest.raises(ConfigError, match=r"1 finished run\(s\).*b/seed1 \(old_key\)"):
        check_finished(_grid(), tmp_path, lambda c: {**same, "old_key": 0 if c.seed == 1 and c.row.key == "b" else c.seed},
                       ignore=("train.progress_bar",))
    # with rerun the cells train again
    run_grid(_grid(), tmp_path, lambda c, d, r: calls.append(c) or (d.mkdir(parents=True), {"score": 0})[1],
             rerun=True, config_of=config_of(0.2))
    assert len(calls) == 4
