"""Gather the audio files named on a command line: files, folders and list files.

A folder is searched recursively for :data:`AUDIO_EXTENSIONS` (sorted); a
list file (:data:`LIST_EXTENSIONS`) names one audio file per line, relative
to the list unless absolute (blank lines and ``#`` comments are skipped);
anything else that exists is taken as an audio file as it is.

:func:`collect_named_audio` also gives every file a short name for output
tables: its path relative to the folder it was found in, the path as written
in its list file, or the bare file name of a file given directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from audioadapt.errors import DataError

#: Audio file extensions collected from folders by :func:`collect_audio`.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
#: Extensions of list files (one audio path per line) accepted by :func:`collect_audio`.
LIST_EXTENSIONS = (".txt", ".lst", ".list")


def _read_list(path: Path) -> Iterator[tuple[str, Path]]:
    """``(name, path)`` of each listed file: the relative text as written, else the file name."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        absolute = Path(text).is_absolute()
        item = Path(text) if absolute else path.parent / text
        if not item.is_file():
            raise DataError(f"listed audio file {text!r} does not exist", path, number)
        yield (item.name if absolute else Path(text).as_posix()), item


def _expand(item: str | Path) -> Iterator[tuple[str, Path]]:
    """``(name, path)`` of the audio files one input stands for."""
    path = Path(item)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not found:
            raise DataError(f"no audio file ({', '.join(AUDIO_EXTENSIONS)}) in this folder", path)
        yield from ((p.relative_to(path).as_posix(), p) for p in found)
    elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        yield from _read_list(path)
    elif path.is_file():
        yield path.name, path
    else:
        raise DataError("no such audio file, folder or list", path)


def _named(inputs: Iterable[str | Path]) -> list[tuple[str, Path]]:
    out = [pair for item in inputs for pair in _expand(item)]
    if not out:
        raise DataError("no audio file to predict")
    return out


def collect_audio(inputs: Iterable[str | Path]) -> list[Path]:
    """Audio files from files, folders (searched recursively, sorted) and list files (one path per line)."""
    return [path for _, path in _named(inputs)]


def collect_named_audio(inputs: Iterable[str | Path]) -> dict[str, Path]:
    """Like :func:`collect_audio`, as ``{name: path}`` in input order, each file once.

    A file is named by its path relative to the folder it was found in, by
    its path as written in a list file (the file name for absolute entries),
    or by its file name when given directly. A file reached twice is kept
    once; files from different places whose names clash are named by their
    absolute path instead.
    """
    unique: dict[Path, tuple[str, Path]] = {}
    for name, path in _named(inputs):
        unique.setdefault(path.resolve(), (name, path))
    counts = Counter(name for name, _ in unique.values())
    return {(name if counts[name] == 1 else str(absolute)): path for absolute, (name, path) in unique.items()}


__all__ = ["AUDIO_EXTENSIONS", "LIST_EXTENSIONS", "collect_audio", "collect_named_audio"]
