"""Soundscape mixing: isolated events + a background -> one annotated clip.

The engine is shared by the procedural generator and the real-recording
mode; it only sees dry event waveforms with a label and a background signal.
For every clip it

1. trims each event to where its energy is (a smoothed envelope above
   ``annotation_threshold_db`` relative to the event's peak), with short
   fades at the cut;
2. places the events fully inside the clip at random onsets (overlaps are
   allowed, but two events of one class keep ``min_same_class_gap`` apart,
   the DCASE merge rule, so each annotated event stays separate);
3. scales each event to an SNR drawn from a range, event RMS over its own
   extent against the background RMS over the clip;
4. passes each event through the room (reverberation; its tail may run to
   the end of the clip) and the sum of events and background through the
   microphone (coloration);
5. normalises the clip to a random peak level.

Annotations are the placed extents of the dry events in seconds, rounded to
milliseconds; events shorter than ``min_event_seconds`` (the DCASE minimum
of 250 ms) are annotated with that minimum length. By default an event is one
annotation from its first to its last sample above the threshold, as scaper
annotates DESED's synthetic soundscapes. With ``annotation_gap_seconds`` set,
an event is annotated where it is active instead, as a person annotates a
recording: its extent is split wherever the envelope stays below the
threshold for at least that long (chopping, dishes and drawers are active for
a fifth to a half of their extent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.data.synthetic.domain import Channel, rms
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid


@dataclass(frozen=True)
class SceneConfig:
    """How clips are composed.

    Attributes
    ----------
    event_count_weights: relative probability of 1, 2, ... events in a
        non-empty clip (its length is the maximum count).
    empty_fraction: share of clips without any event.
    min_event_seconds: shortest annotated event (DCASE: 250 ms).
    min_same_class_gap: least silence between two events of one class
        (DCASE merges closer ones: 150 ms).
    annotation_threshold_db: energy threshold, relative to the event's peak
        envelope, that decides where an event starts and ends.
    envelope_seconds: smoothing window of that envelope.
    annotation_gap_seconds: ``None``: one annotation per event, from its first
        to its last sample above the threshold. A number: split the
        annotation wherever the envelope stays below the threshold for at
        least that many seconds (at least ``min_same_class_gap``, so that the
        pieces stay separate events under the DCASE merge rule).
    fade_seconds: fade applied where an event is cut.
    placement_attempts: random onsets tried per event before it is dropped.
    peak_dbfs_range: range of the clip's final peak level.
    crossfade_seconds: crossfade between background pieces that are joined
        to fill a clip.
    """

    event_count_weights: tuple[float, ...] = (0.3, 0.3, 0.25, 0.15)
    empty_fraction: float = 0.1
    min_event_seconds: float = 0.25
    min_same_class_gap: float = 0.15
    annotation_threshold_db: float = -30.0
    envelope_seconds: float = 0.02
    annotation_gap_seconds: float | None = None
    fade_seconds: float = 0.005
    placement_attempts: int = 30
    peak_dbfs_range: tuple[float, float] = (-9.0, -1.0)
    crossfade_seconds: float = 0.1

    def __post_init__(self) -> None:
        if not self.event_count_weights or min(self.event_count_weights) < 0 or sum(self.event_count_weights) <= 0:
            raise ConfigError(f"event_count_weights must be non-negative with a positive sum, got "
                             f"{self.event_count_weights}")
        if not 0 <= self.empty_fraction < 1:
            raise ConfigError(f"empty_fraction must be in [0, 1), got {self.empty_fraction}")
        for name in ("min_event_seconds", "min_same_class_gap", "fade_seconds", "crossfade_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.envelope_seconds <= 0 or self.placement_attempts < 1:
            raise ConfigError("envelope_seconds must be positive and placement_attempts >= 1")
        if self.annotation_gap_seconds is not None and self.annotation_gap_seconds < self.min_same_class_gap:
            raise ConfigError(f"annotation_gap_seconds must be null or >= min_same_class_gap "
                             f"({self.min_same_class_gap}), got {self.annotation_gap_seconds}")
        if self.annotation_threshold_db >= 0:
            raise ConfigError(f"annotation_threshold_db must be negative, got {self.annotation_threshold_db}")
        lo, hi = self.peak_dbfs_range
        if not lo <= hi <= 0:
            raise ConfigError(f"peak_dbfs_range must be (low, high) <= 0 dBFS, got {self.peak_dbfs_range}")

    @property
    def max_events(self) -> int:
        return len(self.event_count_weights)


@dataclass(frozen=True, eq=False)
class EventAudio:
    """A dry, isolated event: its class label and waveform ``(sample,)``."""

    label: str
    audio: np.ndarray


@dataclass(frozen=True, eq=False)
class Soundscape:
    """A mixed clip: float32 ``(sample,)`` audio within [-1, 1] and its events, sorted."""

    audio: np.ndarray
    events: tuple[Event, ...]


@dataclass(frozen=True)
class ClipPlan:
    """What a clip must contain: no event, or at least one of ``primary``."""

    empty: bool
    primary: str | None


def time_grid(sample_rate: int) -> FrameGrid:
    """The frame grid used for every seconds <-> samples conversion at ``sample_rate``."""
    return FrameGrid.from_features(FeatureConfig(sample_rate=sample_rate))


def plan_clips(rng: np.random.Generator, num_clips: int, classes: Sequence[str], cfg: SceneConfig) -> list[ClipPlan]:
    """Decide which clips are empty and give every other clip a primary class.

    Primary classes cycle through shuffled copies of ``classes``, so any
    ``len(classes)`` consecutive non-empty clips cover every class.
    """
    if not classes:
        raise ValueError("classes must not be empty")
    n_empty = int(round(cfg.empty_fraction * num_clips))
    empty = np.zeros(num_clips, dtype=bool)
    if n_empty:
        empty[rng.permutation(num_clips)[:n_empty]] = True
    deck: list[str] = []
    plans = []
    for is_empty in empty:
        if is_empty:
            plans.append(ClipPlan(True, None))
            continue
        if not deck:
            deck = [classes[i] for i in rng.permutation(len(classes))]
        plans.append(ClipPlan(False, deck.pop()))
    return plans


def draw_labels(rng: np.random.Generator, plan: ClipPlan, classes: Sequence[str], cfg: SceneConfig) -> list[str]:
    """The labels of one clip's events: the primary class first, then random ones."""
    if plan.empty:
        return []
    weights = np.asarray(cfg.event_count_weights, dtype=float)
    count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
    others = [classes[i] for i in rng.integers(0, len(classes), count - 1)]
    return [plan.primary or classes[0], *others]


