"""Named dataset sizes of the synthetic SED generator (clips per split).

Kept free of heavy imports so that the command line can list the presets
without loading the generator.

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
"""

from __future__ import annotations

from dataclasses import dataclass

from audioadapt.data.dcase import SED_SPLITS
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

__all__ = ["SIZE_PRESETS", "SizeOverrides", "SplitSizes"]
