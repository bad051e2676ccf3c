"""Ten procedurally generated sound-event classes with distinct spectro-temporal shapes.

Each class draws its duration (log-uniform in its own range) and its
parameters at random per event, then applies a domain's
:class:`~audioadapt.data.synthetic.domain.SourceShift`: ``pitch`` multiplies
every frequency, ``tempo`` every modulation or repetition rate and
``duration`` the drawn duration.

=========  ===================================================================
class      shape
=========  ===================================================================
beeps      tonal alarm pulses (1.5-3.2 kHz, 2-3 harmonics), regular on/off
bark       1-4 short harmonic bursts with a falling pitch and a noisy part
buzz       bright, high-passed harmonic buzz (f0 100-220 Hz), fast jitter
clink      struck dish: damped inharmonic partials (1.2-3 kHz base), 1-4 hits
crackle    dense random clicks (40-150 /s) with a wide level spread, hiss
glide      gliding harmonic tone rising then falling (350-950 Hz), vibrato
hum        low motor hum (f0 70-160 Hz, many harmonics), amplitude modulation
syllables  speech-like syllables: glottal pulses through moving formants
water      band-passed gurgling noise with rising bubble chirps
whoosh     broadband low-passed noise plus a steady tone, slow fades
=========  ===================================================================

Every generator returns a float64 ``(sample,)`` array with peak 1; the level
is set later by the mixer from the SNR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audioadapt.data.synthetic.domain import SourceShift, harmonic_sum

Synth = Callable[[np.random.Generator, int, int, SourceShift], np.ndarray]


# --------------------------------------------------------------------------- helpers
def _ramp(n: int, attack: int, release: int) -> np.ndarray:
    """Raised-cosine fade-in of ``attack`` and fade-out of ``release`` samples."""
    env = np.ones(n)
    a, r = min(attack, n // 2), min(release, n // 2)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r > 0:
        env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r)
    return env


def _n_harmonics(f0_max: float, sample_rate: int, cap: int) -> int:
    """How many harmonics of ``f0_max`` stay below 0.45 * sample rate."""
    return max(1, min(cap, int(0.45 * sample_rate / max(f0_max, 1.0))))


def _filter(x: np.ndarray, sample_rate: int, kind: str, cutoff, order: int = 2) -> np.ndarray:
    from scipy import signal

    nyq = sample_rate / 2
    if kind == "band":
        lo, hi = cutoff
        hi = min(hi, 0.95 * nyq)
        lo = min(lo, 0.5 * hi)
        cutoff = (lo, hi)
    else:
        cutoff = min(cutoff, 0.95 * nyq)
    sos = signal.butter(order, cutoff, {"band": "bandpass", "low": "lowpass", "high": "highpass"}[kind],
                        fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _resonators(x: np.ndarray, formants: list[tuple[float, float]], sample_rate: int) -> np.ndarray:
    """Cascade of two-pole resonators ``(frequency Hz, bandwidth Hz)``."""
    from scipy import signal

    for freq, bw in formants:
        freq = min(freq, 0.45 * sample_rate)
        r = math.exp(-math.pi * bw / sample_rate)
        theta = 2 * math.pi * freq / sample_rate
        x = signal.lfilter([1 - r], [1, -2 * r * math.cos(theta), r * r], x)
    return x


def _smooth_random(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """A smooth random curve in [0, 1] with about ``rate_hz`` changes per second."""
    points = max(2, int(math.ceil(n / sample_rate * rate_hz)) + 2)
    return np.interp(np.linspace(0, points - 1, n), np.arange(points), rng.random(points))


# --------------------------------------------------------------------------- the classes
def _beeps(rng, sr, n, shift):
    f0 = rng.uniform(1500.0, 3200.0) * shift.pitch
    period = rng.uniform(0.15, 0.4) / shift.tempo
    duty = rng.uniform(0.35, 0.65)
    t = np.arange(n) / sr
    gate = ((t % period) < duty * period).astype(float)
    ramp = max(1, int(0.004 * sr))
    gate = np.convolve(gate, np.hanning(2 * ramp) / ramp, mode="same")
    amps = np.array([1.0, rng.uniform(0.0, 0.4), rng.uniform(0.0, 0.2)])
    amps = amps[: _n_harmonics(f0, sr, 3)]
    return gate * harmonic_sum(2 * np.pi * f0 * t, amps)


def _hum(rng, sr, n, shift):
    f0 = rng.uniform(70.0, 160.0) * shift.pitch
    t = np.arange(n) / sr
    drift = 1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    phase = 2 * np.pi * np.cumsum(f0 * drift) / sr
    k = _n_harmonics(f0 * 1.02, sr, 20)
    amps = np.arange(1, k + 1) ** -rng.uniform(0.8, 1.5) * rng.uniform(0.5, 1.0, k)
    am = 1.0 + rng.uniform(0.3, 0.7) * np.sin(2 * np.pi * rng.uniform(2.0, 8.0) * shift.tempo * t)
    fade = int(rng.uniform(0.1, 0.3) * sr)
    return harmonic_sum(phase, amps) * am * _ramp(n, fade, fade)


def _bark(rng, sr, n, shift):
    out = np.zeros(n)
    count = int(rng.integers(1, 5))
    bark_len = max(int(0.08 * sr), int(n / (count + (count - 1) * 0.6)))
    count = max(1, min(count, n // bark_len))
    starts = np.linspace(0, n - bark_len, count).astype(int) if count > 1 else [0]
    for start in starts:
        m = min(bark_len, n - start)
        u = np.linspace(0.0, 1.0, m)
        f0 = rng.uniform(450.0, 900.0) * shift.pitch * (1.0 - rng.uniform(0.2, 0.4) * u)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        k = _n_harmonics(float(f0.max()), sr, 10)
        tone = harmonic_sum(phase, np.arange(1, k + 1) ** -1.0)
        noise = _filter(rng.standard_normal(m), sr, "band", (600.0, 4000.0))
        env = np.exp(-u * rng.uniform(2.0, 4.0)) * _ramp(m, int(0.005 * sr), int(0.02 * sr))
        burst = (tone / (np.abs(tone).max() + 1e-12) + rng.uniform(0.3, 0.8) * noise / (np.abs(noise).max() + 1e-12))
        out[start : start + m] += burst * env
    return out


def _syllables(rng, sr, n, shift):
    out = np.zeros(n)
    f0_base = rng.uniform(100.0, 240.0) * shift.pitch
    pos = 0
    while pos < n - int(0.08 * sr):
        length = min(n - pos, int(rng.uniform(0.12, 0.3) / shift.tempo * sr))
        contour = np.sin(np.pi * np.linspace(0.0, 1.0, length))  # rise-fall intonation
        f0 = f0_base * rng.uniform(0.85, 1.2) * (1.0 + 0.1 * contour)
        phase = np.cumsum(f0) / sr
        pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
        formants = [
            (rng.uniform(300.0, 850.0) * shift.pitch**0.3, 80.0),
            (rng.uniform(850.0, 2400.0) * shift.pitch**0.3, 120.0),
            (rng.uniform(2300.0, 3200.0) * shift.pitch**0.3, 200.0),
        ]
        voiced = _resonators(pulses, formants, sr)
        voiced /= np.abs(voiced).max() + 1e-12
        if rng.random() < 0.5:  # a fricative onset
            m = min(length, int(rng.uniform(0.02, 0.05) * sr))
            fric = _filter(rng.standard_normal(m), sr, "band", (2000.0, 6000.0))
            voiced[:m] += 0.4 * fric / (np.abs(fric).max() + 1e-12)
        out[pos : pos + length] += voiced * np.hanning(length + 2)[1:-1] ** 0.5
        pos += length + int(rng.uniform(0.0, 0.06) / shift.tempo * sr)
    return out


def _water(rng, sr, n, shift):
    lo = rng.uniform(400.0, 1200.0) * shift.pitch
    hi = rng.uniform(3000.0, 6000.0) * shift.pitch
    noise = _filter(rng.standard_normal(n), sr, "band", (lo, hi))
    gurgle = 0.3 + _smooth_random(rng, n, sr, rng.uniform(20.0, 40.0) * shift.tempo) ** 2
    out = noise / (np.abs(noise).max() + 1e-12) * gurgle
    rate = rng.uniform(8.0, 25.0) * shift.tempo
    for _ in range(int(rng.poisson(rate * n / sr))):
        m = int(rng.uniform(0.01, 0.04) * sr)
        start = int(rng.integers(0, max(1, n - m)))
        f = rng.uniform(600.0, 2500.0) * shift.pitch * np.linspace(1.0, rng.uniform(1.3, 1.6), m)
        chirp = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-np.linspace(0, 5, m))
        out[start : start + m] += rng.uniform(0.3, 1.0) * chirp[: n - start]
    fade = int(0.05 * sr)
    return out * _ramp(n, fade, fade)


def _crackle(rng, sr, n, shift):
    from scipy import signal

    rate = rng.uniform(40.0, 150.0) * shift.tempo
    clicks = np.zeros(n)
    count = max(2, int(rng.poisson(rate * n / sr)))
    clicks[rng.integers(0, n, count)] = rng.choice([-1.0, 1.0], count) * np.exp(rng.uniform(-3.0, 0.0, count))
    m = max(4, int(rng.uniform(0.0005, 0.003) * sr))
    kernel = rng.standard_normal(m) * np.exp(-np.linspace(0, 6, m))
    out = signal.fftconvolve(clicks, kernel)[:n]
    out = _filter(out, sr, "high", 1500.0 * shift.pitch)
    out /= np.abs(out).max() + 1e-12
    hiss = _filter(rng.standard_normal(n), sr, "high", 3000.0)
    out += 0.05 * hiss / (np.abs(hiss).max() + 1e-12)
    fade = int(0.03 * sr)
    return out * _ramp(n, fade, fade)


_CLINK_RATIOS = np.array([1.0, 2.32, 4.25, 6.63, 9.38, 2.76, 5.4, 8.9])


def _clink(rng, sr, n, shift):
    out = np.zeros(n)
    hits = int(rng.integers(1, 5))
    starts = np.sort(np.concatenate([[0], rng.integers(0, max(1, n - int(0.1 * sr)), hits - 1)]))
    base = rng.uniform(1200.0, 3000.0) * shift.pitch
    for start in starts:
        m = n - start
        t = np.arange(m) / sr
        strike = np.zeros(m)
        for ratio in _CLINK_RATIOS[: int(rng.integers(4, 9))]:
            f = base * ratio * rng.uniform(0.97, 1.03)
            if f >= 0.45 * sr:
                continue
            tau = rng.uniform(0.08, 0.35) / math.sqrt(ratio)
            strike += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t) * np.exp(-t / tau)
        out[start:] += rng.uniform(0.5, 1.0) * strike * _ramp(m, int(0.001 * sr), 0)
    return out * _ramp(n, 0, int(0.02 * sr))


def _whoosh(rng, sr, n, shift):
    noise = _filter(rng.standard_normal(n), sr, "low", rng.uniform(3000.0, 7000.0), order=1)
    noise /= np.abs(noise).max() + 1e-12
    f0 = rng.uniform(300.0, 900.0) * shift.pitch
    t = np.arange(n) / sr
    tone = harmonic_sum(2 * np.pi * f0 * t, np.array([1.0, 0.25, 0.1])[: _n_harmonics(f0, sr, 3)])
    am = 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 1.0) * shift.tempo * t)
    fade_in, fade_out = (int(rng.uniform(0.2, 0.5) * sr) for _ in range(2))
    return (noise + rng.uniform(0.2, 0.5) * tone) * am * _ramp(n, fade_in, fade_out)


def _buzz(rng, sr, n, shift):
    f0 = rng.uniform(100.0, 220.0) * shift.pitch
    t = np.arange(n) / sr
    jitter = 1.0 + 0.01 * (_smooth_random(rng, n, sr, 60.0 * shift.tempo) - 0.5)
    phase = 2 * np.pi * np.cumsum(f0 * jitter) / sr
    k = _n_harmonics(f0 * 1.01, sr, 60)
    buzz = harmonic_sum(phase, np.arange(1, k + 1) ** -0.5)
    buzz = _filter(buzz, sr, "high", 1200.0 * shift.pitch, order=4)
    am = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(4.0, 12.0) * shift.tempo * t)
    fade = int(rng.uniform(0.03, 0.1) * sr)
    return buzz * am * _ramp(n, fade, fade)


def _glide(rng, sr, n, shift):
    u = np.linspace(0.0, 1.0, n)
    start, peak, end = (rng.uniform(*r) * shift.pitch for r in ((350.0, 550.0), (600.0, 950.0), (300.0, 500.0)))
    top = rng.uniform(0.3, 0.6)
    rise = np.sin(0.5 * np.pi * np.clip(u / top, 0, 1))
    fall = np.sin(0.5 * np.pi * np.clip((u - top) / (1 - top), 0, 1))
    f0 = np.where(u <= top, start + (peak - start) * rise, peak + (end - peak) * fall)
    vibrato = 1.0 + 0.015 * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * shift.tempo * u * n / sr)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sr
    k = _n_harmonics(float(f0.max()) * 1.02, sr, 10)
    formant = rng.uniform(1000.0, 2500.0) * shift.pitch
    amps = np.array([math.exp(-0.5 * (math.log2(h * peak / formant)) ** 2) + 0.3 / h for h in range(1, k + 1)])
    return harmonic_sum(phase, amps) * _ramp(n, int(0.05 * sr), int(0.15 * sr))


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class EventClass:
    """A procedural sound-event class.

    Attributes
    ----------
    name: the class label written to metadata.
    duration_range: range (seconds, log-uniform) of the drawn duration before
        the domain's duration shift.
    synth: ``synth(rng, sample_rate, num_samples, shift) -> (sample,)``.
    """

    name: str
    duration_range: tuple[float, float]
    synth: Synth

    def generate(self, rng: np.random.Generator, sample_rate: int, shift: SourceShift) -> np.ndarray:
        """One random event, float64 ``(sample,)`` with peak 1."""
        lo, hi = self.duration_range
        seconds = math.exp(rng.uniform(math.log(lo), math.log(hi))) * shift.duration
        n = max(1, int(round(seconds * sample_rate)))
        x = np.asarray(self.synth(rng, sample_rate, n, shift), dtype=np.float64)
        peak = float(np.abs(x).max()) if x.size else 0.0
        return x / peak if peak > 0 else x


#: The ten classes, sorted by name.
EVENT_CLASSES: tuple[EventClass, ...] = (
    EventClass("bark", (0.3, 1.2), _bark),
    EventClass("beeps", (0.6, 3.0), _beeps),
    EventClass("buzz", (1.0, 5.0), _buzz),
    EventClass("clink", (0.3, 1.5), _clink),
    EventClass("crackle", (1.5, 6.0), _crackle),
    EventClass("glide", (0.4, 1.3), _glide),
    EventClass("hum", (1.5, 6.0), _hum),
    EventClass("syllables", (0.8, 3.0), _syllables),
    EventClass("water", (1.0, 6.0), _water),
    EventClass("whoosh", (2.0, 7.0), _whoosh),
)

#: Class names, in the order of :data:`EVENT_CLASSES`.
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_CLASSES)

_BY_NAME = {c.name: c for c in EVENT_CLASSES}


def get_event_class(name: str) -> EventClass:
    """The procedural class called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown procedural event class '{name}'; known: {', '.join(CLASS_NAMES)}") from None


__all__ = ["CLASS_NAMES", "EVENT_CLASSES", "EventClass", "get_event_class"]
