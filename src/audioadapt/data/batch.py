"""The SED batch contract shared by datasets, models, losses and trainers.

One format serves strongly labelled, weakly labelled and unlabelled rows in
the same batch: an unknown label is ``UNKNOWN`` (-1) and is masked out by the
losses, and each row says where it came from (``domain``, ``source``,
``index``), so no code ever relies on the position of a row in the batch.

Axes: ``batch`` rows; ``frame`` input (feature) frames; ``out_frame`` model
output frames (after time pooling); ``mel`` feature bins; ``class`` classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from audioadapt.data.labels import UNKNOWN

#: ``domain`` value of synthetic clips.
SYNTHETIC_DOMAIN = 0
#: ``domain`` value of real recordings.
REAL_DOMAIN = 1


@dataclass
class SedItem:
    """One row of a :class:`SedBatch`, as a dataset returns it.

    Attributes
    ----------
    features: ``(frame, mel)`` float32.
    strong: ``(out_frame, class)`` float32, 0/1 or ``UNKNOWN``.
    weak: ``(class,)`` float32, 0/1 or ``UNKNOWN``.
    domain: 0 synthetic, 1 real.
    index: global dataset index of the clip.
    source: index into the dataset's list of source names.
    """

    features: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor
    domain: int
    index: int
    source: int


@dataclass
class SedBatch:
    """A batch of SED rows.

    Attributes
    ----------
    features: ``(batch, frame, mel)`` float; shorter rows are zero-padded.
    strong: ``(batch, out_frame, class)`` float, 0/1, ``UNKNOWN`` = -1
        (padding frames are ``UNKNOWN`` too).
    weak: ``(batch, class)`` float, 0/1, ``UNKNOWN`` = -1.
    domain: ``(batch,)`` long, 0 synthetic, 1 real.
    index: ``(batch,)`` long, global dataset index of each row.
    source: ``(batch,)`` long, index into the dataset's source names.
    lengths: ``(batch,)`` long, valid input frames per row, or ``None`` when
        every row fills ``frame``.
    """

    features: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor
    domain: torch.Tensor
    index: torch.Tensor
    source: torch.Tensor
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.features.dim() != 3 or self.strong.dim() != 3 or self.weak.dim() != 2:
            raise ValueError(
                "SedBatch expects features (batch, frame, mel), strong (batch, out_frame, class) and "
                f"weak (batch, class); got {tuple(self.features.shape)}, {tuple(self.strong.shape)}, "
                f"{tuple(self.weak.shape)}"
            )
        if self.strong.shape[2] != self.weak.shape[1]:
            raise ValueError(f"strong has {self.strong.shape[2]} classes but weak has {self.weak.shape[1]}")
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"SedBatch.{f.name} has {value.shape[0]} rows, features has {n}")

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.features.shape[0])

    def __len__(self) -> int:
        return self.size

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "SedBatch":
        """A copy with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "SedBatch":
        """Pinned copy (called by ``DataLoader(pin_memory=True)``)."""
        return self._map(lambda t: t.pin_memory())

    def _map(self, fn) -> "SedBatch":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return SedBatch(**{k: None if v is None else fn(v) for k, v in values.items()})

    def subset(self, rows: torch.Tensor | Sequence[int]) -> "SedBatch":
        """The rows selected by a boolean mask or an index list."""
        if not isinstance(rows, torch.Tensor):
            rows = torch.as_tensor(list(rows), dtype=torch.long)
        rows = rows.to(self.features.device)
        return self._map(lambda t: t[rows])

    # -- masks ---------------------------------------------------------------
    def strong_known(self) -> torch.Tensor:
        """``(batch, out_frame, class)`` bool, true where a frame label is known."""
        return self.strong != UNKNOWN

    def weak_known(self) -> torch.Tensor:
        """``(batch, class)`` bool, true where a clip label is known."""
        return self.weak != UNKNOWN

    def has_strong(self) -> torch.Tensor:
        """``(batch,)`` bool, rows with at least one known frame label."""
        return self.strong_known().flatten(1).any(dim=1)

    def has_weak(self) -> torch.Tensor:
        """``(batch,)`` bool, rows with at least one known clip label."""
        return self.weak_known().any(dim=1)

    def frame_mask(self) -> torch.Tensor:
        """``(batch, frame)`` bool, true on valid (non-padding) input frames."""
        n, frames = self.features.shape[:2]
        if self.lengths is None:
            return torch.ones(n, frames, dtype=torch.bool, device=self.features.device)
        steps = torch.arange(frames, device=self.features.device)
        return steps.unsqueeze(0) < self.lengths.unsqueeze(1)


def collate(items: Sequence[SedItem]) -> SedBatch:
    """Stack dataset items into a :class:`SedBatch`.

    Rows of different lengths are padded at the end: features with zeros,
    frame labels with ``UNKNOWN``; ``lengths`` then records the valid input
    frames of each row.
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    lengths = [int(it.features.shape[0]) for it in items]
    frames = max(lengths)
    out_frames = max(int(it.strong.shape[0]) for it in items)
    n_mel = items[0].features.shape[1]
    n_class = items[0].weak.shape[0]
    features = torch.zeros(len(items), frames, n_mel, dtype=torch.float32)
    strong = torch.full((len(items), out_frames, n_class), float(UNKNOWN), dtype=torch.float32)
    for row, it in enumerate(items):
        if it.features.shape[1] != n_mel or it.strong.shape[1] != n_class:
            raise ValueError(
                f"item {it.index} has features {tuple(it.features.shape)} and strong {tuple(it.strong.shape)}, "
                f"expected {n_mel} mel bins and {n_class} classes"
            )
        features[row, : lengths[row]] = torch.as_tensor(it.features)
        strong[row, : it.strong.shape[0]] = torch.as_tensor(it.strong)
    return SedBatch(
        features=features,
        strong=strong,
        weak=torch.stack([torch.as_tensor(it.weak, dtype=torch.float32) for it in items]),
        domain=torch.tensor([it.domain for it in items], dtype=torch.long),
        index=torch.tensor([it.index for it in items], dtype=torch.long),
        source=torch.tensor([it.source for it in items], dtype=torch.long),
        lengths=None if len(set(lengths)) == 1 else torch.tensor(lengths, dtype=torch.long),
    )


__all__ = ["REAL_DOMAIN", "SYNTHETIC_DOMAIN", "SedBatch", "SedItem", "collate"]
