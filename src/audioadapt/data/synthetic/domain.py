"""Recording-domain effects: room reverberation, microphone coloration, background noise.

A *domain* is how a recording was made: the room (reverberation), the
microphone and its electronics (a random equaliser and band limit), the
background noise family (:mod:`audioadapt.data.synthetic.noise`, re-exported
here), the SNR range and a systematic shift of the sources
themselves (pitch, tempo, duration). Nothing here knows about sound events,
so a speech generator can put utterances through the same effects.

Every effect has a strength where ``0`` turns it off; :func:`blend_domains`
interpolates two domains, which is how a generator dials a domain gap.

Signals are float64 numpy arrays with the axis ``(sample,)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from audioadapt.data.synthetic.noise import NOISE_KINDS, NoiseConfig, harmonic_sum, make_noise, rms
from audioadapt.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Any config dataclass instance (:func:`blend_domains` works on each).
_Config = TypeVar("_Config", bound="DataclassInstance")


def check_range(name: str, lo_hi: tuple[float, float], minimum: float = 0.0) -> None:
    """Raise ConfigError unless ``minimum <= low <= high`` for a ``(low, high)`` setting."""
    lo, hi = lo_hi
    if not minimum <= lo <= hi:
        raise ConfigError(f"{name} must satisfy {minimum} <= low <= high, got {lo_hi}")


@dataclass(frozen=True)
class ChannelConfig:
    """Room and microphone of a domain; a strength of 0 turns its effect off.

    Attributes
    ----------
    reverb: energy of the reverberant tail relative to the direct sound
        (1 = equal energy); each recording draws it within a factor of
        ``2**±reverb_jitter``.
    rt60_range: reverberation time range in seconds (uniform).
    reverb_jitter: spread of the tail energy, in octaves of energy ratio.
    hf_decay: RT60 of the high band (above ``crossover_hz``) relative to the
        low band; below 1 the tail darkens as it decays, as in real rooms.
    crossover_hz: split between the two tail bands.
    coloration: depth of the random microphone response; scales the EQ
        gains, the high-pass cut-off and how far the low-pass moves down.
    eq_bands: number of random peaking filters.
    eq_max_db: largest peaking gain (in +/- dB) at ``coloration`` 1.
    highpass_hz_range: high-pass cut-off range at ``coloration`` 1.
    lowpass_drop_range: how far below Nyquist the low-pass sits at
        ``coloration`` 1, as a fraction of Nyquist.
    """

    reverb: float = 0.0
    rt60_range: tuple[float, float] = (0.3, 1.0)
    reverb_jitter: float = 1.0
    hf_decay: float = 0.6
    crossover_hz: float = 2000.0
    coloration: float = 0.0
    eq_bands: int = 3
    eq_max_db: float = 10.0
    highpass_hz_range: tuple[float, float] = (80.0, 400.0)
    lowpass_drop_range: tuple[float, float] = (0.3, 0.6)

    def __post_init__(self) -> None:
        if self.reverb < 0 or self.coloration < 0:
            raise ConfigError("reverb and coloration must be >= 0")
        check_range("rt60_range", self.rt60_range, minimum=1e-3)
        if self.reverb_jitter < 0:
            raise ConfigError(f"reverb_jitter must be >= 0, got {self.reverb_jitter}")
        if not 0 < self.hf_decay <= 1:
            raise ConfigError(f"hf_decay must be in (0, 1], got {self.hf_decay}")
        if self.crossover_hz <= 0:
            raise ConfigError(f"crossover_hz must be positive, got {self.crossover_hz}")
        if self.eq_bands < 0 or self.eq_max_db < 0:
            raise ConfigError("eq_bands and eq_max_db must be >= 0")
        check_range("highpass_hz_range", self.highpass_hz_range)
        check_range("lowpass_drop_range", self.lowpass_drop_range)
        if self.lowpass_drop_range[1] >= 1:
            raise ConfigError(f"lowpass_drop_range must stay below 1, got {self.lowpass_drop_range}")


@dataclass(frozen=True)
class DomainConfig:
    """Everything that tells one recording domain from another.

    The defaults describe a clean studio domain: dry, flat, stationary
    white/pink background, sources as designed.

    Attributes
    ----------
    channel: room and microphone.
    noise: background noise family.
    snr_db: range (uniform) of each source's SNR against the background.
    pitch_semitones: systematic pitch shift of the sources.
    tempo_change: relative change of modulation and repetition rates
        (0.1 = 10 % faster).
    duration_change: relative change of source durations (0.2 = 20 % longer).
    """

    channel: ChannelConfig = ChannelConfig()
    noise: NoiseConfig = NoiseConfig(white=0.3, pink=1.0)
    snr_db: tuple[float, float] = (6.0, 30.0)
    pitch_semitones: float = 0.0
    tempo_change: float = 0.0
    duration_change: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.snr_db
        if lo > hi:
            raise ConfigError(f"snr_db must be (low, high), got {self.snr_db}")
        if self.tempo_change <= -1 or self.duration_change <= -1:
            raise ConfigError("tempo_change and duration_change must be > -1")

    def source_shift(self) -> "SourceShift":
        """The multiplicative shift this domain applies to sources."""
        return SourceShift(
            pitch=2.0 ** (self.pitch_semitones / 12.0),
            tempo=1.0 + self.tempo_change,
            duration=1.0 + self.duration_change,
        )


@dataclass(frozen=True)
class SourceShift:
    """Multipliers applied to a source's frequencies, rates and duration."""

    pitch: float
    tempo: float
    duration: float


