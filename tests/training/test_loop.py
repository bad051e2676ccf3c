"""The Trainer: phases, hooks, optimisation settings, selection, logs."""

from __future__ import annotations

import json
import logging
import math
import re

import pytest
import torch
from torch import nn

from audioadapt import __version__
from audioadapt.config.load import from_dict
from audioadapt.errors import ConfigError, DataError
from audioadapt.training import (
    DistInfo,
    Method,
    PhaseSpec,
    StepOutput,
    TrainConfig,
    Trainer,
    load_checkpoint,
)
from audioadapt.training.logging import read_metrics
from audioadapt.training.loop import NonFiniteError

from . import toy


class Regression(Method):
    """One linear layer fitted to ``y = x @ w`` (a one-phase method)."""

    selection_metric = "mse"
    selection_mode = "min"

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.net = nn.Linear(4, 1)
        self.x = torch.randn(64, 4, generator=gen)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.eval_calls = []

    def networks(self):
        return {"net": self.net}

    def training_step(self, batch, ctx):
        x, y = batch
        return StepOutput(nn.functional.mse_loss(self.net(x), y))

    def validate(self, ctx):
        self.eval_calls.append((torch.is_grad_enabled(), self.net.training))
        return {"mse": nn.functional.mse_loss(self.net(self.x), self.y).item()}

    def batches(self, size=16):
        return [(self.x[i : i + size], self.y[i : i + size]) for i in range(0, len(self.x), size)]


def _fit(method, loader=None, **cfg):
    settings = {"device": "cpu", "progress_bar": False, "tensorboard": False, "lr": 0.05, **cfg}
    return Trainer(TrainConfig(**settings), dist=DistInfo()).fit(method, loader)


def test_one_phase_method_learns_with_a_given_loader():
    method = Regression()
    result = _fit(method, method.batches(), epochs=30)
    mse = [row["val/mse"] for row in result.history]
    assert len(mse) == 30 and [row["epoch"] for row in result.history] == list(range(1, 31))
    assert mse[-1] < 0.1 * mse[0]
    assert result.best["value"] == min(mse) and result.best["mode"] == "min"
    assert result.history[-1]["step"] == 30 * 4
    # validation ran without gradient, in eval mode, and training went back to train mode
    assert set(method.eval_calls) == {(False, False)} and method.net.training


def test_two_phases_call_hooks_in_order_and_train_only_their_networks():
    class Spy(toy.ToyMethod):
        def on_phase_start(self, phase, ctx):
            super().on_phase_start(phase, ctx)
            self.modes = {n: m.training for n, m in self.networks().items()}
            self.frozen = {k: v.clone() for k, v in self.head_a.state_dict().items()}

    method, result = toy.train(None, method_cls=Spy)
    assert method.hook_calls == ["start:one:0", "end:one", "start:two:0", "end:two"]
    assert [r["phase"] for r in result.history] == ["one"] * 3 + ["two"] * 2
    assert {r["lr"] for r in result.history if r["phase"] == "two"} == {5e-3}
    # phase two: head_a is neither trained nor in train mode; the EMA teacher never is
    assert method.modes == {"body": True, "head_a": False, "head_b": False, "head_t": True, "ema": False}
    for key, value in method.head_a.state_dict().items():
        assert torch.equal(value, method.frozen[key])
    assert "train/a" not in result.history[-1] and "train/t" in result.history[-1]
    # the pseudo-labelling pass between phases labelled some rows, and the EMA moved
    assert (method.pseudo >= 0).any()
    assert not torch.equal(method.ema.weight, method.head_t.weight)
    assert method.steps_seen == result.history[-1]["step"]


def test_checkpoints_hold_meta_version_and_best_epoch(tmp_path):
    _, result = toy.train(tmp_path / "run")
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    accs = [float(r["val/acc"]) for r in rows]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["progress"]["global_epoch"] == len(accs) - accs[::-1].index(max(accs))  # last epoch reaching the max
    assert best["best"]["value"] == max(accs) == result.best["value"]
    assert best["meta"] == {"classes": ["a", "b", "c"], "model_config": {"hidden": toy.HIDDEN}}
    assert best["audioadapt_version"] == __version__
    epoch = best["progress"]["global_epoch"]  # its phase's optimizer is saved with it
    assert best["train_config"]["lr"] == 1e-2
    assert best["optimizer"]["param_groups"][0]["lr"] == float(rows[epoch - 1]["lr"])
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["progress"]["global_epoch"] == len(rows) and last["progress"]["phase_done"]


