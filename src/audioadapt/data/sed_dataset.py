"""Torch datasets of SED clips that return items of the batch contract.

:class:`SedDataset` pairs clip records with a feature store: any
sequence-like object whose item ``i`` is the ``(frame, mel)`` float array of
record ``i`` (a list of arrays, or the memory-mapped feature cache). Frame
labels are encoded at the model's output rate, their length being
``grid.num_output_frames(n_input_frames)`` for the grid carrying the model's
time pooling. Labels may be replaced later (pseudo-labels) and are stored as
int8 arrays.

:class:`MultiSourceDataset` joins several datasets (synthetic, weak,
unlabeled, ...) into one index space with known per-source index ranges, the
input of :class:`~audioadapt.data.sampling.MultiSourceBatchSampler`.

Labels changed after a ``DataLoader`` has started persistent worker
processes are not seen by those workers; create the loader's iterator again
(the default, non-persistent workers do this every epoch).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from audioadapt.data.batch import SedItem
from audioadapt.data.labels import UNKNOWN, LabelConfig, class_index, encode_strong, encode_weak
from audioadapt.data.manifest import ClipRecord
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.frames import FrameGrid

_LABEL_VALUES = np.array([UNKNOWN, 0, 1], dtype=np.int8)


class FeatureStore(Protocol):
    """What a dataset needs from features: ``len`` and ``(frame, mel)`` items."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@dataclass(frozen=True)
class SedDatasetConfig:
    """Label settings of a :class:`SedDataset`.

    Attributes
    ----------
    labels: rounding of event times to output frames.
    weak_from_strong: give strongly labelled clips without tags (synthetic)
        the clip labels implied by their events; when false their clip labels
        are unknown, so only weak rows enter a clip-level loss (2019 baseline).
    """

    labels: LabelConfig = field(default_factory=LabelConfig)
    weak_from_strong: bool = True


