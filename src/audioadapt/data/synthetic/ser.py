"""A procedural cross-"language" speech-emotion dataset with a tunable domain gap.

:func:`generate_ser_dataset` writes two corpora, one per domain, each in the
generic CSV-manifest layout read by
:func:`~audioadapt.data.corpora.csv_manifest.prepare_csv`::

    OUT/dataset.json                 settings, counts, speakers, mean cues per emotion
    OUT/<domain>/manifest.csv        path,label,speaker,gender,seconds
    OUT/<domain>/audio/<id>.wav      16-bit mono WAV

**Speech.** Utterances are made by a small source-filter synthesiser:
phrases of words of syllables ((C)(C)V(C)), vowels as a harmonic glottal
source with aspiration noise through a cascade of formant resonators,
fricatives and plosive bursts as band-passed noise, nasals and liquids as
weak voiced resonances; an F0 contour of declination, pitch accents on
stressed syllables and (optionally) lexical tones; pauses between phrases.

**Domains ("languages").** :class:`LanguageConfig` sets the vowel inventory
(formant sets), the consonants, syllable structure, stress position,
speaking rate, intonation and how strongly emotions are expressed; the
recording side reuses :class:`~audioadapt.data.synthetic.domain.DomainConfig`:
room and microphone, background noise, SNR, and the systematic pitch
register (``pitch_semitones``, F0 only), speaking-rate
(``tempo_change``) and utterance-length (``duration_change``) shifts.

**Emotions** (:class:`EmotionProfile`, after the vocal-affect literature,
e.g. Scherer 2003; Juslin & Laukka 2003): angry is loud, raised in pitch,
fast and tense (bright spectrum); happy has a high, wide-ranging pitch and
a fast rate; sad is quiet, low and flat in pitch, slow, breathy and dark;
neutral is the reference. Each utterance expresses its emotion with a random
intensity and random deviations, and every synthetic speaker has a base
pitch, vocal-tract length, rate, loudness, voice quality and
expressiveness of its own, so the classes overlap. The background noise is
set against the speaker's *neutral* level, so loud emotions also have a
higher SNR.

**Recording.** Each speaker is recorded in one room through one microphone
(a session) drawn from the domain's channel settings; the background noise
is drawn per utterance.

**Determinism.** Speaker ``k`` of a domain draws its voice from
``SeedSequence(seed, spawn_key=(domain key, 0, k))`` and its room and
microphone from ``(domain key, 2, k)``; utterance ``i`` draws from
``SeedSequence(seed, spawn_key=(domain key, 1, i))`` (split into independent
plan, voice and background streams). The files are byte-identical for a
seed and settings, whatever ``workers`` is, and an utterance depends only on
the seed, the settings, its index, speaker and emotion, never on the other
utterances.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import multiprocessing
import shutil
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from audioadapt.data.synthetic.domain import (
    ChannelConfig,
    DomainConfig,
    NoiseConfig,
    blend_domains,
    harmonic_sum,
    make_noise,
    rms,
    sample_channel,
)
from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: Bumped whenever the same config and seed would give different files.
GENERATOR_VERSION = 1

#: Each domain's fixed entry in the spawn key of its random streams.
DOMAIN_KEYS = {"source": 0, "target": 1}

#: Consonant inventory: name -> (kind, frequencies, voiced). Fricatives and
#: plosive bursts give (centre, bandwidth) of their noise band; nasals and
#: liquids their resonances. Frequencies are for the reference (adult male)
#: vocal tract and scale with each speaker's formant scale.
CONSONANTS: Mapping[str, tuple[str, tuple[float, ...], bool]] = {
    "p": ("plosive", (900.0, 1200.0), False),
    "t": ("plosive", (4000.0, 3000.0), False),
    "k": ("plosive", (2000.0, 1500.0), False),
    "b": ("plosive", (900.0, 1200.0), True),
    "d": ("plosive", (4000.0, 3000.0), True),
    "g": ("plosive", (2000.0, 1500.0), True),
    "f": ("fricative", (4500.0, 5000.0), False),
    "s": ("fricative", (6000.0, 3000.0), False),
    "sh": ("fricative", (3200.0, 1800.0), False),
    "x": ("fricative", (1600.0, 1200.0), False),
    "h": ("fricative", (1500.0, 2500.0), False),
    "v": ("fricative", (4000.0, 4000.0), True),
    "z": ("fricative", (6000.0, 3000.0), True),
    "m": ("nasal", (250.0, 1100.0, 2300.0), True),
    "n": ("nasal", (250.0, 1700.0, 2600.0), True),
    "l": ("liquid", (360.0, 1300.0, 2800.0), True),
    "r": ("liquid", (420.0, 1300.0, 1700.0), True),
}

_SEGMENT_GAIN = {"vowel": 1.0, "nasal": 0.3, "liquid": 0.5, "fricative": 0.25, "plosive": 0.45}
_BANDWIDTHS = (80.0, 100.0, 140.0, 250.0, 300.0)  # F1..F5 bandwidths in Hz
_UPPER_FORMANTS = (3500.0, 4500.0)  # F4, F5 of the reference vocal tract
_TONES = ((0.0, 0.0, 0.0), (-1.0, 0.0, 1.0), (1.0, 0.0, -1.0), (1.0, 1.0, 1.0), (-1.0, -1.0, -1.0))
_RAMP_SECONDS = 0.012
_UTTERANCES_PER_WORKER = 64


def _check_range(name: str, lo_hi: tuple[float, float], minimum: float = 0.0) -> None:
    if not minimum <= lo_hi[0] <= lo_hi[1]:
        raise ConfigError(f"{name} must satisfy {minimum} <= low <= high, got {lo_hi}")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class LanguageConfig:
    """Phonology and prosody of one synthetic language.

    Attributes
    ----------
    vowels: the vowel inventory as (F1, F2, F3) in Hz (reference vocal tract).
    consonants: consonant names from :data:`CONSONANTS`.
    onset_weights: relative chance of 0, 1 or 2 onset consonants.
    coda_weights: relative chance of 0 or 1 coda consonant.
    word_syllables: (min, max) syllables per word.
    stress: stressed syllable of a word.
    vowel_seconds, consonant_seconds: mean durations at the neutral rate.
    phrase_words: (min, max) words per phrase.
    pause_seconds: range of the pause between phrases.
    declination_st: F0 fall within a phrase, in semitones per second.
    accent_st: pitch-accent height on stressed syllables, in semitones.
    tone_st: size of lexical tones (level, rising, falling) on every
        syllable, in semitones; 0 for none.
    expressiveness: scales every emotion's deviation from neutral.
    """

    vowels: tuple[tuple[float, float, float], ...]
    consonants: tuple[str, ...]
    onset_weights: tuple[float, float, float] = (0.15, 0.8, 0.05)
    coda_weights: tuple[float, float] = (0.75, 0.25)
    word_syllables: tuple[int, int] = (1, 3)
    stress: Literal["initial", "penultimate", "final"] = "initial"
    vowel_seconds: float = 0.12
    consonant_seconds: float = 0.07
    phrase_words: tuple[int, int] = (2, 5)
    pause_seconds: tuple[float, float] = (0.15, 0.4)
    declination_st: float = 1.5
    accent_st: float = 2.5
    tone_st: float = 0.0
    expressiveness: float = 1.0

    def __post_init__(self) -> None:
        if not self.vowels or any(len(v) != 3 or min(v) <= 0 for v in self.vowels):
            raise ConfigError(f"vowels must be non-empty (F1, F2, F3) triples in Hz, got {self.vowels}")
        unknown = [c for c in self.consonants if c not in CONSONANTS]
        if not self.consonants or unknown:
            raise ConfigError(f"consonants must be names from {sorted(CONSONANTS)}; unknown: {unknown}")
        for name in ("onset_weights", "coda_weights"):
            weights = getattr(self, name)
            if min(weights) < 0 or sum(weights) <= 0:
                raise ConfigError(f"{name} must be >= 0 with a positive sum, got {weights}")
        _check_range("word_syllables", self.word_syllables, minimum=1)
        _check_range("phrase_words", self.phrase_words, minimum=1)
        _check_range("pause_seconds", self.pause_seconds)
        if self.vowel_seconds <= 0.02 or self.consonant_seconds <= 0.01:
            raise ConfigError("vowel_seconds must exceed 0.02 and consonant_seconds 0.01")
        if min(self.accent_st, self.tone_st, self.expressiveness) < 0:
            raise ConfigError("accent_st, tone_st and expressiveness must be >= 0")


@dataclass(frozen=True)
class SerDomainConfig:
    """One domain: its name (folder and corpus name), language and recording."""

    name: str
    language: LanguageConfig
    recording: DomainConfig

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"domain name must be a non-empty file-name-safe word, got {self.name!r}")


@dataclass(frozen=True)
class EmotionProfile:
    """How one emotion departs from neutral speech (at full intensity).

    Attributes
    ----------
    pitch_st: mean F0 shift in semitones.
    pitch_range: factor on the pitch-accent and tone excursions.
    tempo: factor on the speaking rate (> 1 faster; pauses scale too).
    energy_db: speech level change.
    tilt_db: change of the glottal spectral slope in dB/octave (> 0 brighter,
        tense voice; < 0 darker, lax voice).
    breathiness: aspiration noise added to the voice (relative to the voicing).
    formant_shift: relative shift of the formants (> 0: wider mouth, smile).
    jitter_st: F0 perturbation in semitones (standard deviation).
    """

    pitch_st: float = 0.0
    pitch_range: float = 1.0
    tempo: float = 1.0
    energy_db: float = 0.0
    tilt_db: float = 0.0
    breathiness: float = 0.0
    formant_shift: float = 0.0
    jitter_st: float = 0.1

    def __post_init__(self) -> None:
        if self.pitch_range <= 0 or self.tempo <= 0:
            raise ConfigError("pitch_range and tempo must be positive")
        if self.jitter_st < 0 or not -0.5 < self.formant_shift < 0.5:
            raise ConfigError("jitter_st must be >= 0 and formant_shift within (-0.5, 0.5)")


@dataclass(frozen=True)
class EmotionProfiles:
    """The profile of each emotion of :data:`~audioadapt.data.utterances.EMOTIONS`."""

    angry: EmotionProfile = EmotionProfile(3.0, 1.2, 1.2, 8.0, 6.0, -0.02, 0.05, 0.4)
    happy: EmotionProfile = EmotionProfile(6.0, 2.2, 1.08, 4.0, 1.0, 0.0, 0.07, 0.15)
    sad: EmotionProfile = EmotionProfile(-3.0, 0.45, 0.72, -6.0, -5.0, 0.12, -0.04, 0.15)
    neutral: EmotionProfile = EmotionProfile(jitter_st=0.08)

    def profile(self, emotion: str) -> EmotionProfile:
        return getattr(self, emotion)


@dataclass(frozen=True)
class SpeakerConfig:
    """Distribution of the synthetic speakers (half female, half male).

    Attributes
    ----------
    female_f0_hz, male_f0_hz: median base F0; each speaker draws around it
        with a spread of ``f0_spread_st`` semitones.
    female_formant_scale: vocal-tract scale of female voices (male 1), each
        speaker within ``formant_spread`` (relative).
    rate_spread: relative spread of the speaking rate.
    loudness_db: spread of the speaking level.
    tilt_db: spread of the spectral slope (dB/octave) around ``base_tilt_db``.
    breathiness: range of the speakers' aspiration level.
    expressiveness_spread: log-normal spread of how strongly a speaker acts.
    base_tilt_db: glottal spectral slope of modal voice (dB/octave).
    """

    female_f0_hz: float = 210.0
    male_f0_hz: float = 115.0
    f0_spread_st: float = 1.5
    female_formant_scale: float = 1.16
    formant_spread: float = 0.04
    rate_spread: float = 0.08
    loudness_db: float = 2.0
    tilt_db: float = 1.5
    breathiness: tuple[float, float] = (0.03, 0.15)
    expressiveness_spread: float = 0.15
    base_tilt_db: float = -6.0

    def __post_init__(self) -> None:
        if min(self.female_f0_hz, self.male_f0_hz, self.female_formant_scale) <= 0:
            raise ConfigError("speaker F0s and formant scale must be positive")
        spreads = (self.f0_spread_st, self.formant_spread, self.rate_spread, self.loudness_db, self.tilt_db,
                   self.expressiveness_spread)
        if min(spreads) < 0 or self.formant_spread >= 0.3 or self.rate_spread >= 0.3:
            raise ConfigError("speaker spreads must be >= 0 (formant and rate spreads below 0.3)")
        _check_range("breathiness", self.breathiness)


@dataclass(frozen=True)
class VariationConfig:
    """Per-utterance randomness on top of speaker and emotion.

    Attributes
    ----------
    intensity: range of the emotion intensity (scales the profile's deviations).
    pitch_st, energy_db, tilt_db: spread of the utterance's mean F0, level and slope.
    range_spread, tempo_spread: log-normal spread of the pitch range and rate.
    """

    intensity: tuple[float, float] = (0.6, 1.0)
    pitch_st: float = 1.0
    energy_db: float = 1.5
    tilt_db: float = 1.0
    range_spread: float = 0.25
    tempo_spread: float = 0.06

    def __post_init__(self) -> None:
        _check_range("intensity", self.intensity)
        if min(self.pitch_st, self.energy_db, self.tilt_db, self.range_spread, self.tempo_spread) < 0:
            raise ConfigError("variation spreads must be >= 0")


@dataclass(frozen=True)
class SerSizes:
    """Speakers per domain and utterances per speaker and emotion."""

    source_speakers: int
    source_per_class: int
    target_speakers: int
    target_per_class: int

    def __post_init__(self) -> None:
        for name in ("source_speakers", "source_per_class", "target_speakers", "target_per_class"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sizes.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class SerSizeOverrides:
    """Counts that replace a size preset's; ``None`` keeps the preset's."""

    source_speakers: int | None = None
    source_per_class: int | None = None
    target_speakers: int | None = None
    target_per_class: int | None = None

    def apply(self, base: SerSizes) -> SerSizes:
        names = ("source_speakers", "source_per_class", "target_speakers", "target_per_class")
        return SerSizes(**{n: getattr(base, n) if getattr(self, n) is None else getattr(self, n) for n in names})


#: Named sizes: (speakers, utterances per speaker and emotion) per domain.
#: tiny 32 + 32 utterances (tests, seconds); small 768 + 384 (CPU, ~70 min of
#: audio, ~140 MB); medium 5600 + 1600 (about IEMOCAP's 5 531 source
#: utterances; ~7.5 h, ~0.9 GB).
SER_SIZE_PRESETS: dict[str, SerSizes] = {
    "tiny": SerSizes(4, 2, 4, 2),
    "small": SerSizes(8, 24, 6, 16),
    "medium": SerSizes(10, 140, 10, 40),
}

#: Source language: five cardinal vowels, mostly CV syllables, initial stress,
#: declining intonation with clear accents; a clean studio recording.
SOURCE_DOMAIN = SerDomainConfig(
    name="source",
    language=LanguageConfig(
        vowels=((730.0, 1090.0, 2440.0), (530.0, 1840.0, 2480.0), (270.0, 2290.0, 3010.0),
                (570.0, 840.0, 2410.0), (300.0, 870.0, 2240.0)),
        consonants=("p", "t", "k", "b", "d", "g", "m", "n", "s", "f", "l", "r", "h"),
    ),
    recording=DomainConfig(noise=NoiseConfig(pink=1.0, brown=0.5), snr_db=(20.0, 40.0)),
)

#: Target language: a front-rounded and central vowel inventory, consonant
#: clusters and codas, final stress, lexical tones, a flatter declination,
#: a higher pitch register, a faster rate and subtler emotions; recorded in a
#: reverberant room through a coloured microphone with babble and hum.
TARGET_DOMAIN = SerDomainConfig(
    name="target",
    language=LanguageConfig(
        vowels=((660.0, 1720.0, 2410.0), (390.0, 1990.0, 2550.0), (490.0, 1350.0, 1690.0),
                (300.0, 1650.0, 2050.0), (420.0, 1400.0, 2200.0), (640.0, 1190.0, 2390.0),
                (440.0, 1020.0, 2240.0)),
        consonants=("t", "k", "d", "g", "n", "s", "sh", "x", "z", "v", "l", "r"),
        onset_weights=(0.1, 0.55, 0.35),
        coda_weights=(0.4, 0.6),
        word_syllables=(1, 4),
        stress="final",
        vowel_seconds=0.095,
        consonant_seconds=0.06,
        phrase_words=(3, 7),
        pause_seconds=(0.1, 0.3),
        declination_st=0.5,
        accent_st=1.5,
        tone_st=2.0,
        expressiveness=0.9,
    ),
    recording=DomainConfig(
        channel=ChannelConfig(reverb=0.5, coloration=0.8),
        noise=NoiseConfig(pink=0.4, brown=0.6, hum=0.2, babble=0.8),
        snr_db=(5.0, 25.0),
        pitch_semitones=2.5,
        tempo_change=0.15,
    ),
)


@dataclass(frozen=True)
class SerSynthConfig:
    """Settings of :func:`generate_ser_dataset`.

    Attributes
    ----------
    size: a key of :data:`SER_SIZE_PRESETS`.
    sizes: counts that replace the preset's.
    seed: the dataset seed (same seed and settings: byte-identical files).
    sample_rate: of the written audio (the SER features' rate).
    duration_range: (min, max) utterance length in seconds, silences included.
    level_dbfs: active-speech RMS level of a neutral utterance.
    gap: how far the target domain moves from the source one: language and
        recording are ``blend_domains(source, target, gap)``; 0 makes both
        alike (other speakers only), 1 uses ``target`` as given.
    source, target: the two domains.
    emotions, speakers, variation: see their classes.
    """

    size: str = "small"
    sizes: SerSizeOverrides = SerSizeOverrides()
    seed: int = 0
    sample_rate: int = 16000
    duration_range: tuple[float, float] = (1.5, 6.0)
    level_dbfs: float = -26.0
    gap: float = 1.0
    source: SerDomainConfig = SOURCE_DOMAIN
    target: SerDomainConfig = TARGET_DOMAIN
    emotions: EmotionProfiles = EmotionProfiles()
    speakers: SpeakerConfig = SpeakerConfig()
    variation: VariationConfig = VariationConfig()

    def __post_init__(self) -> None:
        if self.size not in SER_SIZE_PRESETS:
            raise ConfigError(f"size '{self.size}' is not one of {', '.join(SER_SIZE_PRESETS)}")
        if self.seed < 0 or self.gap < 0:
            raise ConfigError(f"seed and gap must be >= 0, got seed={self.seed}, gap={self.gap}")
        if self.sample_rate < 8000:
            raise ConfigError(f"sample_rate must be at least 8000 Hz, got {self.sample_rate}")
        _check_range("duration_range", self.duration_range, minimum=0.5)
        if self.source.name == self.target.name:
            raise ConfigError(f"the two domains need different names, both are '{self.source.name}'")
        if self.level_dbfs > -6:
            raise ConfigError(f"level_dbfs must be <= -6 to leave headroom, got {self.level_dbfs}")

    def split_sizes(self) -> SerSizes:
        """The counts: the preset's, with ``sizes`` applied."""
        return self.sizes.apply(SER_SIZE_PRESETS[self.size])

    def effective_target(self) -> SerDomainConfig:
        """The target domain after applying ``gap`` (its name is kept)."""
        try:
            language = blend_domains(self.source.language, self.target.language, self.gap)  # type: ignore[arg-type]
            recording = blend_domains(self.source.recording, self.target.recording, self.gap)
        except ValueError as exc:
            raise ConfigError(f"gap={self.gap} gives an invalid target domain: {exc}") from None
        return SerDomainConfig(self.target.name, language, recording)  # type: ignore[arg-type]

    def domains(self) -> tuple[SerDomainConfig, SerDomainConfig]:
        """Source and (effective) target, in :data:`DOMAIN_KEYS` order."""
        return self.source, self.effective_target()


def _merge(base: dict, changes: Mapping) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_ser_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SerSynthConfig:
    """Settings from an optional YAML file and ``key.path=value`` overrides.

    The YAML changes only what it names (a nested mapping such as
    ``target: {recording: {snr_db: [0, 10]}}`` keeps every other target
    value); unknown keys are errors.
    """
    from audioadapt.config.load import apply_overrides, from_dict, load_preset_dict, to_dict

    cfg = SerSynthConfig()
    if path is not None:
        try:
            cfg = from_dict(SerSynthConfig, _merge(to_dict(cfg), load_preset_dict(path)))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return apply_overrides(cfg, overrides)


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


def _prosody(rng: np.random.Generator, ctx: "_DomainContext", voice: SpeakerVoice, emotion: str) -> _Prosody:
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


def _render_utterance(
    ctx: "_DomainContext", voice: SpeakerVoice, emotion: str, index: int
) -> tuple[np.ndarray, dict[str, float]]:
    """One utterance ``(sample,)`` float64 of the domain in ``ctx``, and its realised cues.

    The cues are the planned mean F0 (Hz, over vowels), syllables per second
    of speech, the speech level (dBFS, before room and microphone) and the SNR.
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


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True, eq=False)
class _DomainContext:
    """Everything needed to render any utterance of one domain."""

    name: str
    key: int
    seed: int
    sample_rate: int
    duration_range: tuple[float, float]
    level_dbfs: float
    language: LanguageConfig
    recording: DomainConfig
    emotions: EmotionProfiles
    variation: VariationConfig
    audio_dir: Path


@dataclass(frozen=True)
class _Job:
    domain: str
    index: int
    utt_id: str
    voice: SpeakerVoice
    emotion: str


_CONTEXTS: dict[str, _DomainContext] = {}


def _init_worker(contexts: dict[str, _DomainContext]) -> None:
    _CONTEXTS.clear()
    _CONTEXTS.update(contexts)


def _write(ctx: _DomainContext, job: _Job) -> dict[str, float]:
    from audioadapt.audio.io import write_audio

    audio, cues = _render_utterance(ctx, job.voice, job.emotion, job.index)
    write_audio(ctx.audio_dir / f"{job.utt_id}.wav", audio, ctx.sample_rate, subtype="PCM_16")
    return cues


def _run_job(job: _Job) -> dict[str, float]:
    return _write(_CONTEXTS[job.domain], job)


def _run_jobs(contexts: dict[str, _DomainContext], jobs: list[_Job], workers: int) -> Iterator[dict[str, float]]:
    """Write every utterance, yielding its cues in job order."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _write(contexts[job.domain], job)
        return
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    mp = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker, initargs=(contexts,)) as pool:
        yield from pool.map(_run_job, jobs, chunksize=chunk)


# --------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class SerDatasetInfo:
    """What :func:`generate_ser_dataset` wrote.

    Attributes
    ----------
    root: the dataset root.
    manifests: domain role (``source``/``target``) -> its ``manifest.csv``.
    utterances: domain role -> number of utterances.
    seconds: domain role -> total audio duration.
    """

    root: Path
    manifests: dict[str, Path]
    utterances: dict[str, int]
    seconds: dict[str, float]


def _prepare_root(root: Path, names: Sequence[str], overwrite: bool) -> None:
    ours = [root / "dataset.json", *(root / n for n in names)]
    existing = [p for p in ours if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(p.name for p in existing)
        raise DataError(f"output folder already holds a dataset ({shown}); choose another folder or overwrite it",
                        root)
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _cue_summary(rows: list[tuple[_Job, dict[str, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for emotion in EMOTIONS:
        cues = [c for job, c in rows if job.emotion == emotion]
        out[emotion] = {k: round(float(np.mean([c[k] for c in cues])), 3) for k in cues[0]} if cues else {}
    return out


def generate_ser_dataset(
    out_dir: str | Path,
    cfg: SerSynthConfig | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> SerDatasetInfo:
    """Write the two-domain speech-emotion dataset under ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir: the dataset root (created if needed).
    cfg: settings; ``SerSynthConfig()`` when ``None``.
    workers: processes rendering utterances; ``None`` uses the available
        cores, at most one per 64 utterances. The files do not depend on it.
    progress: show a progress bar.
    overwrite: replace an existing dataset in ``out_dir``.

    Raises
    ------
    DataError
        If ``out_dir`` already holds a dataset and ``overwrite`` is false.
    """
    from tqdm import tqdm

    from audioadapt import __version__
    from audioadapt.config.load import to_dict
    from audioadapt.data.synthetic.render import available_workers

    cfg = cfg or SerSynthConfig()
    root = Path(out_dir)
    sizes = cfg.split_sizes()
    domains = dict(zip(DOMAIN_KEYS, cfg.domains()))
    _prepare_root(root, [d.name for d in domains.values()], overwrite)
    contexts: dict[str, _DomainContext] = {}
    jobs: list[_Job] = []
    speakers: dict[str, list[SpeakerVoice]] = {}
    for role, dom in domains.items():
        audio_dir = root / dom.name / "audio"
        audio_dir.mkdir(parents=True)
        contexts[role] = _DomainContext(dom.name, DOMAIN_KEYS[role], cfg.seed, cfg.sample_rate, cfg.duration_range,
                                        cfg.level_dbfs, dom.language, dom.recording, cfg.emotions, cfg.variation,
                                        audio_dir)
        n_spk, per_class = getattr(sizes, f"{role}_speakers"), getattr(sizes, f"{role}_per_class")
        speakers[role] = [draw_speaker(cfg.seed, role, dom.name, k, cfg.speakers) for k in range(n_spk)]
        width = max(5, len(str(n_spk * per_class * len(EMOTIONS))))
        for k, voice in enumerate(speakers[role]):
            for rep in range(per_class):
                for e, emotion in enumerate(EMOTIONS):
                    index = (k * per_class + rep) * len(EMOTIONS) + e
                    jobs.append(_Job(role, index, f"{dom.name}_{index:0{width}d}", voice, emotion))

    if workers is None:  # a process pool only pays off for larger datasets
        workers = min(available_workers(), max(1, len(jobs) // _UTTERANCES_PER_WORKER))
    workers = max(1, int(workers))
    rows: dict[str, list[tuple[_Job, dict[str, float]]]] = {role: [] for role in domains}
    with tqdm(total=len(jobs), desc="synth ser", unit="utt", disable=not progress) as bar:
        for job, cues in zip(jobs, _run_jobs(contexts, jobs, workers)):
            rows[job.domain].append((job, cues))
            bar.update(1)

    summary = {}
    for role, dom in domains.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["path", "label", "speaker", "gender", "seconds"])
        for job, cues in rows[role]:
            writer.writerow([f"audio/{job.utt_id}.wav", job.emotion, job.voice.speaker_id, job.voice.gender,
                             f"{cues['seconds']:.4f}"])
        (root / dom.name / "manifest.csv").write_text(text.getvalue(), encoding="utf-8")
        seconds = [c["seconds"] for _, c in rows[role]]
        summary[role] = {
            "name": dom.name,
            "manifest": f"{dom.name}/manifest.csv",
            "utterances": len(rows[role]),
            "per_class": {e: sum(1 for j, _ in rows[role] if j.emotion == e) for e in EMOTIONS},
            "seconds": {"total": round(sum(seconds), 3), "min": round(min(seconds), 3),
                        "max": round(max(seconds), 3)},
            "speakers": [to_dict(v) for v in speakers[role]],
            "cues": _cue_summary(rows[role]),
        }
    info = {
        "generator": "audioadapt synth ser",
        "generator_version": GENERATOR_VERSION,
        "audioadapt_version": __version__,
        "seed": cfg.seed,
        "sample_rate": cfg.sample_rate,
        "emotions": list(EMOTIONS),
        "sizes": to_dict(sizes),
        "domains": summary,
        "config": to_dict(cfg),
        "effective_target": to_dict(domains["target"]),
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return SerDatasetInfo(
        root=root,
        manifests={role: root / s["manifest"] for role, s in summary.items()},
        utterances={role: s["utterances"] for role, s in summary.items()},
        seconds={role: s["seconds"]["total"] for role, s in summary.items()},
    )


__all__ = [
    "CONSONANTS",
    "DOMAIN_KEYS",
    "EmotionProfile",
    "EmotionProfiles",
    "GENERATOR_VERSION",
    "LanguageConfig",
    "SER_SIZE_PRESETS",
    "SOURCE_DOMAIN",
    "SerDatasetInfo",
    "SerDomainConfig",
    "SerSizeOverrides",
    "SerSizes",
    "SerSynthConfig",
    "SpeakerConfig",
    "SpeakerVoice",
    "TARGET_DOMAIN",
    "VariationConfig",
    "draw_speaker",
    "generate_ser_dataset",
    "load_ser_config",
]
