"""Run directories, seeding, determinism and generator states."""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import yaml

import audioadapt
from audioadapt import console
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.checkpoint import save_checkpoint
from audioadapt.training.experiment import (
    capture_rng_state,
    collect_versions,
    git_state,
    record_data,
    restore_rng_state,
    seed_everything,
    set_deterministic,
    start_experiment,
)
from audioadapt.training.run_lock import RunLock


@dataclass(frozen=True)
class RunConfig:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    name: str = "toy"


def _draw():
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(5)
    first = _draw()
    seed_everything(5)
    assert _draw() == first
    seed_everything(6)
    assert _draw() != first
    with pytest.raises(ConfigError, match="seed"):
        seed_everything(-1)


def test_generator_states_survive_a_weights_only_checkpoint(tmp_path):
    seed_everything(1)
    np.random.randn()  # leave a cached gaussian in numpy's state
    state = capture_rng_state()
    expected = _draw()
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")
    _draw()
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert _draw() == expected


def test_start_experiment_writes_config_and_versions(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "a"
    monkeypatch.setattr(console, "_command", None)
    console.set_command(["audioadapt", "sed", "train", "sed_baseline", "--out", "runs/my run"])
    with start_experiment(run_dir, RunConfig(lr=0.01), seed=3) as exp:
        assert not exp.resumed
        logging.getLogger("audioadapt.test").info("hello from the run")
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == {"lr": 0.01, "betas": [0.9, 0.999], "name": "toy"}
    versions = json.loads((run_dir / "versions.json").read_text())
    assert versions["audioadapt"] == audioadapt.__version__ and versions["torch"] == torch.__version__
    assert {"python", "numpy", "cuda"} <= versions.keys()
    assert versions["command"] == ["audioadapt", "sed", "train", "sed_baseline", "--out", "runs/my run"]
    log_text = (run_dir / "train.log").read_text()
    assert "hello from the run" in log_text
    assert f"starting run in {run_dir}: audioadapt sed train sed_baseline --out 'runs/my run'" in log_text
    # the handler is detached once the experiment is closed
    logging.getLogger("audioadapt.test").info("after close")
    assert "after close" not in (run_dir / "train.log").read_text()


def test_the_package_logger_level_is_restored_when_the_run_closes(tmp_path):
    logger = logging.getLogger("audioadapt")
    before = logger.level
    root_before = logging.getLogger().level
    logging.getLogger().setLevel(logging.WARNING)  # library use: INFO records are not shown
    try:
        with start_experiment(tmp_path / "run", RunConfig(), seed=0):
            assert logger.getEffectiveLevel() == logging.INFO  # the run's INFO lines reach train.log
        assert logger.level == before  # and a later -v / DEBUG setting is not masked
    finally:
        logging.getLogger().setLevel(root_before)


def test_existing_run_needs_resume_and_config_changes_are_reported(tmp_path, caplog):
    run_dir = tmp_path / "a"
    start_experiment(run_dir, RunConfig(), seed=0).close()
    save_checkpoint({"progress": {}}, run_dir / "last.pt")  # a run once it has a checkpoint
    with pytest.raises(ConfigError, match="already holds a run"):
        start_experiment(run_dir, RunConfig(), seed=0)
    with caplog.at_level(logging.WARNING, logger="audioadapt"):
        exp = start_experiment(run_dir, RunConfig(lr=0.5), seed=0, resume=True)
    exp.close()
    assert exp.resumed
    assert "changed config: lr" in caplog.text
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lr"] == 1e-3  # the original stays


def test_start_experiment_seeds_and_non_zero_ranks_write_nothing(tmp_path):
    start_experiment(tmp_path / "r1", RunConfig(), seed=9, rank=1)
    first = _draw()
    assert not (tmp_path / "r1").exists()
    seed_everything(9)
    assert _draw() == first


def test_set_deterministic_toggles_torch():
    try:
        set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_collect_versions_without_git(monkeypatch):
    import subprocess

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    versions = collect_versions()
    assert "git_commit" not in versions and "git_dirty" not in versions  # absent outside a checkout
    assert versions["command"]  # the process's own command line when the CLI recorded none


@pytest.mark.parametrize("status, dirty", [("", False), (" M src/audioadapt/cli/main.py\n", True)])
def test_git_state_records_the_commit_and_whether_the_tree_was_dirty(monkeypatch, status, dirty):
    import subprocess

    def fake_git(args, **kwargs):
        out = "0123abc\n" if args[1] == "rev-parse" else status
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_git)
    assert git_state() == {"git_commit": "0123abc", "git_dirty": dirty}
    assert collect_versions()["git_dirty"] is dirty


