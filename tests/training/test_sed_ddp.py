"""SED methods under DDP: two gloo processes follow one process on the same global batch.

Park et al.'s Adv.time + tri-training (phase 1, the pseudo-labelling pass, phase 2) and the mean teacher on the
tiny generated dataset, shrunk by ``tiny_overrides`` (dropout 0, 4 steps per epoch, global batches of 12 rows,
4 per source): one process trains here, two ranks run ``audioadapt sed train`` with torchrun's environment,
each on half of every source's rows. What couples the rows of a batch is the same in both runs: BatchNorm
statistics (``train.sync_batchnorm``), the masked loss means (divided by the global count of known entries;
pseudo labels leave the ranks different counts), the balanced domain loss (per-domain global means), the GRL
ramp (a function of the step), and the mean teacher's EMA of identical students.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.api.sed import load_sed_run, predicting_model, train_sed
from audioadapt.training.logging import read_metrics
from audioadapt.training.sed_data import SedDataModule
from audioadapt.training.sed_predict import predict_scores

from .ddp_helpers import launch
from .test_sed_e2e import tiny_overrides

PRESET = "sed_adv_time_tri_training"
#: float32 and 16 Adam steps; the two runs differ by summation order only. Observed: losses <= 2e-7 relative,
#: weights <= 3e-5 of a tensor's largest entry, eval-mode probabilities <= 1e-4. Per-rank BatchNorm gives
#: 6e-3 and 0.7, per-rank loss means 3e-4 and 5e-3.
LOSS_RTOL, WEIGHT_TOL, PROB_ATOL = 2e-6, 2e-4, 1e-3
#: ... and at least this absolute tolerance for tensors whose entries are all small (a BatchNorm bias near 0:
#: the mean teacher's differed by 3.7e-6 with a largest entry of 0.016, the first block's of Adv.time +
#: Tri-training with hidden-layer labelers by 1.4e-5 with 0.025); Adam steps are lr = 3e-3, 60x larger.
WEIGHT_ATOL_FLOOR = 5e-5
#: A conv bias in front of BatchNorm gets a zero gradient up to rounding, which Adam scales up to a sizeable
#: step: it and the running mean it shifts follow rounding noise, not the data. The eval-mode outputs,
#: which combine them, are compared instead.
ROUNDING_DRIVEN = re.compile(r"cnn\.\d+\.(conv\.bias|norm\.running_mean)$")

pytestmark = pytest.mark.usefixtures("one_thread")


def _step_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The Trainer's TensorBoard step scalars (``step/<name>``) as ``name -> [(step, value), ...]``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
            if tag.startswith("step/")}


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=LOSS_RTOL, abs_tol=1e-7)


def _eval_probabilities(run_dir: Path, root: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Frame and clip probabilities of the run's last weights on the internal synthetic-valid clips."""
    ckpt, cfg, _ = load_sed_run(run_dir, "last")
    model, normalizer = predicting_model(ckpt, cfg)
    data = SedDataModule(root, cfg).setup()
    scores = predict_scores(model, normalizer, data.source("synthetic_valid"), ["ft"], 16, torch.device("cpu"))
    return scores.frame, scores.clip


#: Both runs on PyTorch operators: under DDP the BatchNorm layers are synchronised ones, which the fused CPU
#: kernel does not replace, and a one-process run would otherwise take the kernel (equal up to rounding, but
#: its double-precision batch statistics differ from PyTorch's float ones by more than LOSS_RTOL).
SAME_PATH = ["model.crnn.fused_cpu_max_channels=0"]


def _train_one_and_two(preset: str, overrides: list[str], root: Path, one: Path, two: Path) -> None:
    """Train ``preset`` in this process into ``one`` and in two gloo ranks into ``two``."""
    overrides = overrides + SAME_PATH
    train_sed(preset, overrides, data_root=root, run_dir=one)
    outputs = launch(lambda rank: [sys.executable, "-m", "audioadapt.cli.main", "sed", "train", preset, "--data",
                                   str(root), "--out", str(two), *overrides])
    rank0, rank1 = outputs
    assert "synchronising" in rank0 and "over 2 ranks" in rank0
    # rank 0 prints the data summary once, the epoch lines and the results; rank 1 prints none of them
    assert rank0.count("synthetic: 24 of 24 clips") == 1 and f"run directory: {two}" in rank0
    assert " epoch 1/" in rank0 and "selection: " in rank0
    assert rank1.strip() == "", rank1
    # no FutureWarning / UserWarning from our own calls into torch (DDP, synchronised BatchNorm)
    assert "Warning" not in rank0, rank0


