"""Run directories, seeds, determinism, random-number states and environment versions.

A run directory holds::

    config.yaml     the resolved configuration (written once, compared on resume)
    versions.json   python, torch, numpy, audioadapt, CUDA, the command line and, when the
                    package runs from a git checkout, its commit and whether the tree was dirty
    train.log       the log of every start and resume (its command line), one line per epoch
    run.lock        held by the training in progress (one at a time; see run_lock)
    data.json       the data the run used (written once, checked on resume)
    metrics.csv     one row per epoch (training means, validation metrics)
    events.*        TensorBoard event files
    last.pt         checkpoint after the latest epoch (resume from here)
    best.pt         checkpoint of the best epoch by the selection metric
    summary.json    how the training ended: the selected epoch and whether the selection
                    metric ever rose above its first value (written by each call that trains)

A directory holds a run once a training has written a checkpoint there. A
directory left by a training that stopped before its first checkpoint (a bad
dataset path, an empty split) is taken over by the next start.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import audioadapt
from audioadapt.console import command_line
from audioadapt.config.load import config_differences, read_yaml, save_config, to_dict
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.checkpoint import BEST, LAST
from audioadapt.training.run_lock import RunLock

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
VERSIONS_FILE = "versions.json"
LOG_FILE = "train.log"
#: How the training ended (selection record); written at the end of each call that trained.
SUMMARY_FILE = "summary.json"
#: The clip/utterance counts a run actually used (written by the data modules' callers).
DATA_FILE = "data.json"


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and all GPUs)."""
    if not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_deterministic(enabled: bool) -> None:
    """Switch ``torch.use_deterministic_algorithms`` and cuDNN's deterministic mode.

    On CUDA, cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG``; it is set here
    when absent, which only takes effect if CUDA has not been used yet.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def capture_rng_state() -> dict[str, Any]:
    """The state of every global random generator, as tensors and plain values."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:
            log.warning("checkpoint has CUDA RNG states of %d GPUs, %d are visible: not restored",
                        len(cuda_states), torch.cuda.device_count())


def git_state() -> dict[str, Any]:
    """``{"git_commit": ..., "git_dirty": ...}`` of the git checkout holding the package; ``{}`` outside one.

    ``git_dirty`` is true when tracked files differ from the commit.
    """
    root = Path(audioadapt.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True,
            timeout=10,
        )
        if dirty.returncode != 0:
            return {"git_commit": commit.stdout.strip()}
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def collect_versions() -> dict[str, Any]:
    """Versions of the environment a run used, the command line, and the git state when there is one."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": np.__version__,
        "audioadapt": audioadapt.__version__,
        "command": command_line(),
        **git_state(),
    }


def write_run_summary(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write the run's ``summary.json`` (atomically) and return its path."""
    path = Path(run_dir) / SUMMARY_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing_run_dir(Path(run_dir)):
        tmp.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


@dataclass(frozen=True)
class Experiment:
    """An open run directory.

    Attributes
    ----------
    run_dir: the directory.
    resumed: true when the directory already held a run (one with a checkpoint).
    log_handler: the handler copying log records to ``train.log`` (rank 0).
    lock: the directory's lock, held until :meth:`close` (rank 0).
    """

    run_dir: Path
    resumed: bool
    log_handler: logging.Handler | None = field(default=None, repr=False, compare=False)
    lock: RunLock | None = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        """Stop copying log records to ``train.log`` and release the directory."""
        if self.log_handler is not None:
            logger = logging.getLogger("audioadapt")
            logger.removeHandler(self.log_handler)
            self.log_handler.close()
            previous = getattr(self.log_handler, "previous_logger_level", None)
            # only if nobody changed it since, and no other run still writes its train.log
            if (previous is not None and logger.level == logging.INFO
                    and not any(isinstance(h, logging.FileHandler) for h in logger.handlers)):
                logger.setLevel(previous)
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> "Experiment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "best.pt"


def default_run_name() -> str:
    """A timestamp such as ``20240131-235959``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def holds_run(run_dir: str | Path) -> bool:
    """Whether a training has written a checkpoint into ``run_dir`` (only then is it a run)."""
    return any((Path(run_dir) / name).is_file() for name in (LAST, BEST))


def check_resumable(run_dir: str | Path) -> None:
    """Raise :class:`ConfigError` unless ``run_dir`` holds a run's ``config.yaml`` to resume."""
    if not (Path(run_dir) / CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir}: holds no run to resume (no {CONFIG_FILE}); "
                          "give the directory of an existing run, or train without --resume")


