"""Named dataset sizes of the synthetic SED and SER generators.

Kept free of heavy imports so that the command line can list the presets
without loading the generators.

**SED** (:data:`SIZE_PRESETS`, clips per split):

=======  =========  ====  =========  ==========  ======
preset   synthetic  weak  unlabeled  validation  disk
=======  =========  ====  =========  ==========  ======
tiny     24         12    12         12          27 MB
small    400        200   400        100         0.5 GB
medium   2000       1000  3000       500         2.9 GB
=======  =========  ====  =========  ==========  ======

Disk sizes are for 10 s clips at 22.05 kHz, 16-bit mono WAV (0.44 MB each).
``tiny`` is for tests (seconds to generate); ``small`` trains on a 2-core
CPU in minutes; ``medium`` is for a GPU.

**SER** (:data:`SER_SIZE_PRESETS`, per domain: speakers x utterances per
speaker and emotion, with the utterance count for the four emotions):

=======  ===============  ==============  ==================================
preset   source           target          use
=======  ===============  ==============  ==================================
tiny     4 x 2 (32)       4 x 2 (32)      tests (seconds to generate)
small    8 x 24 (768)     6 x 16 (384)    CPU; ~70 min of audio, ~140 MB
medium   10 x 140 (5600)  10 x 40 (1600)  ~7.5 h, ~0.9 GB
=======  ===============  ==============  ==================================

``medium`` has about as many source utterances as IEMOCAP (5 531).
"""

from __future__ import annotations

from dataclasses import dataclass

from audioadapt.data.corpora.desed import SED_SPLITS
from audioadapt.errors import ConfigError


@dataclass(frozen=True)
class SplitSizes:
    """Number of clips per split."""

    synthetic: int
    weak: int
    unlabeled: int
    validation: int

    def __post_init__(self) -> None:
        for split in SED_SPLITS:
            if getattr(self, split) < 0:
                raise ConfigError(f"sizes.{split} must be >= 0, got {getattr(self, split)}")

    def as_dict(self) -> dict[str, int]:
        """Split name -> clip count, in generation order."""
        return {split: int(getattr(self, split)) for split in SED_SPLITS}


@dataclass(frozen=True)
class SizeOverrides:
    """Clip counts that replace a preset's; ``None`` keeps the preset's count."""

    synthetic: int | None = None
    weak: int | None = None
    unlabeled: int | None = None
    validation: int | None = None

    def apply(self, base: SplitSizes) -> SplitSizes:
        """``base`` with every count given here replaced."""
        return SplitSizes(**{s: getattr(base, s) if getattr(self, s) is None else getattr(self, s) for s in SED_SPLITS})


#: Named dataset sizes (see the module docstring).
SIZE_PRESETS: dict[str, SplitSizes] = {
    "tiny": SplitSizes(synthetic=24, weak=12, unlabeled=12, validation=12),
    "small": SplitSizes(synthetic=400, weak=200, unlabeled=400, validation=100),
    "medium": SplitSizes(synthetic=2000, weak=1000, unlabeled=3000, validation=500),
}



@dataclass(frozen=True)
class SerSizes:
    """Speakers per domain and utterances per speaker and emotion."""

    source_speakers: int
    source_per_class: int
    target_speakers: int
    target_per_class: int

    def __post_init__(self) -> None:
        for name in _SER_SIZE_FIELDS:
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
        """``base`` with every count given here replaced."""
        return SerSizes(**{n: getattr(base, n) if getattr(self, n) is None else getattr(self, n)
                           for n in _SER_SIZE_FIELDS})


_SER_SIZE_FIELDS = ("source_speakers", "source_per_class", "target_speakers", "target_per_class")

#: Named SER sizes: (speakers, utterances per speaker and emotion) per domain
#: (see the module docstring).
SER_SIZE_PRESETS: dict[str, SerSizes] = {
    "tiny": SerSizes(4, 2, 4, 2),
    "small": SerSizes(8, 24, 6, 16),
    "medium": SerSizes(10, 140, 10, 40),
}

__all__ = ["SER_SIZE_PRESETS", "SIZE_PRESETS", "SerSizeOverrides", "SerSizes", "SizeOverrides", "SplitSizes"]
