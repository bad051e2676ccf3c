"""The soundscape mixing engine: trimming, planning, placement, SNR, annotation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audioadapt.data.soundscape import (
    ClipPlan,
    EventAudio,
    SceneConfig,
    active_segments,
    draw_labels,
    energy_bounds,
    fill_background,
    mix_soundscape,
    plan_clips,
    trim_event,
)
from audioadapt.data.synthetic.domain import ChannelConfig, sample_channel
from audioadapt.errors import ConfigError

SR = 8000
CFG = SceneConfig()


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.sin(2 * np.pi * freq * t)


def _padded(x: np.ndarray, before: float, after: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(before * SR)), x, np.zeros(int(after * SR))])


def test_energy_bounds_find_the_sound_inside_silence():
    x = _padded(_tone(0.5), 0.3, 0.2)
    start, stop = energy_bounds(x, SR, CFG)
    # within half the envelope window of the true edges
    tol = CFG.envelope_seconds * SR / 2 + 1
    assert abs(start - 0.3 * SR) <= tol
    assert abs(stop - 0.8 * SR) <= tol
    assert energy_bounds(np.zeros(100), SR, CFG) is None


def test_trim_event_cuts_to_the_energy_and_fades():
    x = _padded(_tone(0.5), 0.3, 0.2)
    y = trim_event(x, SR, 10 * SR, CFG)
    assert abs(y.size - 0.5 * SR) <= CFG.envelope_seconds * SR + 2
    assert abs(y[0]) < 0.05 and abs(y[-1]) < 0.05
    assert trim_event(x, SR, SR // 4, CFG).size == SR // 4


def test_plan_clips_has_the_empty_share_and_cycles_every_class():
    classes = [f"c{i}" for i in range(7)]
    cfg = dataclasses.replace(CFG, empty_fraction=0.2)
    plans = plan_clips(np.random.default_rng(0), 50, classes, cfg)
    assert sum(p.empty for p in plans) == 10
    primaries = [p.primary for p in plans if not p.empty]
    assert all(p is None for p in (q.primary for q in plans if q.empty))
    for i in range(0, len(primaries) - len(classes) + 1, len(classes)):
        assert sorted(primaries[i : i + len(classes)]) == classes


def test_draw_labels_starts_with_the_primary_and_respects_the_maximum():
    rng = np.random.default_rng(1)
    classes = ["a", "b", "c"]
    counts = set()
    for _ in range(200):
        labels = draw_labels(rng, ClipPlan(False, "b"), classes, CFG)
        assert labels[0] == "b" and set(labels) <= set(classes)
        counts.add(len(labels))
    assert counts == set(range(1, CFG.max_events + 1))
    assert draw_labels(rng, ClipPlan(True, None), classes, CFG) == []


def test_fill_background_joins_pieces_to_the_exact_length():
    rng = np.random.default_rng(2)
    pieces = [np.full(SR, 1.0), np.full(SR // 2, -1.0)]
    out = fill_background(rng, pieces, 5 * SR, SR, CFG)
    assert out.size == 5 * SR
    assert (out > 0.99).any() and (out < -0.99).any()  # both pieces used
    with pytest.raises(ValueError):
        fill_background(rng, [np.zeros(0)], SR, SR, CFG)


def _mix(events, seed=0, channel=None, cfg=CFG, snr=(10.0, 10.0), seconds=4.0):
    rng = np.random.default_rng(seed)
    background = np.random.default_rng(100 + seed).standard_normal(int(seconds * SR)) * 0.1
    return background, mix_soundscape(
        rng, background, events, sample_rate=SR, snr_db=snr, channel=channel, cfg=cfg
    )


def test_events_are_inside_the_clip_sorted_and_in_milliseconds():
    events = [EventAudio(lab, _padded(_tone(d), 0.1, 0.1)) for lab, d in
              [("a", 0.6), ("b", 1.5), ("a", 0.4), ("c", 0.1), ("b", 2.0)]]
    for seed in range(10):
        _, scape = _mix(events, seed)
        assert scape.audio.dtype == np.float32 and scape.audio.size == 4 * SR
        assert np.abs(scape.audio).max() <= 10 ** (CFG.peak_dbfs_range[1] / 20) + 1e-6
        assert list(scape.events) == sorted(scape.events)
        for ev in scape.events:
            assert 0.0 <= ev.onset < ev.offset <= 4.0
            assert ev.offset - ev.onset >= CFG.min_event_seconds - 1e-9
            assert round(ev.onset, 3) == ev.onset and round(ev.offset, 3) == ev.offset
        # events of one class never overlap or touch closer than the merge gap
        for a in scape.events:
            for b in scape.events:
                if a is not b and a.label == b.label and a.onset <= b.onset:
                    assert b.onset - a.offset >= CFG.min_same_class_gap - 1e-3


def test_annotation_follows_the_event_energy():
    # a 1 s tone padded with silence: the annotated length is the tone's
    _, scape = _mix([EventAudio("a", _padded(_tone(1.0), 0.5, 0.7))])
    (ev,) = scape.events
    assert ev.offset - ev.onset == pytest.approx(1.0, abs=CFG.envelope_seconds + 0.002)
    # a short click is annotated with the DCASE minimum length
    _, scape = _mix([EventAudio("a", _tone(0.05))])
    (ev,) = scape.events
    assert ev.offset - ev.onset == pytest.approx(CFG.min_event_seconds, abs=0.002)


def _bursts(gap: float) -> np.ndarray:
    """Three 0.3 s tones separated by ``gap`` seconds of silence."""
    tone = _tone(0.3)
    silence = np.zeros(int(gap * SR))
    return np.concatenate([tone, silence, tone, silence, tone])


def test_active_segments_split_only_at_gaps_as_long_as_the_setting():
    split = dataclasses.replace(CFG, annotation_gap_seconds=0.25)
    x = _padded(_bursts(0.4), 0.2, 0.2)
    assert active_segments(x, SR, CFG) == [energy_bounds(x, SR, CFG)]  # default: one extent
    segments = active_segments(x, SR, split)
    assert len(segments) == 3
    for (start, stop), expected in zip(segments, [0.2, 0.9, 1.6]):
        assert start / SR == pytest.approx(expected, abs=CFG.envelope_seconds)
        assert (stop - start) / SR == pytest.approx(0.3, abs=CFG.envelope_seconds + 0.002)
    # gaps shorter than the setting do not split
    assert len(active_segments(_bursts(0.2), SR, split)) == 1
    assert active_segments(np.zeros(100), SR, split) == []


def test_split_annotation_gives_one_event_per_burst():
    split = dataclasses.replace(CFG, annotation_gap_seconds=0.25)
    _, whole = _mix([EventAudio("a", _padded(_bursts(0.5), 0.1, 0.1))])
    _, parts = _mix([EventAudio("a", _padded(_bursts(0.5), 0.1, 0.1))], cfg=split)
    assert len(whole.events) == 1 and len(parts.events) == 3
    assert np.array_equal(whole.audio, parts.audio)  # only the annotation changes
    assert parts.events[0].onset == pytest.approx(whole.events[0].onset, abs=0.002)
    assert parts.events[-1].offset == pytest.approx(whole.events[0].offset, abs=0.002)
    for ev in parts.events:
        assert ev.offset - ev.onset == pytest.approx(0.3, abs=CFG.envelope_seconds + 0.002)
    # short bursts get the DCASE minimum length; pieces that then touch are merged
    clicks = np.concatenate([_tone(0.05), np.zeros(int(0.3 * SR)), _tone(0.05), np.zeros(int(0.1 * SR)),
                             _tone(0.05)])
    _, scape = _mix([EventAudio("a", clicks)], cfg=split)
    assert [round(ev.offset - ev.onset, 2) for ev in scape.events] == [0.25, 0.25]


def test_annotation_gap_shorter_than_the_merge_gap_is_rejected():
    with pytest.raises(ConfigError, match="annotation_gap_seconds"):
        SceneConfig(annotation_gap_seconds=0.1)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.0])
def test_event_is_mixed_at_the_drawn_snr(snr):
    background, scape = _mix([EventAudio("a", _tone(1.0, 700.0))], snr=(snr, snr))
    (ev,) = scape.events
    out = scape.audio.astype(np.float64)
    inside = np.zeros(out.size, dtype=bool)
    inside[int(ev.onset * SR) : int(ev.offset * SR)] = True
    # the clip is a scaled copy of (events + background): recover the scale outside the event
    scale = out[~inside] @ background[~inside] / (background[~inside] @ background[~inside])
    event_part = out[inside] / scale - background[inside]
    measured = 20 * np.log10(np.sqrt(np.mean(event_part**2)) / np.sqrt(np.mean(background**2)))
    assert measured == pytest.approx(snr, abs=0.3)


def test_an_event_that_does_not_fit_is_dropped():
    events = [EventAudio("a", _tone(3.0)), EventAudio("a", _tone(3.0))]
    _, scape = _mix(events)
    assert len(scape.events) == 1


def test_reverb_leaves_a_tail_after_the_annotated_offset():
    click = np.zeros(SR // 2)
    click[: SR // 100] = np.hanning(SR // 100)
    wet_channel = sample_channel(np.random.default_rng(3), ChannelConfig(reverb=2.0, rt60_range=(0.8, 0.8)), SR)
    quiet = dataclasses.replace(CFG, peak_dbfs_range=(-1.0, -1.0))

    def tail_ratio(channel):
        rng = np.random.default_rng(4)
        background = np.random.default_rng(5).standard_normal(4 * SR) * 1e-4
        scape = mix_soundscape(rng, background, [EventAudio("a", click)], sample_rate=SR, snr_db=(60.0, 60.0),
                               channel=channel, cfg=quiet)
        (ev,) = scape.events
        x = scape.audio.astype(np.float64)
        after = x[int((ev.offset + 0.05) * SR) : int((ev.offset + 0.3) * SR)]
        during = x[int(ev.onset * SR) : int(ev.offset * SR)]
        return np.mean(after**2) / np.mean(during**2)

    assert tail_ratio(wet_channel) > 100 * tail_ratio(None)


def test_mix_is_deterministic_per_generator():
    events = [EventAudio("a", _tone(0.5)), EventAudio("b", _tone(0.7, 900.0))]
    _, a = _mix(events, seed=7)
    _, b = _mix(events, seed=7)
    _, c = _mix(events, seed=8)
    assert np.array_equal(a.audio, b.audio) and a.events == b.events
    assert a.events != c.events


@pytest.mark.parametrize(
    "changes",
    [
        {"event_count_weights": ()},
        {"event_count_weights": (0.0, -1.0)},
        {"empty_fraction": 1.0},
        {"annotation_threshold_db": 3.0},
        {"peak_dbfs_range": (-1.0, 2.0)},
        {"placement_attempts": 0},
    ],
)
def test_invalid_scene_settings_are_config_errors(changes):
    with pytest.raises(ConfigError):
        SceneConfig(**changes)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.floats(0.01, 5.0), min_size=0, max_size=6),
    labels=st.lists(st.sampled_from("ab"), min_size=6, max_size=6),
    clip_seconds=st.floats(1.0, 4.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_annotations_always_fit_the_clip(lengths, labels, clip_seconds, seed):
    events = [EventAudio(lab, _tone(length)) for length, lab in zip(lengths, labels)]
    _, scape = _mix(events, seed=seed % 1000, seconds=clip_seconds)
    clip = int(clip_seconds * SR) / SR
    assert len(scape.events) <= len(events)
    for ev in scape.events:
        assert 0.0 <= ev.onset < ev.offset <= clip + 1e-9
        assert ev.offset - ev.onset >= min(CFG.min_event_seconds, clip) - 1e-3


def test_annotation_gap_is_a_generator_setting():
    from audioadapt.data.synthetic.sed import load_sed_config

    assert load_sed_config(overrides=["scene.annotation_gap_seconds=0.25"]).scene.annotation_gap_seconds == 0.25
    assert load_sed_config().scene.annotation_gap_seconds is None
    with pytest.raises(ConfigError, match="annotation_gap_seconds"):
        load_sed_config(overrides=["scene.annotation_gap_seconds=0.05"])
