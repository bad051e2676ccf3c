import pytest
import torch

from audioadapt.adaptation.domain import DomainConfig
from audioadapt.config.load import apply_overrides, from_dict
from audioadapt.features.config import FeatureConfig
from audioadapt.models.crnn import CRNNConfig
from audioadapt.models.heads import HeadConfig
from audioadapt.models.sed_model import SedModel, SedModelConfig

TINY = CRNNConfig(filters=(4, 8), kernel_sizes=(3, 3), pooling=((2, 2), (2, 2)), rnn_hidden=6)


def _tiny(**kwargs) -> SedModel:
    cfg = SedModelConfig(crnn=TINY, **kwargs)
    return SedModel(cfg, n_mels=8, n_classes=3)


def test_paper_size_forward_shapes_and_parameter_count():
    torch.manual_seed(0)
    model = SedModel(SedModelConfig(), n_mels=128, n_classes=10).eval()
    x = torch.randn(2, 640, 128)
    with torch.no_grad():
        out = model(x)
    assert out.features.shape == (2, 160, 256)
    assert set(out.heads) == {"f1", "f2", "ft"}
    for head in out.heads.values():
        assert head.frame_probs.shape == (2, 160, 10)
        assert head.clip_probs.shape == (2, 10)
        assert torch.all((head.clip_probs >= 0) & (head.clip_probs <= 1))
    assert out.domain_logits.shape == (2, 160)
    assert model.frame_grid(FeatureConfig()).num_output_frames(640) == 160

    baseline = SedModel(SedModelConfig(heads=("ft",), domain=DomainConfig(mode="none")), 128, 10)
    n = sum(p.numel() for p in baseline.parameters())
    assert 1_100_000 <= n <= 1_125_000  # about 1.11 M with one head
    extra = sum(p.numel() for p in model.parameters()) - n
    assert 40_000 <= extra <= 46_000  # two labelers (~5 k each) and D (~33 k)


def test_requested_heads_only_and_unknown_head_rejected():
    model = _tiny()
    out = model(torch.randn(2, 16, 8), heads=["ft"], domain=False)
    assert list(out.heads) == ["ft"] and out.domain_logits is None
    assert out["ft"].frame_logits.shape == (2, 4, 3)
    with pytest.raises(ValueError, match="unknown heads"):
        model(torch.randn(2, 16, 8), heads=["f3"])


def test_domain_modes():
    x = torch.randn(3, 16, 8)
    assert _tiny(domain=DomainConfig(mode="whole"))(x).domain_logits.shape == (3,)
    assert _tiny(domain=DomainConfig(mode="time"))(x).domain_logits.shape == (3, 4)
    none = _tiny(domain=DomainConfig(mode="none"))
    assert none.domain is None and none.grl is None
    assert none(x).domain_logits is None
    none.set_grl_weight(0.5)  # no-op without D


def test_input_frame_mask_is_pooled_to_output_rate():
    model = _tiny().eval()
    x = torch.randn(2, 19, 8)
    mask = torch.ones(2, 19, dtype=torch.bool)
    mask[1, 9:] = False
    out = model(x, frame_mask=mask)
    assert out.frame_mask.shape == (2, 4)
    assert out.frame_mask.sum(1).tolist() == [4, 2]
    with pytest.raises(ValueError, match="frame mask"):
        model(x, frame_mask=mask[:, :10])


def test_grl_reverses_domain_gradient_into_f_only():
    torch.manual_seed(0)
    model = _tiny(domain=DomainConfig(mode="time")).eval()
    x = torch.randn(2, 16, 8)

    def grads(weight):
        model.zero_grad()
        model.set_grl_weight(weight)
        model(x, heads=[]).domain_logits.sum().backward()
        enc = model.encoder.rnn.weight_hh_l0.grad.clone()
        dom = model.domain.mlp[0].weight.grad.clone()
        return enc, dom

    enc1, dom1 = grads(1.0)
    enc_half, dom_half = grads(0.5)
    # without the GRL, the same loss gives the opposite gradient in F
    model.zero_grad()
    model.domain(model.encoder(x)).sum().backward()
    enc_plain = model.encoder.rnn.weight_hh_l0.grad.clone()
    torch.testing.assert_close(enc1, -enc_plain)
    torch.testing.assert_close(enc_half, 0.5 * enc1)
    torch.testing.assert_close(dom_half, dom1)  # D itself is not reversed
    assert torch.count_nonzero(enc1) > 0


