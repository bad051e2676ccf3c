"""Torch datasets of speech-emotion utterances over a variable-length feature cache.

The SER pipeline caches each utterance's whole log-mel (``clip_seconds:
null`` in the ``ser_features`` preset) and crops here, per item:

* training (``train=True``): a random window of ``crop_seconds`` worth of
  frames (7.5 s, 751 frames with the SER features), drawn from torch's
  random generator, so ``torch.manual_seed`` and the ``DataLoader``'s
  per-worker seeding make it reproducible;
* evaluation: the first ``crop_seconds`` (a fixed start crop).

Before the crop, each whole utterance goes through the front end of
``SerDatasetConfig.frontend`` (:mod:`audioadapt.data.ser_frontend`):
leading and trailing silence trimmed, loudness normalised.

Shorter utterances are not padded by the dataset; :func:`collate_ser` pads
them with zeros at the end and records their ``lengths``, so models and the
per-utterance normaliser can mask the padding
(:meth:`SerBatch.frame_mask`). With ``pad_to_crop`` every batch is padded
to the full crop length (the paper's fixed 7.5 s input); otherwise to the
longest row of the batch.

Every item carries the utterance's position in the dataset (``index``: the
memory bank of NNPM keeps one slot per source utterance), its emotion index
in :data:`~audioadapt.data.utterances.EMOTIONS` (``UNKNOWN`` = -1 when the
utterance has no label or labels are not to be used, as for the target
corpus during adaptation) and a domain id (:data:`SOURCE_DOMAIN` or
:data:`TARGET_DOMAIN`).

Axes: ``batch`` rows; ``frame`` input (feature) frames; ``mel`` bins.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from audioadapt.data.labels import UNKNOWN
from audioadapt.data.ser_frontend import FrontEndFeatures, SerFrontEndConfig
from audioadapt.data.utterances import EMOTIONS, Utterance
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.store import resolve_path

logger = logging.getLogger(__name__)

#: ``domain`` value of source-corpus utterances.
SOURCE_DOMAIN = 0
#: ``domain`` value of target-corpus utterances.
TARGET_DOMAIN = 1

Crop = Literal["random", "start", "center"]
_CROPS = ("random", "start", "center")


@dataclass(frozen=True)
class SerDatasetConfig:
    """Cropping and padding of SER items; the one home of these defaults.

    Attributes
    ----------
    crop_seconds: longest input in seconds (longer utterances are cropped);
        ``None`` keeps whole utterances.
    train_crop: crop position in training (``"random"``, ``"start"`` or ``"center"``).
    eval_crop: crop position at evaluation.
    pad_to_crop: pad every batch to the full crop length (``crop_seconds``
        must be set) instead of to its longest row.
    frontend: silence trimming and loudness normalisation of each whole
        utterance, before the crop (:mod:`audioadapt.data.ser_frontend`).
    """

    crop_seconds: float | None = 7.5
    train_crop: Crop = "random"
    eval_crop: Crop = "start"
    pad_to_crop: bool = True
    frontend: SerFrontEndConfig = field(default_factory=SerFrontEndConfig)

    def __post_init__(self) -> None:
        if self.crop_seconds is not None and self.crop_seconds <= 0:
            raise ConfigError(f"crop_seconds must be positive or null, got {self.crop_seconds}")
        for name in ("train_crop", "eval_crop"):
            if getattr(self, name) not in _CROPS:
                raise ConfigError(f"{name} must be one of {list(_CROPS)}, got {getattr(self, name)!r}")
        if self.pad_to_crop and self.crop_seconds is None:
            raise ConfigError("pad_to_crop needs crop_seconds; set pad_to_crop: false for whole utterances")


@dataclass
class SerItem:
    """One row of a :class:`SerBatch`, as a dataset returns it.

    Attributes
    ----------
    features: ``(frame, mel)`` float32, at most the crop length.
    label: emotion index, or ``UNKNOWN`` (-1).
    domain: :data:`SOURCE_DOMAIN` or :data:`TARGET_DOMAIN`.
    index: position of the utterance in its dataset.
    """

    features: torch.Tensor
    label: int
    domain: int
    index: int


@dataclass
class SerBatch:
    """A batch of utterances.

    Attributes
    ----------
    features: ``(batch, frame, mel)`` float; rows zero-padded at the end.
    lengths: ``(batch,)`` long, valid frames per row.
    label: ``(batch,)`` long, emotion index or ``UNKNOWN`` (-1).
    domain: ``(batch,)`` long, :data:`SOURCE_DOMAIN` / :data:`TARGET_DOMAIN`.
    index: ``(batch,)`` long, utterance position in its dataset.
    """

    features: torch.Tensor
    lengths: torch.Tensor
    label: torch.Tensor
    domain: torch.Tensor
    index: torch.Tensor

    def __post_init__(self) -> None:
        if self.features.dim() != 3:
            raise ValueError(f"SerBatch expects features (batch, frame, mel), got {tuple(self.features.shape)}")
        n = self.features.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "features" and tuple(value.shape) != (n,):
                raise ValueError(f"SerBatch.{f.name} must have shape ({n},), got {tuple(value.shape)}")

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.features.shape[0])

    def __len__(self) -> int:
        return self.size

    def frame_mask(self) -> torch.Tensor:
        """``(batch, frame)`` bool, true on valid (non-padding) frames."""
        steps = torch.arange(self.features.shape[1], device=self.features.device)
        return steps.unsqueeze(0) < self.lengths.to(self.features.device).unsqueeze(1)

    def labelled(self) -> torch.Tensor:
        """``(batch,)`` bool, rows whose label is known."""
        return self.label != UNKNOWN

    def _map(self, fn: Any) -> "SerBatch":
        return SerBatch(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "SerBatch":
        """A copy with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "SerBatch":
        """Pinned copy (called by ``DataLoader(pin_memory=True)``)."""
        return self._map(lambda t: t.pin_memory())


