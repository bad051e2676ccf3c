"""The contract between a training method and the :class:`~audioadapt.training.loop.Trainer`.

A method (Park et al.'s tri-training, a mean teacher, NNPM, ...) subclasses
:class:`Method` and overrides hooks; it never forks the loop. The Trainer
calls, in this order::

    setup(ctx)                                   once, networks already on ctx.device
    for each phase of phases(config):
        on_phase_start(phase, ctx)               also when a run resumes inside the phase
        for each epoch:
            on_epoch_start(ctx)
            for each batch of train_loader(phase, ctx):
                training_step(batch, ctx) -> StepOutput      (inside DDP and autocast)
                backward, clipping, optimizer step
                after_optimizer_step(batch, ctx)             (EMA teacher, memory writes)
            validate(ctx) -> metrics                          (rank 0, eval mode, no grad)
        on_phase_end(phase, ctx)                 between phases: e.g. the pseudo-labelling pass

Everything a method learns that is not a network parameter or buffer (a
memory bank kept outside a module, pseudo labels, a phase-specific counter)
goes through :meth:`Method.state_dict` / :meth:`Method.load_state_dict`, as
tensors and plain Python values, so that a checkpoint is loadable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from audioadapt.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.training.distributed import DistInfo
    from audioadapt.training.loop import TrainConfig


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of a method (e.g. Park et al.'s phase 1 or phase 2).

    Attributes
    ----------
    name: short identifier, used in logs, the CSV and progress bars.
    epochs: number of epochs (0 runs only the phase hooks).
    trainable: names of :meth:`Method.networks` entries trained in this phase
        (in the optimizer, wrapped by DDP, in train mode); ``None`` = all.
    lr: learning rate of this phase; ``None`` uses ``TrainConfig.lr``.
    """

    name: str
    epochs: int
    trainable: tuple[str, ...] | None = None
    lr: float | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"phase name must be a non-empty word (letters, digits, '-', '_'), got {self.name!r}")
        if self.epochs < 0:
            raise ConfigError(f"phase '{self.name}': epochs must be >= 0, got {self.epochs}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"phase '{self.name}': lr must be positive, got {self.lr}")
        if self.trainable is not None:
            object.__setattr__(self, "trainable", tuple(self.trainable))


@dataclass
class StepOutput:
    """What :meth:`Method.training_step` returns.

    Attributes
    ----------
    loss: scalar tensor to back-propagate.
    logs: named scalars (python floats or 0-d tensors) averaged over the
        epoch and across ranks, e.g. ``{"cls": 0.3, "domain": 0.7}``.
    """

    loss: torch.Tensor
    logs: Mapping[str, float | torch.Tensor] = field(default_factory=dict)


@dataclass
class StepContext:
    """Where training stands; the Trainer updates it, methods read it.

    Attributes
    ----------
    config: the run's ``TrainConfig``.
    dist: rank, world size, device and collectives (:class:`DistInfo`).
    phases: every phase of the run, in order.
    run_dir: the run directory, ``None`` for a run without files.
    phase_index: index of the current phase in ``phases``.
    epoch: completed epochs of the current phase (= 0-based index of the
        running epoch).
    global_epoch: completed epochs of the whole run; also the epoch given
        to ``set_epoch`` of the sampler.
    step: optimizer steps taken in the whole run.
    step_in_epoch: 0-based index of the batch being processed.
    steps_per_epoch: ``len(loader)`` when known, else ``None``.
    phase_done: true once ``on_phase_end`` of the current phase has run.
    """

    config: "TrainConfig"
    dist: "DistInfo"
    phases: tuple[PhaseSpec, ...]
    run_dir: Path | None = None
    phase_index: int = 0
    epoch: int = 0
    global_epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    steps_per_epoch: int | None = None
    phase_done: bool = False

    @property
    def phase(self) -> PhaseSpec:
        """The current phase."""
        return self.phases[self.phase_index]

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that logs and writes files)."""
        return self.dist.is_main

    def _epoch_fraction(self) -> float:
        if not self.steps_per_epoch:
            return 0.0
        return min(self.step_in_epoch / self.steps_per_epoch, 1.0)

    @property
    def phase_progress(self) -> float:
        """Fraction of the current phase done, in [0, 1] (counted in epochs)."""
        total = self.phase.epochs
        return 1.0 if total == 0 else min((self.epoch + self._epoch_fraction()) / total, 1.0)

    @property
    def run_progress(self) -> float:
        """Fraction of the whole run done, in [0, 1], counting epochs of all phases."""
        total = sum(p.epochs for p in self.phases)
        before = sum(p.epochs for p in self.phases[: self.phase_index])
        return 1.0 if total == 0 else min((before + self.epoch + self._epoch_fraction()) / total, 1.0)


class Method:
    """Base class of training methods: override the hooks you need.

    Required: :meth:`networks` and :meth:`training_step`, plus
    :meth:`train_loader` unless a loader is given to ``Trainer.fit``.

    Attributes
    ----------
    selection_metric: key of :meth:`validate` that selects the best
        checkpoint (``TrainConfig.monitor`` overrides it); ``None`` = none.
    selection_mode: ``"max"`` or ``"min"`` (``TrainConfig.monitor_mode``
        overrides it).
    """

    selection_metric: str | None = None
    selection_mode: Literal["max", "min"] = "max"

    # -- structure ---------------------------------------------------------
    def networks(self) -> Mapping[str, nn.Module]:
        """Every module of the method by name (trained or not, e.g. an EMA teacher).

        Their parameters and buffers are checkpointed and moved to the device.
        """
        raise NotImplementedError(f"{type(self).__name__} must define networks()")

    def phases(self, config: "TrainConfig") -> Sequence[PhaseSpec]:
        """The phases run in order; default: one phase of ``config.epochs`` epochs."""
        return (PhaseSpec("train", config.epochs),)

    def parameters_to_optimize(self, phase: PhaseSpec) -> Iterable[torch.Tensor] | Iterable[dict]:
        """Parameters (or Adam parameter groups) of ``phase``.

        Default: parameters of the phase's trainable networks that require
        grad, each once (networks may share submodules).
        """
        seen: set[int] = set()
        params = []
        for module in trainable_networks(self, phase).values():
            for p in module.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    def train_loader(self, phase: PhaseSpec, ctx: StepContext) -> Iterable[Any]:
        """Batches of ``phase``; called at each phase start (and on resume).

        Shard with ``ctx.dist.rank`` / ``ctx.dist.world_size``; the Trainer calls
        ``set_epoch(ctx.global_epoch)`` on the loader, its ``batch_sampler`` or
        its ``sampler`` where they have one.
        """
        raise NotImplementedError(f"{type(self).__name__} must define train_loader() or get a loader from fit()")

    def transfer_batch(self, batch: Any, device: torch.device) -> Any:
        """Move a batch to ``device`` (default: :func:`move_to_device`)."""
        return move_to_device(batch, device)

    # -- hooks ---------------------------------------------------------------
    def setup(self, ctx: StepContext) -> None:
        """Once per ``fit``, after the networks moved to ``ctx.device``, before any resume."""

    def on_phase_start(self, phase: PhaseSpec, ctx: StepContext) -> None:
        """A phase begins, or a run resumes inside it (``ctx.epoch > 0`` then)."""

    def on_epoch_start(self, ctx: StepContext) -> None:
        """An epoch begins; networks are already in train/eval mode for the phase."""

    def training_step(self, batch: Any, ctx: StepContext) -> StepOutput:
        """Loss of one batch (already on ``ctx.device``)."""
        raise NotImplementedError(f"{type(self).__name__} must define training_step()")

    def after_optimizer_step(self, batch: Any, ctx: StepContext) -> None:
        """After each optimizer step, without gradient: EMA updates, memory writes.

        Under DDP every rank runs it on its own shard; use
        ``ctx.dist.all_gather`` to write what all ranks saw.
        """

    def validate(self, ctx: StepContext) -> Mapping[str, float]:
        """Validation metrics; run on rank 0 only, in eval mode, under ``torch.no_grad``."""
        return {}

    def on_phase_end(self, phase: PhaseSpec, ctx: StepContext) -> None:
        """Between phases (e.g. pseudo-labelling); runs on every rank, checkpointed after."""

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Method state that is not in :meth:`networks` (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise CheckpointError(
                f"{type(self).__name__} keeps no state but the checkpoint holds method state {sorted(state)}"
            )


def trainable_networks(method: Method, phase: PhaseSpec) -> dict[str, nn.Module]:
    """The networks trained in ``phase``, by name; unknown names raise ``ConfigError``."""
    nets = dict(method.networks())
    if phase.trainable is None:
        return nets
    unknown = [n for n in phase.trainable if n not in nets]
    if unknown:
        raise ConfigError(
            f"phase '{phase.name}' trains unknown networks {unknown}; {type(method).__name__} has {sorted(nets)}"
        )
    return {n: nets[n] for n in phase.trainable}


def move_to_device(obj: Any, device: torch.device | str) -> Any:
    """Copy the tensors of a (nested) batch to ``device``.

    Handles tensors, objects with a ``to(device)`` method (e.g. ``SedBatch``),
    mappings, lists, tuples (named too) and dataclasses; other values are
    returned unchanged.
    """
    device = torch.device(device)
    non_blocking = device.type == "cuda"
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if not isinstance(obj, (nn.Module, type)) and callable(getattr(obj, "to", None)):
        return obj.to(device)
    if isinstance(obj, Mapping):
        moved = {k: move_to_device(v, device) for k, v in obj.items()}
        try:
            return type(obj)(moved)  # type: ignore[call-arg]
        except TypeError:  # e.g. defaultdict: keep the values, drop the type
            return moved
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(move_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: move_to_device(getattr(obj, f.name), device) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj


__all__ = ["Method", "PhaseSpec", "StepContext", "StepOutput", "move_to_device", "trainable_networks"]
