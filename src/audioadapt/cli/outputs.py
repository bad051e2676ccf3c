"""Output paths of the commands, checked before the work starts.

A command that predicts for minutes and then cannot write its result wastes
the user's time, so the handlers check each output path first: a file's folder
(or the nearest folder above it that exists; missing folders are created when
writing) must be a writable folder, and a folder output must not be a file.
Failures raise :class:`~audioadapt.errors.DataError` naming the path. These
checks see permissions only; anything else the writers hit (a full disk, a
read-only mount...) is reported by ``audioadapt.cli.main`` in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from audioadapt.errors import DataError


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or the nearest folder above it that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_folder_above(start: Path, path: Path, what: str) -> None:
    """The nearest existing folder at or above ``start`` must be a writable folder (errors name ``path``)."""
    folder = _existing_ancestor(start)
    if not folder.is_dir():
        raise DataError(f"cannot write {what}: {folder} is a file, not a folder", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write {what}: folder {folder} is not writable; choose another place", path)


def check_output_file(path: str | Path, what: str = "the output") -> None:
    """Raise :class:`DataError` unless the file ``path`` can be written.

    ``what`` names the output in the message (e.g. ``"--out"``).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"cannot write {what}: this is a folder; give a file name", path)
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(f"cannot write {what}: the file is read-only", path)
    _check_folder_above(path.parent, path, what)


def check_output_folder(path: str | Path, what: str = "the output") -> None:
    """Raise :class:`DataError` unless files can be written into the folder ``path`` (created if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"cannot write {what}: this is a file, not a folder", path)
    _check_folder_above(path, path, what)


def check_run_output(run_dir: str | Path) -> None:
    """An evaluation writes its report into ``run_dir``: refuse a run folder that is not writable.

    A path that is not a folder is left to the run loader, which says what it expected.
    """
    if Path(run_dir).is_dir():
        check_output_folder(run_dir, "the evaluation report into the run")


__all__ = ["check_output_file", "check_output_folder", "check_run_output"]