def test_same_seed_same_model_and_outputs():
    def run():
        torch.manual_seed(123)
        model = _tiny()
        model.train()
        out = model(torch.randn(2, 16, 8))
        return model, out

    m1, o1 = run()
    m2, o2 = run()
    for (n1, p1), (n2, p2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    for name in o1.heads:
        assert torch.equal(o1[name].frame_logits, o2[name].frame_logits)
    assert torch.equal(o1.domain_logits, o2.domain_logits)


def test_heads_start_different():
    torch.manual_seed(0)
    model = _tiny()
    assert not torch.equal(model.heads["f1"].strong.weight, model.heads["f2"].strong.weight)


def test_only_the_labelers_get_the_labeler_hidden_layer():
    from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality

    model = _tiny(head=HeadConfig(labeler_hidden_dim=7))
    for name in ("f1", "f2"):
        assert model.heads[name].hidden.weight.shape == (7, model.encoder.output_dim)
    assert model.heads["ft"].hidden is None  # the final classifier stays the baseline's head
    out = model(torch.randn(2, 16, 8))
    assert {h.frame_logits.shape for h in out.heads.values()} == {(2, 4, 3)}
    # eq. 8's "first layer" is now the labelers' hidden layer
    cfg = OrthogonalityConfig(normalization="row", orientation="out", reduction="mean_abs")
    first = labeler_orthogonality(model.heads["f1"], model.heads["f2"], cfg)
    hidden = labeler_orthogonality(model.heads["f1"], model.heads["f2"], OrthogonalityConfig(
        layer="hidden", normalization="row", orientation="out", reduction="mean_abs"))
    torch.testing.assert_close(first, hidden)
    assert 0.0 < first.item() < 1.0


@pytest.mark.parametrize("heads", [(), ("ft", "ft"), ("f-1",)])
def test_invalid_head_names(heads):
    with pytest.raises(ValueError):
        SedModelConfig(heads=heads)


def test_config_from_dict_and_overrides():
    cfg = from_dict(SedModelConfig, {"heads": ["ft"], "domain": {"mode": "whole"}, "head": {"pooling": "max"}})
    assert cfg.heads == ("ft",) and cfg.domain.mode == "whole" and cfg.head == HeadConfig(pooling="max")
    cfg = apply_overrides(cfg, ["crnn.rnn_layers=1", "domain.mode=none"])
    assert cfg.crnn.rnn_layers == 1 and not cfg.domain.enabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model = _tiny().cuda()
    mask = torch.ones(2, 16, dtype=torch.bool, device="cuda")
    out = model(torch.randn(2, 16, 8, device="cuda"), frame_mask=mask)
    assert out["ft"].clip_logits.is_cuda and out.domain_logits.is_cuda and out.frame_mask.is_cuda


def test_tiny_model_fits_a_frame_pattern_with_all_losses():
    from audioadapt.adaptation.losses import clip_bce, domain_bce, frame_bce
    from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality

    torch.manual_seed(0)
    model = SedModel(
        SedModelConfig(crnn=CRNNConfig(filters=(8, 8), kernel_sizes=(3, 3), pooling=((2, 2), (2, 2)),
                                       rnn_hidden=8, dropout=0.0), head=HeadConfig(dropout=0.0)),
        n_mels=8, n_classes=2,
    )
    x = torch.randn(4, 32, 8) * 0.1
    strong = torch.zeros(4, 8, 2)
    x[0, 8:20] += 2.0
    strong[0, 2:5, 0] = 1
    x[1, 0:12, :4] -= 2.0
    strong[1, 0:3, 1] = 1
    strong[2:] = -1  # weak / unlabelled rows
    weak = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-1.0, -1.0]])
    domain = torch.tensor([0, 0, 1, 1])
    model.set_grl_weight(0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        out = model(x)
        loss = sum(frame_bce(h.frame_logits, strong) + clip_bce(h.clip_logits, weak) for h in out.heads.values())
        loss = loss + labeler_orthogonality(model.heads["f1"], model.heads["f2"], OrthogonalityConfig())
        loss = loss + domain_bce(out.domain_logits, domain, balance=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(frame_bce(out["ft"].frame_logits, strong).item())
    assert losses[-1] < 0.35 * losses[0]
