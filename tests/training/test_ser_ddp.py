"""SER methods under DDP: two gloo ranks with per-rank batches of B follow one process with batches of 2B.

SER batch sizes (``stage1.batch_size``, ``stage2.source_batch_size``, ``stage2.target_batch_size``) are per
rank: each rank draws its share of the same seeded permutation (``DistributedSampler``), so two ranks with B
see together the rows one process sees with 2B. What couples the rows of a step is then the same in both runs:
the loss means (each rank's mean over equal shares, averaged by DDP), the memory writes (gathered from every
rank), the GRL ramp (a function of the step) and the gradient diagnostics (averaged over the ranks). The crop
is longer than every utterance, so no random crop is drawn (crop offsets are drawn per rank), and dropout is 0.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from audioadapt.api.ser import train_ser
from audioadapt.training.logging import read_metrics

from .ddp_helpers import launch
from .test_ser_e2e import tiny_overrides

#: float32, a few Adam steps; the runs differ by summation order only (observed: metrics <= 1.2e-6 relative,
#: weights <= 8.1e-6 of a tensor's largest entry, memory <= 1.4e-7).
RTOL, ATOL, WEIGHT_TOL = 2e-5, 1e-6, 2e-4
#: On top of the e2e tests' tiny settings: whole utterances (no random crop), 3 stage-1 epochs, gradients measured.
DDP = ["dataset.crop_seconds=12.0", "dataset.pad_to_crop=true", "stage1.epochs=3", "diagnostics.gradient_every=1"]


def _batches(size: int) -> list[str]:
    return [f"stage1.batch_size={size}", f"stage2.source_batch_size={size}", f"stage2.target_batch_size={size}"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("preset, grad_key", [("ser_nnpm", "train/grad_target"), ("ser_dann", "train/grad_domain")])
def test_two_gloo_ranks_train_like_one_process_with_their_global_batch(preset, grad_key, ser_tiny_dataset,
                                                                       tmp_path):
    root, one, two = ser_tiny_dataset, tmp_path / "one", tmp_path / "two"
    common = tiny_overrides(preset, *DDP, f"cache.directory={tmp_path / 'cache'}")
    train_ser(preset, [*common, *_batches(16)], source=root, target=root, run_dir=one)
    rank0, rank1 = launch(lambda rank: [sys.executable, "-m", "audioadapt.cli.main", "ser", "train", preset,
                                        "--source", str(root), "--target", str(root), "--out", str(two),
                                        "--no-progress", *common, *_batches(8)], timeout=300)
    assert f"run directory: {two}" in rank0
    assert rank1.strip() == "", rank1
    assert "Warning" not in rank0, rank0

    single, double = read_metrics(one / "metrics.csv"), read_metrics(two / "metrics.csv")
    assert [r["phase"] for r in double] == [r["phase"] for r in single] == ["stage1"] * 3 + ["stage2"] * 2
    for a, b in zip(single, double):
        assert a.keys() == b.keys()
        for key in a.keys() - {"phase"}:
            if a[key] == "":
                assert b[key] == "", key
                continue
            assert math.isclose(float(a[key]), float(b[key]), rel_tol=RTOL, abs_tol=ATOL), \
                (a["phase"], a["epoch"], key, a[key], b[key])
    assert all(float(r[grad_key]) > 0 for r in single if r["phase"] == "stage2")  # the diagnostics were compared
    # the same step counts with half the batch: each rank took half of every global batch
    assert [r["step"] for r in double] == [r["step"] for r in single] == ["2", "4", "6", "8", "10"]

    a, b = torch.load(one / "last.pt", weights_only=True), torch.load(two / "last.pt", weights_only=True)
    for net, state in a["networks"].items():
        for key, want in state.items():
            got = b["networks"][net][key]
            if want.is_floating_point():
                atol = max(WEIGHT_TOL * float(want.abs().max()), ATOL)
                torch.testing.assert_close(got, want, rtol=0, atol=atol, msg=lambda m: f"{net}.{key}: {m}")
            else:
                assert torch.equal(got, want), (net, key)
    if preset == "ser_nnpm":  # every rank's source features were written into the one memory
        torch.testing.assert_close(b["method"]["memory"]["features"], a["method"]["memory"]["features"],
                                   rtol=0, atol=1e-5)
        assert torch.equal(b["method"]["memory"]["labels"], a["method"]["memory"]["labels"])