def test_monitor_and_mode_from_the_config(tmp_path):
    _, result = toy.train(tmp_path / "run", config={"monitor": "loss", "monitor_mode": "min"})
    losses = [row["val/loss"] for row in result.history]
    assert result.best["global_epoch"] == len(losses) - losses[::-1].index(min(losses))
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best"]["metric"] == "loss"


def test_unknown_monitor_names_the_metrics():
    with pytest.raises(ConfigError, match=r"'f1'.*\['acc', 'ema_loss', 'loss'\]"):
        toy.train(None, config={"monitor": "f1"})


def test_fast_dev_run_runs_a_few_steps_per_phase():
    _, result = toy.train(None, config={"fast_dev_run": 2})
    assert [(r["phase"], r["epoch"], r["step"]) for r in result.history] == [("one", 1, 2), ("two", 1, 4)]


def test_gradient_clipping_bounds_the_gradient_norm():
    free, _ = toy.train(None, epochs=(1, 0))
    clipped, _ = toy.train(None, epochs=(1, 0), config={"grad_clip_norm": 0.05})
    assert max(free.grad_norms) > 0.5
    assert max(clipped.grad_norms) <= 0.05 * (1 + 1e-6)


def test_validate_every_skips_epochs_but_not_the_last_of_a_phase():
    _, result = toy.train(None, epochs=(3, 2), config={"validate_every": 2})
    assert [("val/acc" in r) for r in result.history] == [False, True, True, False, True]


def test_nonfinite_loss_stops_with_context():
    class Broken(toy.ToyMethod):
        def training_step(self, batch, ctx):
            out = super().training_step(batch, ctx)
            return StepOutput(out.loss * float("nan"), out.logs)

    with pytest.raises(NonFiniteError, match=r"^training stopped in phase 'one', epoch 1, step 1: loss is nan "
                                             r"\(a=.* t=.*\); no checkpoint written; lower train\.lr"):
        toy.train(None, method_cls=Broken)


def test_nonfinite_loss_keeps_the_last_good_checkpoint(tmp_path):
    class BrokenLater(toy.ToyMethod):
        def training_step(self, batch, ctx):
            out = super().training_step(batch, ctx)
            return StepOutput(out.loss * (float("nan") if ctx.epoch == 1 else 1.0), out.logs)

    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=rf"^{run}: training stopped in phase 'one', epoch 2, step 1: loss is nan"
                                             rf".*; last good checkpoint: {run / 'last.pt'}; lower train\.lr"):
        toy.train(run, method_cls=BrokenLater)
    assert load_checkpoint(run / "last.pt")["progress"]["global_epoch"] == 1
    assert len(read_metrics(run / "metrics.csv")) == 1


def test_huge_learning_rate_stops_with_a_clean_error(tmp_path):
    method = Regression()
    trainer = Trainer(TrainConfig(epochs=3, device="cpu", progress_bar=False, tensorboard=False, lr=1e30),
                      tmp_path / "run", dist=DistInfo())
    with pytest.raises(NonFiniteError, match=r"run: training stopped in phase 'train', epoch 1, step 2: "
                                             r"loss is (inf|nan); no checkpoint written"):
        trainer.fit(method, method.batches())
    assert not (tmp_path / "run" / "last.pt").exists()