def test_git_state_outside_a_checkout_is_empty(monkeypatch):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 128, "", "not a repo"))
    assert git_state() == {}


def test_resume_of_a_directory_without_a_run_is_refused(tmp_path):
    for run_dir in (tmp_path / "missing", tmp_path):
        with pytest.raises(ConfigError, match=r"holds no run to resume \(no config\.yaml\)"):
            start_experiment(run_dir, RunConfig(), seed=0, resume=True)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_a_directory_left_before_the_first_checkpoint_is_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "a"
    start_experiment(run_dir, RunConfig(name="failed"), seed=0).close()  # e.g. a bad dataset path
    with caplog.at_level(logging.INFO, logger="audioadapt"):
        with start_experiment(run_dir, RunConfig(name="fixed"), seed=0) as exp:
            assert not exp.resumed
    assert "taking over the directory of a training that stopped before its first checkpoint" in caplog.text
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["name"] == "fixed"
    # --resume of such a directory starts the run afresh as well, with the config given now
    with start_experiment(run_dir, RunConfig(name="resumed"), seed=0, resume=True) as exp:
        assert not exp.resumed
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["name"] == "resumed"
    save_checkpoint({"progress": {}}, run_dir / "best.pt")
    with pytest.raises(ConfigError, match="already holds a run"):
        start_experiment(run_dir, RunConfig(), seed=0)
    assert (run_dir / "best.pt").is_file()


def test_one_training_at_a_time_per_run_directory(tmp_path):
    run_dir = tmp_path / "a"
    first = start_experiment(run_dir, RunConfig(), seed=0)
    for resume in (True, False):
        with pytest.raises(ConfigError, match=rf"a: in use by another training \(pid {os.getpid()}\)"):
            start_experiment(run_dir, RunConfig(), seed=0, resume=resume)
    start_experiment(run_dir, RunConfig(), seed=0, resume=True, rank=1).close()  # only rank 0 locks
    first.close()
    start_experiment(run_dir, RunConfig(), seed=0, resume=True).close()


def test_unwritable_run_directory_is_a_one_line_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match=r"file/run: cannot write the run directory: .*; choose a writable"):
        start_experiment(blocker / "run", RunConfig(), seed=0)

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    def read_only(run_dir):
        raise PermissionError(13, "Permission denied", str(run_dir / "run.lock"))

    monkeypatch.setattr(RunLock, "acquire", read_only)  # an existing folder without write permission
    with pytest.raises(DataError, match=r"ro: cannot write the run directory: Permission denied \(.*ro/run\.lock\)"):
        start_experiment(tmp_path / "ro", RunConfig(), seed=0)
    monkeypatch.setattr(type(tmp_path), "mkdir", denied)
    with pytest.raises(DataError, match=r"ro/run: cannot write the run directory: Permission denied; choose"):
        start_experiment(tmp_path / "ro" / "run", RunConfig(), seed=0)


SUMMARY = {"root": "/data/a", "classes": ["dog", "cat"], "clips": {"weak": 10}, "valid_files": {"weak": ["x.wav"]}}


def test_data_record_is_written_once_and_checked_on_resume(tmp_path, caplog):
    record_data(tmp_path, SUMMARY, resumed=False)
    saved = (tmp_path / "data.json").read_bytes()
    assert json.loads(saved) == SUMMARY
    with caplog.at_level(logging.INFO, logger="audioadapt"):
        record_data(tmp_path, {**SUMMARY, "root": "/moved/a"}, resumed=True)  # the same clips elsewhere
    assert "another place (root)" in caplog.text
    record_data(tmp_path, {**SUMMARY, "split": {"purity": 0.5}}, resumed=True)  # a statistic a later version adds
    with pytest.raises(DataError, match=r"\(classes differ"):
        record_data(tmp_path, {k: v for k, v in SUMMARY.items() if k != "classes"}, resumed=True)  # one it lost
    other = {**SUMMARY, "root": "/data/b", "clips": {"weak": 0}, "valid_files": {"weak": []}}
    with pytest.raises(DataError, match=r"data\.json: resuming on other data than the run was trained on "
                                        r"\(clips\.weak, root, valid_files\.weak differ"):
        record_data(tmp_path, other, resumed=True)
    assert (tmp_path / "data.json").read_bytes() == saved  # a resume never rewrites the record
    record_data(tmp_path, other, resumed=False)  # a new run writes its own
    assert json.loads((tmp_path / "data.json").read_text())["root"] == "/data/b"
