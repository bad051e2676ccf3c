"""A small reader for Praat TextGrid files (long and short text formats).

Both text formats hold the same sequence of values; the long format only adds
labels (``xmin =``, ``item [1]:``, ``intervals: size =``). The reader
therefore tokenises the file into numbers, strings and ``<exists>``/
``<absent>`` flags, skipping labels, bracketed indices and ``!`` comments, and
reads the values in order::

    "ooTextFile" "TextGrid" xmin xmax <exists> n_tiers
    per tier:  "IntervalTier" name xmin xmax n  then n x (xmin xmax text)
           or  "TextTier"     name xmin xmax n  then n x (time mark)

Strings are in double quotes, a doubled quote ``""`` stands for one quote,
and strings may span lines. Files are decoded from UTF-16 (with a byte-order
mark, as Praat writes non-ASCII text), UTF-8, or else Latin-1. The binary
format is not supported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from audioadapt.errors import DataError


@dataclass(frozen=True)
class Interval:
    """A labelled stretch ``[xmin, xmax]`` in seconds."""

    xmin: float
    xmax: float
    text: str


@dataclass(frozen=True)
class Point:
    """A labelled instant in seconds."""

    time: float
    mark: str


@dataclass(frozen=True)
class Tier:
    """One tier: ``kind`` is ``"interval"`` (items are :class:`Interval`) or ``"point"``."""

    name: str
    kind: str
    xmin: float
    xmax: float
    items: tuple[Interval, ...] | tuple[Point, ...]


@dataclass(frozen=True)
class TextGrid:
    """The tiers of a TextGrid, in file order."""

    xmin: float
    xmax: float
    tiers: tuple[Tier, ...]

    def tier(self, name: str) -> Tier | None:
        """The first tier called ``name``, or ``None``."""
        return next((t for t in self.tiers if t.name == name), None)

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLAGS = ("<exists>", "<absent>")


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "str" or "flag"
    value: str
    line: int


def _tokens(text: str, path: Path | None) -> Iterator[_Token]:
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace() or c in "=:?":
            i += 1
        elif c == "!":  # comment to the end of the line
            while i < n and text[i] != "\n":
                i += 1
        elif c == "[":  # index label such as item [1]: or item []:
            end = text.find("]", i)
            if end < 0:
                raise DataError("unclosed '['", path, line)
            line += text.count("\n", i, end)
            i = end + 1
        elif c == '"':
            start_line, parts, i = line, [], i + 1
            while True:
                end = text.find('"', i)
                if end < 0:
                    raise DataError("unterminated string", path, start_line)
                parts.append(text[i:end])
                line += text.count("\n", i, end)
                if text.startswith('""', end):
                    parts.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            yield _Token("str", "".join(parts), start_line)
        elif c == "<":
            flag = next((f for f in _FLAGS if text.startswith(f, i)), None)
            if flag is None:
                raise DataError(f"unexpected text {text[i:i + 12]!r}", path, line)
            yield _Token("flag", flag, line)
            i += len(flag)
        elif (m := _NUMBER.match(text, i)) is not None:
            yield _Token("num", m.group(), line)
            i = m.end()
        elif (m := _WORD.match(text, i)) is not None:  # a label such as xmin or intervals
            i = m.end()
        else:
            raise DataError(f"unexpected character {c!r}", path, line)


class _Reader:
    def __init__(self, text: str, path: Path | None) -> None:
        self._tokens = _tokens(text, path)
        self._path = path
        self._line = 1

    def _next(self, what: str) -> _Token:
        token = next(self._tokens, None)
        if token is None:
            raise DataError(f"file ends early; expected {what}", self._path, self._line)
        self._line = token.line
        return token

    def string(self, what: str) -> str:
        token = self._next(what)
        if token.kind != "str":
            raise DataError(f"expected {what} (a quoted string), found {token.value!r}", self._path, token.line)
        return token.value

    def number(self, what: str) -> float:
        token = self._next(what)
        if token.kind != "num":
            raise DataError(f"expected {what} (a number), found {token.value!r}", self._path, token.line)
        return float(token.value)

    def count(self, what: str) -> int:
        value = self.number(what)
        if value < 0 or value != int(value):
            raise DataError(f"expected {what} (a count), found {value}", self._path, self._line)
        return int(value)

    def flag(self) -> bool:
        token = self._next("<exists> or <absent>")
        if token.kind == "flag":
            return token.value == "<exists>"
        raise DataError(f"expected <exists> or <absent>, found {token.value!r}", self._path, token.line)

    def tier(self) -> Tier:
        kind = self.string("tier class")
        name = self.string("tier name")
        xmin, xmax = self.number("tier xmin"), self.number("tier xmax")
        n = self.count("number of items")
        if kind == "IntervalTier":
            intervals = tuple(Interval(self.number("xmin"), self.number("xmax"), self.string("text")) for _ in range(n))
            return Tier(name, "interval", xmin, xmax, intervals)
        if kind == "TextTier":
            points = tuple(Point(self.number("time"), self.string("mark")) for _ in range(n))
            return Tier(name, "point", xmin, xmax, points)
        raise DataError(f"unknown tier class {kind!r} (expected IntervalTier or TextTier)", self._path, self._line)


def parse_textgrid(text: str, path: str | Path | None = None) -> TextGrid:
    """Parse the text of a TextGrid (long or short format).

    Raises
    ------
    DataError
        Naming ``path`` and the line when the text is not a valid TextGrid.
    """
    path = None if path is None else Path(path)
    reader = _Reader(text, path)
    file_type = reader.string('file type ("ooTextFile")')
    if not file_type.startswith("ooTextFile"):
        raise DataError(f"not a Praat text file (file type {file_type!r})", path, 1)
    object_class = reader.string('object class ("TextGrid")')
    if object_class != "TextGrid":
        raise DataError(f"not a TextGrid (object class {object_class!r})", path, reader._line)
    xmin, xmax = reader.number("xmin"), reader.number("xmax")
    tiers = tuple(reader.tier() for _ in range(reader.count("number of tiers"))) if reader.flag() else ()
    return TextGrid(xmin, xmax, tiers)


def decode_textgrid(raw: bytes) -> str:
    """Decode TextGrid bytes: UTF-16 with a byte-order mark, UTF-8, else Latin-1."""
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_textgrid(path: str | Path) -> TextGrid:
    """Read a TextGrid file (long or short text format)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read TextGrid: {exc.strerror or exc}", path) from exc
    if raw.startswith(b"ooBinaryFile"):
        raise DataError("binary TextGrid files are not supported; save it as a text file in Praat", path)
    return parse_textgrid(decode_textgrid(raw), path)
