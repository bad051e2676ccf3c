import pytest
import torch

from audioadapt.adaptation.domain import DomainClassifier, DomainConfig, masked_time_mean


def test_parameter_count_of_default_mlp():
    d = DomainClassifier(256, DomainConfig(mode="whole"))
    assert sum(p.numel() for p in d.parameters()) == 256 * 128 + 128 + 128 + 1


def test_time_mode_scores_each_frame_independently():
    torch.manual_seed(0)
    d = DomainClassifier(6, DomainConfig(mode="time", hidden=(5, 4), activation="leaky_relu"))
    h = torch.randn(2, 7, 6)
    out = d(h)
    assert out.shape == (2, 7)
    h2 = h.clone()
    h2[1, 3] += 1.0
    changed = d(h2) != out
    assert changed[1, 3] and changed.sum() == 1


def test_whole_mode_excludes_padded_frames():
    torch.manual_seed(0)
    d = DomainClassifier(6, DomainConfig(mode="whole"))
    h = torch.randn(2, 7, 6)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 4:] = False
    out = d(h, mask)
    assert out.shape == (2,)
    torch.testing.assert_close(out[0], d(h[:1, :4])[0])
    h2 = h.clone()
    h2[0, 4:] = 100.0
    torch.testing.assert_close(d(h2, mask), out)


def test_masked_time_mean_by_hand():
    h = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_time_mean(h, mask).item() == 2.0
    with pytest.raises(ValueError):
        masked_time_mean(h, torch.zeros(1, 3, dtype=torch.bool))


def test_config_validation():
    with pytest.raises(ValueError):
        DomainClassifier(4, DomainConfig(mode="none"))
    with pytest.raises(ValueError):
        DomainConfig(hidden=(0,))
    with pytest.raises(ValueError):
        DomainConfig(dropout=1.0)