def _to_numpy(values: Any) -> Any:
    """Tensors (on any device) to numpy; other inputs unchanged."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values


def _as_hard_labels(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(_to_numpy(values))
    if arr.size and not np.isin(arr, _LABEL_VALUES).all():
        bad = np.unique(arr[~np.isin(arr, _LABEL_VALUES)])[:5]
        raise ValueError(f"{what} must hold only -1 (unknown), 0 or 1; found {bad.tolist()}")
    return arr.astype(np.int8)


class SedDataset(Dataset):
    """Clips of one source (or any list of records) with their features.

    Parameters
    ----------
    records: one record per clip.
    features: feature store; item ``i`` is a ``(frame, mel)`` array of record ``i``.
    grid: frame geometry with the model's time pooling.
    classes: the class list (label column order).
    config: label settings.
    name: source name; defaults to the records' common ``source``.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        features: FeatureStore,
        grid: FrameGrid,
        classes: Sequence[str],
        config: SedDatasetConfig | None = None,
        *,
        name: str | None = None,
    ):
        self.records = tuple(records)
        if len(features) != len(self.records):
            raise DataError(f"feature store has {len(features)} items for {len(self.records)} records")
        self.features = features
        self.grid = grid
        self.classes = tuple(classes)
        self.config = config or SedDatasetConfig()
        index = class_index(self.classes)
        sources = {r.source for r in self.records}
        self.name = name or (sources.pop() if len(sources) == 1 else "mixed")
        weak = np.full((len(self.records), len(self.classes)), UNKNOWN, dtype=np.int8)
        for i, rec in enumerate(self.records):
            for ev in rec.events or ():
                if ev.label not in index:
                    raise DataError(f"clip '{rec.filename}' has an event of unknown class '{ev.label}'", rec.path)
            tags = rec.clip_tags() if self.config.weak_from_strong else rec.tags
            try:
                weak[i] = encode_weak(tags, self.classes)
            except DataError as exc:
                raise DataError(f"clip '{rec.filename}': {exc.reason}", rec.path) from None
        self._weak_base = weak
        self._weak = weak.copy()
        self._strong: dict[int, np.ndarray] = {}

    # -- sizes and geometry -----------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    @property
    def source_names(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def ranges(self) -> dict[str, range]:
        """Source name -> its index range (one source here)."""
        return {self.name: range(len(self))}

    def _check(self, i: int) -> int:
        if isinstance(i, (bool, np.bool_)) or not 0 <= int(i) < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} clips")
        return int(i)

    def _features(self, i: int) -> np.ndarray:
        x = np.asarray(self.features[i])
        if x.ndim != 2:
            rec = self.records[i]
            raise DataError(f"features of '{rec.filename}' have shape {x.shape}, expected (frame, mel)", rec.path)
        return x

    def num_output_frames(self, i: int) -> int:
        """Model output frames of clip ``i`` (from its feature length)."""
        i = self._check(i)
        return self.grid.num_output_frames(self._features(i).shape[0])

    # -- labels -------------------------------------------------------------------
    def strong_labels(self, i: int, num_frames: int | None = None) -> np.ndarray:
        """``(out_frame, class)`` float32 frame labels of clip ``i``."""
        i = self._check(i)
        if i in self._strong:
            return self._strong[i].astype(np.float32)
        if num_frames is None:
            num_frames = self.num_output_frames(i)
        rec = self.records[i]
        return encode_strong(rec.events, self.classes, self.grid, num_frames, self.config.labels)

    def weak_labels(self, i: int) -> np.ndarray:
        """``(class,)`` float32 clip labels of clip ``i``."""
        return self._weak[self._check(i)].astype(np.float32)

    def set_strong_labels(self, indices: Iterable[int], labels: Any) -> None:
        """Replace the frame labels of clips ``indices``.

        ``labels`` is a ``(len(indices), out_frame, class)`` array or tensor
        (any device), or one ``(out_frame, class)`` array per index, holding
        -1 (unknown), 0 or 1; ``out_frame`` must equal each clip's output
        length (crop batch padding first). Stored as int8.
        """
        indices = [self._check(i) for i in indices]
        labels = _to_numpy(labels)
        if len(labels) != len(indices):
            raise ValueError(f"got {len(labels)} label arrays for {len(indices)} indices")
        for i, lab in zip(indices, labels):
            arr = _as_hard_labels(lab, "strong labels")
            expected = (self.num_output_frames(i), len(self.classes))
            if arr.shape != expected:
                raise ValueError(f"strong labels of clip {i} have shape {arr.shape}, expected {expected}")
            self._strong[i] = arr

    def set_weak_labels(self, indices: Iterable[int], labels: Any) -> None:
        """Replace the clip labels of clips ``indices`` (``(len(indices), class)``, -1/0/1)."""
        indices = [self._check(i) for i in indices]
        if not indices and len(labels) == 0:
            return
        arr = _as_hard_labels(labels, "weak labels")
        expected = (len(indices), len(self.classes))
        if arr.shape != expected:
            raise ValueError(f"weak labels have shape {arr.shape}, expected {expected}")
        self._weak[indices] = arr

    def reset_labels(self, indices: Iterable[int] | None = None) -> None:
        """Restore the labels from the records (all clips, or ``indices``)."""
        if indices is None:
            self._strong.clear()
            self._weak[:] = self._weak_base
            return
        for i in indices:
            i = self._check(i)
            self._strong.pop(i, None)
            self._weak[i] = self._weak_base[i]

    # -- items ------------------------------------------------------------------
    def item(self, i: int, *, index: int | None = None, source: int = 0) -> SedItem:
        """Item ``i`` with the given global ``index`` and ``source`` number."""
        i = self._check(i)
        x = self._features(i)
        strong = self.strong_labels(i, self.grid.num_output_frames(x.shape[0]))
        return SedItem(
            features=torch.from_numpy(np.array(x, dtype=np.float32)),
            strong=torch.from_numpy(strong),
            weak=torch.from_numpy(self.weak_labels(i)),
            domain=self.records[i].domain,
            index=i if index is None else int(index),
            source=source,
        )

    def __getitem__(self, i: int) -> SedItem:
        return self.item(i)


