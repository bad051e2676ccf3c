"""Training logs: ``metrics.csv``, TensorBoard event files, the epoch line and progress bars.

One CSV row per epoch with the columns ``phase, epoch, global_epoch, step``
followed by ``train/<name>`` (epoch means) and ``val/<name>`` (validation
metrics). Floats are written with ``repr`` so they read back exactly. When a
later row brings a new column (a phase with other losses) the file is
rewritten with the wider header; cells a row does not have stay empty.
On resume, rows after the checkpoint's epoch (written before a crash, after
the last checkpoint) are dropped, so an interrupted and resumed run ends with
the same file as an uninterrupted one.

Every epoch also gives one summary line (:func:`epoch_line`) that the
Trainer logs to the console and ``train.log``, progress bars or not.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audioadapt.errors import DataError

METRICS_FILE = "metrics.csv"
#: Leading CSV columns, in order.
KEY_COLUMNS = ("phase", "epoch", "global_epoch", "step")


class RunningMean:
    """Per-key running sums and counts of logged scalars."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def format_logs(values: Mapping[str, float], digits: int = 4) -> str:
    """Compact text for a progress bar: ``loss=0.6931 cls=0.1234``.

    Namespaced values (a ``/`` in the name, e.g. the SED diagnostics
    ``diag/...`` and pseudo-label counts ``pseudo/...``) are left out: there
    can be a hundred of them; they go to ``metrics.csv`` and TensorBoard.
    """
    return " ".join(f"{k}={v:.{digits}g}" for k, v in values.items() if "/" not in k)


def _leading(values: Mapping[str, float], key: str | None) -> dict[str, float]:
    """``values`` with ``key`` (when present) moved to the front."""
    return {**({key: values[key]} if key in values else {}), **values}


def epoch_line(phase: str, epoch: int, epochs: int, step: int, train: Mapping[str, float],
               val: Mapping[str, float], seconds: float, best: bool = False, monitor: str | None = None) -> str:
    """One line per epoch: phase, epoch, the training losses, the validation metrics and the time taken.

    ``phase1 epoch 3/10 (step 120): loss=0.6931 ft_frame=0.2345 | val selection=0.41 weak_clip_f1=0.2
    (new best) | 12.3 s``: the total ``loss`` first, the selection metric (``monitor``) first among the
    validation metrics. Namespaced values are left out as in :func:`format_logs`; without validation
    (``val`` empty) the middle part is left out.
    """
    parts = [f"{phase} epoch {epoch}/{epochs} (step {step}): {format_logs(_leading(train, 'loss'))}".rstrip()]
    if val:
        parts.append(f"val {format_logs(_leading(val, monitor))}" + (" (new best)" if best else ""))
    parts.append(f"{seconds:.1f} s")
    return " | ".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class CsvLogger:
    """Epoch rows in a CSV file that survives interruptions.

    Parameters
    ----------
    path: the CSV file.
    keep_until: on resume, the ``global_epoch`` of the checkpoint: rows after
        it are dropped; ``None`` starts a new file (an existing one is replaced).
    """

    def __init__(self, path: str | Path, keep_until: int | None = None):
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if keep_until is not None and self.path.is_file():
            self.columns, rows = _read_csv(self.path)
            self.rows = [r for r in rows if int(r["global_epoch"]) <= keep_until]
        self._rewrite()

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns or list(KEY_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.path, buf.getvalue())

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one row (must hold the key columns)."""
        cells = {k: _cell(v) for k, v in row.items() if v is not None}
        new = [k for k in cells if k not in self.columns]
        self.rows.append(cells)
        if new or not self.columns:
            keys = [c for c in self.columns if c not in KEY_COLUMNS] + new
            self.columns = list(KEY_COLUMNS) + sorted(set(keys) - set(KEY_COLUMNS))
            self._rewrite()
            return
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.columns, lineterminator="\n").writerow(cells)
            fh.flush()
            os.fsync(fh.fileno())


class RunLogger:
    """Rank 0's sink for epoch rows (CSV + TensorBoard) and step scalars (TensorBoard).

    TensorBoard's x axis is the optimizer step for both.

    Parameters
    ----------
    run_dir: where ``metrics.csv`` and the event files go.
    resume_from: ``(global_epoch, step)`` of the checkpoint a run resumes
        from, else ``None``: CSV rows and TensorBoard events written after it
        are dropped.
    tensorboard: also write TensorBoard event files.
    """

    def __init__(self, run_dir: str | Path, resume_from: tuple[int, int] | None = None, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.csv = CsvLogger(self.run_dir / METRICS_FILE, None if resume_from is None else resume_from[0])
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_from is None else resume_from[1] + 1
            self.writer = SummaryWriter(str(self.run_dir), purge_step=purge)

    def log_step(self, step: int, values: Mapping[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"step/{key}", value, step)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """Write an epoch row; its numeric non-key values also go to TensorBoard."""
        self.csv.log(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in KEY_COLUMNS and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["step"]))
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class NullLogger:
    """What non-zero ranks and file-less runs log to."""

    def log_step(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, desc: str, enabled: bool, *, unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar, or a silent stand-in with the same ``update`` / ``set_postfix_str`` / ``close``.

    The bar is shown when ``enabled`` and the process-wide switch allow it
    (:func:`audioadapt.console.show_progress`: off for a command whose stderr
    is not a terminal or that was given ``--no-progress``).
    """
    from audioadapt.console import show_progress

    if not show_progress(enabled):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        missing = [c for c in KEY_COLUMNS if c not in columns]
        if missing:
            raise DataError(f"not a metrics file: missing columns {missing}", path, 1)
        for row in reader:
            line = reader.line_num
            if None in row or any(not row.get(c) for c in KEY_COLUMNS):
                raise DataError("malformed row (truncated file?)", path, line)
            try:
                int(row["global_epoch"])
            except ValueError:
                raise DataError(f"global_epoch {row['global_epoch']!r} is not an integer", path, line) from None
            rows.append({k: v for k, v in row.items() if v})
    return columns, rows


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``metrics.csv`` as dictionaries of strings (empty cells left out)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such metrics file", path)
    return _read_csv(path)[1]


__all__ = [
    "KEY_COLUMNS",
    "METRICS_FILE",
    "CsvLogger",
    "NullLogger",
    "RunLogger",
    "RunningMean",
    "epoch_line",
    "format_logs",
    "progress_bar",
    "read_metrics",
]
