"""Speakers, prosody and the source-filter synthesiser of the synthetic SER data.

:func:`draw_speaker` makes one speaker's voice; :func:`render_utterance`
turns a speaker, an emotion and an utterance index into audio:

1. prosody: the speaker's voice moved towards the emotion's profile
   (:class:`~audioadapt.data.synthetic.ser_config.EmotionProfile`) by a random
   intensity, with per-utterance variation;
2. plan: phrases of words of syllables ((C)(C)V(C)) with durations, formants
   and an F0 contour (declination, pitch accents, lexical tones);
3. speech: a harmonic glottal source with aspiration noise through formant
   resonators for vowels, nasals and liquids, band-passed noise for
   fricatives and plosive bursts;
4. recording: the speaker's room and microphone, then background noise.

Every random draw comes from a stream keyed by the seed, the domain key and
the speaker or utterance index (see :mod:`~audioadapt.data.synthetic.ser`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audioadapt.data.synthetic.domain import DomainConfig, harmonic_sum, make_noise, rms, sample_channel
from audioadapt.data.synthetic.ser_config import (
    CONSONANTS,
    DOMAIN_KEYS,
    EmotionProfiles,
    LanguageConfig,
    SpeakerConfig,
    VariationConfig,
)

_SEGMENT_GAIN = {"vowel": 1.0, "nasal": 0.3, "liquid": 0.5, "fricative": 0.25, "plosive": 0.45}
_BANDWIDTHS = (80.0, 100.0, 140.0, 250.0, 300.0)  # F1..F5 bandwidths in Hz
_UPPER_FORMANTS = (3500.0, 4500.0)  # F4, F5 of the reference vocal tract
_TONES = ((0.0, 0.0, 0.0), (-1.0, 0.0, 1.0), (1.0, 0.0, -1.0), (1.0, 1.0, 1.0), (-1.0, -1.0, -1.0))
_RAMP_SECONDS = 0.012


@dataclass(frozen=True, eq=False)
class UtteranceContext:
    """Everything needed to render any utterance of one domain.

    Attributes
    ----------
    key: the domain's entry of :data:`~audioadapt.data.synthetic.ser_config.DOMAIN_KEYS`.
    seed: the dataset seed.
    sample_rate: of the rendered audio.
    duration_range: (min, max) utterance length in seconds.
    level_dbfs: active-speech level of a neutral utterance.
    language, recording: the domain's language and recording settings.
    emotions, variation: the emotion profiles and per-utterance variation.
    """

    key: int
    seed: int
    sample_rate: int
    duration_range: tuple[float, float]
    level_dbfs: float
    language: LanguageConfig
    recording: DomainConfig
    emotions: EmotionProfiles
    variation: VariationConfig


# --------------------------------------------------------------------------- speakers and prosody
@dataclass(frozen=True)
class SpeakerVoice:
    """One synthetic speaker.

    Attributes
    ----------
    index: position of the speaker in its domain.
    speaker_id, gender: identity (gender ``"F"`` or ``"M"``).
    f0_hz: base F0 of neutral speech (before the domain's register shift).
    formant_scale: vocal-tract scale (formant frequencies are multiplied by it).
    rate: speaking-rate factor.
    loudness_db: level offset.
    tilt_db: glottal spectral slope in dB/octave.
    breathiness: aspiration level.
    expressiveness: factor on the emotions' deviations.
    """

    index: int
    speaker_id: str
    gender: str
    f0_hz: float
    formant_scale: float
    rate: float
    loudness_db: float
    tilt_db: float
    breathiness: float
    expressiveness: float


def draw_speaker(seed: int, role: str, name: str, index: int, cfg: SpeakerConfig) -> SpeakerVoice:
    """Speaker ``index`` of the domain with role ``source``/``target`` and name ``name``.

    Even indices are female, odd ones male.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DOMAIN_KEYS[role], 0, index)))
    female = index % 2 == 0
    f0 = (cfg.female_f0_hz if female else cfg.male_f0_hz) * 2.0 ** (rng.normal(0.0, cfg.f0_spread_st) / 12.0)
    scale = (cfg.female_formant_scale if female else 1.0) * (1.0 + float(np.clip(rng.normal(0, cfg.formant_spread),
                                                                                  -0.25, 0.25)))
    return SpeakerVoice(
        index=index,
        speaker_id=f"{name}_spk{index + 1:02d}",
        gender="F" if female else "M",
        f0_hz=float(f0),
        formant_scale=scale,
        rate=1.0 + float(np.clip(rng.normal(0.0, cfg.rate_spread), -0.25, 0.25)),
        loudness_db=float(rng.normal(0.0, cfg.loudness_db)),
        tilt_db=cfg.base_tilt_db + float(rng.normal(0.0, cfg.tilt_db)),
        breathiness=float(rng.uniform(*cfg.breathiness)),
        expressiveness=float(np.exp(rng.normal(0.0, cfg.expressiveness_spread))),
    )


