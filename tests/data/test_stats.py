"""Dataset and feature statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioadapt.data.manifest import ClipRecord, Event
from audioadapt.data.stats import domain_gap_db, feature_stats, split_stats, stats_markdown


def _rec(name, events=None, tags=None):
    return ClipRecord(name, Path(name), "synthetic" if events is not None else "weak", events=events, tags=tags)


def test_split_stats_counts_events_clips_and_polyphony():
    recs = [
        _rec("a.wav", (Event(0.0, 2.0, "x"), Event(1.0, 3.0, "y"), Event(1.5, 2.5, "x"))),
        _rec("b.wav", ()),
        _rec("c.wav", (Event(4.0, 5.0, "y"), Event(5.0, 6.0, "y"))),
    ]
    s = split_stats("synthetic", recs, ["x", "y"])
    assert s.clips == 3 and s.clips_without_events == 1
    assert s.events_per_class == {"x": 2, "y": 3}
    assert s.clips_per_class == {"x": 1, "y": 2}
    assert s.mean_event_seconds["x"] == pytest.approx(1.5)
    # three events overlap in [1.5, 2.0]; touching events (5.0) do not overlap
    assert s.max_polyphony == 3


def test_weak_split_has_no_event_counts():
    s = split_stats("weak", [_rec("a.wav", tags=frozenset({"x"})), _rec("b.wav", tags=frozenset({"x", "y"}))], ["x", "y"])
    assert s.clips_per_class == {"x": 2, "y": 1}
    assert s.events_per_class == {} and s.clips_without_events is None


def test_feature_stats_match_numpy_and_gap():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(n, 4)).astype(np.float32) for n in (5, 9, 3)]
    f = feature_stats("s", items)
    allx = np.concatenate(items).astype(np.float64)
    assert f.frames == 17 and f.items == 3
    assert f.mean == pytest.approx(allx.mean())
    assert f.std == pytest.approx(allx.std())
    np.testing.assert_allclose(f.mean_spectrum, allx.mean(axis=0))
    g = feature_stats("t", [x + 2.0 for x in items])
    assert domain_gap_db(f, g) == pytest.approx(2.0)
    md = stats_markdown({"s": split_stats("s", [], ["x"])}, {"s": f}, ["x"])
    assert "| s | 3 | 17 |" in md
