"""Inference helpers: model <-> checkpoint, per-clip cropping, selection metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.api.sed import checkpoint_meta
from audioadapt.data.manifest import ClipRecord, Event
from audioadapt.data.sed_dataset import SedDataset
from audioadapt.errors import CheckpointError
from audioadapt.features.frames import FrameGrid
from audioadapt.training.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from audioadapt.training.sed_predict import load_model, model_networks, predict_scores, selection_metrics

from . import test_sed_tri_adv as support


def test_checkpoint_round_trip_rebuilds_model_and_normalizer(tmp_path):
    method = support.make_method("sed_adv_time_tri_training")
    model, normalizer = method.model.eval(), method.normalizer
    nets = model_networks(model)
    assert set(nets) == {"encoder", "f1", "f2", "ft", "domain"}
    meta = checkpoint_meta(method.cfg, support.CLASSES, normalizer, tmp_path)
    ckpt = make_checkpoint(networks=nets, method_state={}, progress={}, best={}, meta=meta)
    loaded = load_checkpoint(save_checkpoint(ckpt, tmp_path / "x.pt"))
    again, norm = load_model(loaded)
    again.eval()
    x = torch.randn(2, support.N_FRAMES, support.N_MELS)
    for a, b in zip(model(normalizer(x)).heads.values(), again(norm(x)).heads.values()):
        torch.testing.assert_close(a.frame_probs, b.frame_probs)
    assert norm.cfg == normalizer.cfg
    with pytest.raises(CheckpointError, match="meta lacks"):
        load_model({**loaded, "meta": {}})
    with pytest.raises(CheckpointError, match="teacher_encoder"):
        load_model(loaded, prefix="teacher_")


def test_scores_are_cropped_to_each_clip_and_averaged_over_heads():
    method = support.make_method("sed_tri_training")
    cfg = method.cfg
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    lengths = [64, 48, 37]
    records = [ClipRecord(f"c{i}.wav", Path(f"c{i}.wav"), "validation", events=(Event(0.1, 0.5, "a"),))
               for i in range(3)]
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(n, support.N_MELS)).astype(np.float32) for n in lengths]
    ds = SedDataset(records, feats, grid, support.CLASSES, name="validation")
    scores = predict_scores(method.model, method.normalizer, ds, ("ft",), batch_size=2)
    assert [s.shape for s in scores.frame] == [(n // 4, 3) for n in lengths]
    assert scores.clip.shape == (3, 3) and scores.filenames == ["c0.wav", "c1.wav", "c2.wav"]
    both = predict_scores(method.model, method.normalizer, ds, ("f1", "ft"), batch_size=2)
    f1 = predict_scores(method.model, method.normalizer, ds, ("f1",), batch_size=2)
    np.testing.assert_allclose(both.clip, (scores.clip + f1.clip) / 2, rtol=1e-5)
    assert method.model.training  # modes are restored


def test_selection_metrics_sum_the_internal_valid_scores():
    method = support.make_method("sed_baseline")
    p = method.cfg.method.predict
    metrics = selection_metrics(method.model, method.normalizer, method.data, p.heads, p.batch_size,
                                method.cfg.decode, method.cfg.metrics)
    assert set(metrics) == {"synthetic_event_f1", "weak_clip_f1", "selection"}
    parts = [v for k, v in metrics.items() if k != "selection"]
    assert metrics["selection"] == pytest.approx(sum(0.0 if math.isnan(v) else v for v in parts))