@dataclass(frozen=True)
class _Prosody:
    """An utterance's resolved voice and prosody."""

    f0_hz: float
    pitch_range: float
    tempo: float
    level_db: float
    tilt_db: float
    breathiness: float
    formant_scale: float
    jitter_st: float


def _prosody(rng: np.random.Generator, ctx: UtteranceContext, voice: SpeakerVoice, emotion: str) -> _Prosody:
    neutral, prof, var = ctx.emotions.neutral, ctx.emotions.profile(emotion), ctx.variation
    s = rng.uniform(*var.intensity) * ctx.language.expressiveness * voice.expressiveness

    def add(name: str) -> float:
        return getattr(neutral, name) + s * (getattr(prof, name) - getattr(neutral, name))

    def mul(name: str) -> float:
        return getattr(neutral, name) * (getattr(prof, name) / getattr(neutral, name)) ** s

    shift = ctx.recording.source_shift()
    return _Prosody(
        f0_hz=voice.f0_hz * shift.pitch * 2.0 ** ((add("pitch_st") + rng.normal(0, var.pitch_st)) / 12.0),
        pitch_range=mul("pitch_range") * math.exp(rng.normal(0, var.range_spread)),
        tempo=mul("tempo") * voice.rate * shift.tempo * math.exp(rng.normal(0, var.tempo_spread)),
        level_db=ctx.level_dbfs + voice.loudness_db + add("energy_db") + rng.normal(0, var.energy_db),
        tilt_db=voice.tilt_db + add("tilt_db") + rng.normal(0, var.tilt_db),
        breathiness=max(0.0, voice.breathiness + add("breathiness")),
        formant_scale=voice.formant_scale * (1.0 + add("formant_shift")),
        jitter_st=max(0.0, add("jitter_st")),
    )


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class _Segment:
    kind: str  # vowel, nasal, liquid, fricative, plosive
    start: int
    length: int
    freqs: tuple[float, ...]
    voiced: bool
    gain: float


@dataclass(frozen=True)
class _Plan:
    num_samples: int
    segments: tuple[_Segment, ...]
    pitch_times: np.ndarray  # knot positions (samples)
    pitch_st: np.ndarray  # knot values (semitones re the utterance F0)
    syllables: int


def _plan(rng: np.random.Generator, lang: LanguageConfig, pros: _Prosody, sr: int,
          duration_range: tuple[float, float], duration_factor: float) -> _Plan:
    """Phrases -> words -> syllables until the drawn length is reached."""
    lo, hi = duration_range
    tail = rng.uniform(0.08, 0.2)
    t = rng.uniform(0.08, 0.2)  # leading silence, seconds
    end_target = min(max(rng.uniform(lo, hi) * duration_factor / pros.tempo, lo), hi) - tail
    onset_p = np.asarray(lang.onset_weights) / sum(lang.onset_weights)
    coda_p = np.asarray(lang.coda_weights) / sum(lang.coda_weights)
    segments: list[_Segment] = []
    knots_t: list[float] = []
    knots_v: list[float] = []
    syllables = 0

    def consonant() -> tuple[str, float]:
        name = lang.consonants[int(rng.integers(len(lang.consonants)))]
        return name, lang.consonant_seconds * math.exp(rng.normal(0, 0.2)) / pros.tempo

    done = False
    while not done:
        phrase_start = t
        for _ in range(int(rng.integers(lang.phrase_words[0], lang.phrase_words[1] + 1))):
            n_syl = int(rng.integers(lang.word_syllables[0], lang.word_syllables[1] + 1))
            stress = {"initial": 0, "final": n_syl - 1, "penultimate": max(0, n_syl - 2)}[lang.stress]
            for k in range(n_syl):
                stressed = k == stress
                parts = [consonant() for _ in range(int(rng.choice(3, p=onset_p)))]
                vowel = lang.vowels[int(rng.integers(len(lang.vowels)))]
                v_len = lang.vowel_seconds * (1.35 if stressed else 1.0) * math.exp(rng.normal(0, 0.2)) / pros.tempo
                parts.append(("", v_len))
                parts += [consonant() for _ in range(int(rng.choice(2, p=coda_p)))]
                if t + sum(d for _, d in parts) > hi - tail and syllables:
                    done = True
                    break
                tone = _TONES[int(rng.integers(len(_TONES)))] if lang.tone_st > 0 else (0.0, 0.0, 0.0)
                accent = lang.accent_st * rng.uniform(0.7, 1.3) if stressed else 0.0
                gain = (1.25 if stressed else 1.0) * math.exp(rng.normal(0, 0.12))
                for name, dur in parts:
                    start, length = int(t * sr), max(1, int(dur * sr))
                    if name == "":
                        fs = tuple(f * pros.formant_scale * (1.0 + 0.03 * rng.normal()) for f in vowel)
                        segments.append(_Segment("vowel", start, length, fs, True, gain))
                        for frac, tone_v, acc in ((0.0, tone[0], 0.3), (0.5, tone[1], 1.0), (1.0, tone[2], 0.2)):
                            decl = -lang.declination_st * (t + frac * dur - phrase_start)
                            knots_t.append((t + frac * dur) * sr)
                            knots_v.append(pros.pitch_range * (decl + lang.tone_st * tone_v + acc * accent))
                    else:
                        kind, freqs, voiced = CONSONANTS[name]
                        scale = pros.formant_scale if kind in ("nasal", "liquid") else math.sqrt(pros.formant_scale)
                        segments.append(_Segment(kind, start, length, tuple(f * scale for f in freqs), voiced,
                                                 _SEGMENT_GAIN[kind] * gain))
                    t += dur
                syllables += 1
                if t >= end_target:
                    done = True
                    break
            if done:
                break
            if rng.random() < 0.3:
                t += rng.uniform(0.03, 0.09) / pros.tempo  # gap between words
        if not done:
            t += rng.uniform(*lang.pause_seconds) / pros.tempo
    speech_end = max(seg.start + seg.length for seg in segments)
    num_samples = max(speech_end + int(round(tail * sr)), int(round(lo * sr)))
    return _Plan(num_samples, tuple(segments), np.asarray(knots_t), np.asarray(knots_v), syllables)


