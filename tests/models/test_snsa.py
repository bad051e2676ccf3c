import pytest
import torch

from audioadapt.config.load import apply_overrides, from_dict
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.models.snsa import SNSA_CONV2D, SnsaConfig, SnsaEncoder

TINY = SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _lstm_params(inp: int, hidden: int) -> int:
    """One bidirectional LSTM layer: 4 gates x (input + recurrent weights + 2 biases), 2 directions."""
    return 2 * 4 * hidden * (inp + hidden + 2)


def test_default_parameter_budget_matches_the_layer_formula_and_the_paper():
    n_mels = 80
    enc = SnsaEncoder(SnsaConfig(), n_mels)
    conv = (n_mels * 128 * 3 + 128) + (128 * 128 * 3 + 128)
    lstm = _lstm_params(128, 88) + _lstm_params(176, 88)
    attention = 176 * 64 + 64
    assert _n_params(enc) == conv + lstm + attention
    # paper: 0.46 M parameters including the FC(4) classifier
    total = _n_params(enc) + 176 * 4 + 4
    assert 0.40e6 <= total <= 0.50e6


def test_conv2d_alternative_is_near_the_budget_with_128_mels():
    enc = SnsaEncoder(SNSA_CONV2D, 128)
    assert SNSA_CONV2D.lstm_input_dim(128) == 256
    assert 0.44e6 <= _n_params(enc) + 708 <= 0.48e6
    with pytest.raises(ConfigError, match="pools 16 mel bins down to nothing"):
        SnsaEncoder(SNSA_CONV2D, 16)


def test_paper_geometry_751_frames_pool_to_187():
    torch.manual_seed(0)
    feats = FeatureConfig(
        sample_rate=16000, clip_seconds=7.5, n_fft=512, win_length=400, hop_length=160, window="hann", n_mels=80
    )
    enc = SnsaEncoder(SnsaConfig(), feats.n_mels).eval()
    grid = FrameGrid.from_features(feats, enc.time_pooling)
    frames = grid.num_input_frames(grid.seconds_to_samples(7.5))
    assert frames == 751
    with torch.no_grad():
        out = enc.encode(torch.randn(2, frames, 80))
    assert out.feature.shape == (2, 176)
    assert out.attention.shape == (2, grid.num_output_frames(frames)) == (2, 187)
    assert out.frames.shape == (2, 187, 176)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(2))


@pytest.mark.parametrize("cfg", [TINY, SnsaConfig(conv_type="conv2d", conv_channels=(3, 4), freq_pooling=(2, 2),
                                                  lstm_hidden=5, attention_dim=4)])
def test_feature_is_the_attention_weighted_sum_of_blstm_outputs(cfg):
    torch.manual_seed(1)
    enc = SnsaEncoder(cfg, 8).eval()
    out = enc.encode(torch.randn(3, 21, 8))
    assert out.frames.shape == (3, 5, 10)
    expected = (out.attention.unsqueeze(-1) * out.frames).sum(dim=1)
    torch.testing.assert_close(out.feature, expected)
    # eq. 1 by hand: alpha = softmax(w2^T tanh(W1 H^T))
    scores = torch.tanh(out.frames @ enc.attention.w1.weight.T) @ enc.attention.w2.weight.T
    torch.testing.assert_close(out.attention, torch.softmax(scores.squeeze(-1), dim=1))
    torch.testing.assert_close(enc(torch.randn(3, 21, 8)).shape, out.feature.shape)


def test_attention_bias_is_the_yang_variant():
    plain = SnsaEncoder(TINY, 8)
    biased = SnsaEncoder(SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4, attention_bias=True), 8)
    assert _n_params(biased) - _n_params(plain) == 4
    assert plain.attention.w1.bias is None and biased.attention.w1.bias is not None


def test_padded_frames_get_zero_attention_and_do_not_change_the_feature():
    torch.manual_seed(2)
    enc = SnsaEncoder(TINY, 8).eval()
    x = torch.randn(2, 40, 8)
    x[1, 20:] = 100.0 * torch.randn(20, 8)  # whatever the padding holds
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 20:] = False
    out = enc.encode(x, mask)
    assert out.frame_mask.sum(dim=1).tolist() == [10, 5]
    assert torch.all(out.attention[1, 5:] == 0)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(2))
    alone = enc.encode(x[1:, :20])
    torch.testing.assert_close(out.feature[1], alone.feature[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.attention[1, :5], alone.attention[0], rtol=1e-5, atol=1e-6)


def test_padded_frames_get_no_gradient():
    torch.manual_seed(3)
    enc = SnsaEncoder(TINY, 8).eval()
    x = torch.randn(1, 48, 8, requires_grad=True)
    mask = torch.zeros(1, 48, dtype=torch.bool)
    mask[0, :16] = True
    enc(x, mask).sum().backward()
    assert torch.all(x.grad[0, :16].abs().sum(dim=1) > 0)
    assert torch.all(x.grad[0, 16:] == 0)


def test_without_packing_padded_frames_still_get_zero_attention():
    enc = SnsaEncoder(SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4, pack_padded=False), 8).eval()
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[0, 8:] = False
    out = enc.encode(torch.randn(2, 24, 8), mask)
    assert torch.all(out.attention[0, 2:] == 0) and torch.all(out.attention[1] > 0)