@contextmanager
def writing_run_dir(run_dir: Path) -> Iterator[None]:
    """Turn an operating-system error while writing the run directory into a one-line :class:`DataError`."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and Path(exc.filename) != run_dir:
            reason += f" ({exc.filename})"
        raise DataError(f"cannot write the run directory: {reason}; choose a writable run directory (--out)",
                        run_dir) from exc


def start_experiment(
    run_dir: str | Path,
    config: Any,
    *,
    seed: int,
    deterministic: bool = False,
    resume: bool = False,
    rank: int = 0,
) -> Experiment:
    """Open ``run_dir``: write or check the resolved config, record versions, seed.

    Parameters
    ----------
    run_dir: directory of the run; created if missing.
    config: the resolved configuration dataclass (saved with ``save_config``).
    seed: seed of every generator (the same on all ranks, so that networks
        start identical).
    deterministic: call ``torch.use_deterministic_algorithms(True)``.
    resume: continue the run in ``run_dir``, which must hold its
        ``config.yaml``; without it a directory that already holds a run is
        refused.
    rank: only rank 0 checks, locks and writes the directory (``resumed`` is
        then ``resume`` on the other ranks).

    Raises
    ------
    ConfigError
        ``run_dir`` holds a run and ``resume`` is false, holds none to resume,
        or another training holds its lock.
    DataError
        ``run_dir`` cannot be written.
    """
    run_dir = Path(run_dir)
    # other ranks trust rank 0, which checks and writes the directory
    exp = _open_run_dir(run_dir, config, resume) if rank == 0 else Experiment(run_dir, resumed=resume)
    seed_everything(seed)
    set_deterministic(deterministic)
    return exp


def _open_run_dir(run_dir: Path, config: Any, resume: bool) -> Experiment:
    """Lock ``run_dir``, check it, start copying the log and write or compare the config."""
    if resume:
        check_resumable(run_dir)
    with writing_run_dir(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock.acquire(run_dir)
    try:
        started = holds_run(run_dir)
        if started and not resume:
            raise ConfigError(f"{run_dir}: already holds a run; resume it or choose another run directory")
        with writing_run_dir(run_dir):
            handler = _attach_log_file(run_dir / LOG_FILE)
    except BaseException:
        lock.release()
        raise
    exp = Experiment(run_dir, resumed=started, log_handler=handler, lock=lock)
    try:
        with writing_run_dir(run_dir):
            if started:
                _warn_config_changes(run_dir / CONFIG_FILE, config)
            else:
                _write_new_run(run_dir, config)
    except BaseException:
        exp.close()
        raise
    log.info("%s run in %s: %s", "resuming" if started else "starting", run_dir, shlex.join(command_line()))
    return exp


def _write_new_run(run_dir: Path, config: Any) -> None:
    """Write the config and versions of a run that has no checkpoint yet."""
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        log.info("%s: taking over the directory of a training that stopped before its first checkpoint",
                 run_dir)
    save_config(config, config_path)
    (run_dir / VERSIONS_FILE).write_text(json.dumps(collect_versions(), indent=2) + "\n", encoding="utf-8")


def record_data(run_dir: str | Path, summary: Mapping[str, Any], *, resumed: bool) -> None:
    """Write the run's ``data.json``; a resumed run's record is compared with ``summary``, never rewritten.

    Resuming on other data (other clips, classes or splits) is refused; only
    the dataset's location (``root`` keys: a moved copy) may differ, and a key
    the saved record lacks (a statistic a later version added) is not a difference.
    """
    path = Path(run_dir) / DATA_FILE
    current = json.loads(json.dumps(summary))
    if not (resumed and path.is_file()):
        with writing_run_dir(Path(run_dir)):
            path.write_text(json.dumps(current, indent=1) + "\n", encoding="utf-8")
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the run's data record: {exc}", path) from exc
    changed = sorted(config_differences(saved, current, new_keys=False))
    if any(key.rsplit(".", 1)[-1] != "root" for key in changed):
        shown = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
        raise DataError(f"resuming on other data than the run was trained on ({shown} differ from this record); "
                        "resume with the data recorded here, or train a new run", path)
    if changed:
        log.info("%s: the run's data is now read from another place (%s)", path, ", ".join(changed))


def _warn_config_changes(path: Path, config: Any) -> None:
    saved = read_yaml(path)  # a damaged file (empty, duplicate keys, bad YAML) is an error naming it
    current = to_dict(config)
    changed = sorted(config_differences(saved, current))
    if changed:
        log.warning("%s: resuming with a changed config: %s", path, ", ".join(changed))


def _attach_log_file(path: Path) -> logging.Handler | None:
    """Copy the ``audioadapt`` log records to ``path`` (once per file)."""
    logger = logging.getLogger("audioadapt")
    target = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
        return None
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        # let INFO records reach the file; Experiment.close puts the level back
        handler.previous_logger_level = logger.level  # type: ignore[attr-defined]
        logger.setLevel(logging.INFO)
    return handler


__all__ = [
    "Experiment",
    "SUMMARY_FILE",
    "capture_rng_state",
    "collect_versions",
    "check_resumable",
    "default_run_name",
    "git_state",
    "holds_run",
    "record_data",
    "restore_rng_state",
    "seed_everything",
    "set_deterministic",
    "start_experiment",
    "write_run_summary",
    "writing_run_dir",
]