IDENTITY_SHIFT = SourceShift(1.0, 1.0, 1.0)


# --------------------------------------------------------------------------- blending
def _lerp(a: Any, b: Any, t: float) -> Any:
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return dataclasses.replace(a, **{f.name: _lerp(getattr(a, f.name), getattr(b, f.name), t)
                                         for f in dataclasses.fields(a)})
    if isinstance(a, bool) or isinstance(b, bool):
        return b if t >= 0.5 else a
    if isinstance(a, int) and isinstance(b, int):
        return int(round(a + t * (b - a)))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a + t * (b - a))
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return tuple(_lerp(x, y, t) for x, y in zip(a, b))
    return b if t >= 0.5 else a


def blend_domains(base: _Config, target: _Config, amount: float) -> _Config:
    """Move ``amount`` of the way from ``base`` to ``target`` (0 = ``base``, 1 = ``target``).

    Numbers and number tuples are interpolated linearly; anything else switches
    at ``amount >= 0.5``. Amounts above 1 extrapolate; each config's own checks
    then reject a value that leaves its range (e.g. a noise weight below 0).
    Works on any pair of dataclass instances of one type, not only domains.
    """
    if amount < 0:
        raise ConfigError(f"amount must be >= 0, got {amount}")
    return _lerp(base, target, amount)