def _envelope(audio: np.ndarray, sample_rate: int, cfg: SceneConfig) -> np.ndarray | None:
    """Boolean mask of the samples whose smoothed power is within the threshold of its peak.

    ``None`` for an empty or silent signal.
    """
    if audio.size == 0:
        return None
    win = max(1, int(cfg.envelope_seconds * sample_rate))
    # centred moving average of the power, via a cumulative sum
    csum = np.concatenate([[0.0], np.cumsum(np.square(audio.astype(np.float64)))])
    idx = np.arange(audio.size)
    lo = np.clip(idx - win // 2, 0, audio.size)
    hi = np.clip(idx - win // 2 + win, 0, audio.size)
    power = (csum[hi] - csum[lo]) / win
    peak = float(power.max())
    if peak <= 0:
        return None
    return power >= peak * 10.0 ** (cfg.annotation_threshold_db / 10.0)


def energy_bounds(audio: np.ndarray, sample_rate: int, cfg: SceneConfig) -> tuple[int, int] | None:
    """``(start, stop)`` samples where the smoothed energy is within the threshold of its peak.

    Returns ``None`` for a silent signal.
    """
    active = _envelope(audio, sample_rate, cfg)
    if active is None:
        return None
    above = np.flatnonzero(active)
    return int(above[0]), int(above[-1]) + 1


def active_segments(audio: np.ndarray, sample_rate: int, cfg: SceneConfig) -> list[tuple[int, int]]:
    """``(start, stop)`` samples of the parts of ``audio`` an annotation covers.

    One segment, the energy bounds, unless ``cfg.annotation_gap_seconds`` is
    set: then the bounds are split at every run of at least that many seconds
    below the threshold. Empty for a silent signal.
    """
    active = _envelope(audio, sample_rate, cfg)
    if active is None:
        return []
    above = np.flatnonzero(active)
    if cfg.annotation_gap_seconds is None:
        return [(int(above[0]), int(above[-1]) + 1)]
    min_gap = max(1, int(round(cfg.annotation_gap_seconds * sample_rate)))
    # a gap between consecutive active samples of at least min_gap silent samples ends a segment
    breaks = np.flatnonzero(np.diff(above) > min_gap)
    starts = np.concatenate([[above[0]], above[breaks + 1]])
    stops = np.concatenate([above[breaks] + 1, [above[-1] + 1]])
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def _fade(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, x.size // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n + 2)[1:-1]
        x = x.copy()
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def trim_event(audio: np.ndarray, sample_rate: int, max_samples: int, cfg: SceneConfig) -> np.ndarray | None:
    """Cut ``audio`` to its energy bounds (and to ``max_samples``), with fades; ``None`` if silent."""
    bounds = energy_bounds(audio, sample_rate, cfg)
    if bounds is None:
        return None
    start, stop = bounds
    stop = min(stop, start + max_samples)
    return _fade(np.asarray(audio[start:stop], dtype=np.float64), int(cfg.fade_seconds * sample_rate))


def fill_background(
    rng: np.random.Generator, pieces: Sequence[np.ndarray], num_samples: int, sample_rate: int, cfg: SceneConfig
) -> np.ndarray:
    """Join background recordings (in the given order) with crossfades, from a random offset.

    Pieces are repeated as needed; the result has ``num_samples`` samples.
    """
    pieces = [np.asarray(p, dtype=np.float64) for p in pieces if p.size]
    if not pieces:
        raise ValueError("no non-empty background piece")
    fade = int(cfg.crossfade_seconds * sample_rate)
    target = num_samples + min(num_samples, max(p.size for p in pieces))  # slack for a random start
    out = pieces[0]
    i = 1
    while out.size < target and i < 10_000:
        nxt = pieces[i % len(pieces)]
        f = min(fade, out.size // 2, nxt.size // 2)
        if f > 0:
            ramp = np.linspace(0.0, 1.0, f)
            joint = out[-f:] * np.sqrt(1 - ramp) + nxt[:f] * np.sqrt(ramp)
            out = np.concatenate([out[:-f], joint, nxt[f:]])
        else:
            out = np.concatenate([out, nxt])
        i += 1
    start = int(rng.integers(0, out.size - num_samples + 1)) if out.size > num_samples else 0
    out = out[start : start + num_samples]
    if out.size < num_samples:  # a single very short piece and the safety cap hit
        out = np.resize(out, num_samples)
    return out


def _place(
    rng: np.random.Generator, length: int, label: str, placed: list[tuple[int, int, str]], num_samples: int, gap: int,
    attempts: int,
) -> int | None:
    for _ in range(attempts):
        start = int(rng.integers(0, num_samples - length + 1))
        clash = any(
            lab == label and start < stop + gap and begin < start + length + gap for begin, stop, lab in placed
        )
        if not clash:
            return start
    return None


def _annotated_parts(
    audio: np.ndarray, extent: int, min_len: int, sample_rate: int, cfg: SceneConfig
) -> list[tuple[int, int]]:
    """Sample ranges, relative to the event's start, annotated for a trimmed event.

    The whole ``extent`` by default; with ``cfg.annotation_gap_seconds`` the
    active segments, each at least ``min_len`` long (merged where that
    lengthening makes two of them touch), within ``extent``.
    """
    if cfg.annotation_gap_seconds is None:
        return [(0, extent)]
    parts: list[tuple[int, int]] = []
    for begin, end in active_segments(audio, sample_rate, cfg) or [(0, audio.size)]:
        begin, end = min(begin, max(0, extent - min_len)), min(max(end, begin + min_len), extent)
        if parts and begin <= parts[-1][1]:
            parts[-1] = (parts[-1][0], max(parts[-1][1], end))
        else:
            parts.append((begin, end))
    return parts


def mix_soundscape(
    rng: np.random.Generator,
    background: np.ndarray,
    events: Sequence[EventAudio],
    *,
    sample_rate: int,
    snr_db: tuple[float, float],
    channel: Channel | None,
    cfg: SceneConfig,
) -> Soundscape:
    """Mix ``events`` over ``background`` (whose length is the clip length).

    Parameters
    ----------
    rng: random generator of this clip.
    background: ``(sample,)`` background of exactly the clip length, not silent.
    events: dry isolated events; each is trimmed, placed, scaled and annotated.
        An event that cannot be placed (no room left) is dropped.
    sample_rate: samples per second.
    snr_db: range of the per-event SNR in dB.
    channel: room and microphone of the domain (``None``: dry and flat).
    cfg: composition settings.
    """
    grid = time_grid(sample_rate)
    num_samples = background.shape[-1]
    bg_rms = rms(background)
    if bg_rms <= 0:
        raise ValueError("background is silent; an SNR needs a background level")
    clip_seconds = grid.samples_to_seconds(num_samples)
    min_len = grid.seconds_to_samples(cfg.min_event_seconds)
    gap = grid.seconds_to_samples(cfg.min_same_class_gap)
    track = np.zeros(num_samples)
    placed: list[tuple[int, int, str]] = []
    annotations = []
    for ev in events:
        audio = trim_event(ev.audio, sample_rate, num_samples, cfg)
        if audio is None:
            continue
        # the annotated extent is at least ``min_len`` long; it must fit too
        extent = max(audio.size, min(min_len, num_samples))
        start = _place(rng, extent, ev.label, placed, num_samples, gap, cfg.placement_attempts)
        snr = rng.uniform(*snr_db)
        if start is None:
            continue
        gain = bg_rms * 10.0 ** (snr / 20.0) / max(rms(audio), 1e-12)
        wet = gain * audio if channel is None else channel.reverberate(gain * audio, keep_tail=True)
        stop = min(num_samples, start + wet.size)
        track[start:stop] += wet[: stop - start]
        placed.append((start, start + extent, ev.label))
        for begin, end in _annotated_parts(audio, extent, min_len, sample_rate, cfg):
            onset = round(grid.samples_to_seconds(start + begin), 3)
            offset = min(round(grid.samples_to_seconds(start + end), 3), clip_seconds)
            annotations.append(Event(onset, offset, ev.label))
    mix = track + background if channel is None else channel.color(track + background)
    peak = float(np.abs(mix).max())
    level = 10.0 ** (rng.uniform(*cfg.peak_dbfs_range) / 20.0)
    mix = mix * (level / peak) if peak > 0 else mix
    return Soundscape(mix.astype(np.float32), tuple(sorted(annotations)))


__all__ = [
    "ClipPlan",
    "active_segments",
    "EventAudio",
    "SceneConfig",
    "Soundscape",
    "draw_labels",
    "energy_bounds",
    "fill_background",
    "mix_soundscape",
    "plan_clips",
    "time_grid",
    "trim_event",
]
