import pytest
import torch

from audioadapt.config.load import from_dict
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.models.crnn import CRNN, CRNNConfig

SMALL = CRNNConfig(
    filters=(4, 8, 8),
    kernel_sizes=(3, 3, 3),
    pooling=((2, 2), (2, 2), (1, 2)),
    rnn_hidden=6,
)


def test_default_config_is_the_7_block_working_definition():
    cfg = CRNNConfig()
    assert cfg.filters == (16, 32, 64, 128, 128, 128, 128)
    assert cfg.time_pooling == (2, 2, 1, 1, 1, 1, 1)
    assert cfg.freq_pooling == (2,) * 7
    assert cfg.output_dim == 256
    assert cfg.freq_bins_out(128) == 1


def test_default_time_pooling_gives_the_paper_output_grid():
    grid = FrameGrid.from_features(FeatureConfig(), CRNNConfig().time_pooling)
    assert grid.num_output_frames_for_seconds(10.0) == 160
    assert grid.output_hop_seconds == pytest.approx(0.062585, abs=1e-6)


@pytest.mark.parametrize("frames", [16, 37, 40, 41])
def test_output_frames_match_frame_grid(frames):
    torch.manual_seed(0)
    net = CRNN(SMALL, n_mels=16).eval()
    out = net(torch.randn(2, frames, 16))
    grid = FrameGrid(22050, 345, 2048, True, net.time_pooling)
    assert out.shape == (2, grid.num_output_frames(frames), 12)


def test_leftover_frequency_bins_are_flattened_into_the_rnn_input():
    cfg = CRNNConfig(filters=(4, 5), kernel_sizes=(3, 3), pooling=((2, 2), (1, 2)), rnn_hidden=3)
    net = CRNN(cfg, n_mels=12)  # 12 -> 6 -> 3 bins
    assert net.rnn.input_size == 5 * 3
    assert net(torch.randn(1, 8, 12)).shape == (1, 4, 6)


@pytest.mark.parametrize("activation", ["glu", "glu_classic", "relu"])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_options_build_and_run(activation, rnn_type):
    cfg = CRNNConfig(filters=(4, 8), kernel_sizes=(3, 5), pooling=((2, 2), (2, 2)), activation=activation,
                     rnn_type=rnn_type, rnn_hidden=5, rnn_layers=1, rnn_bidirectional=False)
    net = CRNN(cfg, n_mels=8)
    assert net(torch.randn(2, 20, 8)).shape == (2, 5, 5)


def test_classic_glu_doubles_the_conv_channels():
    glu = CRNN(CRNNConfig(filters=(4,), kernel_sizes=(3,), pooling=((1, 1),), rnn_hidden=2), n_mels=4)
    classic = CRNN(CRNNConfig(filters=(4,), kernel_sizes=(3,), pooling=((1, 1),), rnn_hidden=2,
                              activation="glu_classic"), n_mels=4)
    assert glu.cnn[0].conv.out_channels == 4
    assert classic.cnn[0].conv.out_channels == 8


def test_bad_input_shape_and_over_pooling_raise():
    net = CRNN(SMALL, n_mels=16)
    with pytest.raises(ValueError, match="16"):
        net(torch.randn(2, 40, 15))
    with pytest.raises(ValueError, match="mel"):
        CRNN(SMALL, n_mels=4)
    with pytest.raises(ValueError, match="frames"):
        net(torch.randn(2, 3, 16))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filters": (4, 8)},
        {"kernel_sizes": (3, 4, 3)},
        {"pooling": ((2, 2), (0, 2), (1, 2))},
        {"dropout": 1.0},
        {"bn_momentum": 1.5},
        {"rnn_layers": 0},
        {"filters": ()},
    ],
)
def test_invalid_configs_are_rejected(kwargs):
    base = {"filters": (4, 8, 8), "kernel_sizes": (3, 3, 3), "pooling": ((2, 2), (2, 2), (1, 2))}
    base.update(kwargs)
    if not base["filters"]:
        base = {"filters": (), "kernel_sizes": (), "pooling": ()}
    with pytest.raises(ValueError):
        CRNNConfig(**base)


def test_config_loads_from_yaml_like_dict_and_rejects_unknown_keys():
    cfg = from_dict(CRNNConfig, {"rnn_layers": 1, "pooling": [[2, 2]] * 7, "bn_momentum": 0.01})
    assert cfg.rnn_layers == 1 and cfg.pooling == ((2, 2),) * 7 and cfg.bn_momentum == 0.01
    with pytest.raises(ConfigError, match="rnn_layers"):
        from_dict(CRNNConfig, {"rnn_layer": 2})


@pytest.mark.parametrize("momentum", [0.1, None])
def test_bn_momentum_reaches_every_conv_block(momentum):
    cfg = from_dict(CRNNConfig, {"filters": [4, 8], "kernel_sizes": [3, 3], "pooling": [[2, 2], [2, 2]],
                                 "rnn_hidden": 6, "bn_momentum": momentum})
    model = CRNN(cfg, n_mels=16)
    assert [block.norm.momentum for block in model.cnn] == [momentum, momentum]
    assert CRNNConfig().bn_momentum == 0.99  # DESED's value (PyTorch convention)


def test_channels_last_gives_the_same_features_and_gradients_as_contiguous():
    torch.manual_seed(0)
    small = dict(filters=(4, 8), kernel_sizes=(3, 3), pooling=((2, 2), (2, 2)), rnn_hidden=8, rnn_layers=1,
                 dropout=0.0)
    fast = CRNN(CRNNConfig(**small, memory_format="channels_last"), 16)
    plain = CRNN(CRNNConfig(**small, memory_format="contiguous"), 16)
    plain.load_state_dict(fast.state_dict())
    assert fast.cnn[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(3, 20, 16)
    out_fast, out_plain = fast(x), plain(x)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    out_fast.square().sum().backward()
    out_plain.square().sum().backward()
    torch.testing.assert_close(fast.cnn[0].conv.weight.grad, plain.cnn[0].conv.weight.grad, rtol=1e-4, atol=1e-5)
