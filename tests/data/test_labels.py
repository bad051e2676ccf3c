"""Label encoding at the model's output frame rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from audioadapt.data.labels import UNKNOWN, LabelConfig, encode_strong, encode_weak
from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid

CLASSES = ("Cat", "Dog", "Speech")
GRID = FrameGrid.from_features(FeatureConfig(), time_pooling=(2, 2))
HOP = 4 * 345 / 22050  # one output frame of the default SED grid, in seconds


def test_ten_second_clip_covers_all_160_frames():
    y = encode_strong([Event(0.0, 10.0, "Dog")], CLASSES, GRID, 160)
    assert y.shape == (160, 3) and y.dtype == np.float32
    assert y[:, 1].sum() == 160 and y[:, [0, 2]].sum() == 0


def test_frames_of_one_event_floor_ceil():
    # 1.0 s / 62.585 ms = 15.98 -> frame 15; 2.0 s -> 31.96 -> ceil 32.
    y = encode_strong([Event(1.0, 2.0, "Speech")], CLASSES, GRID, 160)
    assert np.flatnonzero(y[:, 2]).tolist() == list(range(15, 32))


def test_2019_rounding_floors_both_ends():
    cfg = LabelConfig(onset_rounding="floor", offset_rounding="floor")
    y = encode_strong([Event(1.0, 2.0, "Speech")], CLASSES, GRID, 160, cfg)
    assert np.flatnonzero(y[:, 2]).tolist() == list(range(15, 31))
    # An event inside one frame vanishes under floor/floor but not under floor/ceil.
    short = [Event(0.07, 0.1, "Cat")]
    assert encode_strong(short, CLASSES, GRID, 160, cfg).sum() == 0
    assert np.flatnonzero(encode_strong(short, CLASSES, GRID, 160)[:, 0]).tolist() == [1]


def test_clipped_to_the_given_output_length():
    events = [Event(9.5, 12.0, "Cat"), Event(11.0, 13.0, "Dog")]
    y = encode_strong(events, CLASSES, GRID, 158)
    assert y.shape == (158, 3)
    assert y[-1, 0] == 1 and y[:, 1].sum() == 0
    assert encode_strong(events, CLASSES, GRID, 0).shape == (0, 3)


def test_overlapping_events_and_empty_clip():
    events = [Event(0.0, 1.0, "Dog"), Event(0.5, 2.0, "Dog"), Event(0.2, 0.4, "Cat")]
    y = encode_strong(events, CLASSES, GRID, 160)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert np.flatnonzero(y[:, 1]).tolist() == list(range(0, math.ceil(2.0 / HOP)))
    assert encode_strong((), CLASSES, GRID, 160).sum() == 0


def test_unknown_labels_are_minus_one():
    y = encode_strong(None, CLASSES, GRID, 160)
    assert y.shape == (160, 3) and (y == UNKNOWN).all() and UNKNOWN == -1
    w = encode_weak(None, CLASSES)
    assert w.shape == (3,) and (w == -1).all()


def test_encode_weak():
    assert encode_weak({"Speech", "Cat"}, CLASSES).tolist() == [1.0, 0.0, 1.0]
    assert encode_weak(frozenset(), CLASSES).tolist() == [0.0, 0.0, 0.0]
    assert encode_weak(["Dog"], CLASSES).dtype == np.float32


def test_unknown_class_names_raise():
    with pytest.raises(DataError, match="unknown class 'Bird'"):
        encode_strong([Event(0, 1, "Bird")], CLASSES, GRID, 10)
    with pytest.raises(DataError, match="unknown class 'Bird'"):
        encode_weak({"Bird"}, CLASSES)
    with pytest.raises(ConfigError, match="repeats"):
        encode_weak({"Dog"}, ("Dog", "Cat", "Dog"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        encode_strong([], CLASSES, GRID, -1)
    with pytest.raises(ValueError, match="num_frames"):
        encode_strong([], CLASSES, GRID, 2.5)
    with pytest.raises(ConfigError, match="onset_rounding"):
        LabelConfig(onset_rounding="nearest")


@settings(max_examples=200, deadline=None)
@given(
    onset=st.floats(0.0, 11.0, allow_nan=False),
    length=st.floats(0.01, 5.0, allow_nan=False),
    num_frames=st.integers(1, 200),
)
def test_floor_ceil_marks_exactly_the_frames_the_event_touches(onset, length, num_frames):
    offset = onset + length
    # Stay away from frame boundaries, where float error decides.
    for t in (onset, offset):
        assume(abs(t / HOP - round(t / HOP)) > 1e-6)
    y = encode_strong([Event(onset, offset, "Cat")], CLASSES, GRID, num_frames)[:, 0]
    starts = np.arange(num_frames) * HOP
    touches = (starts < offset) & (starts + HOP > onset)
    assert np.array_equal(y.astype(bool), touches)
