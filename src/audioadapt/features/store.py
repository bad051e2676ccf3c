"""Feature-cache settings, cache locations and index views shared by the SED and SER data modules."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audioadapt.errors import ConfigError

logger = logging.getLogger(__name__)

#: Name of the folder inside a dataset root that holds its feature caches by default.
DATASET_CACHE_FOLDER = "cache"

_announced: set[Path] = set()  # fallback folders already logged by this process


@dataclass(frozen=True)
class CacheConfig:
    """Where and how the log-mel caches are built.

    Attributes
    ----------
    directory: cache root; ``None`` uses ``<dataset root>/cache``, or, when
        that folder cannot be written (a read-only corpus), a folder of the
        user cache named after the resolved dataset root (see
        :func:`cache_base`). Each split gets ``<directory>/<split>-<hash of
        the feature config>``.
    num_workers: decoding processes (``None``: all available cores).
    progress: show a progress bar while building.
    """

    directory: str | None = None
    num_workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"cache.num_workers must be >= 0 or null, got {self.num_workers}")


def resolve_path(path: str | Path) -> str:
    """``path`` made absolute with symbolic links resolved: the one spelling a cache knows a file by."""
    return os.path.realpath(os.fspath(path))


def user_cache_dir() -> Path:
    """This user's folder for feature caches: ``$XDG_CACHE_HOME/audioadapt/features`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "audioadapt" / "features"


def _can_write(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def cache_base(config: CacheConfig, dataset_root: str | Path) -> Path:
    """The folder that holds the feature caches of the dataset at ``dataset_root``.

    ``config.directory`` when set; else ``<dataset root>/cache`` when it can
    be written; else ``<user cache>/<root name>-<hash of the resolved root>``
    (:func:`user_cache_dir`), so that a read-only corpus needs no setting
    and every spelling of its path finds the same caches.
    """
    if config.directory is not None:
        return Path(config.directory).expanduser()
    inside = Path(dataset_root) / DATASET_CACHE_FOLDER
    if _can_write(inside):
        return inside
    resolved = resolve_path(dataset_root)
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:12]
    fallback = user_cache_dir() / f"{Path(resolved).name}-{digest}"
    if fallback not in _announced:
        _announced.add(fallback)
        logger.info("%s cannot be written; the feature caches go to %s (set cache.directory to choose)", inside,
                    fallback)
    return fallback


class IndexedFeatures:
    """A view of selected items of a feature store: item ``i`` is ``store[indices[i]]``."""

    def __init__(self, store: Any, indices: Sequence[int]):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.store[int(self.indices[i])]


__all__ = ["CacheConfig", "IndexedFeatures", "cache_base", "resolve_path", "user_cache_dir"]
