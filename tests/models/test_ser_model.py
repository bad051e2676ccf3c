import pytest
import torch

from audioadapt.adaptation.domain import DomainConfig
from audioadapt.adaptation.grl import GradientReversal
from audioadapt.config.load import apply_overrides, from_dict
from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.models.ser_model import SerModel, SerModelConfig, UtteranceHead
from audioadapt.models.snsa import SnsaConfig

TINY = SnsaConfig(conv_channels=(6, 8), lstm_hidden=5, attention_dim=4)


def _tiny(**kwargs) -> SerModel:
    return SerModel(SerModelConfig(encoder=TINY, **kwargs), n_mels=8)


def test_default_model_size_and_outputs():
    model = SerModel(SerModelConfig(), n_mels=80)
    n = sum(p.numel() for p in model.parameters())
    assert 0.40e6 <= n <= 0.50e6  # paper: 0.46 M
    assert model.domain is None and model.grl is None
    assert model.cfg.n_classes == len(EMOTIONS) == 4
    assert sum(p.numel() for p in model.head.parameters()) == 176 * 4 + 4
    assert model.feature_dim == 176


def test_logits_come_from_the_unnormalised_feature():
    torch.manual_seed(0)
    model = _tiny().eval()
    out = model(torch.randn(3, 20, 8))
    assert out.logits.shape == (3, 4) and out.feature.shape == (3, 10)
    torch.testing.assert_close(out.logits, out.feature @ model.head.fc.weight.T + model.head.fc.bias)
    torch.testing.assert_close(out.feature_hat.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(out.feature_hat * out.feature.norm(dim=1, keepdim=True), out.feature)
    assert out.domain_logits is None and out.frame_mask is None


def test_source_and_target_share_one_set_of_weights():
    torch.manual_seed(1)
    model = _tiny().eval()
    source, target = torch.randn(2, 20, 8), torch.randn(3, 20, 8)
    both = model(torch.cat([source, target]))
    torch.testing.assert_close(both.feature[:2], model(source).feature, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both.feature[2:], model(target).feature, rtol=1e-5, atol=1e-6)
    # a loss on either domain reaches the same encoder parameters
    for x in (source, target):
        model.zero_grad()
        model(x).logits.sum().backward()
        assert model.encoder.lstm[0].weight_ih_l0.grad.abs().sum() > 0


def test_domain_classifier_modes_and_masking():
    x = torch.randn(3, 24, 8)
    mask = torch.ones(3, 24, dtype=torch.bool)
    mask[2, 12:] = False
    whole = _tiny(domain=DomainConfig(mode="whole"))
    assert whole(x, mask).domain_logits.shape == (3,)
    time = _tiny(domain=DomainConfig(mode="time"))
    out = time(x, mask)
    assert out.domain_logits.shape == (3, 6)
    assert out.frame_mask.sum(dim=1).tolist() == [6, 6, 3]
    assert time(x, domain=False).domain_logits is None
    assert isinstance(whole.grl, GradientReversal)


def test_domain_gradient_is_reversed_into_the_encoder_only():
    torch.manual_seed(2)
    model = _tiny(domain=DomainConfig(mode="whole")).eval()
    x = torch.randn(2, 20, 8)
    probe = model.encoder.attention.w2.weight

    def grads(weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        model.set_grl_weight(weight)
        model(x).domain_logits.sum().backward()
        return probe.grad.clone(), model.domain.mlp[0].weight.grad.clone()

    enc_1, d_1 = grads(1.0)
    enc_half, d_half = grads(0.5)
    # reference without reversal: D applied straight to the feature
    model.zero_grad()
    feature = model.encoder(x)
    model.domain(feature.unsqueeze(1)).sum().backward()
    torch.testing.assert_close(enc_1, -probe.grad)
    torch.testing.assert_close(enc_half, -0.5 * probe.grad)
    torch.testing.assert_close(d_1, d_half)  # D itself is not reversed
    assert model.head.fc.weight.grad is None or torch.all(model.head.fc.weight.grad == 0)


def test_freeze_conv_is_delegated():
    model = _tiny()
    model.freeze_conv(2)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("encoder.conv.") for n in frozen)
    assert len(frozen) == 4  # weight and bias of both conv layers


def test_frame_grid_uses_the_encoder_pooling():
    model = _tiny()
    feats = FeatureConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=8)
    grid = model.frame_grid(feats)
    assert grid.num_output_frames(751) == 187
    assert grid.output_hop_seconds == pytest.approx(0.04)


def test_head_and_config_validation():
    assert UtteranceHead(10, 4, 0.0)(torch.randn(2, 10)).shape == (2, 4)
    with pytest.raises(ConfigError):
        UtteranceHead(0, 4, 0.0)
    with pytest.raises(ConfigError, match="n_classes"):
        SerModelConfig(n_classes=1)
    with pytest.raises(ConfigError, match="head_dropout"):
        SerModelConfig(head_dropout=1.0)
    cfg = apply_overrides(from_dict(SerModelConfig, {"domain": {"mode": "whole"}}), ["encoder.lstm_hidden=16"])
    assert cfg.domain.mode == "whole" and cfg.encoder.lstm_hidden == 16
    assert SerModelConfig().domain.mode == "none"
