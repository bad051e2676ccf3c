"""Learning-rate schedules within a phase, and a resumed run that takes up the schedule where it stopped."""

from __future__ import annotations

import math

import pytest
import torch

from audioadapt.errors import ConfigError
from audioadapt.training import TrainConfig
from audioadapt.training.logging import read_metrics
from audioadapt.training.lr_schedule import apply_lr_factor, lr_factor, remember_base_lr

from . import toy


def test_cosine_runs_from_one_to_the_final_fraction_and_constant_stays():
    assert [lr_factor("constant", s, 10) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]
    assert lr_factor("cosine", 0, 11) == 1.0
    assert lr_factor("cosine", 5, 11) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 11) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("cosine", 10, 11, final=0.1) == pytest.approx(0.1)
    assert lr_factor("cosine", 5, 11, final=0.1) == pytest.approx(0.55)
    values = [lr_factor("cosine", s, 20) for s in range(20)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="unknown"):
        lr_factor("step", 0, 10)  # type: ignore[arg-type]


def test_each_param_group_keeps_its_own_base():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}])
    remember_base_lr(opt)
    apply_lr_factor(opt, 0.5)
    remember_base_lr(opt)  # a second call (after loading a checkpoint) keeps the recorded bases
    apply_lr_factor(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.025, 0.005])


def test_the_final_fraction_is_checked():
    with pytest.raises(ConfigError, match="lr_final"):
        TrainConfig(lr_final=1.5)


def test_every_phase_anneals_from_its_learning_rate(tmp_path):
    run = tmp_path / "run"
    toy.train(run, config={"lr_schedule": "cosine", "lr_final": 0.1})
    rows = read_metrics(run / "metrics.csv")
    lr = {(r["phase"], int(r["epoch"])): float(r["lr"]) for r in rows}
    # the toy has phases of 3 epochs (lr 1e-2) and 2 (its own lr 5e-3); an epoch logs its last step's rate
    assert lr[("one", 3)] == pytest.approx(1e-2 * 0.1) and lr[("two", 2)] == pytest.approx(5e-3 * 0.1)
    assert lr[("two", 1)] > 5e-3 * 0.1
    assert 1e-2 * 0.1 < lr[("one", 2)] < lr[("one", 1)] < 1e-2
    constant = tmp_path / "constant"
    toy.train(constant)
    assert {float(r["lr"]) for r in read_metrics(constant / "metrics.csv")} == {1e-2, 5e-3}


def test_a_resumed_cosine_run_ends_like_an_uninterrupted_one(tmp_path):
    config = {"lr_schedule": "cosine", "lr_final": 0.0}
    ref = tmp_path / "ref"
    toy.train(ref, config=config)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        toy.train(run, config=config, kill_at="step:one:2:1")
    toy.train(run, resume=True, config=config)
    assert (run / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()
    assert math.isfinite(float(read_metrics(run / "metrics.csv")[-1]["lr"]))