# --------------------------------------------------------------------------- rendering
def _resonator_sos(freqs: Sequence[float], sr: int, extra_bandwidth: float = 0.0) -> np.ndarray:
    """Cascade of unit-DC-gain two-pole resonators, one per formant, ``(section, 6)``."""
    rows = []
    for f, bw in zip(freqs, _BANDWIDTHS):
        f = min(f, 0.45 * sr)
        r = math.exp(-math.pi * (bw + extra_bandwidth) / sr)
        a1, a2 = -2.0 * r * math.cos(2.0 * math.pi * f / sr), r * r
        rows.append([1.0 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.asarray(rows)


def _band_sos(centre: float, width: float, sr: int) -> np.ndarray:
    """Two cascaded constant-peak band-pass biquads (audio EQ cookbook) around ``centre``."""
    centre = min(centre, 0.45 * sr)
    w0 = 2.0 * math.pi * centre / sr
    alpha = math.sin(w0) * width / (2.0 * centre)
    row = np.array([alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * math.cos(w0), 1.0 - alpha]) / (1.0 + alpha)
    return np.stack([row, row])


def _window(seg: _Segment, n: int, ramp: int) -> tuple[int, int, np.ndarray]:
    """Samples ``[a, b)`` a segment covers (its ramps overlap the neighbours) and its envelope."""
    a, b = max(0, seg.start - ramp), min(n, seg.start + seg.length + ramp)
    env = np.ones(b - a)
    r = min(2 * ramp, (b - a) // 2)
    if r > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
        env[:r] *= rise
        env[-r:] *= rise[::-1]
    return a, b, env


def _render_speech(rng: np.random.Generator, plan: _Plan, pros: _Prosody, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Dry speech ``(sample,)`` at an arbitrary level, and the mask of its active samples."""
    from scipy import signal

    n = plan.num_samples
    # F0 contour: planned knots plus a slow random perturbation (jitter).
    st = np.interp(np.arange(n), plan.pitch_times, plan.pitch_st)
    coarse = rng.normal(0.0, pros.jitter_st, n // (sr // 100) + 2)
    st += np.interp(np.arange(n) / (sr // 100), np.arange(coarse.size), coarse)
    f0 = pros.f0_hz * 2.0 ** (st / 12.0)
    phase = 2.0 * np.pi * np.cumsum(f0) / sr + rng.uniform(0, 2 * np.pi)
    count = max(1, min(80, int(0.45 * sr / f0.max())))
    harmonics = harmonic_sum(phase, 10.0 ** (pros.tilt_db * np.log2(np.arange(1, count + 1)) / 20.0))
    # Aspiration noise, pulsed by the glottal cycle, falls 3 dB/octave less steeply than the harmonics.
    slope = 10.0 ** ((pros.tilt_db + 3.0) * np.log2(np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 100.0) / 100.0) / 20.0)
    aspiration = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * slope, n) * (0.6 + 0.4 * np.cos(phase))
    glottal = harmonics / max(rms(harmonics), 1e-12) + 2.0 * pros.breathiness * aspiration / max(rms(aspiration), 1e-12)
    noise = rng.standard_normal(n)
    murmur = signal.sosfilt(_resonator_sos((250.0,), sr), glottal)
    speech = np.zeros(n)
    active = np.zeros(n, dtype=bool)
    ramp = int(_RAMP_SECONDS * sr)
    settle = int(0.01 * sr)
    upper = tuple(f * pros.formant_scale for f in _UPPER_FORMANTS)
    for seg in plan.segments:
        a, b, env = _window(seg, n, ramp)
        a0 = max(0, a - settle)
        if seg.kind in ("vowel", "nasal", "liquid"):
            sos = _resonator_sos(seg.freqs + upper, sr, extra_bandwidth=60.0 * pros.breathiness)
            part = signal.sosfilt(sos, glottal[a0:b])[a - a0:]
        elif seg.kind == "fricative":
            part = signal.sosfilt(_band_sos(seg.freqs[0], seg.freqs[1], sr), noise[a0:b])[a - a0:]
            if seg.voiced:
                part = part / max(rms(part), 1e-12) + 0.4 * murmur[a:b] / max(rms(murmur[a:b]), 1e-12)
        else:  # plosive: closure (murmur when voiced), then a decaying burst
            burst = np.zeros(b - a)
            onset = min(b - a - 1, seg.start - a + seg.length // 2)
            decay = np.exp(-np.arange(b - a - onset) / (0.012 * sr))
            burst[onset:] = signal.sosfilt(_band_sos(seg.freqs[0], seg.freqs[1], sr), noise[a + onset:b]) * decay
            part = burst / max(rms(burst), 1e-12)
            if seg.voiced:
                part[:onset] += 0.1 * murmur[a:a + onset] / max(rms(murmur[a:b]), 1e-12)
        speech[a:b] += env * part * (seg.gain / max(rms(part), 1e-12))
        active[a:b] = True
    return speech, active


def render_utterance(
    ctx: UtteranceContext, voice: SpeakerVoice, emotion: str, index: int
) -> tuple[np.ndarray, dict[str, float]]:
    """One utterance ``(sample,)`` float64 of the domain in ``ctx``, and its realised cues.

    Parameters
    ----------
    ctx: the domain's settings and seed.
    voice: the speaker (its room and microphone depend on ``voice.index``).
    emotion: one of :data:`~audioadapt.data.utterances.EMOTIONS`.
    index: the utterance's position in its domain; with the seed and the
        domain key it selects the utterance's random streams.

    Returns
    -------
    The audio and its cues: ``seconds`` (length), the planned mean F0
    ``f0_hz`` (over vowels), ``syllable_rate`` (per second of speech), the
    speech level ``level_dbfs`` (before room and microphone) and ``snr_db``.
    """
    seq = np.random.SeedSequence(ctx.seed, spawn_key=(ctx.key, 1, index))
    plan_rng, voice_rng, background_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    # One room and microphone per speaker (a recording session), from its own stream.
    channel_rng = np.random.default_rng(np.random.SeedSequence(ctx.seed, spawn_key=(ctx.key, 2, voice.index)))
    sr = ctx.sample_rate
    pros = _prosody(plan_rng, ctx, voice, emotion)
    plan = _plan(plan_rng, ctx.language, pros, sr, ctx.duration_range, ctx.recording.source_shift().duration)
    speech, active = _render_speech(voice_rng, plan, pros, sr)
    speech *= 10.0 ** (pros.level_db / 20.0) / max(rms(speech[active]), 1e-12)
    speech = sample_channel(channel_rng, ctx.recording.channel, sr).apply(speech)
    snr = float(background_rng.uniform(*ctx.recording.snr_db))
    noise_level = 10.0 ** ((ctx.level_dbfs + voice.loudness_db - snr) / 20.0)
    out = speech + noise_level * make_noise(background_rng, plan.num_samples, sr, ctx.recording.noise)
    peak = float(np.max(np.abs(out)))
    if peak > 0.99:
        out *= 0.99 / peak
    vowels = np.concatenate([np.arange(s.start, s.start + s.length) for s in plan.segments if s.kind == "vowel"])
    vowels = vowels[vowels < plan.num_samples]
    st = np.interp(vowels, plan.pitch_times, plan.pitch_st)
    cues = {
        "seconds": plan.num_samples / sr,
        "f0_hz": float(np.mean(pros.f0_hz * 2.0 ** (st / 12.0))),
        "syllable_rate": plan.syllables / max(float(active.sum()) / sr, 1e-3),
        "level_dbfs": float(pros.level_db),
        "snr_db": snr,
    }
    return out, cues


__all__ = ["SpeakerVoice", "UtteranceContext", "draw_speaker", "render_utterance"]
