"""Feature-cache settings and index views shared by the SED and SER data modules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audioadapt.errors import ConfigError


@dataclass(frozen=True)
class CacheConfig:
    """Where and how the log-mel caches are built.

    Attributes
    ----------
    directory: cache root; ``None`` uses ``<dataset root>/cache``. Each split
        gets ``<directory>/<split>-<hash of the feature config>``.
    num_workers: decoding processes (``None``: all available cores).
    progress: show a progress bar while building.
    """

    directory: str | None = None
    num_workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"cache.num_workers must be >= 0 or null, got {self.num_workers}")


class IndexedFeatures:
    """A view of selected items of a feature store: item ``i`` is ``store[indices[i]]``."""

    def __init__(self, store: Any, indices: Sequence[int]):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.store[int(self.indices[i])]


__all__ = ["CacheConfig", "IndexedFeatures"]
