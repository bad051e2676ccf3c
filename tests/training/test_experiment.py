"""Run directories, seeding, determinism and generator states."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import yaml

import audioadapt
from audioadapt.errors import ConfigError
from audioadapt.training.checkpoint import save_checkpoint
from audioadapt.training.experiment import (
    capture_rng_state,
    collect_versions,
    restore_rng_state,
    seed_everything,
    set_deterministic,
    start_experiment,
)


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


def test_start_experiment_writes_config_and_versions(tmp_path):
    run_dir = tmp_path / "runs" / "a"
    with start_experiment(run_dir, RunConfig(lr=0.01), seed=3) as exp:
        assert not exp.resumed
        logging.getLogger("audioadapt.test").info("hello from the run")
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == {"lr": 0.01, "betas": [0.9, 0.999], "name": "toy"}
    versions = json.loads((run_dir / "versions.json").read_text())
    assert versions["audioadapt"] == audioadapt.__version__ and versions["torch"] == torch.__version__
    assert {"python", "numpy", "git_commit", "cuda"} <= versions.keys()
    assert "hello from the run" in (run_dir / "train.log").read_text()
    # the handler is detached once the experiment is closed
    logging.getLogger("audioadapt.test").info("after close")
    assert "after close" not in (run_dir / "train.log").read_text()


def test_existing_run_needs_resume_and_config_changes_are_reported(tmp_path, caplog):
    run_dir = tmp_path / "a"
    start_experiment(run_dir, RunConfig(), seed=0).close()
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
    assert collect_versions()["git_commit"] is None
