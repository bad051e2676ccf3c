import math

import pytest
import torch

from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality, orthogonality_penalty
from audioadapt.models.heads import FrameClipHead, HeadConfig

NORMS = ["frobenius", "row"]
REDUCTIONS = ["sum_abs", "mean_abs", "frobenius"]


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zero_for_orthogonal_weights(normalization, reduction):
    torch.manual_seed(0)
    # in orientation: W1^T W2 = sum_r w1_r w2_r^T vanishes when the labelers use disjoint output units
    w1 = torch.zeros(6, 5)
    w2 = torch.zeros(6, 5)
    w1[:3] = torch.randn(3, 5)
    w2[3:] = torch.randn(3, 5)
    cfg = OrthogonalityConfig(normalization=normalization, reduction=reduction)
    assert orthogonality_penalty(w1, w2, cfg).item() == pytest.approx(0.0, abs=1e-7)
    assert orthogonality_penalty(w1, w1, cfg).item() > 0.1
    # out orientation: W1 W2^T vanishes when the row spaces are orthogonal
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    a = torch.randn(4, 3) @ q[:, :3].t()
    b = torch.randn(5, 5) @ q[:, 3:].t()
    cfg_out = OrthogonalityConfig(normalization=normalization, reduction=reduction, orientation="out")
    assert orthogonality_penalty(a, b, cfg_out).item() == pytest.approx(0.0, abs=1e-6)
    assert orthogonality_penalty(a, a, cfg_out).item() > 0.1


def test_hand_values():
    eye = torch.eye(2)  # (I / sqrt 2)^T (I / sqrt 2) = I / 2
    assert orthogonality_penalty(eye, eye, OrthogonalityConfig()).item() == pytest.approx(1.0)
    assert orthogonality_penalty(eye, eye, OrthogonalityConfig(reduction="mean_abs")).item() == pytest.approx(0.25)
    assert orthogonality_penalty(eye, eye, OrthogonalityConfig(reduction="frobenius")).item() == pytest.approx(
        math.sqrt(2) / 2
    )
    w1 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    w2 = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    # row-normalised W1 W2^T holds the cosines between units: [[0, 1], [1/sqrt2, 1/sqrt2]]
    cfg = OrthogonalityConfig(normalization="row", orientation="out")
    assert orthogonality_penalty(w1, w2, cfg).item() == pytest.approx(1 + math.sqrt(2))
    doubled = OrthogonalityConfig(weight=2.0, normalization="row", orientation="out")
    assert orthogonality_penalty(w1, w2, doubled).item() == pytest.approx(2 * (1 + math.sqrt(2)))


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("orientation", ["in", "out"])
def test_invariant_to_scaling(normalization, orientation):
    torch.manual_seed(1)
    w1, w2 = torch.randn(4, 6), torch.randn(4, 6)
    cfg = OrthogonalityConfig(normalization=normalization, orientation=orientation)
    base = orthogonality_penalty(w1, w2, cfg)
    torch.testing.assert_close(orthogonality_penalty(7.0 * w1, 0.01 * w2, cfg), base)
    if normalization == "row":
        scale = torch.tensor([[0.5], [2.0], [3.0], [10.0]])
        torch.testing.assert_close(orthogonality_penalty(scale * w1, w2, cfg), base)


def test_gradient_flows_to_both_labelers():
    torch.manual_seed(2)
    h1 = FrameClipHead(6, 3, HeadConfig())
    h2 = FrameClipHead(6, 3, HeadConfig())
    penalty = labeler_orthogonality(h1, h2, OrthogonalityConfig())
    expected = orthogonality_penalty(
        torch.cat([h1.strong.weight, h1.attention.weight]), torch.cat([h2.strong.weight, h2.attention.weight]),
        OrthogonalityConfig(),
    )
    torch.testing.assert_close(penalty, expected)
    penalty.backward()
    for head in (h1, h2):
        for layer in (head.strong, head.attention):
            assert layer.weight.grad is not None and torch.count_nonzero(layer.weight.grad) > 0


def test_hidden_layer_choice():
    h1 = FrameClipHead(6, 3, HeadConfig(hidden_dim=4))
    h2 = FrameClipHead(6, 3, HeadConfig(hidden_dim=4))
    cfg = OrthogonalityConfig(layer="hidden")
    torch.testing.assert_close(
        labeler_orthogonality(h1, h2, cfg), orthogonality_penalty(h1.hidden.weight, h2.hidden.weight, cfg)
    )
    with pytest.raises(ValueError):
        labeler_orthogonality(FrameClipHead(6, 3, HeadConfig()), FrameClipHead(6, 3, HeadConfig()), cfg)


def test_shape_mismatch_and_config_errors():
    with pytest.raises(ValueError):
        orthogonality_penalty(torch.randn(3, 4), torch.randn(2, 4), OrthogonalityConfig())
    with pytest.raises(ValueError):
        orthogonality_penalty(torch.randn(3, 4), torch.randn(3, 5), OrthogonalityConfig(orientation="out"))
    with pytest.raises(ValueError):
        OrthogonalityConfig(weight=-1.0)
