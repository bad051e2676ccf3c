"""Checkpoints: self-describing, written atomically, loaded without running code.

A checkpoint is a ``torch.save`` zip file holding one dictionary of tensors
and plain Python values (``dict``, ``list``, ``tuple``, ``str``, ``int``,
``float``, ``bool``, ``None``), so it loads with
``torch.load(path, weights_only=True)``; a file holding any other pickled
object is refused. Keys:

``kind``, ``format``
    ``"audioadapt-checkpoint"`` and the layout version (:data:`FORMAT_VERSION`).
``audioadapt_version``
    the package version that wrote it.
``meta``
    what a user needs to rebuild and run the model, given by the caller:
    e.g. ``model_config``, ``feature_config``, ``normalizer``, ``classes``.
``networks``
    ``{name: state_dict}`` of every network of the method.
``method``
    the method's own state (memory bank, pseudo labels, ...).
``optimizer``, ``grad_scaler``
    state of the current phase's Adam and AMP scaler.
``progress``
    ``phase_index``, ``phase``, ``epoch``, ``global_epoch``, ``step``,
    ``sampler_epoch``, ``phase_done``.
``best``
    ``metric``, ``mode``, ``value``, ``global_epoch`` of the best epoch so far.
``rng``
    one random-generator state per rank (python, numpy, torch, CUDA).
``train_config``
    the ``TrainConfig`` of the run, as a mapping.

Files are written to a temporary file in the same directory, flushed to
disk, then renamed over the target, so a crash never leaves a half-written
checkpoint under the final name.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from audioadapt import __version__
from audioadapt.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

LAST, BEST = "last.pt", "best.pt"
KIND = "audioadapt-checkpoint"
FORMAT_VERSION = 1
#: Keys every checkpoint holds.
REQUIRED_KEYS = ("kind", "format", "audioadapt_version", "meta", "networks", "method", "progress")


def to_plain(obj: Any, where: str = "value") -> Any:
    """``obj`` as tensors and plain Python values, or a :class:`CheckpointError` naming the culprit.

    Dataclasses become dictionaries, paths strings, numpy arrays tensors and
    numpy scalars Python numbers.
    """
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name), f"{where}.{f.name}") for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where}: key {key!r} is not a str or int")
            out[key] = to_plain(value, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(items) if isinstance(obj, tuple) else items
    raise CheckpointError(
        f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot go into a checkpoint; "
        "use tensors, numbers, strings, lists and dicts"
    )


def make_checkpoint(
    *,
    networks: Mapping[str, nn.Module],
    method_state: Mapping[str, Any],
    progress: Mapping[str, Any],
    best: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    grad_scaler: Any = None,
    rng: list[dict[str, Any]] | None = None,
    train_config: Any = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dictionary (see the module docstring)."""
    return {
        "kind": KIND,
        "format": FORMAT_VERSION,
        "audioadapt_version": __version__,
        "meta": to_plain(dict(meta or {}), "meta"),
        "networks": {name: module.state_dict() for name, module in networks.items()},
        "method": to_plain(dict(method_state), "method state"),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "grad_scaler": None if grad_scaler is None else grad_scaler.state_dict(),
        "progress": to_plain(dict(progress), "progress"),
        "best": to_plain(dict(best), "best"),
        "rng": to_plain(list(rng or []), "rng"),
        "train_config": to_plain(train_config, "train_config"),
    }


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename) and return the path.

    Raises
    ------
    CheckpointError
        naming ``path`` when the file cannot be written (full disk, read-only
        folder, torch's writer failing); a previous file at ``path`` is left
        as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            torch.save(dict(checkpoint), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
        _remove_quietly(tmp)
        raise CheckpointError(f"{path}: cannot write the checkpoint: {_first_line(exc)}; "
                              f"{_kept(path)}") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _kept(path: Path) -> str:
    """What is left after a failed write of ``path``, for the error message."""
    if path.is_file():
        return f"the previous {path.name} is unchanged (free space or fix the folder, then resume)"
    return "nothing was written"


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check an audioadapt checkpoint with ``torch.load(weights_only=True)``.

    Raises
    ------
    CheckpointError
        naming the file when it is missing, truncated, corrupt, holds a
        pickled object other than tensors and plain values, or is not an
        audioadapt checkpoint of a known format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a checkpoint archive (truncated or corrupt file?)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: the file holds a pickled object{what} other than tensors and plain values; "
            "audioadapt never loads checkpoints that could run code"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupt file?): "
                              f"{_first_line(exc)}") from None
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise CheckpointError(f"{path}: not an audioadapt checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    if not isinstance(obj["format"], int) or obj["format"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {obj['format']!r} is newer than this audioadapt ({__version__}) reads"
        )
    return obj


