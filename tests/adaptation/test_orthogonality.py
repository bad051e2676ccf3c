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


#: The working reading of eq. 8: the mean |cosine| between the units of the two labelers.
COSINE = OrthogonalityConfig(normalization="row", orientation="out", reduction="mean_abs")


def test_per_unit_cosine_is_the_mean_absolute_cosine_over_unit_pairs():
    torch.manual_seed(3)
    w1, w2 = torch.randn(5, 7), torch.randn(6, 7)
    pairs = torch.nn.functional.cosine_similarity(w1[:, None, :], w2[None, :, :], dim=-1)
    assert pairs.shape == (5, 6)
    torch.testing.assert_close(orthogonality_penalty(w1, w2, COSINE), pairs.abs().mean())


def test_per_unit_cosine_lies_in_the_unit_interval():
    torch.manual_seed(4)
    d, width = 256, 128
    # units that all point the same way: every cosine is 1
    w = torch.randn(1, d).expand(width, d) * torch.rand(width, 1).add(0.1)
    assert orthogonality_penalty(w, -3.0 * w, COSINE).item() == pytest.approx(1.0)
    # identical labelers: each unit's cosine with its twin is 1, the other pairs are near 0
    w1 = torch.randn(width, d)
    same = orthogonality_penalty(w1, w1, COSINE).item()
    assert 1.0 / width < same < 0.1
    # labelers whose units span orthogonal subspaces (width 128 each in 256 dimensions): 0
    q, _ = torch.linalg.qr(torch.randn(d, d))
    a, b = torch.randn(width, width) @ q[:, :width].t(), torch.randn(width, width) @ q[:, width:].t()
    assert orthogonality_penalty(a, b, COSINE).item() == pytest.approx(0.0, abs=1e-6)
    # two independent random initialisations: small, about sqrt(2 / (pi d))
    heads = [FrameClipHead(d, 10, HeadConfig(hidden_dim=width)) for _ in range(2)]
    for head in heads:
        torch.nn.init.normal_(head.hidden.weight, 0.0, 0.01)  # the dcase2019 scheme of the SED model
    value = labeler_orthogonality(heads[0], heads[1], COSINE).item()
    assert value == pytest.approx(math.sqrt(2 / (math.pi * d)), rel=0.1)
    assert value < 0.06
    # never above 1, whatever the weights
    for _ in range(5):
        shared = torch.randn(1, d)
        x, y = torch.randn(width, d) + 5 * shared, torch.randn(width, d) - 5 * shared
        assert 0.0 <= orthogonality_penalty(x, y, COSINE).item() <= 1.0


def test_the_paper_literal_term_is_much_larger_at_initialisation():
    torch.manual_seed(5)
    heads = [FrameClipHead(128, 10, HeadConfig()) for _ in range(2)]
    for head in heads:
        for layer in (head.strong, head.attention):
            torch.nn.init.normal_(layer.weight, 0.0, 0.01)
    literal = labeler_orthogonality(heads[0], heads[1], OrthogonalityConfig()).item()
    assert 15.0 < literal < 30.0  # stacked [2K, 128] output matrices, Frobenius, sum: about 23


def test_atda_reading_on_the_hidden_layer():
    """ATDA's code: ``reduce_mean(reduce_sum(|W1 W2^T|, 0))`` on TensorFlow ``(in, out)`` weights, no normalisation."""
    torch.manual_seed(6)
    h1 = FrameClipHead(12, 3, HeadConfig(hidden_dim=8))
    h2 = FrameClipHead(12, 3, HeadConfig(hidden_dim=8))
    cfg = OrthogonalityConfig(weight=0.5, layer="hidden", normalization="none", orientation="in",
                              reduction="mean_column_sum")
    tf1, tf2 = h1.hidden.weight.t(), h2.hidden.weight.t()  # (in, out)
    want = 0.5 * (tf1 @ tf2.t()).abs().sum(dim=0).mean()
    torch.testing.assert_close(labeler_orthogonality(h1, h2, cfg), want)
    # the sum divided by the layer's input width
    total = orthogonality_penalty(h1.hidden.weight, h2.hidden.weight, OrthogonalityConfig(
        normalization="none", reduction="sum_abs"))
    torch.testing.assert_close(labeler_orthogonality(h1, h2, cfg), 0.5 * total / 12)
    # without normalisation the term follows the scale of the weights
    doubled = orthogonality_penalty(2 * h1.hidden.weight, h2.hidden.weight, cfg)
    torch.testing.assert_close(doubled, 2 * labeler_orthogonality(h1, h2, cfg))
