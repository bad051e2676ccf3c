"""Property tests of the frame grid: unit round trips, boundaries, pooled lengths, SED numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid

rates = st.sampled_from([8000, 16000, 22050, 44100, 48000])
hops = st.integers(min_value=1, max_value=2048)
poolings = st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=5).map(tuple)


@st.composite
def grids(draw, center=None):
    hop = draw(hops)
    n_fft = draw(st.integers(min_value=hop, max_value=4 * hop + 64))
    c = draw(st.booleans()) if center is None else center
    return FrameGrid(draw(rates), hop, n_fft, c, draw(poolings))


# -- seconds <-> samples -------------------------------------------------------
@given(grids(), st.integers(min_value=0, max_value=10**8))
def test_samples_seconds_samples_is_exact(grid, samples):
    assert grid.seconds_to_samples(grid.samples_to_seconds(samples)) == samples


@given(grids(), st.floats(min_value=0, max_value=3600, allow_nan=False))
def test_seconds_samples_seconds_within_half_a_sample(grid, seconds):
    back = grid.samples_to_seconds(grid.seconds_to_samples(seconds))
    assert abs(back - seconds) <= 0.5 / grid.sample_rate + 1e-9


# -- samples -> input frames ------------------------------------------------------
def _stft_frames(samples: int, n_fft: int, hop: int, center: bool) -> int:
    spec = torch.stft(
        torch.zeros(samples),
        n_fft=n_fft,
        hop_length=hop,
        window=torch.ones(n_fft),
        center=center,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.shape[-1]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=4, max_value=128).map(lambda half: 2 * half),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=0, max_value=3000),
    st.booleans(),
)
def test_input_frames_match_torch_stft(n_fft, hop, samples, center):
    grid = FrameGrid(16000, hop, n_fft, center)
    expected = grid.num_input_frames(samples)
    if not center and samples < n_fft:
        assert expected == 0
        return
    if samples == 0:
        assert expected == 1  # a centred STFT of nothing still has one (padding) frame
        return
    assert _stft_frames(samples, n_fft, hop, center) == expected


def test_input_frames_odd_n_fft_centred():
    # A centred STFT pads n_fft // 2 samples per side: 8 + 2 * 4 = 16 samples, 1 + (16 - 9) // 4 = 2 frames.
    grid = FrameGrid(16000, 4, 9, True)
    assert grid.num_input_frames(8) == _stft_frames(8, 9, 4, True)


@given(grids(center=True), st.integers(min_value=0, max_value=10**7))
def test_centred_frames_grow_by_one_per_hop(grid, samples):
    n = grid.num_input_frames(samples)
    assert grid.num_input_frames(samples + grid.hop_length) == n + 1
    if grid.n_fft % 2 == 0:
        # With an even n_fft the centred count is 1 + samples // hop.
        assert (n - 1) * grid.hop_length <= samples < n * grid.hop_length


def test_negative_samples_rejected():
    with pytest.raises(ValueError):
        FrameGrid(16000, 160, 512).num_input_frames(-1)


# -- pooling ---------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2000), poolings)
def test_output_frames_equal_sequential_pooling(frames, pooling):
    grid = FrameGrid(22050, 345, 2048, True, pooling)
    x = torch.zeros(1, 1, frames)
    for factor in pooling:
        if x.shape[-1] < factor:
            x = x[..., :0]
            continue
        x = torch.nn.functional.max_pool1d(x, kernel_size=factor, stride=factor)
    assert grid.num_output_frames(frames) == x.shape[-1]


@given(st.integers(min_value=0, max_value=10**6), poolings)
def test_nested_floors_equal_one_floor_division(frames, pooling):
    grid = FrameGrid(22050, 345, 2048, True, pooling)
    # floor(floor(n / a) / b) == floor(n / (a * b)) for whole numbers.
    assert grid.num_output_frames(frames) == frames // grid.pooling_factor


# -- seconds <-> output frames ---------------------------------------------------
@given(grids(), st.integers(min_value=0, max_value=100000))
def test_exact_boundary_maps_to_its_frame_under_floor_ceil_round(grid, frame):
    t = grid.output_frame_to_seconds(frame)
    assert grid.seconds_to_output_frame(t, "floor") == frame
    assert grid.seconds_to_output_frame(t, "ceil") == frame
    assert grid.seconds_to_output_frame(t, "round") == frame


@given(grids(), st.integers(min_value=0, max_value=100000), st.floats(min_value=0.01, max_value=0.99))
def test_inside_a_frame_floor_and_ceil_bracket(grid, frame, frac):
    t = (frame + frac) * grid.output_hop_seconds
    lo = grid.seconds_to_output_frame(t, "floor")
    hi = grid.seconds_to_output_frame(t, "ceil")
    assert (lo, hi) == (frame, frame + 1)
    assert grid.output_frame_to_seconds(lo) <= t < grid.output_frame_to_seconds(hi)


@given(grids(), st.lists(st.floats(min_value=0, max_value=600), min_size=1, max_size=20))
def test_vectorised_conversion_matches_scalar(grid, times):
    arr = grid.seconds_to_output_frame(np.array(times), "floor")
    assert list(arr) == [grid.seconds_to_output_frame(t, "floor") for t in times]


@given(grids(), st.floats(min_value=1e-3, max_value=600))
def test_duration_in_frames_is_nearest_and_positive(grid, seconds):
    n = grid.seconds_to_output_frames(seconds)
    assert n >= 1
    exact = seconds / grid.output_hop_seconds
    if exact >= 0.5:
        assert abs(n - exact) <= 0.5 + 1e-9
    else:
        assert n == 1


@given(grids(), st.integers(min_value=0, max_value=5000))
def test_output_timestamps_are_frame_boundaries(grid, frames):
    ts = grid.output_timestamps(frames)
    assert len(ts) == frames + 1 and ts[0] == 0.0
    assert ts[-1] == pytest.approx(grid.output_frame_to_seconds(frames))
    if frames:
        np.testing.assert_allclose(np.diff(ts), grid.output_hop_seconds)


# -- the SED and SER numbers -----------------------------------------------------
def test_sed_defaults_640_input_160_output_frames():
    grid = FrameGrid.from_features(FeatureConfig(), time_pooling=(2, 2, 1, 1, 1, 1, 1))
    assert grid.num_input_frames(grid.seconds_to_samples(10.0)) == 640
    assert grid.num_output_frames(640) == 160
    assert grid.num_output_frames_for_seconds(10.0) == 160
    # Without centring the same clip has 634 frames.
    assert FrameGrid(22050, 345, 2048, center=False).num_input_frames(220500) == 634


def test_sed_output_hop_is_62_585_ms():
    grid = FrameGrid.from_features(FeatureConfig(), time_pooling=(2, 2))
    assert grid.pooling_factor == 4
    assert math.isclose(grid.output_hop_seconds * 1000, 62.585, abs_tol=5e-4)
    assert grid.output_hop_seconds == 1380 / 22050
    assert grid.input_hop_seconds == 345 / 22050


def test_ser_grid_751_375_187():
    cfg = FeatureConfig(sample_rate=16000, clip_seconds=7.5, n_fft=512, win_length=400, hop_length=160, n_mels=80)
    grid = FrameGrid.from_features(cfg, (2, 2))
    frames = grid.num_input_frames(grid.seconds_to_samples(7.5))
    assert frames == 751
    assert grid.with_pooling((2,)).num_output_frames(frames) == 375
    assert grid.num_output_frames(frames) == 187