class MultiSourceDataset(Dataset):
    """Several :class:`SedDataset` sources in one global index space.

    Source ``k`` occupies ``ranges[name_k]``, in the order given; items carry
    the global index and ``source = k``.
    """

    def __init__(self, sources: Mapping[str, SedDataset] | Sequence[tuple[str, SedDataset]]):
        pairs = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
        if not pairs:
            raise ConfigError("MultiSourceDataset needs at least one source")
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names):
            raise ConfigError(f"source names repeat: {names}")
        self.datasets = tuple(ds for _, ds in pairs)
        self.classes = self.datasets[0].classes
        for name, ds in pairs:
            if ds.classes != self.classes:
                raise ConfigError(f"source '{name}' has classes {list(ds.classes)}, expected {list(self.classes)}")
        self.source_names = tuple(names)
        self._starts = [0]
        for ds in self.datasets:
            self._starts.append(self._starts[-1] + len(ds))

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def ranges(self) -> dict[str, range]:
        """Source name -> its global index range."""
        return {n: range(self._starts[k], self._starts[k + 1]) for k, n in enumerate(self.source_names)}

    def source(self, name: str) -> SedDataset:
        """The dataset of source ``name``."""
        if name not in self.source_names:
            raise KeyError(f"no source '{name}' (sources: {', '.join(self.source_names)})")
        return self.datasets[self.source_names.index(name)]

    def locate(self, index: int) -> tuple[int, int]:
        """``(source number, local index)`` of a global index."""
        if isinstance(index, (bool, np.bool_)) or not 0 <= int(index) < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        k = bisect.bisect_right(self._starts, int(index)) - 1
        return k, int(index) - self._starts[k]

    def record(self, index: int) -> ClipRecord:
        k, i = self.locate(index)
        return self.datasets[k].records[i]

    def __getitem__(self, index: int) -> SedItem:
        k, i = self.locate(index)
        return self.datasets[k].item(i, index=int(index), source=k)

    def _group(self, indices: Iterable[int]) -> dict[int, tuple[list[int], list[int]]]:
        groups: dict[int, tuple[list[int], list[int]]] = {}
        for pos, g in enumerate(indices):
            k, i = self.locate(g)
            local, order = groups.setdefault(k, ([], []))
            local.append(i)
            order.append(pos)
        return groups

    def set_strong_labels(self, indices: Iterable[int], labels: Any) -> None:
        """Replace frame labels by global index (see :meth:`SedDataset.set_strong_labels`)."""
        indices = list(indices)
        labels = _to_numpy(labels)
        if len(labels) != len(indices):
            raise ValueError(f"got {len(labels)} label arrays for {len(indices)} indices")
        for k, (local, order) in self._group(indices).items():
            self.datasets[k].set_strong_labels(local, [labels[p] for p in order])

    def set_weak_labels(self, indices: Iterable[int], labels: Any) -> None:
        """Replace clip labels by global index."""
        indices = list(indices)
        arr = np.asarray(_to_numpy(labels))
        if arr.shape[:1] != (len(indices),):
            raise ValueError(f"got {arr.shape[:1]} weak label rows for {len(indices)} indices")
        for k, (local, order) in self._group(indices).items():
            self.datasets[k].set_weak_labels(local, arr[order])

    def reset_labels(self, indices: Iterable[int] | None = None) -> None:
        """Restore labels from the records (all, or the given global indices)."""
        if indices is None:
            for ds in self.datasets:
                ds.reset_labels()
            return
        for k, (local, _) in self._group(indices).items():
            self.datasets[k].reset_labels(local)


__all__ = ["FeatureStore", "MultiSourceDataset", "SedDataset", "SedDatasetConfig"]
