"""Background noise families: stationary colours, mains hum and babble.

Part of the domain effects (:mod:`audioadapt.data.synthetic.domain`); every
function takes a ``numpy.random.Generator`` and returns float64
``(sample,)`` arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audioadapt.errors import ConfigError

#: The background noise components, in the order they are drawn.
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")


@dataclass(frozen=True)
class NoiseConfig:
    """A background noise family: the RMS weight of each component (0 = absent).

    Attributes
    ----------
    white, pink, brown: stationary noises with flat, 1/f and 1/f^2 power spectra.
    hum: mains hum (a random fundamental from ``hum_frequencies`` and its
        harmonics) with a slow level wobble.
    babble: speech-band noise in several streams whose levels fluctuate at a
        syllabic rate, like distant talkers.
    hum_frequencies: candidate mains frequencies in Hz.
    hum_harmonics: number of hum partials.
    babble_streams: number of independent babble streams.
    babble_rate_hz: rate of the babble level fluctuations.
    """

    white: float = 0.0
    pink: float = 0.0
    brown: float = 0.0
    hum: float = 0.0
    babble: float = 0.0
    hum_frequencies: tuple[float, ...] = (50.0, 60.0)
    hum_harmonics: int = 6
    babble_streams: int = 5
    babble_rate_hz: float = 4.0

    def __post_init__(self) -> None:
        weights = self.weights()
        if any(w < 0 for w in weights.values()):
            raise ConfigError(f"noise weights must be >= 0, got {weights}")
        if sum(weights.values()) <= 0:
            raise ConfigError("at least one noise weight must be positive")
        if not self.hum_frequencies or min(self.hum_frequencies) <= 0:
            raise ConfigError(f"hum_frequencies must be positive, got {self.hum_frequencies}")
        if self.hum_harmonics < 1 or self.babble_streams < 1:
            raise ConfigError("hum_harmonics and babble_streams must be >= 1")
        if self.babble_rate_hz <= 0:
            raise ConfigError(f"babble_rate_hz must be positive, got {self.babble_rate_hz}")

    def weights(self) -> dict[str, float]:
        """Component name -> weight, in :data:`NOISE_KINDS` order."""
        return {kind: float(getattr(self, kind)) for kind in NOISE_KINDS}


#: Paul Kellet's "economy" pink-noise filter (-3 dB/octave within 0.5 dB
#: over the audio band); a one-pole integrator gives brown noise.
_PINK_B = (0.049922035, -0.095993537, 0.050612699, -0.004408786)
_PINK_A = (1.0, -2.494956002, 2.017265875, -0.522189400)


def harmonic_sum(phase: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """``sum_k amps[k-1] * sin(k * phase)`` for phase-locked harmonics.

    Uses ``sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x)``, so only one
    ``sin`` and one ``cos`` are evaluated whatever the number of harmonics.
    """
    prev = np.zeros_like(phase)
    cur = np.sin(phase)
    twice_cos = 2.0 * np.cos(phase)
    out = amps[0] * cur if len(amps) else np.zeros_like(phase)
    for a in amps[1:]:
        prev, cur = cur, twice_cos * cur - prev
        if a:
            out += a * cur
    return out


def _coloured(rng: np.random.Generator, n: int, sample_rate: int, kind: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2, above 20 Hz) Gaussian noise."""
    from scipy import signal

    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind == "pink":
        return signal.lfilter(_PINK_B, _PINK_A, white)
    pole = math.exp(-2 * math.pi * 20.0 / sample_rate)  # leaky integrator, corner at 20 Hz
    return signal.lfilter([1.0 - pole], [1.0, -pole], white)


def _smooth_control(rng: np.random.Generator, n: int, sample_rate: float, rate_hz: float) -> np.ndarray:
    """A smooth random curve in [0, 1] that changes about ``rate_hz`` times a second."""
    points = max(2, int(math.ceil(n / sample_rate * rate_hz)) + 2)
    knots = rng.random(points)
    return np.interp(np.linspace(0, points - 1, n), np.arange(points), knots)


def _hum(rng: np.random.Generator, n: int, sample_rate: int, cfg: NoiseConfig) -> np.ndarray:
    f0 = float(rng.choice(np.asarray(cfg.hum_frequencies)))
    count = min(cfg.hum_harmonics, max(1, int((sample_rate / 2 - 1) // f0)))
    amps = rng.uniform(0.2, 1.0, count) / np.arange(1, count + 1)
    phase = 2 * np.pi * f0 * np.arange(n) / sample_rate + rng.uniform(0, 2 * np.pi)
    wobble = 1.0 + 0.3 * (_smooth_control(rng, n, sample_rate, 0.5) - 0.5)
    return harmonic_sum(phase, amps) * wobble


def _babble(rng: np.random.Generator, n: int, sample_rate: int, cfg: NoiseConfig) -> np.ndarray:
    """Speech-band noise whose level is the sum of several syllabic-rate fluctuations.

    Summing independently modulated Gaussian streams equals (in distribution)
    one Gaussian noise modulated by the root of the summed stream powers, so
    one noise and one band-pass filter suffice.
    """
    from scipy import signal

    hop = 64  # the level curves are built on a coarse grid, then interpolated once
    coarse = n // hop + 2
    power = np.zeros(coarse)
    for _ in range(cfg.babble_streams):
        power += _smooth_control(rng, coarse, sample_rate / hop, cfg.babble_rate_hz * rng.uniform(0.7, 1.3)) ** 4
    power = np.interp(np.arange(n) / hop, np.arange(coarse), power)
    low = rng.uniform(200.0, 400.0)
    high = min(rng.uniform(2500.0, 4000.0), 0.45 * sample_rate)
    sos = signal.butter(2, (low, high), "bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n) * np.sqrt(power))


def make_noise(rng: np.random.Generator, num_samples: int, sample_rate: int, cfg: NoiseConfig) -> np.ndarray:
    """A background noise of ``num_samples`` samples with unit RMS.

    Each component with a positive weight has an RMS proportional to its
    weight (components are independent, so their powers add); the sum is
    normalised. Components are drawn in :data:`NOISE_KINDS` order, so the
    random stream is stable.
    """
    out = np.zeros(num_samples)
    for kind, weight in cfg.weights().items():
        if weight <= 0:
            continue
        if kind == "hum":
            part = _hum(rng, num_samples, sample_rate, cfg)
        elif kind == "babble":
            part = _babble(rng, num_samples, sample_rate, cfg)
        else:
            part = _coloured(rng, num_samples, sample_rate, kind)
        out += weight * part / max(rms(part), 1e-12)
    return out / max(rms(out), 1e-12)


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal (0 for an empty one)."""
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


__all__ = ["NOISE_KINDS", "NoiseConfig", "harmonic_sum", "make_noise", "rms"]
