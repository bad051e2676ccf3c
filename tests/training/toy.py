"""A tiny two-phase method on random tensors, shaped like the real methods.

Phase ``one`` trains a shared ``body`` and three heads (``head_a``, ``head_b``,
``head_t``, like Park et al.'s F1, F2, Ft) on the labelled rows; between the
phases the rows without labels get pseudo labels where ``head_a`` and
``head_b`` agree; phase ``two`` trains ``body`` and ``head_t`` on labelled
and pseudo-labelled rows. An EMA copy of ``head_t`` is updated after every
optimizer step (like a mean teacher). The batch noise draws from torch,
numpy and python generators, so a resumed run only matches if all three are
restored.

Run as a script, it trains one run (optionally as one rank of a torchrun-style
group, or killing itself with SIGKILL at a chosen point).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from audioadapt.training import Method, PhaseSpec, StepContext, StepOutput, TrainConfig, Trainer
from audioadapt.training.distributed import DistInfo, cleanup_distributed, init_distributed

DIM, HIDDEN, CLASSES = 6, 16, 3
N_LABELLED, N_UNLABELLED, N_VAL = 32, 32, 24
DTYPE = torch.float64


def make_data(seed: int = 1234) -> dict[str, torch.Tensor]:
    """Labelled, unlabelled (label -1) and validation rows from a private generator."""
    gen = torch.Generator().manual_seed(seed)
    n = N_LABELLED + N_UNLABELLED + N_VAL
    x = torch.randn(n, DIM, generator=gen, dtype=DTYPE)
    w = torch.randn(DIM, CLASSES, generator=gen, dtype=DTYPE)
    y = (x @ w).argmax(dim=1)
    train_y = y[: N_LABELLED + N_UNLABELLED].clone()
    train_y[N_LABELLED:] = -1
    return {
        "x": x[: N_LABELLED + N_UNLABELLED],
        "y": train_y,
        "val_x": x[N_LABELLED + N_UNLABELLED :],
        "val_y": y[N_LABELLED + N_UNLABELLED :],
    }


class ShardedBatchSampler:
    """Global batches of ``batch_size`` from a seeded per-epoch shuffle; rank ``r`` gets slice ``r``."""

    def __init__(self, indices: list[int], batch_size: int, seed: int = 0, rank: int = 0, num_replicas: int = 1):
        assert batch_size % num_replicas == 0
        self.indices, self.batch_size, self.seed = list(indices), batch_size, seed
        self.rank, self.num_replicas, self.epoch = rank, num_replicas, 0
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.indices) // self.batch_size

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        order = [self.indices[i] for i in torch.randperm(len(self.indices), generator=gen).tolist()]
        shard = self.batch_size // self.num_replicas
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield batch[self.rank * shard : (self.rank + 1) * shard]


class ToyMethod(Method):
    selection_metric = "acc"
    selection_mode = "max"

    def __init__(self, epochs=(3, 2), batch_size: int = 8, augment: bool = True, kill_at: str | None = None,
                 kill_mode: str = "raise", data_seed: int = 1234):
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(DIM, HIDDEN), nn.Tanh()).to(DTYPE)
        self.head_a = nn.Linear(HIDDEN, CLASSES).to(DTYPE)
        self.head_b = nn.Linear(HIDDEN, CLASSES).to(DTYPE)
        self.head_t = nn.Linear(HIDDEN, CLASSES).to(DTYPE)
        self.ema = copy.deepcopy(self.head_t).requires_grad_(False)
        self.data = make_data(data_seed)
        self.epochs, self.batch_size, self.augment = epochs, batch_size, augment
        self.kill_at, self.kill_mode = kill_at, kill_mode
        self.pseudo = torch.full((N_UNLABELLED,), -1, dtype=torch.long)
        self.steps_seen = 0
        self.samplers: list[ShardedBatchSampler] = []
        self.hook_calls: list[str] = []
        self.grad_norms: list[float] = []

    # -- structure
    def networks(self):
        return {"body": self.body, "head_a": self.head_a, "head_b": self.head_b, "head_t": self.head_t,
                "ema": self.ema}

    def phases(self, config):
        return (PhaseSpec("one", self.epochs[0], ("body", "head_a", "head_b", "head_t")),
                PhaseSpec("two", self.epochs[1], ("body", "head_t"), lr=5e-3))

    def train_loader(self, phase, ctx):
        n = N_LABELLED if phase.name == "one" else N_LABELLED + N_UNLABELLED
        sampler = ShardedBatchSampler(list(range(n)), self.batch_size, seed=7, rank=ctx.dist.rank,
                                      num_replicas=ctx.dist.world_size)
        self.samplers.append(sampler)
        ds = TensorDataset(self.data["x"], self.data["y"], torch.arange(len(self.data["y"])))
        return DataLoader(ds, batch_sampler=sampler)

    # -- hooks
    def _maybe_kill(self, where: str) -> None:
        if self.kill_at == where:
            if self.kill_mode == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure at {where}")

    def on_phase_start(self, phase, ctx):
        self.hook_calls.append(f"start:{phase.name}:{ctx.epoch}")

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        self._maybe_kill(f"step:{ctx.phase.name}:{ctx.epoch}:{ctx.step_in_epoch}")
        x, y, index = batch
        if self.augment:
            scale = 0.05 * (1 + random.random()) * (1 + float(np.random.rand()))
            x = x + scale * torch.randn_like(x)
        h = self.body(x)
        rows = x.shape[0]
        if ctx.phase.name == "one":
            ce = [nn.functional.cross_entropy(head(h), y.clamp(min=0), reduction="none")
                  for head in (self.head_a, self.head_b, self.head_t)]
            known = (y >= 0).to(DTYPE)
            parts = {name: (c * known).sum() / rows for name, c in zip(("a", "b", "t"), ce)}
        else:
            target = y.clone()
            unl = index >= N_LABELLED
            target[unl] = self.pseudo.to(y.device)[index[unl] - N_LABELLED]
            known = (target >= 0).to(DTYPE)
            ce = nn.functional.cross_entropy(self.head_t(h), target.clamp(min=0), reduction="none")
            parts = {"t": (ce * known).sum() / rows}
        loss = sum(parts.values())
        return StepOutput(loss, {k: v.detach() for k, v in parts.items()})

    def after_optimizer_step(self, batch, ctx):
        grads = [p.grad for n in ctx.phase.trainable for p in self.networks()[n].parameters() if p.grad is not None]
        self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        for e, p in zip(self.ema.parameters(), self.head_t.parameters()):
            e.mul_(0.9).add_(0.1 * p)
        self.steps_seen += 1

    def validate(self, ctx):
        h = self.body(self.data["val_x"])
        logits = self.head_t(h)
        return {
            "acc": (logits.argmax(1) == self.data["val_y"]).to(DTYPE).mean().item(),
            "loss": nn.functional.cross_entropy(logits, self.data["val_y"]).item(),
            "ema_loss": nn.functional.cross_entropy(self.ema(h), self.data["val_y"]).item(),
        }

    def on_phase_end(self, phase, ctx):
        self.hook_calls.append(f"end:{phase.name}")
        if phase.name != "one":
            return
        self._maybe_kill("phase_end:one")
        with torch.no_grad():
            h = self.body(self.data["x"][N_LABELLED:])
            pa, pb = self.head_a(h).argmax(1), self.head_b(h).argmax(1)
            self.pseudo = torch.where(pa == pb, pa, torch.full_like(pa, -1)).cpu()

    # -- state
    def state_dict(self):
        self._maybe_kill(f"state_dict:{self.steps_seen}")
        return {"pseudo": self.pseudo, "steps_seen": self.steps_seen, "note": ["toy", 1]}

    def load_state_dict(self, state):
        self.pseudo = state["pseudo"].clone()
        self.steps_seen = int(state["steps_seen"])


def train(run_dir: Path | None, *, resume: bool = False, dist: DistInfo | None = None, tensorboard: bool = False,
          config: dict | None = None, method_cls: type = ToyMethod, **method_kwargs) -> tuple[ToyMethod, object]:
    """Build the toy method and fit it; returns ``(method, FitResult)``."""
    method = method_cls(**method_kwargs)
    settings = {"lr": 1e-2, "device": "cpu", "seed": 3, "log_every": 2, "progress_bar": False,
                "tensorboard": tensorboard, **(config or {})}
    cfg = TrainConfig(**settings)
    trainer = Trainer(cfg, run_dir, meta={"classes": ["a", "b", "c"], "model_config": {"hidden": HIDDEN}},
                      dist=dist or DistInfo())
    return method, trainer.fit(method, resume=resume)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--kill-at")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tensorboard", action="store_true")
    parser.add_argument("--dump", type=Path, help="save this rank's network states here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    method, _ = train(args.run_dir, dist=dist, kill_at=args.kill_at, kill_mode="sigkill",
                      augment=not args.no_augment, batch_size=args.batch_size, tensorboard=args.tensorboard)
    if args.dump is not None:
        dump = {k: m.state_dict() for k, m in method.networks().items()}
        dump["_gathered"] = dist.all_gather(torch.arange(dist.rank + 1))
        torch.save(dump, args.dump)
    cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