def collate_ser(items: Sequence[SerItem], num_frames: int | None = None) -> SerBatch:
    """Stack items into a :class:`SerBatch`, zero-padding rows at the end.

    Parameters
    ----------
    items: dataset items.
    num_frames: pad every row to this many frames (no row may be longer);
        ``None`` pads to the longest row.
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    lengths = [int(it.features.shape[0]) for it in items]
    frames = max(lengths) if num_frames is None else int(num_frames)
    if max(lengths) > frames:
        raise ValueError(f"an item has {max(lengths)} frames, more than num_frames={frames}")
    n_mel = int(items[0].features.shape[1])
    features = torch.zeros(len(items), frames, n_mel, dtype=torch.float32)
    for row, it in enumerate(items):
        if it.features.dim() != 2 or it.features.shape[1] != n_mel:
            raise ValueError(f"item {it.index} has features {tuple(it.features.shape)}, expected (frame, {n_mel})")
        features[row, : lengths[row]] = it.features
    return SerBatch(
        features=features,
        lengths=torch.tensor(lengths, dtype=torch.long),
        label=torch.tensor([it.label for it in items], dtype=torch.long),
        domain=torch.tensor([it.domain for it in items], dtype=torch.long),
        index=torch.tensor([it.index for it in items], dtype=torch.long),
    )


def _crop_start(length: int, crop: int, mode: str, generator: torch.Generator | None) -> int:
    excess = length - crop
    if excess <= 0 or mode == "start":
        return 0
    if mode == "center":
        return excess // 2
    return int(torch.randint(0, excess + 1, (1,), generator=generator).item())


class SerDataset(Dataset):
    """Utterances of one corpus (or one side of a split) with their cached features.

    Parameters
    ----------
    utterances: one record per item, in item order.
    features: a feature store whose item ``i`` is the ``(frame, mel)`` log-mel
        of utterance ``i`` (a :class:`~audioadapt.features.cache.FeatureCache`
        or a list of arrays). A store with ``paths`` must hold exactly the
        utterances' files, in order. :attr:`features` is this store seen
        through the configured front end.
    features_config: the feature settings (frame geometry of the crop);
        defaults to the store's ``feature_config`` when it has one.
    config: crop and padding settings.
    train: random crops (``config.train_crop``) instead of ``config.eval_crop``.
    domain: domain id of every item.
    use_labels: give items their labels; false gives ``UNKNOWN`` everywhere
        (unlabelled adaptation data).
    generator: torch generator for random crops (default: torch's global one).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        features: Any,
        features_config: FeatureConfig | None = None,
        config: SerDatasetConfig | None = None,
        *,
        train: bool = False,
        domain: int = SOURCE_DOMAIN,
        use_labels: bool = True,
        generator: torch.Generator | None = None,
    ):
        self.utterances = tuple(utterances)
        if len(features) != len(self.utterances):
            raise DataError(f"feature store has {len(features)} items for {len(self.utterances)} utterances")
        paths = getattr(features, "paths", None)
        if paths is not None:
            for i, (held, utt) in enumerate(zip(paths, self.utterances)):
                if resolve_path(held) != resolve_path(utt.path):
                    raise DataError(f"feature store item {i} is {held}, but utterance {i} is "
                                    f"'{utt.utt_id}' at {utt.path}; build the cache from these utterances")
        features_config = features_config or getattr(features, "feature_config", None)
        if features_config is None:
            raise ConfigError("SerDataset needs features_config when the feature store does not carry one")
        self.config = config or SerDatasetConfig()
        if self.config.frontend.active:
            features = FrontEndFeatures(features, self.config.frontend, features_config)
        self.features = features
        self.features_config = features_config
        self.train = bool(train)
        self.domain = int(domain)
        self.use_labels = bool(use_labels)
        self.generator = generator
        self.crop_mode = self.config.train_crop if self.train else self.config.eval_crop
        grid = FrameGrid.from_features(features_config)
        seconds = self.config.crop_seconds
        self.crop_frames = None if seconds is None else grid.num_input_frames(grid.seconds_to_samples(seconds))
        known = [u.label_index for u in self.utterances]
        self._labels = np.array([UNKNOWN if i is None else i for i in known], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def labels(self) -> np.ndarray:
        """``(utterance,)`` int64 emotion index of every utterance (``UNKNOWN`` if none).

        These are the records' labels whatever ``use_labels`` says (the
        memory bank stores the source labels; evaluation scores the target).
        """
        return self._labels.copy()

    def class_counts(self) -> dict[str, int]:
        """Utterances per emotion, in :data:`EMOTIONS` order."""
        return {e: int((self._labels == k).sum()) for k, e in enumerate(EMOTIONS)}

    @property
    def collate(self) -> functools.partial:
        """The collate function for a ``DataLoader`` over this dataset (picklable)."""
        return functools.partial(collate_ser, num_frames=self.crop_frames if self.config.pad_to_crop else None)

    def __getitem__(self, i: int) -> SerItem:
        if isinstance(i, (bool, np.bool_)) or not 0 <= int(i) < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} utterances")
        i = int(i)
        x = np.asarray(self.features[i])
        if x.ndim != 2 or x.shape[0] == 0:
            utt = self.utterances[i]
            raise DataError(f"features of '{utt.utt_id}' have shape {x.shape}, expected (frame, mel)", utt.path)
        if self.crop_frames is not None and x.shape[0] > self.crop_frames:
            start = _crop_start(x.shape[0], self.crop_frames, self.crop_mode, self.generator)
            x = x[start : start + self.crop_frames]
        label = int(self._labels[i]) if self.use_labels else UNKNOWN
        return SerItem(torch.from_numpy(np.array(x, dtype=np.float32)), label, self.domain, i)