# --------------------------------------------------------------------------- channel
def _peaking_sos(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One peaking-EQ biquad (RBJ audio EQ cookbook) as a second-order section."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * freq / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin])
    a = np.array([1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def _impulse_response(rng: np.random.Generator, cfg: ChannelConfig, sample_rate: int) -> np.ndarray:
    """Direct path + exponentially decaying noise tail, darker as it decays."""
    from scipy import signal

    rt60 = rng.uniform(*cfg.rt60_range)
    predelay = int(rng.uniform(0.003, 0.02) * sample_rate)
    length = max(1, int(rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    noise = rng.standard_normal(length)
    sos = signal.butter(2, min(cfg.crossover_hz, 0.45 * sample_rate), "low", fs=sample_rate, output="sos")
    low = signal.sosfilt(sos, noise)
    high = noise - low
    decay = np.log(1000.0)  # -60 dB at rt60
    tail = low * np.exp(-decay * t / rt60) + high * np.exp(-decay * t / (rt60 * cfg.hf_decay))
    ratio = cfg.reverb * 2.0 ** rng.uniform(-cfg.reverb_jitter, cfg.reverb_jitter)
    tail *= math.sqrt(ratio) / max(float(np.linalg.norm(tail)), 1e-12)
    ir = np.zeros(predelay + length)
    ir[0] = 1.0
    ir[predelay:] += tail
    return ir


def _coloration_sos(rng: np.random.Generator, cfg: ChannelConfig, sample_rate: int) -> np.ndarray:
    """Random band limit and peaking EQ, scaled by ``cfg.coloration``."""
    from scipy import signal

    s = cfg.coloration
    nyquist = sample_rate / 2
    sections = []
    hp = s * rng.uniform(*cfg.highpass_hz_range)
    if hp >= 20.0:
        sections.append(signal.butter(2, hp, "high", fs=sample_rate, output="sos"))
    drop = min(s * rng.uniform(*cfg.lowpass_drop_range), 0.9)
    lp = nyquist * (1.0 - drop)
    if lp < 0.95 * nyquist:
        sections.append(signal.butter(4, max(lp, 2.0 * max(hp, 100.0)), "low", fs=sample_rate, output="sos"))
    for _ in range(cfg.eq_bands):
        freq = math.exp(rng.uniform(math.log(150.0), math.log(0.8 * nyquist)))
        gain = s * rng.uniform(-cfg.eq_max_db, cfg.eq_max_db)
        sections.append(_peaking_sos(freq, gain, rng.uniform(0.7, 2.0), sample_rate))
    return np.concatenate(sections, axis=0) if sections else np.zeros((0, 6))


@dataclass(frozen=True, eq=False)
class Channel:
    """One drawn room + microphone; apply it with :meth:`reverberate` and :meth:`color`.

    Attributes
    ----------
    impulse_response: room impulse response ``(sample,)`` with the direct path
        at 0, or ``None`` when dry.
    sos: microphone filter as second-order sections ``(section, 6)``, or
        ``None`` when flat.
    """

    impulse_response: np.ndarray | None
    sos: np.ndarray | None

    def reverberate(self, x: np.ndarray, keep_tail: bool = False) -> np.ndarray:
        """Convolve with the room; the output keeps ``x``'s length unless ``keep_tail``."""
        if self.impulse_response is None:
            return x
        from scipy import signal

        y = signal.fftconvolve(x, self.impulse_response)
        return y if keep_tail else y[: x.shape[-1]]

    def color(self, x: np.ndarray) -> np.ndarray:
        """Filter through the microphone response."""
        if self.sos is None or len(self.sos) == 0:
            return x
        from scipy import signal

        return signal.sosfilt(self.sos, x)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Room, then microphone, keeping the length."""
        return self.color(self.reverberate(x))


def sample_channel(rng: np.random.Generator, cfg: ChannelConfig, sample_rate: int) -> Channel:
    """Draw one room and microphone from ``cfg``.

    Each effect draws from its own sub-stream (two seeds are always taken
    from ``rng``), so turning one effect off does not change the other's draw.
    """
    room_seed, mic_seed = rng.integers(0, 2**63, size=2)
    ir = _impulse_response(np.random.default_rng(room_seed), cfg, sample_rate) if cfg.reverb > 0 else None
    sos = _coloration_sos(np.random.default_rng(mic_seed), cfg, sample_rate) if cfg.coloration > 0 else None
    return Channel(ir, sos)


__all__ = [
    "IDENTITY_SHIFT",
    "NOISE_KINDS",
    "Channel",
    "ChannelConfig",
    "DomainConfig",
    "NoiseConfig",
    "SourceShift",
    "blend_domains",
    "harmonic_sum",
    "make_noise",
    "rms",
    "sample_channel",
]
