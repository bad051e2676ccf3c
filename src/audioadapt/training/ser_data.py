"""The SER data module: corpora, target split, source validation, feature caches, datasets, loaders.

From an experiment configuration it

1. loads the source and the target utterances (a corpus loader of
   :mod:`audioadapt.data.corpora`, or a dataset written by ``audioadapt synth
   ser``); every source utterance needs a label;
2. builds (or reopens) one ragged :class:`~audioadapt.features.cache.FeatureCache`
   of whole utterances per side (unreadable files are dropped there when the
   side's ``on_error`` is ``skip``);
3. splits the target corpus by ``protocol`` (:func:`~audioadapt.data.protocols.make_split`)
   into an adaptation side, whose utterances lose their labels (and every
   other annotation) before any dataset sees them, a test side and, for
   EMO-DB, a validation side that is only reported;
4. holds out the source validation part (stage-1 model selection);
5. wraps them in :class:`~audioadapt.data.ser_dataset.SerDataset` objects and
   makes the loaders: stage 1 over the source training part, stage 2 over
   **all** source utterances (one memory slot each, ``batch.index`` = slot)
   paired with the target adaptation side (:class:`PairedLoader`).

:meth:`SerDataModule.summary` records the utterance counts actually used.

Target labels decide at most which side an utterance is on (the paper
protocol stratifies its random split by class, as the paper's scikit-learn
split does, and the held-out-speaker search balances the classes; the
transductive protocol ignores them); once split, no target label reaches a
loader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import DataLoader, DistributedSampler

from audioadapt.console import show_progress
from audioadapt.data.manifest import SkipReport
from audioadapt.data.protocols import Split, held_out_speaker_split, make_split, stratified_split
from audioadapt.data.ser_dataset import (
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    SerBatch,
    SerDataset,
    cache_utterances,
)
from audioadapt.data.utterances import EMOTIONS, Utterance, label_counts
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.distributed import set_sampler_epoch
from audioadapt.features.store import IndexedFeatures, cache_base, resolve_path

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.ser import SerCorpusConfig, SerExperimentConfig, SourceValidationConfig
    from audioadapt.features.cache import FeatureCache
    from audioadapt.training.distributed import DistInfo

log = logging.getLogger(__name__)

ROLES = ("source", "target")


# -- corpora ---------------------------------------------------------------------
def _generated_manifest(root: Path, role: str) -> Path:
    info_path = root / "dataset.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        return root / info["domains"][role]["manifest"]
    except OSError as exc:
        raise DataError(f"cannot read the generated dataset description: {exc.strerror or exc}", info_path) from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"not a dataset of 'audioadapt synth ser' (no domain '{role}')", info_path) from None


def load_side(cfg: "SerCorpusConfig", role: str) -> list[Utterance]:
    """The utterances of one side (``source`` or ``target``), sorted by key."""
    from audioadapt.config.ser import GENERATED
    from audioadapt.data.corpora import load_corpus

    if not cfg.given:
        raise ConfigError(f"no {role} corpus: give --{role} CORPUS:PATH (or {role}.corpus and {role}.root)")
    report = SkipReport()
    root = Path(str(cfg.root))
    if cfg.corpus == GENERATED:
        utts = load_corpus("csv", _generated_manifest(root, role), on_error=cfg.on_error, report=report)
    else:
        utts = load_corpus(str(cfg.corpus), root, on_error=cfg.on_error, report=report, **cfg.options)
    if len(report):
        log.warning("%s corpus %s: %s", role, cfg.describe(), report.summary())
    if not utts:
        raise DataError(f"the {role} corpus holds no utterance with an emotion label", root)
    if role == "source":
        require_emotions(utts, cfg)
    return sorted(utts, key=lambda u: u.key)


#: Fewest emotions a source corpus must hold to train a classifier on it.
MIN_SOURCE_EMOTIONS = 2


def require_emotions(utterances: Sequence[Utterance], cfg: "SerCorpusConfig") -> None:
    """Refuse a source corpus whose labelled utterances hold fewer than :data:`MIN_SOURCE_EMOTIONS` emotions.

    A classifier trained on one emotion always predicts it; its source
    accuracy of 1.0 would say nothing.
    """
    counts = {k: v for k, v in label_counts(utterances).items() if k is not None and v}
    if len(counts) >= MIN_SOURCE_EMOTIONS:
        return
    found = ", ".join(f"{label} {n}" for label, n in counts.items()) or "none"
    raise DataError(f"the source corpus '{cfg.corpus}' has utterances of {len(counts)} emotion(s) ({found}); "
                    f"training needs at least {MIN_SOURCE_EMOTIONS} of {', '.join(EMOTIONS)}", cfg.root)


def _cache_root(cfg: "SerCorpusConfig") -> Path:
    root = Path(str(cfg.root))
    return root.parent if root.is_file() else root


def strip_labels(utterances: Sequence[Utterance]) -> tuple[Utterance, ...]:
    """Copies without label, native label and corpus extras: what adaptation may see."""
    return tuple(dataclasses.replace(u, label=None, native_label=None, extra={}) for u in utterances)


def source_validation_split(utterances: Sequence[Utterance],
                            cfg: "SourceValidationConfig") -> tuple[list[int], list[int]]:
    """Positions (into ``utterances``) of the stage-1 training part and of the validation part."""
    if cfg.kind == "none":
        return list(range(len(utterances))), []
    if cfg.kind == "speakers":
        present = {u.speaker for u in utterances}
        missing = sorted(set(cfg.speakers) - present)
        if missing:
            known = sorted(s for s in present if s is not None)
            raise DataError(f"source validation speakers {missing} are not in the source corpus (speakers: "
                            f"{known[:20]}{' ...' if len(known) > 20 else ''}); set source_validation.speakers, "
                            "or source_validation.kind=stratified or none")
        held = set(cfg.speakers)
        valid = [i for i, u in enumerate(utterances) if u.speaker in held]
    elif cfg.kind == "held_out_speakers":
        split = held_out_speaker_split(utterances, test_size=cfg.fraction, random_state=cfg.random_state,
                                       candidates=cfg.candidates)
        keys = {u.key for u in split.test}
        valid = [i for i, u in enumerate(utterances) if u.key in keys]
        log.info("source validation: held-out speakers %s", sorted({u.speaker for u in split.test}))
    else:
        split = stratified_split(utterances, test_size=cfg.fraction, random_state=cfg.random_state,
                                 protocol="source_validation")
        keys = {u.key for u in split.test}
        valid = [i for i, u in enumerate(utterances) if u.key in keys]
    train = sorted(set(range(len(utterances))) - set(valid))
    if not train:
        raise DataError("source validation leaves no source utterance for stage-1 training")
    return train, valid


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# -- loaders -----------------------------------------------------------------------
@dataclass
class SerPairBatch:
    """One stage-2 step: a source batch and a target batch."""

    source: SerBatch
    target: SerBatch

    def to(self, device: Any) -> "SerPairBatch":
        return SerPairBatch(self.source.to(device), self.target.to(device))


class _Cycled:
    """A loader read ``steps`` batches per epoch, restarted (reshuffled) whenever it runs out.

    Pass ``c`` of epoch ``e`` draws its order with sampler epoch ``e * cycles
    + c``, so every pass is new and the sequence depends only on the seed and
    the epoch (exact resumes). With ``steps == len(loader)`` the sampler epoch
    is the epoch itself.
    """

    def __init__(self, loader: DataLoader, steps: int):
        self.loader = loader
        self.cycles = max(1, math.ceil(steps / len(loader)))

    def batches(self, epoch: int) -> Iterator[SerBatch]:
        for cycle in range(self.cycles):
            set_sampler_epoch(self.loader, epoch * self.cycles + cycle)
            yield from self.loader


class PairedLoader:
    """Stage-2 batches: a source batch and a target batch per step, each side cycled as needed.

    An epoch has ``len(source)`` steps (``length="source"``, the notes'
    reading: the target loader cycles beside one pass over the source),
    ``len(target)`` (``"target"``) or the larger of the two (``"longer"``:
    each side is passed over at least once per epoch). A side that runs out
    starts over, reshuffled (see :class:`_Cycled`).
    """

    def __init__(self, source: DataLoader, target: DataLoader, length: str = "source"):
        if len(target) == 0:
            raise DataError("the target adaptation side yields no batch (fewer utterances than a batch?)")
        if len(source) == 0:
            raise DataError("the source set yields no batch")
        steps = {"source": len(source), "target": len(target), "longer": max(len(source), len(target))}
        if length not in steps:
            raise ValueError(f"length must be one of {list(steps)}, got {length!r}")
        self.length = length
        self.steps = steps[length]
        self.source = source
        self.target = target
        self.epoch = 0
        self._source = _Cycled(source, self.steps)
        self._target = _Cycled(target, self.steps)

    @property
    def cycles(self) -> int:
        """Passes over the target loader per epoch (at most; the last may be cut short)."""
        return self._target.cycles

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[SerPairBatch]:
        pairs = zip(self._source.batches(self.epoch), self._target.batches(self.epoch))
        for _, (source, target) in zip(range(self.steps), pairs):
            yield SerPairBatch(source, target)


def shuffled_loader(dataset: SerDataset, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                    drop_last: bool = False, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """This rank's share of ``dataset`` in a new order each epoch (``set_epoch``), drawn from ``seed``."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      collate_fn=dataset.collate, num_workers=num_workers, pin_memory=pin_memory)


