"""The training loop shared by every method: phases, epochs, Adam, AMP, checkpoints, logs.

Resume granularity: a checkpoint (``last.pt``) is written at the end of every
epoch and once more after each phase's ``on_phase_end`` hook. A killed run
resumed from ``last.pt`` repeats only the epoch (or the between-phase pass)
that was cut short and, on CPU with the same settings, ends with exactly the
weights and ``metrics.csv`` of an uninterrupted run: the checkpoint holds the
random-generator states of every rank and the sampler epoch.

A non-finite loss (without float16 gradient scaling, which skips such steps)
or non-finite weights at the end of an epoch or a phase stop the training
with a :class:`NonFiniteError` before anything is checkpointed, so
``last.pt`` stays the last good state.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from audioadapt.config.load import to_dict
from audioadapt.cpus import configure_threads
from audioadapt.errors import AudioadaptError, CheckpointError, ConfigError, DataError
from audioadapt.training.allocator import CpuAllocatorMode, configure_cpu_allocator
from audioadapt.training.checkpoint import (
    BEST,
    LAST,
    BestTracker,
    load_checkpoint,
    make_checkpoint,
    resolve_resume,
    restore_networks,
    save_checkpoint,
    to_plain,
)
from audioadapt.training.distributed import (
    DistInfo,
    broadcast_networks,
    init_distributed,
    reduce_means,
    set_sampler_epoch,
    wrap_step,
)
from audioadapt.training.experiment import (capture_rng_state, restore_rng_state, seed_everything,
                                            set_deterministic, write_run_summary)
from audioadapt.training.logging import NullLogger, RunLogger, RunningMean, epoch_line, format_logs, progress_bar
from audioadapt.training.lr_schedule import LrSchedule, apply_lr_factor, lr_factor, remember_base_lr
from audioadapt.training.method import Method, StepContext, trainable_networks
from audioadapt.training.sync_batchnorm import convert_sync_batchnorm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a run: the one home of these defaults.

    Attributes
    ----------
    epochs: epochs of a one-phase method (multi-phase methods set their own).
    lr, betas, weight_decay: Adam (Park et al. 2019: 1e-3, (0.9, 0.999)).
    lr_schedule: the learning rate within each phase: ``"constant"`` (the papers'
        Adam) or ``"cosine"`` (half a cosine from ``lr`` down to
        ``lr_final * lr`` at the phase's last step; :mod:`~audioadapt.training.lr_schedule`).
    lr_final: the end of the ``cosine`` schedule, as a fraction of ``lr``.
    grad_clip_norm: clip the global gradient norm to this; ``None`` = off.
    amp: mixed precision: autocast to ``amp_dtype`` in the training steps.
    amp_dtype: ``"float16"`` (with gradient scaling; CUDA only, ignored with a
        warning on CPU) or ``"bfloat16"`` (no scaling needed; CUDA, and CPUs with
        bf16 matrix units: 1.2x faster training and 1.9x faster inference of the
        paper-size SED model on an AMX Xeon, ``benchmarks/results/sed_throughput_intel-xeon-amx.md``).
    device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    seed: seed of a run; rank ``r`` draws its training randomness from ``seed + r``.
    deterministic: ``torch.use_deterministic_algorithms(True)``.
    log_every: optimizer steps between step scalars / progress-bar updates.
    num_workers: DataLoader workers for loaders that methods build from this config.
    monitor, monitor_mode: selection metric (a key of ``Method.validate``) and
        direction; ``None`` takes the method's ``selection_metric`` / ``selection_mode``.
    validate_every: epochs between validations; a phase's last epoch is always validated.
    progress_bar: show a tqdm bar on rank 0 (where bars are shown at all: the
        command line draws them only when stderr is a terminal and without
        ``--no-progress``, :mod:`audioadapt.console`).
    tensorboard: write TensorBoard event files to the run directory.
    fast_dev_run: when > 0, each phase runs one epoch of at most this many steps.
    find_unused_parameters: passed to ``DistributedDataParallel``.
    sync_batchnorm: when several processes train, replace the BatchNorm layers
        of the method's networks by synchronised ones
        (:mod:`~audioadapt.training.sync_batchnorm`), so that batch statistics,
        losses and running statistics are those of the global batch, as in a
        one-process run (CPU ranks included). Costs two small all-reduces per
        layer and forward. ``False`` keeps PyTorch's per-rank BatchNorm: each
        rank normalises with its own share of the batch and the ranks' running
        statistics drift apart (rank 0's are checkpointed).
    cpu_allocator: ``"retain"`` keeps freed CPU memory for reuse instead of
        returning it to the kernel, which removes the page faults that dominated
        a training step on CPU (:mod:`~audioadapt.training.allocator`; glibc
        only, process-wide); ``"system"`` leaves the C allocator alone.
    num_threads: CPU threads torch computes with; ``None`` caps torch's count
        at the CPUs the process may use (affinity mask and cgroup quota,
        shared among the ranks torchrun starts on one machine;
        :mod:`audioadapt.cpus`) and leaves a lower count or ``OMP_NUM_THREADS``
        as they are.
    """

    epochs: int = 100
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: LrSchedule = "constant"
    lr_final: float = 0.0
    grad_clip_norm: float | None = None
    amp: bool = False
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    deterministic: bool = False
    log_every: int = 50
    num_workers: int = 0
    monitor: str | None = None
    monitor_mode: Literal["max", "min"] | None = None
    validate_every: int = 1
    progress_bar: bool = True
    tensorboard: bool = True
    fast_dev_run: int = 0
    find_unused_parameters: bool = False
    sync_batchnorm: bool = True
    cpu_allocator: CpuAllocatorMode = "retain"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        positive = {"lr": self.lr, "log_every": self.log_every, "validate_every": self.validate_every}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"TrainConfig.{name} must be positive, got {value}")
        for name in ("epochs", "num_workers", "fast_dev_run", "weight_decay", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ConfigError(f"TrainConfig.lr_final must lie in [0, 1], got {self.lr_final}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"TrainConfig.betas must lie in [0, 1), got {self.betas}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ConfigError(f"TrainConfig.grad_clip_norm must be positive or null, got {self.grad_clip_norm}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"TrainConfig.num_threads must be >= 1 or null, got {self.num_threads}")


class NonFiniteError(AudioadaptError, FloatingPointError):
    """Training stopped on a non-finite loss or non-finite weights (the message names the last good checkpoint)."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    history: the epoch rows this call logged (a resumed run: only the new ones).
    best: selection metric, mode, best value and its ``global_epoch`` (ties:
        the later epoch), the first value, the number of validated epochs and
        ``never_rose`` (see :class:`~audioadapt.training.checkpoint.BestTracker`).
    run_dir: the run directory, if any.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None


def _set_modes(method: Method, trainable: Mapping[str, Any]) -> None:
    for name, module in method.networks().items():
        module.train(name in trainable)


class Trainer:
    """Runs a :class:`Method` through its phases.

    Parameters
    ----------
    config: optimisation and bookkeeping settings.
    run_dir: where checkpoints and logs go; ``None`` trains without files.
    meta: saved in every checkpoint (model and feature configs, normaliser
        state, class list, ...), as tensors and plain values or dataclasses.
    dist: the process group; default: from torchrun's environment variables.
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None, *,
                 meta: Mapping[str, Any] | None = None, dist: DistInfo | None = None):
        self.config = config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.meta = dict(meta or {})
        to_plain(self.meta, "meta")  # fail now rather than at the first checkpoint
        self.dist = dist if dist is not None else init_distributed(config.device)
        on_cuda = self.dist.device.type == "cuda"
        self.amp = config.amp and (on_cuda or config.amp_dtype == "bfloat16")
        self.amp_dtype = torch.float16 if config.amp_dtype == "float16" else torch.bfloat16
        self.grad_scaling = self.amp and self.amp_dtype == torch.float16
        if config.amp and not self.amp:
            log.warning("float16 amp is only used on CUDA; training in full precision on %s "
                        "(train.amp_dtype=bfloat16 runs mixed precision on CPU)", self.dist.device)

    # -- public --------------------------------------------------------------
    def fit(self, method: Method, train_loader: Iterable[Any] | None = None, *,
            resume: bool | str | Path = False) -> FitResult:
        """Train ``method``; ``resume`` is ``True`` (the run's ``last.pt``, if any) or a checkpoint path."""
        cfg, dist = self.config, self.dist
        phases = tuple(method.phases(cfg))
        if cfg.fast_dev_run:
            phases = tuple(dataclasses.replace(p, epochs=min(p.epochs, 1)) for p in phases)
        if not phases:
            raise ConfigError(f"{type(method).__name__}.phases() returned no phase")
        networks = dict(method.networks())
        for phase in phases:
            trainable_networks(method, phase)  # check the names before any work
        set_deterministic(cfg.deterministic)
        configure_cpu_allocator(cfg.cpu_allocator)
        configure_threads(cfg.num_threads)
        for module in networks.values():
            module.to(dist.device)
        if cfg.sync_batchnorm and dist.enabled:
            count = convert_sync_batchnorm(networks.values(), dist.device)
            if count:
                log.info("synchronising %d BatchNorm layer(s) over %d ranks", count, dist.world_size)
        ctx = StepContext(config=cfg, dist=dist, phases=phases, run_dir=self.run_dir)
        self._best = BestTracker(cfg.monitor or method.selection_metric, cfg.monitor_mode or method.selection_mode)
        method.setup(ctx)
        path = resolve_resume(resume, self.run_dir)
        state = None if path is None else load_checkpoint(path, map_location=dist.device)
        rng = None
        if state is None:
            seed_everything(cfg.seed + dist.rank)
        else:
            rng = self._restore(state, method, networks, ctx)
        broadcast_networks(networks, dist)
        use_files = dist.is_main and self.run_dir is not None
        logger = RunLogger(self.run_dir, (ctx.global_epoch, ctx.step) if state else None,
                           tensorboard=cfg.tensorboard) if use_files else NullLogger()
        result = FitResult(run_dir=self.run_dir)
        try:
            while ctx.phase_index < len(phases):
                if ctx.phase_done:  # saved after on_phase_end: the next phase starts afresh
                    if rng is not None:
                        restore_rng_state(rng)
                    state = rng = None
                    ctx.phase_index, ctx.epoch, ctx.phase_done = ctx.phase_index + 1, 0, False
                    if ctx.phase_index == len(phases):
                        break
                self._run_phase(method, ctx, train_loader, state, rng, logger, result)
                state = rng = None
        finally:
            logger.close()
        result.best = self._best.to_dict()
        self._summarise(ctx, result)
        return result

    def _summarise(self, ctx: StepContext, result: FitResult) -> None:
        """Log how the epoch was selected and, when this call trained, write the run's ``summary.json``."""
        if not self.dist.is_main:
            return
        flat = self._best.metric is not None and (self._best.value is None or self._best.never_rose)
        (log.warning if flat else log.info)("selection: %s", self._best.describe())
        if self.run_dir is not None and result.history:
            write_run_summary(self.run_dir, {"selection": result.best, "global_epoch": ctx.global_epoch,
                                             "step": ctx.step, "phases": [p.name for p in ctx.phases]})

    # -- phases and epochs -------------------------------------------------------
    def _run_phase(self, method: Method, ctx: StepContext, train_loader: Iterable[Any] | None,
                   optim_state: Mapping[str, Any] | None, rng: dict[str, Any] | None, logger: Any,
                   result: FitResult) -> None:
        """Run (or resume, from ``optim_state`` and ``rng``) the current phase."""
        cfg, phase = self.config, ctx.phase
        trainable = trainable_networks(method, phase)
        optimizer = torch.optim.Adam(method.parameters_to_optimize(phase), lr=phase.lr or cfg.lr,
                                     betas=cfg.betas, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler(self.dist.device.type, enabled=self.grad_scaling)
        remember_base_lr(optimizer)
        if optim_state is not None and optim_state.get("optimizer") is not None:
            optimizer.load_state_dict(optim_state["optimizer"])
            if optim_state.get("grad_scaler"):
                scaler.load_state_dict(optim_state["grad_scaler"])
            remember_base_lr(optimizer)
        step_module = wrap_step(method.training_step, trainable, self.dist, cfg.find_unused_parameters)
        _set_modes(method, trainable)
        method.on_phase_start(phase, ctx)
        loader = train_loader if train_loader is not None else method.train_loader(phase, ctx)
        if rng is not None:  # the generators as they were when the checkpoint was written
            restore_rng_state(rng)
        while ctx.epoch < phase.epochs:
            start = time.perf_counter()
            _set_modes(method, trainable)
            set_sampler_epoch(loader, ctx.global_epoch)
            method.on_epoch_start(ctx)
            train_logs = self._train_epoch(method, ctx, loader, step_module, optimizer, scaler, logger)
            ctx.epoch += 1
            ctx.global_epoch += 1
            self._check_weights(method, ctx)  # before any use: validation, checkpoints
            due = ctx.epoch % cfg.validate_every == 0 or ctx.epoch == phase.epochs
            metrics = self._validate(method, ctx) if due else {}
            row = {"phase": phase.name, "epoch": ctx.epoch, "global_epoch": ctx.global_epoch, "step": ctx.step,
                   "lr": optimizer.param_groups[0]["lr"], **{f"train/{k}": v for k, v in train_logs.items()},
                   **{f"val/{k}": v for k, v in metrics.items()}}
            logger.log_epoch(row)
            result.history.append(row)
            improved = self._best.update(metrics, ctx.global_epoch)
            if self.dist.is_main:
                log.info("%s", epoch_line(phase.name, ctx.epoch, phase.epochs, ctx.step, train_logs, metrics,
                                          time.perf_counter() - start, improved, self._best.metric))
            self._save(method, ctx, optimizer, scaler, improved=improved)
        method.on_phase_end(phase, ctx)
        self._check_weights(method, ctx)
        ctx.phase_done = True
        self._save(method, ctx, None, None, improved=False)

    def _train_epoch(self, method: Method, ctx: StepContext, loader: Iterable[Any], step_module: Any,
                     optimizer: torch.optim.Optimizer, scaler: Any, logger: Any) -> dict[str, float]:
        cfg, device = self.config, self.dist.device
        params = [p for group in optimizer.param_groups for p in group["params"]]
        limit = cfg.fast_dev_run or None
        try:
            total: int | None = len(loader)  # type: ignore[arg-type]
        except TypeError:
            total = None
        ctx.steps_per_epoch = min(total, limit) if total is not None and limit else (total or limit)
        per_epoch = ctx.steps_per_epoch or 1  # the schedule's unit; a loader without a length counts one
        running = RunningMean()
        bar = progress_bar(ctx.steps_per_epoch, f"{ctx.phase.name} {ctx.epoch + 1}/{ctx.phase.epochs}",
                           cfg.progress_bar and self.dist.is_main)
        for index, batch in enumerate(loader):
            if limit and index >= limit:
                break
            ctx.step_in_epoch = index
            if cfg.lr_schedule != "constant":
                apply_lr_factor(optimizer, lr_factor(cfg.lr_schedule, ctx.epoch * per_epoch + index,
                                                     ctx.phase.epochs * per_epoch, cfg.lr_final))
            batch = method.transfer_batch(batch, device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp):
                loss, logs = step_module(batch, ctx)
            values = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
            if not math.isfinite(values["loss"]) and not self.grad_scaling:
                parts = format_logs({k: v for k, v in values.items() if k != "loss"})
                raise self._stopped(f"in phase '{ctx.phase.name}', epoch {ctx.epoch + 1}, step {index + 1}: "
                                    f"loss is {values['loss']}" + (f" ({parts})" if parts else ""))
            scaler.scale(loss).backward()
            if cfg.grad_clip_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            ctx.step += 1
            with torch.no_grad():
                method.after_optimizer_step(batch, ctx)
            running.update(values)
            if ctx.step % cfg.log_every == 0:  # every rank joins the average, rank 0 writes it
                logger.log_step(ctx.step, reduce_means(values, dict.fromkeys(values, 1), self.dist))
                bar.set_postfix_str(format_logs(running.means()))
            bar.update()
        bar.close()
        if not running.counts:
            raise DataError(f"the training loader of phase '{ctx.phase.name}' yielded no batch")
        return reduce_means(running.sums, running.counts, self.dist)

    def _validate(self, method: Method, ctx: StepContext) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            networks = method.networks()
            modes = {name: m.training for name, m in networks.items()}
            for module in networks.values():
                module.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in method.validate(ctx).items()}
            for name, module in networks.items():
                module.train(modes[name])
        return self.dist.broadcast_object(metrics)

    # -- non-finite values ----------------------------------------------------------------
    def _stopped(self, what: str) -> NonFiniteError:
        """The error that stops a training ``what`` happened to, naming the last good checkpoint."""
        where = "" if self.run_dir is None else f"{self.run_dir}: "
        last = None if self.run_dir is None else self.run_dir / LAST
        kept = f"last good checkpoint: {last}" if last is not None and last.is_file() else "no checkpoint written"
        return NonFiniteError(f"{where}training stopped {what}; {kept}; "
                              "lower train.lr or set train.grad_clip_norm")

    def _check_weights(self, method: Method, ctx: StepContext) -> None:
        """Raise :class:`NonFiniteError` when a network holds a non-finite parameter or buffer."""
        bad = [name for name, module in method.networks().items()
               if any(t.is_floating_point() and not bool(torch.isfinite(t).all())
                      for t in module.state_dict().values())]
        if bad:
            raise self._stopped(f"after phase '{ctx.phase.name}', epoch {ctx.epoch}: the weights of {bad} "
                                "are not finite")

    # -- checkpoints -------------------------------------------------------------------
    def _save(self, method: Method, ctx: StepContext, optimizer: Any, scaler: Any, improved: bool) -> None:
        if self.run_dir is None:
            return
        rng = self.dist.gather_objects(capture_rng_state())  # every rank's state; also a barrier
        if self.dist.is_main:
            progress = {"phase_index": ctx.phase_index, "phase": ctx.phase.name, "epoch": ctx.epoch,
                        "global_epoch": ctx.global_epoch, "step": ctx.step, "sampler_epoch": ctx.global_epoch,
                        "phase_done": ctx.phase_done}
            ckpt = make_checkpoint(networks=method.networks(), method_state=method.state_dict(), progress=progress,
                                   best=self._best.to_dict(), meta=self.meta, optimizer=optimizer, grad_scaler=scaler,
                                   rng=rng, train_config=to_dict(self.config))
            save_checkpoint(ckpt, self.run_dir / LAST)
            if improved:
                save_checkpoint(ckpt, self.run_dir / BEST)
        self.dist.barrier()

    def _restore(self, state: dict[str, Any], method: Method, networks: dict,
                 ctx: StepContext) -> dict[str, Any] | None:
        """Load networks, method state, progress and best; return this rank's saved generator state."""
        progress = state["progress"]
        names = [p.name for p in ctx.phases]
        index = progress["phase_index"]
        if index >= len(names) or names[index] != progress["phase"]:
            raise CheckpointError(f"checkpoint is in phase '{progress['phase']}' (#{index}), "
                                  f"but {type(method).__name__} has phases {names}")
        restore_networks(networks, state)
        method.load_state_dict(state["method"])
        ctx.phase_index, ctx.epoch, ctx.global_epoch = index, progress["epoch"], progress["global_epoch"]
        ctx.step, ctx.phase_done = progress["step"], progress["phase_done"]
        self._best.restore(state["best"])
        log.info("resuming at phase '%s', epoch %d (step %d)", progress["phase"], ctx.epoch, ctx.step)
        rng = state.get("rng") or []
        if len(rng) == self.dist.world_size:
            return rng[self.dist.rank]
        log.warning("checkpoint holds random states of %d ranks, this run has %d: reseeding",
                    len(rng), self.dist.world_size)
        seed_everything(self.config.seed + self.dist.rank + ctx.global_epoch)
        return None


__all__ = ["BEST", "LAST", "FitResult", "NonFiniteError", "TrainConfig", "Trainer"]
