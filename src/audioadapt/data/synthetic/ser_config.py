"""Settings of the synthetic speech-emotion generator.

:class:`SerSynthConfig` gathers everything
:func:`~audioadapt.data.synthetic.ser.generate_ser_dataset` needs: the two
domains (:class:`SerDomainConfig`: a :class:`LanguageConfig` for phonology
and prosody and a :class:`~audioadapt.data.synthetic.domain.DomainConfig`
for the recording), the emotion profiles, the speaker and per-utterance
variation and the size (:data:`~audioadapt.data.synthetic.sizes.SER_SIZE_PRESETS`).
:data:`SOURCE_DOMAIN` and :data:`TARGET_DOMAIN` are the default languages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from audioadapt.data.synthetic.domain import ChannelConfig, DomainConfig, NoiseConfig, blend_domains, check_range
from audioadapt.data.synthetic.sizes import SER_SIZE_PRESETS, SerSizeOverrides, SerSizes
from audioadapt.errors import ConfigError

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
        check_range("word_syllables", self.word_syllables, minimum=1)
        check_range("phrase_words", self.phrase_words, minimum=1)
        check_range("pause_seconds", self.pause_seconds)
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
        check_range("breathiness", self.breathiness)


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
        check_range("intensity", self.intensity)
        if min(self.pitch_st, self.energy_db, self.tilt_db, self.range_spread, self.tempo_spread) < 0:
            raise ConfigError("variation spreads must be >= 0")


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
    """Settings of :func:`~audioadapt.data.synthetic.ser.generate_ser_dataset`.

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
        check_range("duration_range", self.duration_range, minimum=0.5)
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
            language = blend_domains(self.source.language, self.target.language, self.gap)
            recording = blend_domains(self.source.recording, self.target.recording, self.gap)
        except ValueError as exc:
            raise ConfigError(f"gap={self.gap} gives an invalid target domain: {exc}") from None
        return SerDomainConfig(self.target.name, language, recording)

    def domains(self) -> tuple[SerDomainConfig, SerDomainConfig]:
        """Source and (effective) target, in :data:`DOMAIN_KEYS` order."""
        return self.source, self.effective_target()


def load_ser_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SerSynthConfig:
    """Settings from an optional YAML file and ``key.path=value`` overrides.

    The YAML changes only what it names (a nested mapping such as
    ``target: {recording: {snr_db: [0, 10]}}`` keeps every other target
    value); unknown keys are errors.
    """
    from audioadapt.config.load import load_config

    return load_config(SerSynthConfig, path, overrides)


__all__ = [
    "CONSONANTS",
    "DOMAIN_KEYS",
    "EmotionProfile",
    "EmotionProfiles",
    "LanguageConfig",
    "SOURCE_DOMAIN",
    "SerDomainConfig",
    "SerSynthConfig",
    "SpeakerConfig",
    "TARGET_DOMAIN",
    "VariationConfig",
    "load_ser_config",
]
