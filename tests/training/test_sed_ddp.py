"""Park et al.'s method under DDP: two gloo processes follow one process on the same global batch.

Adv.time + tri-training (phase 1, the pseudo-labelling pass, phase 2) on the tiny generated dataset, shrunk by
``tiny_overrides`` (dropout 0, 4 steps per epoch, global batches of 12 rows, 4 per source): one process trains
here, two ranks run ``audioadapt sed train`` with torchrun's environment, each on half of every source's rows.
What couples the rows of a batch is the same in both runs: BatchNorm statistics (``train.sync_batchnorm``),
the masked loss means (divided by the global count of known entries; pseudo labels leave the ranks different
counts), the balanced domain loss (per-domain global means), the GRL ramp (a function of the step).
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


def test_two_gloo_processes_train_like_one_process(sed_tiny_dataset, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    overrides = tiny_overrides(PRESET, epochs=2, phase2=2) + ["train.tensorboard=true"]
    train_sed(PRESET, overrides, data_root=sed_tiny_dataset, run_dir=one)
    outputs = launch(lambda rank: [sys.executable, "-m", "audioadapt.cli.main", "sed", "train", PRESET, "--data",
                                   str(sed_tiny_dataset), "--out", str(two), *overrides])
    assert "synchronising 2 BatchNorm layer(s) over 2 ranks" in outputs[0]

    # per-epoch means (metrics.csv): training terms, GRL weight, validation
    single, double = read_metrics(one / "metrics.csv"), read_metrics(two / "metrics.csv")
    assert [r["phase"] for r in double] == [r["phase"] for r in single] == ["phase1"] * 2 + ["phase2"] * 2
    for a, b in zip(single, double):
        assert a.keys() == b.keys()
        for key in a.keys() - {"phase"}:
            assert _close(float(a[key]), float(b[key])), (a["phase"], a["epoch"], key, a[key], b[key])

    # per-step values (TensorBoard): the global batch's, averaged over the ranks
    steps_one, steps_two = _step_scalars(one), _step_scalars(two)
    assert steps_one.keys() == steps_two.keys() and "step/loss" in steps_one
    for tag, curve in steps_one.items():
        assert [s for s, _ in curve] == [s for s, _ in steps_two[tag]] == list(range(1, len(curve) + 1))
        for (step, a), (_, b) in zip(curve, steps_two[tag]):
            assert _close(a, b), (tag, step, a, b)
    losses = [v for _, v in steps_one["step/ft_frame"]]
    assert losses[-1] < 0.9 * losses[0]  # a real curve, not a constant

    # the weights after phase 2, and the pseudo labels they were trained on
    a, b = torch.load(one / "last.pt", weights_only=True), torch.load(two / "last.pt", weights_only=True)
    for net, state in a["networks"].items():
        for key, want in state.items():
            got = b["networks"][net][key]
            if not want.is_floating_point():
                assert torch.equal(got, want), (net, key)
            elif not ROUNDING_DRIVEN.search(key):
                torch.testing.assert_close(got, want, rtol=0, atol=WEIGHT_TOL * float(want.abs().max()),
                                           msg=lambda m: f"{net}.{key}: {m}")
    for source, labels in a["method"]["pseudo"].items():
        assert torch.equal(b["method"]["pseudo"][source]["frame"], labels["frame"]), source
        assert torch.equal(b["method"]["pseudo"][source]["clip"], labels["clip"]), source
    frame_one, clip_one = _eval_probabilities(one, sed_tiny_dataset)
    frame_two, clip_two = _eval_probabilities(two, sed_tiny_dataset)
    np.testing.assert_allclose(clip_two, clip_one, rtol=0, atol=PROB_ATOL)
    for x, y in zip(frame_two, frame_one):
        np.testing.assert_allclose(x, y, rtol=0, atol=PROB_ATOL)