# -- the module ----------------------------------------------------------------------
class SerDataModule:
    """Datasets and loaders of one SER experiment.

    Parameters
    ----------
    cfg: the experiment configuration.

    Call :meth:`setup` before using the datasets. Attributes after setup:
    ``source_slots`` (every source utterance, random crops; item ``i`` is
    memory slot ``i``), ``source_slots_eval`` (the same, evaluation crops),
    ``source_train`` / ``source_valid`` (stage 1 and its selection; ``None``
    without validation), ``target_adapt`` (unlabelled), ``target_adapt_truth``
    (the adaptation side's true emotion indices, ``-1`` unknown, item by item;
    ``None`` unless ``cfg.reads_target_truth``: the oracle and the truth
    diagnostics), ``target_test`` and
    ``target_validation`` (``None`` unless the protocol has one), ``split``.
    """

    def __init__(self, cfg: "SerExperimentConfig"):
        self.cfg = cfg
        self.classes: tuple[str, ...] = EMOTIONS
        self.split: Split | None = None
        self.source_slots: SerDataset | None = None
        self.source_slots_eval: SerDataset | None = None
        self.source_train: SerDataset | None = None
        self.source_valid: SerDataset | None = None
        self.target_adapt: SerDataset | None = None
        self.target_adapt_truth: np.ndarray | None = None
        self.target_test: SerDataset | None = None
        self.target_validation: SerDataset | None = None
        self.loaded: dict[str, int] = {}
        self.features_skipped: dict[str, int] = {}
        self._caches: dict[str, "FeatureCache"] = {}
        self._dist: "DistInfo | None" = None

    # -- construction -----------------------------------------------------------
    def setup(self, dist: "DistInfo | None" = None, *, source: bool = True) -> "SerDataModule":
        """Load, cache, split and wrap both sides (only the target with ``source=False``)."""
        self._dist = dist
        cfg = self.cfg
        target = self._cached_side("target")
        self.split = make_split(target, cfg.protocol)
        index = {u.key: i for i, u in enumerate(target)}
        store = self._caches["target"]

        def side(utts: Sequence[Utterance], **kwargs: Any) -> SerDataset:
            positions = [index[u.key] for u in utts]
            return SerDataset(utts, IndexedFeatures(store, positions), cfg.features, cfg.dataset,
                              domain=TARGET_DOMAIN, **kwargs)

        self.target_adapt = side(strip_labels(self.split.adapt), train=True, use_labels=False)
        # Read only for the oracle's labels and the switched-on truth diagnostics; never by a loader.
        self.target_adapt_truth = (np.array([-1 if u.label_index is None else u.label_index for u in self.split.adapt],
                                            dtype=np.int64) if cfg.reads_target_truth else None)
        self.target_test = side(self.split.test, train=False)
        self.target_validation = side(self.split.validation, train=False) if self.split.validation else None
        if source:
            self._setup_source()
        log.info("SER data: %s", ", ".join(f"{k} {v}" for k, v in self.sizes().items()))
        return self

    def _setup_source(self) -> None:
        cfg = self.cfg
        utts = self._cached_side("source")
        unlabelled = [u.utt_id for u in utts if u.label is None]
        if unlabelled:
            raise DataError(f"{len(unlabelled)} source utterance(s) have no emotion label, e.g. {unlabelled[0]!r}",
                            cfg.source.root)
        require_emotions(utts, cfg.source)  # again: unreadable files may have been skipped
        cache = self._caches["source"]
        common = dict(features_config=cfg.features, config=cfg.dataset, domain=SOURCE_DOMAIN)
        self.source_slots = SerDataset(utts, cache, train=True, **common)
        self.source_slots_eval = SerDataset(utts, cache, train=False, **common)
        train, valid = (source_validation_split(utts, cfg.source_validation) if cfg.runs_stage1
                        else (list(range(len(utts))), []))
        self.source_train = SerDataset([utts[i] for i in train], IndexedFeatures(cache, train), train=True, **common)
        self.source_valid = (SerDataset([utts[i] for i in valid], IndexedFeatures(cache, valid), train=False,
                                        **common) if valid else None)

    def _cached_side(self, role: str) -> list[Utterance]:
        """Load one side and build its cache; return the utterances the cache holds, in cache order."""
        corpus = getattr(self.cfg, role)
        utts = load_side(corpus, role)
        self.loaded[role] = len(utts)
        cc = self.cfg.cache
        digest = _digest(self.cfg.features, [resolve_path(u.path) for u in utts])
        directory = cache_base(cc, _cache_root(corpus)) / f"{role}-{corpus.corpus}-{digest}"

        def build() -> tuple[list[Utterance], Any]:
            return cache_utterances(utts, self.cfg.features, directory, num_workers=cc.num_workers,
                                    progress=show_progress(cc.progress), on_error=corpus.on_error)

        dist = self._dist
        if dist is None or not dist.enabled:
            kept, cache = build()
        else:  # rank 0 computes, the others then reuse it
            built = build() if dist.is_main else None
            dist.barrier()
            kept, cache = built if built is not None else build()
        self.features_skipped[role] = len(utts) - len(kept)
        self._caches[role] = cache
        return list(kept)

    # -- access -------------------------------------------------------------------------
    @property
    def has_source_validation(self) -> bool:
        return self.source_valid is not None

    def sizes(self) -> dict[str, int]:
        """Utterances per dataset."""
        names = ("source_slots", "source_train", "source_valid", "target_adapt", "target_test", "target_validation")
        return {n: len(getattr(self, n)) for n in names if getattr(self, n) is not None}

    def summary(self) -> dict[str, Any]:
        """The corpora and the utterance counts actually used, for ``data.json`` and the log."""
        cfg = self.cfg

        def counts(ds: SerDataset | None) -> dict[str, int] | None:
            if ds is None:
                return None
            return {str(k): v for k, v in label_counts(ds.utterances).items()}

        out: dict[str, Any] = {
            "source": _side_record(cfg.source),
            "target": _side_record(cfg.target),
            "classes": list(self.classes),
            "loaded": dict(self.loaded),
            "features_skipped": dict(self.features_skipped),
            "utterances": self.sizes(),
            "class_counts": {"source_train": counts(self.source_train), "source_valid": counts(self.source_valid),
                             "target_test": counts(self.target_test),
                             "target_validation": counts(self.target_validation)},
            "source_validation": {"kind": cfg.source_validation.kind if cfg.runs_stage1 else "none",
                                  "ids": [u.utt_id for u in self.source_valid.utterances]
                                  if self.source_valid is not None else []},
        }
        if self.split is not None:
            out["target_split"] = self.split.to_dict()
        return out

    def stage1_loader(self, *, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                      pin_memory: bool = False) -> DataLoader:
        """Shuffled batches of the source training part (random crops)."""
        if self.source_train is None:
            raise RuntimeError("SerDataModule.setup() has not loaded the source")
        return shuffled_loader(self.source_train, self.cfg.stage1.batch_size, seed=self.cfg.train.seed, rank=rank,
                               world_size=world_size, num_workers=num_workers, pin_memory=pin_memory)

    def stage2_loader(self, *, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                      pin_memory: bool = False) -> PairedLoader:
        """Pairs of a source batch (all source utterances; ``index`` = memory slot) and a target batch.

        An epoch is ``stage2.epoch_length`` steps (see :class:`PairedLoader`).

        Target batches are full (the last partial one of a pass is dropped)
        when this rank's share holds at least one batch.
        """
        if self.source_slots is None or self.target_adapt is None:
            raise RuntimeError("SerDataModule.setup() has not run")
        s2 = self.cfg.stage2
        seed = self.cfg.train.seed
        source = shuffled_loader(self.source_slots, s2.source_batch_size, seed=seed, rank=rank,
                                 world_size=world_size, num_workers=num_workers, pin_memory=pin_memory)
        share = math.ceil(len(self.target_adapt) / world_size)
        target = shuffled_loader(self.target_adapt, s2.target_batch_size, seed=seed + 1, rank=rank,
                                 world_size=world_size, drop_last=share >= s2.target_batch_size,
                                 num_workers=num_workers, pin_memory=pin_memory)
        return PairedLoader(source, target, s2.epoch_length)

    @staticmethod
    def eval_loader(dataset: SerDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
        """Every utterance of ``dataset`` once, in order."""
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collate,
                          num_workers=num_workers)


def _resolved(root: str | None) -> str | None:
    return None if root is None else os.path.abspath(root)


def _side_record(cfg: "SerCorpusConfig") -> dict[str, Any]:
    """Corpus, absolute root and (when given) the loader options of one side, for ``data.json``."""
    out: dict[str, Any] = {"corpus": cfg.corpus, "root": _resolved(cfg.root)}
    if cfg.options:
        out["options"] = dict(cfg.options)
    return out


__all__ = [
    "PairedLoader",
    "ROLES",
    "SerDataModule",
    "SerPairBatch",
    "load_side",
    "require_emotions",
    "shuffled_loader",
    "source_validation_split",
    "strip_labels",
]