def test_nonfinite_weights_are_never_checkpointed(tmp_path):
    class Poisoned(toy.ToyMethod):
        def after_optimizer_step(self, batch, ctx):
            super().after_optimizer_step(batch, ctx)
            if ctx.epoch == 1:
                self.head_b.weight.data.fill_(float("inf"))  # the loss of the step that did it was finite

    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"training stopped after phase 'one', epoch 2: the weights of "
                                             rf"\['head_b'\] are not finite; last good checkpoint: {run / 'last.pt'}"):
        toy.train(run, method_cls=Poisoned, config={"fast_dev_run": 0}, epochs=(3, 2), batch_size=32)
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(run / name)
        assert ckpt["progress"]["global_epoch"] == 1
        assert all(torch.isfinite(t).all() for t in ckpt["networks"]["head_b"].values())
    assert len(read_metrics(run / "metrics.csv")) == 1


def test_unknown_trainable_network_is_reported_before_training():
    class Typo(toy.ToyMethod):
        def phases(self, config):
            return (PhaseSpec("one", 1, ("body", "head_c")),)

    method = Typo()
    with pytest.raises(ConfigError, match=r"unknown networks \['head_c'\]"):
        _fit(method)
    assert method.samplers == []


def test_empty_loader_is_a_data_error():
    with pytest.raises(DataError, match="yielded no batch"):
        _fit(Regression(), [], epochs=1)


def test_amp_is_cuda_only(caplog):
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(TrainConfig(amp=True, device="cpu"), dist=DistInfo())
    assert not trainer.amp
    assert "amp is only used on CUDA" in caplog.text


def test_bfloat16_amp_runs_on_cpu_without_gradient_scaling(tmp_path):
    dtypes = []

    class Watch(Regression):
        def training_step(self, batch, ctx):
            x, y = batch
            out = self.net(x)
            dtypes.append(out.dtype)
            return StepOutput(nn.functional.mse_loss(out.float(), y))

    method = Watch()
    trainer = Trainer(TrainConfig(epochs=30, device="cpu", progress_bar=False, tensorboard=False, lr=0.05,
                                  amp=True, amp_dtype="bfloat16"), tmp_path / "run", dist=DistInfo())
    assert trainer.amp and not trainer.grad_scaling
    result = trainer.fit(method, method.batches())
    assert set(dtypes) == {torch.bfloat16}  # the forward ran under bf16 autocast
    assert result.history[-1]["val/mse"] < 0.1 * result.history[0]["val/mse"]
    assert not load_checkpoint(tmp_path / "run" / "best.pt").get("grad_scaler", {}).get("_enabled", False)


def test_meta_must_be_plain():
    with pytest.raises(Exception, match="cannot go into a checkpoint"):
        Trainer(TrainConfig(), meta={"normalizer": object()}, dist=DistInfo())


def test_train_config_defaults_and_validation():
    cfg = from_dict(TrainConfig, {"lr": "1e-4", "betas": [0.8, 0.99], "grad_clip_norm": 5})
    assert cfg.betas == (0.8, 0.99) and cfg.lr == 1e-4 and cfg.grad_clip_norm == 5.0
    assert TrainConfig().lr == 1e-3 and TrainConfig().betas == (0.9, 0.999) and TrainConfig().grad_clip_norm is None
    for bad in ({"lr": 0.0}, {"betas": (0.9, 1.0)}, {"epochs": -1}, {"grad_clip_norm": 0.0}, {"log_every": 0}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)


def test_step_context_progress_counts_phases_and_steps():
    seen = []

    class Watch(toy.ToyMethod):
        def training_step(self, batch, ctx):
            seen.append((ctx.phase.name, ctx.step, ctx.phase_progress, ctx.run_progress))
            return super().training_step(batch, ctx)

    toy.train(None, method_cls=Watch, epochs=(1, 1))
    assert seen[0] == ("one", 0, 0.0, 0.0)
    assert [s[1] for s in seen] == list(range(len(seen)))  # global step before each update
    one = [s for s in seen if s[0] == "one"]
    two = [s for s in seen if s[0] == "two"]
    assert math.isclose(one[-1][2], 3 / 4) and math.isclose(two[0][3], 0.5)
    assert math.isclose(two[-1][3], 0.5 + 0.5 * 7 / 8)


