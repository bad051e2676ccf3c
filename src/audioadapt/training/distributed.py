"""Data-parallel training: process group, device choice, DDP wrapping, collectives.

Launch a multi-process run with ``torchrun --nproc_per_node N``; each process
reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and ``MASTER_ADDR`` /
``MASTER_PORT``) from the environment. Without them a run is one process.

How a method is wrapped
    For each phase, the networks trained in that phase go into one container
    module whose ``forward`` runs the method's ``training_step``, and that
    container is wrapped in ``DistributedDataParallel``. Method code calls its
    own modules as usual; the gradients of all trainable networks are
    averaged in one reducer. Networks not trained in a phase are outside the
    wrapper, so modules that sit idle in some phases (Park et al.'s F1/F2 in
    phase 2) need no ``find_unused_parameters``; set
    ``TrainConfig.find_unused_parameters`` only when a trained network skips
    some steps.

Buffers
    DDP broadcasts the wrapped networks' buffers (BatchNorm statistics) from
    rank 0 at every forward. With ``TrainConfig.sync_batchnorm`` (the
    default) the BatchNorm layers are synchronised
    (:mod:`~audioadapt.training.sync_batchnorm`): they normalise with the
    statistics of the global batch, as one process would; without it each
    rank normalises with its own share. At the start of ``fit`` every
    network, trained or not (an EMA teacher, a memory bank module), is
    broadcast from rank 0. Checkpoints hold rank 0's state.

Losses
    DDP averages the ranks' gradients, so a loss that is a mean over a
    varying number of valid entries (masked labels, pseudo labels, padding)
    must divide each rank's sum by the mean count over ranks to be the
    global batch's mean: see ``divisor`` in :mod:`audioadapt.adaptation.losses`.

Only rank 0 logs, shows progress bars and writes files (the command line
also keeps the other ranks' information records and printed results off the
console, :mod:`audioadapt.console`); logged training values are averaged over
ranks; validation runs on rank 0 and its metrics are broadcast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from audioadapt.errors import ConfigError


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """The device of this process for ``spec`` in ``{"auto", "cpu", "cuda"}``.

    ``"auto"`` picks CUDA when available; CUDA processes use GPU ``local_rank``.
    """
    if spec not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {spec!r}")
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but CUDA is not available (use device: auto or cpu)")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(f"LOCAL_RANK {local_rank} needs GPU {local_rank} but only {count} are visible")
    return torch.device("cuda", local_rank)


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and device of this process, with collectives.

    Every collective is a no-op (or the identity) in a one-process run.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate ``tensor`` of every rank along dim 0, in rank order, without gradient.

        The first dimension may differ between ranks; the others must match.
        """
        if not self.enabled:
            return tensor
        tensor = tensor.detach().contiguous()
        size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        torch.distributed.all_gather(sizes, size)
        counts = [int(s.item()) for s in sizes]
        longest = max(counts)
        if tensor.shape[0] < longest:
            pad = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
            tensor = torch.cat([tensor, pad])
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, tensor)
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean of ``tensor`` over ranks (a new tensor)."""
        if not self.enabled:
            return tensor.clone()
        out = tensor.detach().clone()
        torch.distributed.all_reduce(out)
        return out / self.world_size

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank (picklable values only)."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=src)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer") from None


def init_distributed(device: str = "auto", env: Mapping[str, str] | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Backend: gloo for CPU processes, nccl for CUDA ones. An existing default
    process group is reused. Without ``WORLD_SIZE`` (or with 1) nothing is
    initialised and a one-process :class:`DistInfo` is returned. A group
    joined here is left with :func:`cleanup_distributed` (the CLI does so
    after a command that succeeded).
    """
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", rank if world > 1 else 0)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"inconsistent RANK={rank} / WORLD_SIZE={world} in the environment")
    dev = resolve_device(device, local_rank)
    if world == 1:
        return DistInfo(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not torch.distributed.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world} but {' and '.join(missing)} unset: launch with torchrun")
        torch.distributed.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, dev, torch.distributed.get_backend())


def cleanup_distributed() -> None:
    """Destroy the default process group, if any, once every rank has reached this point.

    The barrier keeps a rank from tearing its gloo context down while another
    rank still talks to it.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def broadcast_networks(networks: Mapping[str, nn.Module], dist: DistInfo) -> None:
    """Copy every parameter and buffer of rank 0 to the other ranks."""
    if not dist.enabled:
        return
    with torch.no_grad():
        for name in sorted(networks):
            for tensor in [*networks[name].parameters(), *networks[name].buffers()]:
                torch.distributed.broadcast(tensor.data, src=0)


class StepModule(nn.Module):
    """Container of a phase's trainable networks whose forward is a training step.

    ``forward(batch, ctx)`` returns ``(loss, logs)`` (a tuple, so DDP can walk
    it when it looks for unused parameters).
    """

    def __init__(self, step_fn: Callable[[Any, Any], Any], networks: Mapping[str, nn.Module]):
        super().__init__()
        self.networks = nn.ModuleDict(dict(networks))
        self.step_fn = step_fn

    def forward(self, batch: Any, ctx: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.step_fn(batch, ctx)
        loss = getattr(out, "loss", None)
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"training_step must return a StepOutput with a tensor loss, got {type(out).__name__}")
        return loss, dict(out.logs)


def wrap_step(
    step_fn: Callable[[Any, Any], Any],
    networks: Mapping[str, nn.Module],
    dist: DistInfo,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """A :class:`StepModule` over ``networks``, in DDP when several processes train."""
    module = StepModule(step_fn, networks)
    if not any(p.requires_grad for p in module.parameters()):
        raise ConfigError(f"no trainable parameter in networks {sorted(networks)}")
    if not dist.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    # buffers are broadcast from rank 0 at every forward: DDP's default (``broadcast_buffers`` is deprecated)
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the loader, its ``batch_sampler`` and its ``sampler``, where defined."""
    done: list[Any] = []
    for obj in (loader, getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if obj is not None and callable(getattr(obj, "set_epoch", None)) and all(obj is not d for d in done):
            obj.set_epoch(epoch)
            done.append(obj)


def reduce_means(sums: Mapping[str, float], counts: Mapping[str, int], dist: DistInfo) -> dict[str, float]:
    """Means of logged values pooled over ranks: ``sum of sums / sum of counts`` per key."""
    total: dict[str, list[float]] = {}
    for rank_sums, rank_counts in dist.gather_objects((dict(sums), dict(counts))):
        for key, value in rank_sums.items():
            acc = total.setdefault(key, [0.0, 0])
            acc[0] += value
            acc[1] += rank_counts[key]
    return {k: s / n for k, (s, n) in sorted(total.items()) if n}


__all__ = [
    "DistInfo",
    "StepModule",
    "broadcast_networks",
    "cleanup_distributed",
    "init_distributed",
    "reduce_means",
    "resolve_device",
    "set_sampler_epoch",
    "wrap_step",
]
