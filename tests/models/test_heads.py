import pytest
import torch
from torch.nn import functional as F

from audioadapt.models.heads import FrameClipHead, HeadConfig, pool_clip

MODES = ["attention_class", "attention_time", "mean", "max"]


def _naive(mode, z, a):
    """Direct formulas (no mask) to compare against."""
    y = torch.sigmoid(z)
    if mode == "attention_class":
        w = torch.softmax(a, dim=-1).clamp(1e-7, 1.0)
        return (y * w).sum(1) / w.sum(1)
    if mode == "attention_time":
        return (torch.softmax(a, dim=1) * y).sum(1)
    if mode == "mean":
        return y.mean(1)
    return y.max(1).values


@pytest.mark.parametrize("mode", MODES)
def test_pooling_matches_direct_formula_and_logits_match_probs(mode):
    torch.manual_seed(0)
    z, a = torch.randn(3, 9, 4) * 3, torch.randn(3, 9, 4) * 3
    probs, logits, weights = pool_clip(mode, z, a)
    torch.testing.assert_close(probs, _naive(mode, z, a))
    torch.testing.assert_close(torch.sigmoid(logits), probs)
    if weights is not None:
        torch.testing.assert_close(weights.sum(1), torch.ones(3, 4))


def test_class_axis_attention_softmax_runs_over_classes():
    # one frame dominates only through the class-axis softmax: with equal
    # attention logits across classes every frame gets weight 1/K for each class
    z = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])
    a = torch.zeros(1, 2, 2)
    probs, _, _ = pool_clip("attention_class", z, a)
    torch.testing.assert_close(probs, torch.sigmoid(z).mean(1))
    # raising class 0's attention at frame 0 lowers class 1's weight there
    a2 = torch.tensor([[[5.0, 0.0], [0.0, 0.0]]])
    probs2, _, _ = pool_clip("attention_class", z, a2)
    assert probs2[0, 0] > probs[0, 0] and probs2[0, 1] > probs[0, 1]


@pytest.mark.parametrize("mode", MODES)
def test_padded_frames_are_excluded(mode):
    torch.manual_seed(1)
    z, a = torch.randn(2, 10, 3), torch.randn(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 6:] = False
    probs, logits, _ = pool_clip(mode, z, a, mask)
    ref0, ref0_logit, _ = pool_clip(mode, z[:1, :6], a[:1, :6])
    torch.testing.assert_close(probs[0], ref0[0])
    torch.testing.assert_close(logits[0], ref0_logit[0])
    # what sits in the padding does not matter
    z2, a2 = z.clone(), a.clone()
    z2[0, 6:], a2[0, 6:] = 50.0, 50.0
    probs2, _, _ = pool_clip(mode, z2, a2, mask)
    torch.testing.assert_close(probs2, probs)


@pytest.mark.parametrize("mode", MODES)
def test_masked_pooling_has_finite_gradients(mode):
    torch.manual_seed(2)
    z = torch.randn(2, 8, 3, requires_grad=True)
    a = torch.randn(2, 8, 3, requires_grad=True)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 3:] = False
    _, logits, _ = pool_clip(mode, z, a, mask)
    F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    assert torch.isfinite(z.grad).all()
    assert torch.count_nonzero(z.grad[1, 3:]) == 0
    if mode.startswith("attention"):
        assert torch.isfinite(a.grad).all()
        assert torch.count_nonzero(a.grad[1, 3:]) == 0


def test_clip_logits_stay_finite_for_saturated_frames():
    z = torch.full((1, 5, 2), 60.0)
    z[..., 1] = -60.0
    _, logits, _ = pool_clip("mean", z, None)
    assert torch.isfinite(logits).all()
    assert logits[0, 0] > 50 and logits[0, 1] < -50


def test_fully_masked_clip_is_rejected():
    mask = torch.zeros(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="unmasked"):
        pool_clip("mean", torch.zeros(1, 4, 2), None, mask)


def test_head_outputs_and_layer_weights():
    torch.manual_seed(0)
    head = FrameClipHead(6, 4, HeadConfig()).eval()
    out = head(torch.randn(2, 7, 6))
    assert out.frame_logits.shape == (2, 7, 4) and out.clip_probs.shape == (2, 4)
    torch.testing.assert_close(out.frame_probs, torch.sigmoid(out.frame_logits))
    stacked = head.layer_weight("first")
    assert stacked.shape == (8, 6)
    torch.testing.assert_close(stacked[:4], head.strong.weight)
    torch.testing.assert_close(stacked[4:], head.attention.weight)
    with pytest.raises(ValueError, match="hidden"):
        head.layer_weight("hidden")


def test_hidden_layer_is_the_first_layer():
    head = FrameClipHead(6, 4, HeadConfig(hidden_dim=5))
    assert head.layer_weight("first") is head.hidden.weight
    assert head.layer_weight("output").shape == (8, 5)
    assert head(torch.randn(1, 3, 6)).frame_logits.shape == (1, 3, 4)


def test_labeler_hidden_dim_shapes_only_the_labeler_config():
    cfg = HeadConfig(labeler_hidden_dim=5)
    assert cfg.for_labeler() == HeadConfig(hidden_dim=5, labeler_hidden_dim=5)
    assert FrameClipHead(6, 4, cfg).hidden is None  # a head built from the shared shape has none
    assert FrameClipHead(6, 4, cfg.for_labeler()).hidden.weight.shape == (5, 6)
    assert HeadConfig(hidden_dim=3).for_labeler() == HeadConfig(hidden_dim=3)  # null: the labelers share it
    for bad in ({"labeler_hidden_dim": 0}, {"hidden_dim": -2}):
        with pytest.raises(ValueError, match="must be positive or null"):
            HeadConfig(**bad)


def test_mean_pooling_head_has_no_attention_layer():
    head = FrameClipHead(6, 4, HeadConfig(pooling="mean"))
    assert head.attention is None
    assert head.layer_weight("first").shape == (4, 6)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    head = FrameClipHead(6, 4, HeadConfig(dropout=0.5))
    h = torch.randn(2, 7, 6)
    head.eval()
    torch.testing.assert_close(head(h).frame_logits, head(h).frame_logits)
    head.train()
    assert not torch.allclose(head(h).frame_logits, head(h).frame_logits)


@pytest.mark.parametrize("kwargs", [{"dropout": 1.0}, {"hidden_dim": 0}, {"attention_clamp_min": 0.0}])
def test_head_config_validation(kwargs):
    with pytest.raises(ValueError):
        HeadConfig(**kwargs)
