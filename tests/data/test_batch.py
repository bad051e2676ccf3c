"""The SED batch contract: collate, masks, device moves, padding."""

from __future__ import annotations

import pytest
import torch

from audioadapt.data.batch import SedBatch, SedItem, collate

N_MEL, N_CLASS = 4, 3


def _item(index: int, frames: int = 8, out_frames: int = 2, strong: float | None = None,
          weak: float | None = None, domain: int = 1, source: int = 0) -> SedItem:
    s = torch.full((out_frames, N_CLASS), -1.0) if strong is None else torch.full((out_frames, N_CLASS), strong)
    w = torch.full((N_CLASS,), -1.0) if weak is None else torch.full((N_CLASS,), weak)
    feats = torch.arange(frames * N_MEL, dtype=torch.float32).reshape(frames, N_MEL) + 100 * index
    return SedItem(feats, s, w, domain, index, source)


def test_collate_mixed_rows():
    items = [
        _item(7, strong=1.0, weak=1.0, domain=0, source=0),  # synthetic: strong + derived weak
        _item(3, weak=0.0, source=1),  # weak
        _item(12, source=2),  # unlabelled
    ]
    b = collate(items)
    assert b.size == 3 and len(b) == 3
    assert b.features.shape == (3, 8, N_MEL) and b.features.dtype == torch.float32
    assert b.strong.shape == (3, 2, N_CLASS) and b.weak.shape == (3, N_CLASS)
    assert b.index.tolist() == [7, 3, 12] and b.source.tolist() == [0, 1, 2] and b.domain.tolist() == [0, 1, 1]
    for t in (b.domain, b.index, b.source):
        assert t.dtype == torch.long
    assert torch.equal(b.features[1], items[1].features)
    assert b.lengths is None
    assert b.has_strong().tolist() == [True, False, False]
    assert b.has_weak().tolist() == [True, True, False]
    assert b.strong_known().shape == b.strong.shape and b.strong_known()[0].all() and not b.strong_known()[1].any()
    assert b.weak_known().tolist() == [[True] * 3, [True] * 3, [False] * 3]
    assert b.frame_mask().all()


def test_partially_known_labels_mask_entries():
    it = _item(0, strong=0.0, weak=1.0)
    it.strong[1, 2] = -1
    it.weak[0] = -1
    b = collate([it])
    assert b.strong_known()[0].sum() == 2 * N_CLASS - 1 and not b.strong_known()[0, 1, 2]
    assert b.weak_known()[0].tolist() == [False, True, True]


def test_collate_pads_variable_lengths():
    b = collate([_item(0, frames=8, out_frames=2, strong=1.0), _item(1, frames=5, out_frames=1, strong=0.0)])
    assert b.features.shape == (2, 8, N_MEL)
    assert b.lengths.tolist() == [8, 5]
    assert (b.features[1, 5:] == 0).all() and (b.features[1, :5] != 0).all()
    assert b.strong[1, 1].tolist() == [-1.0] * N_CLASS and b.strong[1, 0].tolist() == [0.0] * N_CLASS
    assert b.frame_mask().tolist() == [[True] * 8, [True] * 5 + [False] * 3]


def test_collate_rejects_inconsistent_items():
    with pytest.raises(ValueError, match="empty"):
        collate([])
    bad = _item(1)
    bad.features = torch.zeros(8, N_MEL + 1)
    with pytest.raises(ValueError, match="item 1"):
        collate([_item(0), bad])


def test_to_subset_and_pin():
    b = collate([_item(i, strong=1.0, source=i % 2) for i in range(4)])
    moved = b.to("cpu")
    assert isinstance(moved, SedBatch) and torch.equal(moved.features, b.features) and moved is not b
    sub = b.subset(b.source == 1)
    assert sub.index.tolist() == [1, 3] and sub.features.shape == (2, 8, N_MEL)
    assert b.subset([2]).index.tolist() == [2]
    if torch.cuda.is_available():  # pragma: no cover - only with a GPU
        assert b.to("cuda").features.is_cuda and b.pin_memory().features.is_pinned()


def test_batch_shape_checks():
    f = torch.zeros(2, 8, N_MEL)
    ok = dict(features=f, strong=torch.zeros(2, 2, N_CLASS), weak=torch.zeros(2, N_CLASS),
              domain=torch.zeros(2, dtype=torch.long), index=torch.arange(2), source=torch.zeros(2, dtype=torch.long))
    SedBatch(**ok)
    with pytest.raises(ValueError, match="index has 3 rows"):
        SedBatch(**{**ok, "index": torch.arange(3)})
    with pytest.raises(ValueError, match="classes"):
        SedBatch(**{**ok, "weak": torch.zeros(2, N_CLASS + 1)})
    with pytest.raises(ValueError, match="expects features"):
        SedBatch(**{**ok, "features": torch.zeros(2, 8)})
