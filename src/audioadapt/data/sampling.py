"""Batches with a fixed number of rows from each data source.

Every global batch holds ``batch_sizes[name]`` rows of each source (e.g.
16 synthetic / 16 weak / 32 unlabeled), drawn from that source's own stream.

Epochs: by default an epoch ends when the shortest stream runs out, i.e. it
has ``min(len(source) // batch_size)`` steps over the sources with a
non-zero batch size; the rows a longer source does not reach are not carried
over (the next epoch reshuffles every source). With ``steps_per_epoch`` set,
an epoch has that many steps instead and a source that runs out starts a new
shuffled pass within the epoch.

Shuffling depends only on ``(seed, epoch, source name, pass)``: call
:meth:`MultiSourceBatchSampler.set_epoch` before each epoch. The seed is the
config's ``seed``, or when that is ``None`` the run's seed handed to the
sampler (``train.seed`` in a training run), so that a run's seed drives both
the initialisation and the batch order. Without shuffling
each source is walked in order and an epoch continues where the previous one
stopped.

Distributed training: with ``num_replicas`` ranks, every rank computes the
same global batch and yields its own contiguous share of each source's rows
(``batch_sizes[name] / num_replicas`` each, which must divide evenly). The
union of the ranks' batches at step ``s`` is the single-process global batch
at step ``s``, and no row is given to two ranks. Use the sampler as a
``DataLoader`` ``batch_sampler`` (no ``DistributedSampler``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import Sampler

from audioadapt.errors import ConfigError


def _default_batch_sizes() -> dict[str, int]:
    return {"synthetic": 16, "weak": 16, "unlabeled": 32}


@dataclass(frozen=True)
class SamplerConfig:
    """Batch composition and epoch definition.

    Attributes
    ----------
    batch_sizes: rows per global batch for each source name (0 leaves a
        source out). Default 16 synthetic / 16 weak / 32 unlabeled.
    steps_per_epoch: fixed epoch length in steps; ``None`` ends the epoch when
        the shortest stream runs out.
    shuffle: reshuffle each source every epoch.
    seed: base seed of the shuffles; ``None`` (default) takes the run's seed
        (``train.seed``), so runs with different seeds also see their clips in
        different orders. A fixed value keeps the batch order whatever the
        run's seed (0 was the fixed value before).
    """

    batch_sizes: dict[str, int] = field(default_factory=_default_batch_sizes)
    steps_per_epoch: int | None = None
    shuffle: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.batch_sizes:
            raise ConfigError("batch_sizes must name at least one source")
        for name, count in self.batch_sizes.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigError(f"batch_sizes.{name} must be a non-negative integer, got {count!r}")
        if self.global_batch_size == 0:
            raise ConfigError("batch_sizes are all zero")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            raise ConfigError(f"steps_per_epoch must be positive or null, got {self.steps_per_epoch}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be non-negative or null, got {self.seed}")

    @property
    def global_batch_size(self) -> int:
        """Rows per global batch, summed over the sources."""
        return sum(self.batch_sizes.values())

    def shuffle_seed(self, run_seed: int) -> int:
        """The base seed of the shuffles: ``seed``, or ``run_seed`` when ``seed`` is ``None``."""
        return run_seed if self.seed is None else self.seed


def _distributed_defaults() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class MultiSourceBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices with a fixed per-source composition.

    Parameters
    ----------
    sources: source name -> the dataset indices of that source, e.g.
        :attr:`~audioadapt.data.sed_dataset.MultiSourceDataset.ranges` or a
        subset of them. Every source needs an entry in ``batch_sizes``.
    config: batch composition, epoch length, shuffling and seed.
    num_replicas, rank: distributed setting; default from
        ``torch.distributed`` when it is initialised, else 1 and 0.
    run_seed: the run's seed, the shuffles' seed when ``config.seed`` is
        ``None`` (the same on every rank).
    """

    def __init__(
        self,
        sources: Mapping[str, Sequence[int]],
        config: SamplerConfig | None = None,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        run_seed: int = 0,
    ):
        self.config = config or SamplerConfig()
        if run_seed < 0:
            raise ConfigError(f"run_seed must be non-negative, got {run_seed}")
        self.seed = self.config.shuffle_seed(int(run_seed))
        world, own = _distributed_defaults() if num_replicas is None or rank is None else (1, 0)
        self.num_replicas = world if num_replicas is None else int(num_replicas)
        self.rank = own if rank is None else int(rank)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ConfigError(
                f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {self.num_replicas}, {self.rank}"
            )
        sizes = self.config.batch_sizes
        unknown = [n for n in sources if n not in sizes]
        if unknown:
            raise ConfigError(f"source(s) {unknown} have no entry in batch_sizes (give 0 to leave one out)")
        missing = [n for n, c in sizes.items() if c > 0 and n not in sources]
        if missing:
            raise ConfigError(f"batch_sizes names source(s) {missing} that the data does not have: {list(sources)}")
        self._names = [n for n in sources if sizes[n] > 0]
        self._indices = {n: np.asarray(list(sources[n]), dtype=np.int64) for n in self._names}
        for name in self._names:
            count = sizes[name]
            if count % self.num_replicas:
                raise ConfigError(
                    f"batch_sizes.{name} = {count} is not divisible by the {self.num_replicas} distributed ranks"
                )
            if len(self._indices[name]) == 0:
                raise ConfigError(f"source '{name}' is empty but has batch size {count}")
        if self.config.steps_per_epoch is not None:
            self._steps = self.config.steps_per_epoch
        else:
            self._steps = min(len(self._indices[n]) // sizes[n] for n in self._names)
            if self._steps == 0:
                short = [f"{n} ({len(self._indices[n])} < {sizes[n]})" for n in self._names
                         if len(self._indices[n]) < sizes[n]]
                raise ConfigError(f"source(s) {', '.join(short)} hold fewer rows than one batch needs")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffles of ``epoch`` (call before iterating)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._steps

    @property
    def batch_size(self) -> int:
        """Rows per batch on this rank."""
        return sum(self.config.batch_sizes[n] for n in self._names) // self.num_replicas

    def _stream(self, name: str) -> np.ndarray:
        """The indices ``name`` contributes this epoch, in draw order."""
        pool = self._indices[name]
        n, need = len(pool), self._steps * self.config.batch_sizes[name]
        if not self.config.shuffle:
            return pool[(self.epoch * need + np.arange(need)) % n]
        key = zlib.crc32(name.encode("utf-8"))
        passes = []
        for p in range(-(-need // n)):
            rng = np.random.default_rng([self.seed, self.epoch, key, p])
            passes.append(rng.permutation(n))
        return pool[np.concatenate(passes)[:need]]

    def global_batches(self) -> Iterator[list[int]]:
        """The full batches of all ranks together, step by step."""
        streams = {n: self._stream(n) for n in self._names}
        for step in range(self._steps):
            batch: list[int] = []
            for name in self._names:
                c = self.config.batch_sizes[name]
                batch.extend(streams[name][step * c : (step + 1) * c].tolist())
            yield batch

    def __iter__(self) -> Iterator[list[int]]:
        streams = {n: self._stream(n) for n in self._names}
        for step in range(self._steps):
            batch: list[int] = []
            for name in self._names:
                share = self.config.batch_sizes[name] // self.num_replicas
                start = step * share * self.num_replicas + self.rank * share
                batch.extend(streams[name][start : start + share].tolist())
            yield batch


__all__ = ["MultiSourceBatchSampler", "SamplerConfig"]