def checkpoint_task(checkpoint: Mapping[str, Any]) -> str | None:
    """The kind of run that wrote a loaded checkpoint: ``"sed"``, ``"ser"`` or ``None`` when unknown.

    It is ``meta["task"]``; checkpoints written before runs recorded it are
    recognised by their meta keys (a SER run's ``dataset_config``, a SED run's
    ``data_root``).
    """
    meta = checkpoint.get("meta") or {}
    if "task" in meta:
        return str(meta["task"])
    if "dataset_config" in meta:
        return "ser"
    if "data_root" in meta:
        return "sed"
    return None


def checkpoint_role(path: str | Path) -> str:
    """``"best"`` or ``"last"`` for a run's ``best.pt`` / ``last.pt``, ``"file"`` for any other checkpoint."""
    return {BEST: "best", LAST: "last"}.get(Path(path).name, "file")


def checkpoint_inputs(path: str | Path, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Which checkpoint an evaluation used, for its report.

    The file, its role (best/last/file) and epoch, the run's training seed
    (``train.seed``) and how the epoch was selected (the checkpoint's
    ``best`` record: metric, value, whether the metric ``never_rose``). A SER
    run that ends with stage 1 (``snsa_f``) saves the weights of its selected
    stage-1 epoch at the end: ``weights_epoch`` names that epoch.
    """
    train_config = checkpoint.get("train_config") or {}
    out = {"checkpoint": str(path), "checkpoint_role": checkpoint_role(path),
           "global_epoch": checkpoint["progress"].get("global_epoch"), "seed": train_config.get("seed"),
           "selection": dict(checkpoint.get("best") or {})}
    method = checkpoint.get("method") or {}
    if method.get("stage1_epoch") is not None and checkpoint["progress"].get("phase_index") == 0:
        out["weights_epoch"] = method["stage1_epoch"]  # a source-only run keeps its selected stage-1 weights
    return out


def load_run_checkpoint(path: str | Path, task: str, where: str | Path) -> dict[str, Any]:
    """Load a checkpoint of a ``task`` run (``"sed"``/``"ser"``) and log which one is used.

    ``where`` (the run directory, or the checkpoint file) names the run in a
    :class:`CheckpointError` when the checkpoint belongs to the other task.
    """
    checkpoint = load_checkpoint(path)
    found = checkpoint_task(checkpoint)
    if found is not None and found != task:
        raise CheckpointError(f"{where}: this is a {found.upper()} run, not a {task.upper()} run; "
                              f"use `audioadapt {found} evaluate` or `audioadapt {found} predict` with it")
    log.info("using checkpoint %s (%s, epoch %s)", path, checkpoint_role(path),
             checkpoint["progress"].get("global_epoch"))
    return checkpoint


def restore_networks(
    networks: Mapping[str, nn.Module],
    checkpoint: Mapping[str, Any],
    names: list[str] | None = None,
    strict: bool = True,
) -> None:
    """Load the saved state of ``networks`` (all, or only ``names``) from a loaded checkpoint."""
    saved = checkpoint["networks"]
    wanted = list(networks) if names is None else list(names)
    unknown = [n for n in wanted if n not in networks]
    if unknown:
        raise CheckpointError(f"no network(s) {unknown} to restore; the method has {sorted(networks)}")
    missing = [n for n in wanted if n not in saved]
    if missing:
        raise CheckpointError(f"checkpoint has no network(s) {missing}; it holds {sorted(saved)}")
    for name in wanted:
        try:
            networks[name].load_state_dict(saved[name], strict=strict)
        except RuntimeError as exc:
            raise CheckpointError(f"network '{name}' does not match the checkpoint: {exc}") from None


def resolve_resume(resume: bool | str | Path, run_dir: Path | None) -> Path | None:
    """The checkpoint to resume from: ``True`` means the run's ``last.pt`` (``None`` if there is none yet)."""
    if resume is False:
        return None
    if resume is not True:
        return Path(resume)
    if run_dir is None:
        raise ConfigError("resume=True needs a run directory")
    if not (run_dir / LAST).is_file():
        log.info("%s: no %s yet, starting from scratch", run_dir, LAST)
        return None
    return run_dir / LAST


def improves(value: float, best: float | None, mode: Literal["max", "min"]) -> bool:
    """Whether a finite ``value`` replaces ``best`` as the selected one: better, or tied (the later epoch wins).

    With ties going to the later epoch, a metric that stays flat (every epoch
    0.0 early in a run) selects the last of those epochs, not the first,
    near-untrained one.
    """
    if not math.isfinite(value):
        return False
    return best is None or (value >= best if mode == "max" else value <= best)


@dataclasses.dataclass
class BestTracker:
    """The best epoch so far by one validation metric.

    Attributes
    ----------
    metric: the selection metric, ``None`` for no selection (no ``best.pt``).
    mode: ``"max"`` or ``"min"``.
    value, global_epoch: the best value and the last epoch that reached it
        (ties go to the later epoch, :func:`improves`).
    first_value: the first finite value.
    validations: how many epochs gave a finite value.
    rose: whether some epoch was strictly better than the first value.
    """

    metric: str | None
    mode: Literal["max", "min"] = "max"
    value: float | None = None
    global_epoch: int | None = None
    first_value: float | None = None
    validations: int = 0
    rose: bool = False

    def update(self, metrics: Mapping[str, float], global_epoch: int) -> bool:
        """Record an epoch's metrics (an empty mapping = not validated); true when it is the new best."""
        if self.metric is None or not metrics:
            return False
        if self.metric not in metrics:
            raise ConfigError(f"selection metric '{self.metric}' is not among the validation metrics {sorted(metrics)}")
        value = metrics[self.metric]
        if not math.isfinite(value):
            return False
        self.validations += 1
        if self.first_value is None:
            self.first_value = value
        elif value != self.first_value and improves(value, self.first_value, self.mode):
            self.rose = True
        if not improves(value, self.value, self.mode):
            return False
        self.value, self.global_epoch = value, global_epoch
        return True

    @property
    def never_rose(self) -> bool:
        """True when two or more epochs were validated and none beat the first value (all tied or worse)."""
        return self.validations >= 2 and not self.rose

    def to_dict(self) -> dict[str, Any]:
        """The record a checkpoint, the run's summary and an evaluation keep (with ``never_rose``)."""
        return {**dataclasses.asdict(self), "never_rose": self.never_rose}

    def describe(self) -> str:
        """One line on the selection: the chosen epoch, or that the metric never rose or was never finite."""
        if self.metric is None:
            return "no selection metric: the last epoch is the result"
        if self.value is None:
            return f"no epoch gave a finite {self.metric}: no epoch was selected"
        if self.never_rose:
            direction = "rose above" if self.mode == "max" else "fell below"
            return (f"{self.metric} never {direction} its first value {self.first_value:.4g} in {self.validations} "
                    f"validated epochs: the selected epoch ({self.global_epoch}) is the last tied one, not one "
                    "the metric preferred")
        return (f"epoch {self.global_epoch} selected, {self.metric} = {self.value:.4g} (first value "
                f"{self.first_value:.4g}, {self.validations} validated epochs)")

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take the best value of a checkpoint (kept only if it ranks the same metric the same way)."""
        if (saved.get("metric"), saved.get("mode")) == (self.metric, self.mode):
            self.value, self.global_epoch = saved.get("value"), saved.get("global_epoch")
            # checkpoints written before these were recorded: the value so far stands for the first one
            self.first_value = saved.get("first_value", self.value)
            self.validations = int(saved.get("validations", 0))
            self.rose = bool(saved.get("rose", False))
        else:
            log.warning("selection changed from %s %r to %s %r: the best epoch so far is forgotten",
                        saved.get("mode"), saved.get("metric"), self.mode, self.metric)


__all__ = [
    "BEST",
    "FORMAT_VERSION",
    "KIND",
    "LAST",
    "BestTracker",
    "checkpoint_inputs",
    "checkpoint_role",
    "checkpoint_task",
    "improves",
    "load_checkpoint",
    "load_run_checkpoint",
    "make_checkpoint",
    "resolve_resume",
    "restore_networks",
    "save_checkpoint",
    "to_plain",
]