def test_mask_errors():
    enc = SnsaEncoder(TINY, 8)
    x = torch.randn(2, 16, 8)
    hole = torch.ones(2, 16, dtype=torch.bool)
    hole[0, 4:8] = False
    with pytest.raises(ValueError, match="prefix"):
        enc(x, hole)
    short = torch.ones(2, 16, dtype=torch.bool)
    short[1, 3:] = False
    with pytest.raises(ValueError, match="at least 4 real input frames"):
        enc(x, short)
    with pytest.raises(ValueError, match="frame mask"):
        enc(x, torch.ones(2, 15, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(batch, frame, 8\)"):
        enc(torch.randn(2, 16, 7))
    with pytest.raises(ValueError, match="fewer than the time pooling"):
        enc(torch.randn(2, 3, 8))


def test_dropout_follows_every_blstm_layer():
    torch.manual_seed(4)
    enc = SnsaEncoder(TINY, 8).train()
    frames = enc.encode(torch.randn(4, 40, 8)).frames
    zeros = (frames == 0).float().mean().item()
    assert 0.35 < zeros < 0.65  # the last layer's output is dropped out too
    enc.eval()
    x = torch.randn(2, 16, 8)
    torch.testing.assert_close(enc(x), enc(x))


def _step(enc: SnsaEncoder, x: torch.Tensor) -> None:
    opt = torch.optim.Adam(enc.parameters(), lr=0.1)
    opt.zero_grad()
    enc(x).pow(2).sum().backward()
    opt.step()


@pytest.mark.parametrize("n_frozen", [0, 1, 2])
def test_freeze_conv_fixes_weights_and_batchnorm_statistics(n_frozen):
    torch.manual_seed(5)
    cfg = SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4, batch_norm=True)
    enc = SnsaEncoder(cfg, 8)
    enc.freeze_conv(n_frozen)
    enc.train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    _step(enc, torch.randn(4, 16, 8) * 3 + 1)
    after = enc.state_dict()
    assert enc.frozen_conv == n_frozen
    for i in range(2):
        names = [k for k in before if k.startswith(f"conv.{i}.")]
        assert any("running_mean" in k for k in names)
        changed = [k for k in names if "num_batches" not in k and not torch.equal(before[k], after[k])]
        if i < n_frozen:
            assert changed == [], f"frozen layer {i} changed: {changed}"
            assert not any(p.requires_grad for p in enc.conv[i].parameters())
            assert all(p.grad is None for p in enc.conv[i].parameters())
            assert not enc.conv[i].training
        else:
            assert len(changed) == len([k for k in names if "num_batches" not in k])
            assert enc.conv[i].training
    assert not torch.equal(before["attention.w2.weight"], after["attention.w2.weight"])


def test_freeze_can_be_undone_and_is_checked():
    enc = SnsaEncoder(SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4, batch_norm=True), 8)
    enc.freeze_conv(2)
    enc.freeze_conv(0)
    assert all(p.requires_grad for p in enc.parameters())
    assert enc.train().conv[0].training
    for bad in (-1, 3):
        with pytest.raises(ConfigError, match="0 to 2"):
            enc.freeze_conv(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"conv_type": "conv3d"}, "conv_type"),
        ({"conv_channels": ()}, "at least one"),
        ({"time_pooling": (2,)}, "one factor per conv layer"),
        ({"kernel_size": 4}, "odd"),
        ({"dropout": 1.0}, "dropout"),
        ({"lstm_hidden": 0}, "positive"),
        ({"attention_dim": 0}, "attention_dim"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SnsaConfig(**kwargs)


def test_config_loads_from_yaml_dict_with_overrides():
    cfg = apply_overrides(from_dict(SnsaConfig, {"conv_type": "conv2d"}), ["conv_channels=[32, 64]"])
    assert cfg == SNSA_CONV2D
    with pytest.raises(ConfigError, match="kernel_size"):
        from_dict(SnsaConfig, {"kernel_size": 2})
