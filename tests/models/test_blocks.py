import math

import pytest
import torch
from torch import nn

from audioadapt.features.frames import FrameGrid
from audioadapt.models.blocks import ChannelGLU, ClassicGLU, ConvBlock, init_weights, pool_frame_mask


def test_channel_glu_is_linear_over_channels_gated_by_input_sigmoid():
    torch.manual_seed(0)
    glu = ChannelGLU(3)
    x = torch.randn(2, 3, 4, 5)
    w, b = glu.linear.weight, glu.linear.bias
    expected = torch.empty_like(x)
    for c in range(3):
        lin = sum(w[c, j] * x[:, j] for j in range(3)) + b[c]
        expected[:, c] = lin * torch.sigmoid(x[:, c])
    torch.testing.assert_close(glu(x), expected)
    assert sum(p.numel() for p in glu.parameters()) == 3 * 3 + 3


def test_channel_glu_gradients_match_the_channel_last_linear():
    torch.manual_seed(1)
    glu = ChannelGLU(4)
    x = torch.randn(2, 4, 6, 3, requires_grad=True)
    glu(x).square().sum().backward()
    grads = [x.grad.clone(), glu.linear.weight.grad.clone(), glu.linear.bias.grad.clone()]
    x.grad = None
    glu.zero_grad()
    ref = glu.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) * torch.sigmoid(x)
    ref.square().sum().backward()
    for got, want in zip(grads, [x.grad, glu.linear.weight.grad, glu.linear.bias.grad]):
        torch.testing.assert_close(got, want)


def test_classic_glu_halves_channels():
    x = torch.randn(2, 6, 4, 5)
    out = ClassicGLU()(x)
    torch.testing.assert_close(out, x[:, :3] * torch.sigmoid(x[:, 3:]))


@pytest.mark.parametrize("activation", ["glu", "glu_classic", "relu"])
def test_conv_block_shapes_floor_each_pooled_axis(activation):
    block = ConvBlock(1, 8, 3, (2, 3), 0.0, activation, 1e-3, 0.99)
    out = block(torch.randn(2, 1, 13, 11))
    assert out.shape == (2, 8, 6, 3)


def test_conv_block_batchnorm_uses_pytorch_momentum_convention():
    torch.manual_seed(0)
    block = ConvBlock(1, 4, 3, (1, 1), 0.0, "relu", 1e-3, 0.99)
    block.train()
    x = torch.randn(8, 1, 10, 6) + 3.0
    with torch.no_grad():
        batch_mean = block.conv(x).mean(dim=(0, 2, 3))
    block(x)
    # running = (1 - m) * running + m * batch, with running starting at 0
    torch.testing.assert_close(block.norm.running_mean, 0.99 * batch_mean)
    assert block.norm.eps == pytest.approx(1e-3)


@pytest.mark.parametrize("pooling", [(2, 2, 1, 1), (2, 3), (1,), (4,)])
@pytest.mark.parametrize("length", [1, 7, 8, 37, 64])
def test_pool_frame_mask_matches_frame_grid_for_prefix_masks(pooling, length):
    frames = 64
    mask = torch.zeros(3, frames, dtype=torch.bool)
    mask[:, :length] = True
    out = pool_frame_mask(mask, pooling)
    grid = FrameGrid(22050, 345, 2048, True, pooling)
    assert out.shape == (3, grid.num_output_frames(frames))
    assert int(out[0].sum()) == grid.num_output_frames(length)
    # the valid output frames are a prefix
    n = int(out[0].sum())
    assert out[0, :n].all() and not out[0, n:].any()


def test_pool_frame_mask_invalidates_windows_touching_padding():
    mask = torch.tensor([[True, True, True, False, True, True]])
    assert pool_frame_mask(mask, (2,)).tolist() == [[True, False, True]]


