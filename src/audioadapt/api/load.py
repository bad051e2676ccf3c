"""``audioadapt.load``: a trained run, SED or SER, ready to predict from Python.

>>> import audioadapt
>>> det = audioadapt.load("runs/demo")        # SedSystem or SerSystem, from the run's checkpoint
>>> det.predict("clip.wav")

Loading reads the checkpoint and builds the network; it changes nothing in
the process (allocator, threads, environment): see
:mod:`audioadapt.training.allocator` to opt in to the run's allocator setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from audioadapt.api.sed_system import SedSystem
from audioadapt.api.ser_system import SerSystem
from audioadapt.errors import CheckpointError

#: What :func:`load` returns.
System = Union[SedSystem, SerSystem]


def _probe(run: Path) -> Path:
    """A checkpoint of ``run`` (a run directory or a checkpoint file) to tell its task by."""
    from audioadapt.training.checkpoint import BEST, LAST

    if run.is_file():
        return run
    for name in (LAST, BEST):
        if (run / name).is_file():
            return run / name
    raise CheckpointError(f"{run}: not a run directory (no {LAST} or {BEST}) nor a checkpoint file")


def load(run: str | Path, checkpoint: str | Path | None = None,
         device: str | torch.device | None = None) -> System:
    """Load a trained run for prediction; SED or SER is read from its checkpoint.

    Parameters
    ----------
    run: a run directory, or one of its checkpoint files.
    checkpoint: ``"best"``, ``"last"`` or a path; default: the checkpoint the
        run's own commands predict with (SED ``best``, else ``last``; SER ``last``).
    device: ``"cpu"``, ``"cuda"``, a ``torch.device``; default: the run's
        ``train.device`` (``auto``: CUDA when available).

    Returns
    -------
    :class:`~audioadapt.api.sed_system.SedSystem` or
    :class:`~audioadapt.api.ser_system.SerSystem`, whose ``predict(audio,
    sample_rate=None)`` and ``scores(...)`` take a file or a waveform.
    """
    from audioadapt.training.checkpoint import checkpoint_task, load_checkpoint
    from audioadapt.training.distributed import resolve_device

    run = Path(run)
    probe = _probe(run)
    task = checkpoint_task(load_checkpoint(probe))
    run_dir = run.parent if run.is_file() else run
    chosen = run if run.is_file() and checkpoint is None else checkpoint
    if task == "sed":
        from audioadapt.api.sed import load_sed_run

        ckpt, cfg, path = load_sed_run(run_dir, "best" if chosen is None else chosen)
        system_cls: type[SedSystem] | type[SerSystem] = SedSystem
    elif task == "ser":
        from audioadapt.api.ser import load_ser_run

        ckpt, cfg, path = load_ser_run(run_dir, "last" if chosen is None else chosen)
        system_cls = SerSystem
    else:
        raise CheckpointError(f"{probe}: the checkpoint does not say whether it is a SED or a SER run")
    where = resolve_device(cfg.train.device) if device is None else torch.device(device)
    return system_cls(run_dir, path, ckpt, cfg, where)


__all__ = ["System", "load"]
