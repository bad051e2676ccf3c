"""Normaliser kinds, masking, streaming fit, and settings carried in state_dict."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from audioadapt.errors import CheckpointError
from audioadapt.features.normalization import Normalizer, NormalizerConfig


def _feats(batch=3, frames=50, mels=8, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(1, 20, mels)
    return torch.randn(batch, frames, mels, generator=g) * scale - 30


def test_default_is_instance_minmax_to_minus_one_one():
    cfg = NormalizerConfig()
    assert cfg.kind == "instance_minmax" and cfg.output_range == (-1.0, 1.0)


@pytest.mark.parametrize("bad", [dict(kind="zscore"), dict(output_range=(1.0, 1.0)), dict(eps=0.0)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        NormalizerConfig(**bad)


def test_none_is_identity():
    x = _feats()
    assert Normalizer(NormalizerConfig(kind="none"), 8)(x) is x


@pytest.mark.parametrize("rng", [(-1.0, 1.0), (0.0, 1.0)])
def test_instance_minmax_range_per_item(rng):
    x = _feats()
    x[1] *= 5
    out = Normalizer(NormalizerConfig(output_range=rng), 8)(x)
    for b in range(3):
        assert out[b].min().item() == pytest.approx(rng[0], abs=1e-6)
        assert out[b].max().item() == pytest.approx(rng[1], abs=1e-6)
    # Affine per item: order is preserved and a gain change does not matter.
    out_scaled = Normalizer(NormalizerConfig(output_range=rng), 8)(x * 3 + 7)
    torch.testing.assert_close(out, out_scaled, rtol=0, atol=1e-5)


def test_instance_meanstd_whole_plane_and_per_mel():
    x = _feats()
    out = Normalizer(NormalizerConfig(kind="instance_meanstd"), 8)(x)
    flat = out.reshape(3, -1).double()
    torch.testing.assert_close(flat.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1, correction=0), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # Over the whole plane the per-mel spread differs; per_mel equalises it.
    assert out.std(dim=1).std() > 0.1
    per_mel = Normalizer(NormalizerConfig(kind="instance_meanstd", per_mel=True), 8)(x)
    torch.testing.assert_close(per_mel.mean(1), torch.zeros(3, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_mel.std(1, correction=0), torch.ones(3, 8), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["instance_minmax", "instance_meanstd"])
def test_lengths_mask_padding(kind):
    x = _feats(batch=2, frames=40)
    lengths = torch.tensor([40, 25])
    padded = x.clone()
    padded[1, 25:] = 1e6  # garbage in the padding must not change the statistics
    norm = Normalizer(NormalizerConfig(kind=kind), 8)
    out = norm(padded, lengths)
    alone = norm(x[1:, :25])
    torch.testing.assert_close(out[1:, :25], alone, rtol=0, atol=1e-5)
    assert not out[1, 25:].any()
    torch.testing.assert_close(out[0], norm(x[:1])[0], rtol=0, atol=1e-5)


def test_dataset_meanstd_streaming_fit_matches_numpy():
    rng = np.random.default_rng(0)
    items = [rng.normal(loc=np.arange(6) * 10, scale=np.arange(1, 7), size=(n, 6)) for n in (5, 130, 1, 77, 0)]
    norm = Normalizer(NormalizerConfig(kind="dataset_meanstd"), 6)
    assert not norm.is_fitted
    with pytest.raises(RuntimeError, match="fit"):
        norm(torch.zeros(1, 3, 6))
    norm.fit(iter(items))  # a one-shot iterator: one pass only
    allx = np.concatenate(items)
    np.testing.assert_allclose(norm.mean.numpy(), allx.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std.numpy(), allx.std(0), rtol=1e-6)
    assert int(norm.count) == len(allx)
    out = norm(torch.from_numpy(allx[None]).float())[0].double().numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-4)


def test_fit_checks_mels_and_emptiness():
    norm = Normalizer(NormalizerConfig(kind="dataset_meanstd"), 4)
    with pytest.raises(ValueError, match="4 mel"):
        norm.fit([np.zeros((3, 5))])
    with pytest.raises(ValueError, match="no frames"):
        norm.fit([np.zeros((0, 4))])
    # Kinds without statistics have nothing to fit.
    other = Normalizer(NormalizerConfig(), 4)
    assert not other.requires_fit and other.fit([]) is other


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_carries_statistics_and_settings():
    norm = Normalizer(NormalizerConfig(kind="dataset_meanstd"), 3).fit([np.array([[1.0, 2, 3], [3, 6, 9]])])
    state = _roundtrip(norm.state_dict())
    assert {"mean", "std", "count", "_extra_state"} <= set(state)
    fresh = Normalizer(NormalizerConfig(kind="dataset_meanstd"), 3)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.mean, torch.tensor([2.0, 4.0, 6.0]))
    assert fresh.is_fitted
    rebuilt = Normalizer.from_state_dict(state)
    assert rebuilt.cfg == norm.cfg and rebuilt.is_fitted
    torch.testing.assert_close(rebuilt.std, norm.std)


def test_changed_range_is_refused_when_loading():
    old = Normalizer(NormalizerConfig(output_range=(0.0, 1.0)), 8)
    state = _roundtrip(old.state_dict())
    new = Normalizer(NormalizerConfig(), 8)
    with pytest.raises(CheckpointError, match="output_range"):
        new.load_state_dict(state)
    rebuilt = Normalizer.from_state_dict(state)
    assert rebuilt.cfg.output_range == (0.0, 1.0)
    assert rebuilt(_feats()).min().item() == pytest.approx(0.0, abs=1e-6)


def test_checkpoint_without_settings_is_refused():
    norm = Normalizer(NormalizerConfig(), 8)
    with pytest.raises(RuntimeError, match="_extra_state"):
        norm.load_state_dict({})
    with pytest.raises(CheckpointError, match="no normaliser settings"):
        Normalizer.from_state_dict({})


def test_nested_in_a_model_with_prefix():
    model = torch.nn.Sequential(Normalizer(NormalizerConfig(kind="instance_meanstd", per_mel=True), 4))
    state = _roundtrip(model.state_dict())
    assert "0._extra_state" in state
    rebuilt = Normalizer.from_state_dict(state, prefix="0.")
    assert rebuilt.cfg.per_mel and rebuilt.n_mels == 4