def test_dcase2019_init():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(4, 32, 3), nn.BatchNorm2d(512), nn.Linear(400, 300), nn.GRU(16, 32, num_layers=2)
    )
    init_weights(model, "dcase2019")
    conv, bn, lin, gru = model
    bound = math.sqrt(2.0) * math.sqrt(6.0 / (4 * 9 + 32 * 9))
    assert conv.weight.abs().max() <= bound + 1e-6
    assert conv.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(conv.bias) == 0
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and abs(bn.weight.std().item() - 0.02) < 0.005
    assert torch.count_nonzero(bn.bias) == 0
    assert abs(lin.weight.std().item() - 0.01) < 0.001 and torch.count_nonzero(lin.bias) == 0
    for name, p in gru.named_parameters():
        if name.startswith("weight"):
            # (3H, in) with 3H >= in: orthonormal columns
            torch.testing.assert_close(p.t() @ p, torch.eye(p.shape[1]), atol=1e-5, rtol=0)


def test_torch_default_init_leaves_weights_and_unknown_scheme_fails():
    torch.manual_seed(0)
    lin = nn.Linear(10, 10)
    before = lin.weight.clone()
    init_weights(lin, "torch_default")
    assert torch.equal(before, lin.weight)
    with pytest.raises(ValueError):
        init_weights(lin, "kaiming")  # type: ignore[arg-type]


def test_mask_dropout_keeps_with_probability_1_minus_p_and_rescales():
    from audioadapt.models.blocks import MaskDropout

    torch.manual_seed(0)
    drop = MaskDropout(0.25)
    x = torch.ones(400, 500, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # gradient: the same mask and scale
    drop.eval()
    assert drop(x) is x
    assert MaskDropout(0.0).train()(x) is x
    with pytest.raises(ValueError):
        MaskDropout(1.0)
    with pytest.raises(ValueError, match="rounds to 1"):
        MaskDropout(1.0 - 2.0**-18)


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9, 0.75, 1 / 3])
def test_mask_dropout_rate_layout_and_rounded_scale(p):
    from audioadapt.models.blocks import MaskDropout

    torch.manual_seed(1)
    x = torch.ones(32, 8, 40, 25).contiguous(memory_format=torch.channels_last)
    drop = MaskDropout(p)
    y = drop(x)
    kept = y != 0
    q = 1.0 - p
    assert abs(kept.float().mean().item() - q) < 4 * (q * (1 - q) / x.numel()) ** 0.5 + 2.0**-16
    # the scale is 1 / q with q rounded to 2**-8 (when exact) or 2**-16, so the expectation is exactly x
    levels = 2**8 if (p * 256).is_integer() else 2**16
    q_rounded = (levels // 2 - (round(p * levels) - levels // 2)) / levels
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / q_rounded))
    assert y.is_contiguous(memory_format=torch.channels_last)
    # masks of the same layout position are independent of the layout: rows differ
    assert not torch.equal(kept[0], kept[1])


def test_mask_dropout_is_seeded_and_works_in_low_precision():
    from audioadapt.models.blocks import MaskDropout

    drop = MaskDropout(0.3)
    x = torch.ones(300, 301)
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    b = drop(x)
    assert torch.equal(a, b)
    half = drop(torch.ones(300, 301, dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert abs((half != 0).float().mean().item() - 0.7) < 0.01
    strided = drop(torch.ones(301, 300).t())  # not dense in either layout
    assert abs((strided != 0).float().mean().item() - 0.7) < 0.01


@pytest.mark.parametrize("activation", ["glu", "glu_classic", "relu"])
def test_conv_block_eval_folds_batchnorm_into_the_conv(activation):
    from audioadapt.models.blocks import ConvBlock

    torch.manual_seed(0)
    block = ConvBlock(3, 8, 3, (2, 2), 0.5, activation, 1e-3, 0.99)
    x = torch.randn(4, 3, 16, 12)
    block.train()
    for _ in range(3):  # running statistics away from their initial values
        block(x * 2 + 1)
    with torch.no_grad():
        block.norm.weight.normal_(1.0, 0.3)
        block.norm.bias.normal_(0.0, 0.3)
    block.eval()
    folded = block(x)
    unfolded = block.pool(block.act(block.norm(block.conv(x))))
    torch.testing.assert_close(folded, unfolded, rtol=1e-5, atol=1e-6)
    weight, bias = block.folded_conv()
    assert weight.shape == block.conv.weight.shape and bias.shape == block.conv.bias.shape