def _assert_same_curves(one: Path, two: Path, phases: list[str], falling: str) -> None:
    """Per-epoch means (metrics.csv) and per-step values (TensorBoard) agree; ``falling`` decreases."""
    single, double = read_metrics(one / "metrics.csv"), read_metrics(two / "metrics.csv")
    assert [r["phase"] for r in double] == [r["phase"] for r in single] == phases
    for a, b in zip(single, double):
        assert a.keys() == b.keys()
        for key in a.keys() - {"phase"}:
            assert _close(float(a[key]), float(b[key])), (a["phase"], a["epoch"], key, a[key], b[key])
    steps_one, steps_two = _step_scalars(one), _step_scalars(two)
    assert steps_one.keys() == steps_two.keys() and "step/loss" in steps_one
    for tag, curve in steps_one.items():
        assert [s for s, _ in curve] == [s for s, _ in steps_two[tag]]
        if not tag.startswith(("step/diag/", "step/pseudo/")):  # diagnostics: only at the steps that measure
            assert [s for s, _ in curve] == list(range(1, len(curve) + 1)), tag
        for (step, a), (_, b) in zip(curve, steps_two[tag]):
            assert _close(a, b), (tag, step, a, b)
    losses = [v for _, v in steps_one[falling]]
    assert losses[-1] < 0.9 * losses[0]  # a real curve, not a constant


def _assert_same_weights_and_outputs(one: Path, two: Path, root: Path) -> dict:
    """The last weights agree (within WEIGHT_TOL) and so do the eval-mode outputs; returns both checkpoints."""
    a, b = torch.load(one / "last.pt", weights_only=True), torch.load(two / "last.pt", weights_only=True)
    for net, state in a["networks"].items():
        for key, want in state.items():
            got = b["networks"][net][key]
            if not want.is_floating_point():
                assert torch.equal(got, want), (net, key)
            elif not ROUNDING_DRIVEN.search(key):
                atol = max(WEIGHT_TOL * float(want.abs().max()), WEIGHT_ATOL_FLOOR)
                torch.testing.assert_close(got, want, rtol=0, atol=atol,
                                           msg=lambda m: f"{net}.{key}: {m}")
    frame_one, clip_one = _eval_probabilities(one, root)
    frame_two, clip_two = _eval_probabilities(two, root)
    np.testing.assert_allclose(clip_two, clip_one, rtol=0, atol=PROB_ATOL)
    for x, y in zip(frame_two, frame_one):
        np.testing.assert_allclose(x, y, rtol=0, atol=PROB_ATOL)
    return {"one": a, "two": b}


def test_two_gloo_processes_train_like_one_process(sed_tiny_dataset, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    overrides = tiny_overrides(PRESET, epochs=2, phase2=2) + ["train.tensorboard=true"]
    _train_one_and_two(PRESET, overrides, sed_tiny_dataset, one, two)
    _assert_same_curves(one, two, ["phase1"] * 2 + ["phase2"] * 2, "step/ft_frame")
    ckpts = _assert_same_weights_and_outputs(one, two, sed_tiny_dataset)
    # the pseudo labels phase 2 was trained on
    for source, labels in ckpts["one"]["method"]["pseudo"].items():
        assert torch.equal(ckpts["two"]["method"]["pseudo"][source]["frame"], labels["frame"]), source
        assert torch.equal(ckpts["two"]["method"]["pseudo"][source]["clip"], labels["clip"]), source


def test_mean_teacher_under_two_gloo_processes_trains_like_one_process(sed_tiny_dataset, tmp_path):
    # no teacher input noise: it is drawn per rank, so the two runs would see different noise
    preset = "sed_mean_teacher"
    one, two = tmp_path / "one", tmp_path / "two"
    overrides = tiny_overrides(preset, epochs=3) + ["train.tensorboard=true",
                                                    "method.mean_teacher.teacher_noise_std=0.0"]
    _train_one_and_two(preset, overrides, sed_tiny_dataset, one, two)
    _assert_same_curves(one, two, ["train"] * 3, "step/frame")
    ckpts = _assert_same_weights_and_outputs(one, two, sed_tiny_dataset)
    assert any(key.startswith("teacher") for key in ckpts["one"]["networks"])  # the EMA teacher was compared