def cache_utterances(
    utterances: Sequence[Utterance],
    config: FeatureConfig,
    cache_dir: str | Path,
    *,
    num_workers: int | None = None,
    progress: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
) -> tuple[list[Utterance], Any]:
    """Build (or reuse) the feature cache of ``utterances``; return the utterances it holds and the cache.

    With ``on_error="skip"`` unreadable files are left out of both, so the
    two stay aligned item by item (ready for :class:`SerDataset`).
    """
    from audioadapt.features.cache import FeatureCache

    if not utterances:
        raise DataError("no utterances to cache", cache_dir)
    cache = FeatureCache.build([str(u.path) for u in utterances], config, cache_dir, num_workers=num_workers,
                               progress=progress, on_error=on_error)
    kept = [u for u, item in zip(utterances, cache.positions(u.path for u in utterances)) if item is not None]
    if len(kept) != len(utterances):
        logger.warning("%s: %d of %d utterance(s) left out (unreadable audio)", cache_dir,
                       len(utterances) - len(kept), len(utterances))
    return kept, cache


__all__ = [
    "SOURCE_DOMAIN",
    "TARGET_DOMAIN",
    "SerBatch",
    "SerDataset",
    "SerDatasetConfig",
    "SerItem",
    "cache_utterances",
    "collate_ser",
]
