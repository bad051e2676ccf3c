"""Error types shared by the whole package.

Every error that comes from bad user input carries the offending file (and
line, where there is one) so that the message alone tells the user what to fix.
"""

from __future__ import annotations

from pathlib import Path


class AudioadaptError(Exception):
    """Base class of all errors raised on purpose by audioadapt."""


class ConfigError(AudioadaptError, ValueError):
    """An invalid configuration value, key or preset."""


class DataError(AudioadaptError, ValueError):
    """Bad input data: a file or a row that cannot be used.

    Parameters
    ----------
    message:
        What is wrong.
    path:
        The file concerned, if any.
    line:
        1-based line number inside ``path``, if any.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.reason = message
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(f"{where}{message}")


class AudioError(DataError):
    """An audio file that cannot be read or holds no usable signal."""


class CheckpointError(AudioadaptError):
    """A checkpoint that cannot be loaded or does not match the request."""
