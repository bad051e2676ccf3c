"""SED datasets: items of the batch contract, label replacement, multi-source index space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from audioadapt.data.batch import collate
from audioadapt.data.manifest import ClipRecord, Event
from audioadapt.data.sampling import MultiSourceBatchSampler, SamplerConfig
from audioadapt.data.sed_dataset import MultiSourceDataset, SedDataset, SedDatasetConfig
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.frames import FrameGrid

CLASSES = ("Cat", "Dog", "Speech")
GRID = FrameGrid(sample_rate=22050, hop_length=345, n_fft=2048, time_pooling=(2, 2))
N_MEL = 6


def _features(n: int, frames: int = 640, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((frames, N_MEL)).astype(np.float64) for _ in range(n)]


def _synthetic(n: int = 3) -> list[ClipRecord]:
    out = []
    for i in range(n):
        events = () if i == n - 1 else (Event(1.0, 2.0, CLASSES[i % 3]), Event(3.0, 5.0, "Speech"))
        out.append(ClipRecord(f"{i}.wav", Path(f"{i}.wav"), "synthetic", events=events))
    return out


def _weak(n: int = 4) -> list[ClipRecord]:
    return [ClipRecord(f"w{i}.wav", Path(f"w{i}.wav"), "weak", tags=frozenset({CLASSES[i % 3]})) for i in range(n)]


def _unlabeled(n: int = 5) -> list[ClipRecord]:
    return [ClipRecord(f"u{i}.wav", Path(f"u{i}.wav"), "unlabeled") for i in range(n)]


def test_synthetic_item():
    feats = _features(3)
    ds = SedDataset(_synthetic(), feats, GRID, CLASSES)
    assert len(ds) == 3 and ds.name == "synthetic"
    item = ds[0]
    assert item.features.shape == (640, N_MEL) and item.features.dtype == torch.float32
    assert np.allclose(item.features.numpy(), feats[0])
    assert item.strong.shape == (160, 3)
    assert item.strong[:, 2].sum() > 0 and item.strong[:, 0].sum() > 0 and item.strong[:, 1].sum() == 0
    assert item.weak.tolist() == [1.0, 0.0, 1.0]  # derived from the events
    assert item.domain == 0 and item.index == 0 and item.source == 0
    empty = ds[2]
    assert (empty.strong == 0).all() and (empty.weak == 0).all()


def test_weak_from_strong_flag_off():
    ds = SedDataset(_synthetic(), _features(3), GRID, CLASSES, SedDatasetConfig(weak_from_strong=False))
    assert (ds[0].weak == -1).all() and (ds[0].strong >= 0).all()


def test_weak_and_unlabeled_items():
    ds = SedDataset(_weak(), _features(4), GRID, CLASSES)
    it = ds[1]
    assert (it.strong == -1).all() and it.strong.shape == (160, 3)
    assert it.weak.tolist() == [0.0, 1.0, 0.0] and it.domain == 1
    un = SedDataset(_unlabeled(), _features(5), GRID, CLASSES)[4]
    assert (un.strong == -1).all() and (un.weak == -1).all() and un.index == 4


@pytest.mark.parametrize("frames, pooling", [(640, (2, 2)), (643, (2, 2)), (645, (2, 2)), (100, (4,)), (99, (3, 2))])
def test_strong_length_follows_the_model_pooling(frames, pooling):
    grid = GRID.with_pooling(pooling)
    ds = SedDataset(_synthetic(1) + _weak(1), _features(2, frames), grid, CLASSES)
    expected = frames
    for p in pooling:
        expected //= p
    assert ds[0].strong.shape == (expected, 3) and ds[1].strong.shape == (expected, 3)
    assert ds.num_output_frames(0) == expected


def test_set_and_reset_labels():
    ds = SedDataset(_unlabeled(3), _features(3), GRID, CLASSES)
    labels = np.zeros((2, 160, 3), dtype=np.float32)
    labels[0, 10:20, 1] = 1
    labels[1, :, 2] = -1
    ds.set_strong_labels([2, 0], labels)
    assert torch.equal(ds[2].strong, torch.from_numpy(labels[0]))
    assert torch.equal(ds[0].strong, torch.from_numpy(labels[1]))
    assert (ds[1].strong == -1).all()
    ds.set_weak_labels([1], np.array([[1, 0, -1]]))
    assert ds[1].weak.tolist() == [1.0, 0.0, -1.0] and (ds[0].weak == -1).all()
    ds.reset_labels([2])
    assert (ds[2].strong == -1).all() and not (ds[0].strong == -1).all()
    ds.reset_labels()
    assert (ds[0].strong == -1).all() and (ds[1].weak == -1).all()


def test_label_replacement_is_validated():
    ds = SedDataset(_unlabeled(2), _features(2), GRID, CLASSES)
    with pytest.raises(ValueError, match="shape"):
        ds.set_strong_labels([0], np.zeros((1, 159, 3)))
    with pytest.raises(ValueError, match="only -1"):
        ds.set_strong_labels([0], np.full((1, 160, 3), 0.7))
    with pytest.raises(ValueError, match="2 label arrays for 1"):
        ds.set_strong_labels([0], np.zeros((2, 160, 3)))
    with pytest.raises(ValueError, match="shape"):
        ds.set_weak_labels([0, 1], np.zeros((2, 4)))
    with pytest.raises(IndexError):
        ds.set_weak_labels([2], np.zeros((1, 3)))
    with pytest.raises(IndexError):
        ds[5]


def test_bad_records_and_features():
    with pytest.raises(DataError, match="3 items for 2 records"):
        SedDataset(_unlabeled(2), _features(3), GRID, CLASSES)
    bad = [ClipRecord("b.wav", Path("b.wav"), "synthetic", events=(Event(0, 1, "Bird"),))]
    with pytest.raises(DataError, match="'b.wav'.*unknown class 'Bird'"):
        SedDataset(bad, _features(1), GRID, CLASSES)
    bad = [ClipRecord("t.wav", Path("t.wav"), "weak", tags=frozenset({"Bird"}))]
    with pytest.raises(DataError, match="t.wav.*Bird"):
        SedDataset(bad, _features(1), GRID, CLASSES)
    ds = SedDataset(_unlabeled(1), [np.zeros(640)], GRID, CLASSES)
    with pytest.raises(DataError, match="u0.wav.*expected \\(frame, mel\\)"):
        ds[0]


def _multi() -> MultiSourceDataset:
    return MultiSourceDataset(
        {
            "synthetic": SedDataset(_synthetic(3), _features(3, seed=1), GRID, CLASSES),
            "weak": SedDataset(_weak(4), _features(4, seed=2), GRID, CLASSES),
            "unlabeled": SedDataset(_unlabeled(5), _features(5, seed=3), GRID, CLASSES),
        }
    )


def test_multi_source_index_space():
    ds = _multi()
    assert len(ds) == 12 and ds.source_names == ("synthetic", "weak", "unlabeled")
    assert ds.ranges == {"synthetic": range(0, 3), "weak": range(3, 7), "unlabeled": range(7, 12)}
    for name, rng in ds.ranges.items():
        k = ds.source_names.index(name)
        for g in rng:
            it = ds[g]
            assert it.index == g and it.source == k
            assert ds.record(g).source == name
            local = g - rng.start
            assert torch.equal(it.features, ds.source(name)[local].features)
    assert ds.locate(7) == (2, 0)
    with pytest.raises(IndexError):
        ds[12]


def test_multi_source_label_replacement_by_global_index():
    ds = _multi()
    strong = torch.ones((2, 160, 3), dtype=torch.int8)  # as a pseudo-labeller returns them
    strong[1] = 0
    ds.set_strong_labels([8, 4], strong)
    assert (ds[8].strong == 1).all() and (ds[4].strong == 0).all() and (ds[9].strong == -1).all()
    ds.set_weak_labels([11, 0], torch.tensor([[0, 1, 1], [0, 0, 0]], dtype=torch.int8))
    assert ds[11].weak.tolist() == [0.0, 1.0, 1.0] and ds[0].weak.tolist() == [0.0, 0.0, 0.0]
    assert ds.source("unlabeled")[4].weak.tolist() == [0.0, 1.0, 1.0]
    ds.reset_labels([8])
    assert (ds[8].strong == -1).all() and (ds[4].strong == 0).all()
    ds.reset_labels()
    assert ds[0].weak.tolist() == [1.0, 0.0, 1.0]


def test_multi_source_rejects_mismatched_classes():
    with pytest.raises(ConfigError, match="classes"):
        MultiSourceDataset({"a": SedDataset(_unlabeled(1), _features(1), GRID, CLASSES),
                            "b": SedDataset(_unlabeled(1), _features(1), GRID, CLASSES[:2])})


def test_data_loader_end_to_end():
    ds = _multi()
    cfg = SamplerConfig(batch_sizes={"synthetic": 1, "weak": 2, "unlabeled": 2}, seed=3)
    loader = DataLoader(ds, batch_sampler=MultiSourceBatchSampler(ds.ranges, cfg), collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 2  # weak: 4 // 2 = 2, unlabeled: 5 // 2 = 2, synthetic: 3
    for b in batches:
        assert b.size == 5 and b.source.tolist() == [0, 1, 1, 2, 2]
        assert b.has_strong().tolist() == [True, False, False, False, False]
        assert b.has_weak().tolist() == [True, True, True, False, False]
        assert b.domain.tolist() == [0, 1, 1, 1, 1]
        for row, g in enumerate(b.index.tolist()):
            assert torch.equal(b.features[row], ds[g].features)
