"""The SED data module: records, internal train/valid splits, feature caches, loaders.

From a DESED 2019-layout dataset root it

1. loads the clip records of the training splits (``synthetic``, ``weak`` and,
   when some phase draws from it, ``unlabeled``) with
   :func:`~audioadapt.data.corpora.desed.load_dcase_dataset`. The real-domain
   ``validation`` split is **not** read for training: model selection uses the
   2019 baseline's internal protocol only;
2. splits the synthetic and the weak clips 80/20 into train and valid parts by
   file name with a fixed seed (:class:`SedSplitConfig`; DCASE 2019 baseline:
   ``random_state=26``), independent of the order of the metadata rows;
3. builds (or reopens) one memory-mapped :class:`~audioadapt.features.cache.FeatureCache`
   per split in :func:`~audioadapt.features.store.cache_base` (``<root>/cache``,
   :attr:`~audioadapt.features.store.CacheConfig.directory`, or the user cache
   when the dataset folder is read-only);
4. wraps them in :class:`~audioadapt.data.sed_dataset.SedDataset` objects: the
   training sources ``synthetic``, ``weak``, ``unlabeled`` (one
   :class:`~audioadapt.data.sed_dataset.MultiSourceDataset`) and the valid
   parts ``synthetic_valid`` and ``weak_valid``;
5. makes per-phase loaders with the DDP-aware
   :class:`~audioadapt.data.sampling.MultiSourceBatchSampler`.

:meth:`SedDataModule.summary` records the clip counts actually used (clips go
missing from DESED downloads, so they can differ from the paper's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import DataLoader

from audioadapt.console import show_progress
from audioadapt.data.batch import collate
from audioadapt.data.dcase import read_durations_tsv
from audioadapt.data.corpora.desed import CONFIG_CLASSES, SplitCounts, load_dcase_dataset, load_sed_split
from audioadapt.data.manifest import ClipRecord
from audioadapt.data.sampling import MultiSourceBatchSampler, SamplerConfig
from audioadapt.data.sed_dataset import MultiSourceDataset, SedDataset, SedDatasetConfig
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.cache import FeatureCache
from audioadapt.features.store import IndexedFeatures, cache_base
from audioadapt.features.frames import FrameGrid

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.sed import SedExperimentConfig
    from audioadapt.training.distributed import DistInfo

log = logging.getLogger(__name__)

#: Training sources, in the order of the multi-source index space.
TRAIN_SOURCES = ("synthetic", "weak", "unlabeled")
#: Internal validation parts (model selection), split off ``synthetic`` and ``weak``.
VALID_SOURCES = ("synthetic_valid", "weak_valid")
#: Splits :meth:`SedDataModule.eval_dataset` can evaluate.
EVAL_SPLITS = ("validation", "synthetic_valid")


@dataclass(frozen=True)
class SedSplitConfig:
    """Internal train/valid split used for model selection (DCASE 2019 baseline protocol).

    Attributes
    ----------
    synthetic_valid_fraction: share of the synthetic clips held out as
        ``synthetic_valid`` (event F1 for selection).
    weak_valid_fraction: share of the weak clips held out as ``weak_valid``
        (clip F1 for selection).
    seed: seed of the split; the split depends only on the file names and
        this seed (2019 baseline: 26).
    """

    synthetic_valid_fraction: float = 0.2
    weak_valid_fraction: float = 0.2
    seed: int = 26

    def __post_init__(self) -> None:
        for name in ("synthetic_valid_fraction", "weak_valid_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{name} must lie in (0, 1), got {value}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")


def split_by_filename(filenames: Sequence[str], fraction: float, seed: int, key: str) -> tuple[list[str], list[str]]:
    """Split file names into ``(train, valid)``, ``valid`` holding ``round(fraction * n)`` names.

    The draw depends only on the sorted names, ``seed`` and ``key`` (the split
    name), never on the order of ``filenames``. Both parts come back sorted.
    """
    names = sorted(set(filenames))
    if len(names) != len(filenames):
        raise DataError(f"{key}: file names repeat; cannot split by file name")
    n_valid = int(round(fraction * len(names)))
    if len(names) >= 2:
        n_valid = min(max(n_valid, 1), len(names) - 1)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    chosen = set(rng.permutation(len(names))[:n_valid].tolist())
    valid = [n for i, n in enumerate(names) if i in chosen]
    train = [n for i, n in enumerate(names) if i not in chosen]
    return train, valid


def _feature_hash(cfg: Any) -> str:
    from audioadapt.config.load import to_dict

    text = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


class SedDataModule:
    """Datasets and loaders of one SED experiment.

    Parameters
    ----------
    root: the dataset root (DESED 2019 layout).
    cfg: the experiment configuration (``data``, ``labels``, ``features``,
        ``cache``, ``model.crnn`` pooling, ``sampler``, ``method``).
    classes_from: where ``cfg.data.classes`` comes from (e.g. a run's
        checkpoint), named in the error about an unknown label.

    Call :meth:`setup` before using the datasets.
    """

    def __init__(self, root: str | Path, cfg: "SedExperimentConfig", *, classes_from: str | None = None):
        self.root = Path(root)
        self.cfg = cfg
        self.grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
        self.dataset_config = SedDatasetConfig(labels=cfg.labels, weak_from_strong=cfg.method.synthetic_clip_loss)
        self.classes: tuple[str, ...] = tuple(cfg.data.classes or ())
        #: where the class list comes from (named in the error about an unknown label)
        self.classes_from = (classes_from or CONFIG_CLASSES) if cfg.data.classes else ""
        self.train: MultiSourceDataset | None = None
        self.valid: dict[str, SedDataset] = {}
        self.split_names: dict[str, list[str]] = {}
        self.counts: dict[str, SplitCounts] = {}
        self.features_skipped: dict[str, int] = {}
        self._caches: dict[str, FeatureCache] = {}
        self._dist: "DistInfo | None" = None

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_datasets(cls, cfg: "SedExperimentConfig", train: Mapping[str, SedDataset],
                      valid: Mapping[str, SedDataset] | None = None) -> "SedDataModule":
        """A module over ready-made datasets (in-memory features), e.g. for tests."""
        module = cls(".", cfg)
        module.train = MultiSourceDataset(dict(train))
        module.valid = dict(valid or {})
        module.classes = module.train.classes
        return module

    def setup(self, dist: "DistInfo | None" = None) -> "SedDataModule":
        """Load the training records, split them, build the caches and the datasets."""
        self._dist = dist
        cfg = self.cfg
        wanted = [s for s in TRAIN_SOURCES if s in cfg.needed_sources()]
        missing = [s for s in wanted if s not in cfg.data.splits]
        if missing:
            raise ConfigError(f"the method draws from {missing}, but data.splits is {list(cfg.data.splits)}")
        dataset = load_dcase_dataset(self.root, dataclasses.replace(cfg.data, splits=tuple(wanted)))
        self.classes, self.classes_from = dataset.classes, dataset.classes_from
        self.counts = dict(dataset.counts)
        parts: dict[str, list[ClipRecord]] = {}
        fractions = {"synthetic": cfg.method.validation.synthetic_valid_fraction,
                     "weak": cfg.method.validation.weak_valid_fraction}
        for split in wanted:
            records = self._cached_records(split, dataset.records(split))
            if split in fractions:
                if len(records) < 2:
                    raise DataError(f"split '{split}' holds {len(records)} usable clip; holding out "
                                    f"{split}_valid needs at least 2", self.root / cfg.data.layout.tsv(split))
                by_name = {r.filename: r for r in records}
                train, valid = split_by_filename(list(by_name), fractions[split], cfg.method.validation.seed, split)
                self.split_names[split] = train
                self.split_names[f"{split}_valid"] = valid
                parts[split] = [by_name[n] for n in train]
                parts[f"{split}_valid"] = [by_name[n] for n in valid]
            else:
                parts[split] = list(records)
        self.train = MultiSourceDataset([(s, self._dataset(s, parts[s])) for s in wanted])
        self.valid = {s: self._dataset(s, parts[s]) for s in VALID_SOURCES}
        log.info("SED data: %s", ", ".join(f"{k} {v}" for k, v in self.sizes().items()))
        return self

    def _cached_records(self, split: str, records: Sequence[ClipRecord]) -> list[ClipRecord]:
        """Build or open the cache of ``split``; drop records whose audio it had to skip."""
        tsv = self.root / self.cfg.data.layout.tsv(split)
        if not records:
            raise DataError(f"split '{split}' holds no usable clip; check the metadata file and the audio folder "
                            f"{self.root / self.cfg.data.layout.audio(split)}", tsv)
        cache = self._build_cache(split, [r.path for r in records])
        kept = [r for r, item in zip(records, cache.positions(r.path for r in records)) if item is not None]
        self.features_skipped[split] = len(records) - len(kept)
        self._caches[split] = cache
        return kept

    def _build_cache(self, split: str, paths: Sequence[Path]) -> FeatureCache:
        cc = self.cfg.cache
        directory = cache_base(cc, self.root) / f"{split}-{_feature_hash(self.cfg.features)}"
        dist = self._dist

        def build() -> FeatureCache:
            return FeatureCache.build(paths, self.cfg.features, directory, num_workers=cc.num_workers,
                                      progress=show_progress(cc.progress), on_error=self.cfg.data.on_error)

        if dist is None or not dist.enabled:
            return build()
        cache = build() if dist.is_main else None  # rank 0 computes, the others then reuse it
        dist.barrier()
        return cache if cache is not None else build()

    def _dataset(self, split: str, records: Sequence[ClipRecord]) -> SedDataset:
        source = split[: -len("_valid")] if split.endswith("_valid") else split
        cache = self._caches[source]
        store = IndexedFeatures(cache, cache.positions(r.path for r in records))
        return SedDataset(records, store, self.grid, self.classes, self.dataset_config, name=split)

    # -- access -------------------------------------------------------------------
    def source(self, name: str) -> SedDataset:
        """A training source (``synthetic``, ``weak``, ``unlabeled``) or a valid part."""
        if name in self.valid:
            return self.valid[name]
        if self.train is None:
            raise RuntimeError("SedDataModule.setup() has not run")
        return self.train.source(name)

    def sizes(self) -> dict[str, int]:
        """Clips per training source and valid part."""
        out = {} if self.train is None else {n: len(self.train.source(n)) for n in self.train.source_names}
        out.update({n: len(d) for n, d in self.valid.items()})
        return out

    def summary(self) -> dict[str, Any]:
        """The clip counts actually used, for ``data.json`` and the log."""
        return {
            "root": str(self.root.resolve()),
            "classes": list(self.classes),
            "classes_from": self.classes_from,
            "metadata": {s: {"listed": c.listed, "kept": c.kept, "lost": c.lost, "skipped_rows": c.skipped_rows,
                             "clipped_events": c.clipped_events}
                         for s, c in self.counts.items()},
            "features_skipped": dict(self.features_skipped),
            "clips": self.sizes(),
            "split_seed": self.cfg.method.validation.seed,
            "valid_files": {k: v for k, v in self.split_names.items() if k.endswith("_valid")},
        }

    def train_loader(self, sampler: SamplerConfig, *, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                     pin_memory: bool = False) -> DataLoader:
        """Batches of a phase with ``sampler``'s per-source composition (this rank's share), shuffled with
        ``sampler.seed`` or, when that is null, ``train.seed``."""
        if self.train is None:
            raise RuntimeError("SedDataModule.setup() has not run")
        batch_sampler = MultiSourceBatchSampler(self.train.ranges, sampler, num_replicas=world_size, rank=rank,
                                                run_seed=self.cfg.train.seed)
        return DataLoader(self.train, batch_sampler=batch_sampler, collate_fn=collate, num_workers=num_workers,
                          pin_memory=pin_memory)

    @staticmethod
    def eval_loader(dataset: SedDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
        """Every clip of ``dataset`` once, in order."""
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                          num_workers=num_workers)

    # -- evaluation -----------------------------------------------------------------
    def eval_dataset(self, split: str) -> tuple[SedDataset, dict[str, float] | None]:
        """A strongly labelled split to evaluate, and the clip durations if known.

        ``"validation"`` reads the layout's validation split (and its durations
        file, when present); ``"synthetic_valid"`` is the internal held-out part
        (needs :meth:`setup`). Without a durations file, clips last
        ``features.clip_seconds`` (``None`` if that is unset).
        """
        if split not in EVAL_SPLITS:
            raise ConfigError(f"cannot evaluate split '{split}'; choose one of {', '.join(EVAL_SPLITS)}")
        if split == "synthetic_valid":
            dataset = self.source(split)
            durations = None
        else:
            if not self.classes:
                raise ConfigError("the class list is unknown: give data.classes or call setup() first")
            dur_path = self.root / self.cfg.data.layout.validation_durations_tsv
            durations = read_durations_tsv(dur_path) if dur_path.is_file() else None
            found = load_sed_split(self.root, split, self.cfg.data, classes=self.classes,
                                   classes_from=self.classes_from, durations=durations)
            self.counts[split] = found.counts
            dataset = self._dataset(split, self._cached_records(split, found.records))
            if durations is not None:
                lacking = [r.filename for r in dataset.records if r.filename not in durations]
                if lacking:
                    raise DataError(f"no duration for {len(lacking)} clip(s), e.g. {lacking[0]!r}", dur_path)
        if durations is None and self.cfg.features.clip_seconds is not None:
            durations = {r.filename: float(self.cfg.features.clip_seconds) for r in dataset.records}
        return dataset, durations


__all__ = [
    "EVAL_SPLITS",
    "TRAIN_SOURCES",
    "VALID_SOURCES",
    "SedDataModule",
    "SedSplitConfig",
    "split_by_filename",
]
