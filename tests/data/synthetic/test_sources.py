"""Procedural event classes: valid output, distinct shapes, domain shifts."""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.data.synthetic.domain import IDENTITY_SHIFT, SourceShift
from audioadapt.data.synthetic.sources import CLASS_NAMES, EVENT_CLASSES, get_event_class

SR = 22050


def test_ten_distinct_sorted_classes():
    assert len(CLASS_NAMES) == 10
    assert list(CLASS_NAMES) == sorted(set(CLASS_NAMES))


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=CLASS_NAMES)
def test_events_are_finite_peak_normalised_and_as_long_as_drawn(cls):
    rng = np.random.default_rng(0)
    lo, hi = cls.duration_range
    for _ in range(5):
        x = cls.generate(rng, SR, IDENTITY_SHIFT)
        assert x.ndim == 1 and np.isfinite(x).all()
        assert np.abs(x).max() == pytest.approx(1.0)
        assert lo * SR - 1 <= x.size <= hi * SR + 1


def _features(x: np.ndarray) -> np.ndarray:
    """Log band energies (24 log-spaced bands) + level-modulation statistics."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    edges = np.geomspace(50, SR / 2, 25)
    bands = np.array([spec[(freqs >= a) & (freqs < b)].sum() + 1e-12 for a, b in zip(edges[:-1], edges[1:])])
    bands = 10 * np.log10(bands / bands.sum())
    frames = x[: x.size // 441 * 441].reshape(-1, 441)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-8)
    return np.concatenate([bands / 10, [np.std(level) / 10, np.mean(np.abs(np.diff(level))) / 3]])


def test_classes_are_told_apart_by_a_nearest_centroid_rule():
    rng = np.random.default_rng(1)
    train = {c.name: [_features(c.generate(rng, SR, IDENTITY_SHIFT)) for _ in range(6)] for c in EVENT_CLASSES}
    centroids = {name: np.mean(f, axis=0) for name, f in train.items()}
    correct = total = 0
    for c in EVENT_CLASSES:
        for _ in range(6):
            f = _features(c.generate(rng, SR, IDENTITY_SHIFT))
            guess = min(centroids, key=lambda n: np.linalg.norm(centroids[n] - f))
            correct += guess == c.name
            total += 1
    assert correct / total >= 0.9


def _centroid(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    return float((spec * np.fft.rfftfreq(x.size, 1 / SR)).sum() / spec.sum())


@pytest.mark.parametrize("name", ["beeps", "glide", "hum", "buzz"])
def test_pitch_shift_lowers_the_spectrum(name):
    cls = get_event_class(name)
    low = SourceShift(pitch=2 ** (-3 / 12), tempo=1.0, duration=1.0)
    base = [_centroid(cls.generate(np.random.default_rng(s), SR, IDENTITY_SHIFT)) for s in range(4)]
    shifted = [_centroid(cls.generate(np.random.default_rng(s), SR, low)) for s in range(4)]
    assert all(b > s for b, s in zip(base, shifted))


def test_duration_shift_lengthens_every_class():
    longer = SourceShift(pitch=1.0, tempo=1.0, duration=1.5)
    for cls in EVENT_CLASSES:
        a = cls.generate(np.random.default_rng(7), SR, IDENTITY_SHIFT)
        b = cls.generate(np.random.default_rng(7), SR, longer)
        assert b.size == pytest.approx(1.5 * a.size, abs=2)


def test_tempo_shift_speeds_up_beep_pulses():
    def pulses(x):
        env = np.convolve(x**2, np.ones(100) / 100, mode="same")
        on = env > 0.1 * env.max()
        return np.count_nonzero(np.diff(on.astype(int)) == 1) / x.size

    beeps = get_event_class("beeps")
    slow = [pulses(beeps.generate(np.random.default_rng(s), SR, IDENTITY_SHIFT)) for s in range(4)]
    fast = [pulses(beeps.generate(np.random.default_rng(s), SR, SourceShift(1.0, 1.6, 1.0))) for s in range(4)]
    assert np.mean(fast) > 1.3 * np.mean(slow)


def test_unknown_class_names_the_known_ones():
    with pytest.raises(KeyError, match="bark"):
        get_event_class("dog")