def test_mixed_precision_path_scales_clips_and_checkpoints_the_scaler(tmp_path):
    # CUDA-only in real runs; forced on here to exercise autocast + GradScaler + unscale-before-clip on CPU
    method = Regression()
    trainer = Trainer(TrainConfig(epochs=12, device="cpu", progress_bar=False, tensorboard=False, lr=0.05,
                                  grad_clip_norm=1.0), tmp_path / "run", dist=DistInfo())
    trainer.amp = trainer.grad_scaling = True
    result = trainer.fit(method, method.batches())
    assert result.history[-1]["val/mse"] < 0.2 * result.history[0]["val/mse"]
    scaler_state = load_checkpoint(tmp_path / "run" / "best.pt")["grad_scaler"]  # last.pt: phase done, no scaler
    assert scaler_state["scale"] > 1.0


class Flat(Regression):
    """:class:`Regression` whose selection metric is ``flat[epoch - 1]`` (e.g. 0.0 every epoch)."""

    selection_metric = "score"
    selection_mode = "max"
    flat: tuple[float, ...] = (0.0,) * 4

    def validate(self, ctx):
        return {"score": self.flat[ctx.global_epoch - 1], "mse": super().validate(ctx)["mse"]}


def _fit_run(method, run, epochs, caplog):
    trainer = Trainer(TrainConfig(epochs=epochs, device="cpu", progress_bar=False, tensorboard=False, lr=0.05),
                      run, dist=DistInfo())
    with caplog.at_level(logging.INFO, logger="audioadapt"):
        return trainer.fit(method, method.batches())


def test_a_tie_selects_the_later_epoch_and_a_flat_metric_says_so(tmp_path, caplog):
    result = _fit_run(Flat(), tmp_path / "run", 4, caplog)
    # every epoch scores 0.0: the last epoch is selected, not the first, near-untrained one
    assert load_checkpoint(tmp_path / "run" / "best.pt")["progress"]["global_epoch"] == 4
    assert result.best["global_epoch"] == 4 and result.best["never_rose"] is True
    assert (result.best["first_value"], result.best["validations"]) == (0.0, 4)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["best"]["never_rose"] is True
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["selection"]["never_rose"] is True and summary["global_epoch"] == 4
    warning = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage().startswith("selection")]
    assert len(warning) == 1
    assert warning[0].getMessage() == ("selection: score never rose above its first value 0 in 4 validated epochs: "
                                       "the selected epoch (4) is the last tied one, not one the metric preferred")


def test_a_rising_metric_is_selected_at_its_best_epoch(tmp_path, caplog):
    method = Flat()
    method.flat = (0.1, 0.3, 0.3, 0.2)
    result = _fit_run(method, tmp_path / "run", 4, caplog)
    assert result.best["global_epoch"] == 3 and result.best["never_rose"] is False  # the later of the tied 0.3
    assert "selection: epoch 3 selected, score = 0.3 (first value 0.1, 4 validated epochs)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_one_summary_line_per_epoch(tmp_path, caplog):
    method = Flat()
    method.flat = (0.1, 0.3, 0.3)
    _fit_run(method, tmp_path / "run", 3, caplog)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train epoch")]
    assert len(lines) == 3
    pattern = (r"train epoch (\d)/3 \(step (\d+)\): loss=[0-9.e+-]+ \| val score=(0\.[13]) mse=[0-9.e+-]+"
               r"( \(new best\))? \| \d+\.\d s")
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[2], m[3], bool(m[4])) for m in parsed] == [("1", "4", "0.1", True), ("2", "8", "0.3", True),
                                                                 ("3", "12", "0.3", True)]


def test_a_resumed_finished_run_rewrites_no_summary(tmp_path, caplog):
    run = tmp_path / "run"
    _fit_run(Flat(), run, 4, caplog)
    before = (run / "summary.json").read_bytes()
    (run / "summary.json").unlink()
    trainer = Trainer(TrainConfig(epochs=4, device="cpu", progress_bar=False, tensorboard=False, lr=0.05), run,
                      dist=DistInfo())
    method = Flat()
    result = trainer.fit(method, method.batches(), resume=True)
    assert result.history == [] and result.best["never_rose"] is True  # restored from the checkpoint
    assert not (run / "summary.json").exists() and before
