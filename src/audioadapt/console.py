"""What a command shows on the terminal: progress bars, log lines, and which process speaks.

* **Progress bars** follow one process-wide switch. The library leaves it
  unset (bars are shown where a caller asks for them, e.g. in a notebook);
  the command line turns it off when stderr is not a terminal or
  ``--no-progress`` is given (:func:`set_progress`), so a redirected log
  holds no ``\\r`` bar fragments. Every bar asks :func:`show_progress`.
* **Log lines** go through :class:`ConsoleHandler`, which writes with
  ``tqdm.write`` so that a line never lands on a bar being drawn.
* **Data summaries** (clip counts, feature caches) are printed once per
  command (:class:`RepeatTrimmer`), however many runs load the same data;
  each run's ``train.log`` still records them.
* **The command line** of the call (:func:`command_line`) is kept for the
  run records.
* **Under torchrun** only rank 0 prints information; the other ranks print
  warnings and errors, prefixed with their rank (:func:`command_console`).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

#: The process-wide progress-bar switch: ``None`` = as each caller asks, ``False`` = no bar anywhere.
_progress: bool | None = None

#: The command line the command-line interface was called with (``None``: the process's ``sys.argv``).
_command: list[str] | None = None

#: Loggers of data summaries: the console shows each of their lines once per command (:class:`RepeatTrimmer`).
DATA_LOGGERS: tuple[str, ...] = ("audioadapt.data", "audioadapt.features", "audioadapt.training.sed_data",
                                 "audioadapt.training.ser_data")

#: Format of a console log line.
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"


def set_progress(enabled: bool | None) -> None:
    """Set the process-wide progress-bar switch (``False``: no bar anywhere; ``None``: as callers ask)."""
    global _progress
    _progress = enabled


def show_progress(requested: bool = True) -> bool:
    """Whether a bar a caller asks for (``requested``) is shown."""
    return bool(requested) and _progress is not False


def stderr_is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False


def set_command(argv: list[str] | None) -> None:
    """Record the command line of this call (``["audioadapt", "sed", "train", ...]``) for the run records."""
    global _command
    _command = None if argv is None else [str(a) for a in argv]


def command_line() -> list[str]:
    """The command line of this process: the recorded one, else ``sys.argv``."""
    return list(_command) if _command is not None else list(sys.argv)


def launch_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank as torchrun sets it (``RANK``); 0 when unset or unreadable."""
    text = (os.environ if env is None else env).get("RANK", "")
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


class RepeatTrimmer:
    """What the console shows of a record of :data:`DATA_LOGGERS`: only what it has not shown yet.

    A one-line record is shown once. A data summary (a first line, then one
    line per split) is shown with its first line and the lines not shown under
    that first line before, or not at all when there are none: loading the
    training sources after a description of the whole dataset, or a second
    benchmark run on the same data, repeats nothing. Records of other loggers
    pass unchanged.
    """

    def __init__(self, loggers: tuple[str, ...] = DATA_LOGGERS):
        self.loggers = loggers
        self.seen: set[tuple[str, str, str | None]] = set()

    def trim(self, record: logging.LogRecord) -> logging.LogRecord | None:
        """``record``, a copy of it without the lines already shown, or ``None`` when nothing is new."""
        if not any(record.name == n or record.name.startswith(n + ".") for n in self.loggers):
            return record
        head, *rest = record.getMessage().splitlines() or [""]
        new = [line for line in rest if (record.name, head, line) not in self.seen]
        if (record.name, head, None) in self.seen and not new:
            return None
        self.seen |= {(record.name, head, None), *((record.name, head, line) for line in rest)}
        if len(new) == len(rest):
            return record
        trimmed = copy.copy(record)
        trimmed.msg, trimmed.args = "\n".join([head, *new]), None
        return trimmed


class ConsoleHandler(logging.Handler):
    """Log lines written through ``tqdm.write``, so they never land on a progress bar.

    Without a fixed ``stream`` it writes to whatever ``sys.stderr`` is at the time.
    Data summaries go through its :class:`RepeatTrimmer` (once per handler, so once per command).
    """

    def __init__(self, stream: TextIO | None = None, level: int = logging.NOTSET):
        super().__init__(level)
        self._stream = stream
        self.trimmer = RepeatTrimmer()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            shown = self.trimmer.trim(record)  # a data summary: only what was not shown yet
            if shown is None:
                return
            stream = self.stream
            tqdm.write(self.format(shown), file=stream)
            stream.flush()
        except RecursionError:  # pragma: no cover - as logging.StreamHandler
            raise
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


@contextmanager
def command_console(verbose: bool = False, *, progress: bool = True, rank: int = 0,
                    stream: TextIO | None = None) -> Iterator[ConsoleHandler]:
    """The console of one command, for its duration: a log handler on the root logger and the progress switch.

    Parameters
    ----------
    verbose: debug records too.
    progress: bars wanted (``--no-progress`` gives ``False``); they are shown
        only when stderr (or ``stream``) is a terminal.
    rank: the process's rank under torchrun: ranks other than 0 show only
        warnings and errors, prefixed with ``[rank N]``, and no bars.
    stream: where log lines go (default: ``sys.stderr`` at the time of each line).

    On exit the handler is removed and the root level and the switch are restored.
    """
    root = logging.getLogger()
    handler = ConsoleHandler(stream)
    prefix = f"[rank {rank}] " if rank else ""
    handler.setFormatter(logging.Formatter(prefix + CONSOLE_FORMAT))
    handler.setLevel(logging.WARNING if rank else logging.DEBUG if verbose else logging.INFO)
    before = (root.level, _progress)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    set_progress(None if progress and not rank and stderr_is_terminal(handler.stream) else False)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        set_progress(before[1])


__all__ = [
    "CONSOLE_FORMAT",
    "ConsoleHandler",
    "DATA_LOGGERS",
    "RepeatTrimmer",
    "command_console",
    "command_line",
    "launch_rank",
    "set_command",
    "set_progress",
    "show_progress",
    "stderr_is_terminal",
]
