"""The DCASE TSV formats and the row checks their readers share.

:mod:`audioadapt.data.dcase` reads and writes the files; this module holds
the headers, the shared reading loop (:func:`_read`: header check, per-row
column, label, audio and clip-end checks, skip mode) and the error it turns a
bad row into. Its contents are private to the readers except the headers and
:data:`CLIP_END_TOLERANCE`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from audioadapt.audio.io import audio_info
from audioadapt.data.manifest import Event, SkipReport
from audioadapt.errors import AudioError, ConfigError, DataError

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]

STRONG_HEADER = ("filename", "onset", "offset", "event_label")
WEAK_HEADER = ("filename", "event_labels")
UNLABELED_HEADER = ("filename",)
DURATIONS_HEADER = ("filename", "duration")
_KINDS = {
    STRONG_HEADER: "strong-label",
    WEAK_HEADER: "weak-label",
    UNLABELED_HEADER: "unlabeled",
    DURATIONS_HEADER: "durations",
}
#: Columns that hold numbers (seconds).
_NUMERIC_COLUMNS = frozenset({"onset", "offset", "duration"})
#: Seconds an event may end past its clip's end (rounded times) before it counts as past the end.
CLIP_END_TOLERANCE = 0.01


# --------------------------------------------------------------------------- reading machinery
class _RowError(Exception):
    """A bad row; carries only the reason (the reader adds file and line)."""


class _AudioIndex:
    """Existence checks for audio files (listing each folder once) and their lengths."""

    def __init__(self, audio_dir: str | Path | None):
        self.root = None if audio_dir is None else Path(audio_dir)
        self._listings: dict[Path, frozenset[str]] = {}
        self._seconds: dict[str, float | None] = {}

    def seconds(self, filename: str) -> float | None:
        """The length of a listed file's audio; ``None`` without an audio folder or a readable header.

        An unreadable file is left to the feature cache, which reports it.
        """
        if self.root is None:
            return None
        if filename not in self._seconds:
            try:
                self._seconds[filename] = audio_info(self.root / filename).duration
            except AudioError:
                self._seconds[filename] = None
        return self._seconds[filename]

    def check(self, filename: str) -> None:
        if self.root is None:
            return
        path = self.root / filename
        folder = path.parent
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[folder] = frozenset()
        if path.name not in self._listings[folder]:
            raise _RowError(f"audio file not found: {path}")


class _Reader:
    """Line-by-line TSV reading with header check and raise/skip handling."""

    def __init__(self, path: str | Path, header: tuple[str, ...], on_error: str, report: SkipReport | None):
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path = Path(path)
        self.header = header
        self.on_error = on_error
        self.outer_report = report
        self.report = SkipReport()
        self.clipped = SkipReport()  # rows whose event was cut at the clip's end (skip mode)
        self.dropped: dict[str, int] = {}  # filename -> line of the conflict that dropped it
        self.order: list[int] | None = None  # column permutation when the header reorders them

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(line_number, fields)`` for each non-blank data row."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise DataError("metadata file not found", self.path) from None
        except OSError as exc:
            raise DataError(f"cannot read metadata file: {exc.strerror or exc}", self.path) from exc
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            raise DataError(f"empty file; expected the header {_show(self.header)}", self.path)
        for number, raw in enumerate(lines, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as exc:
                if number == 1:
                    raise DataError(f"header is not valid UTF-8 ({exc.reason})", self.path, 1) from None
                self.fail(number, f"not valid UTF-8 text ({exc.reason} at byte {exc.start})")
                continue
            fields = [f.strip() for f in text.split("\t")]
            if number == 1:
                self._check_header(tuple(fields))
                continue
            if not text.strip():
                continue
            if self.order is not None and len(fields) == len(self.order):
                fields = [fields[i] for i in self.order]
            yield number, fields

    def _check_header(self, found: tuple[str, ...]) -> None:
        if found == self.header:
            return
        if len(found) == len(self.header) and set(found) == set(self.header):
            self.order = [found.index(name) for name in self.header]
            return
        kind = _KINDS.get(found)
        hint = f" (this looks like a {kind} file)" if kind else ""
        if len(found) < len(self.header) and set(" ".join(found).split()) == set(self.header):
            hint = "; the columns are separated by spaces: separate them with tabs"
        raise DataError(
            f"expected a {_KINDS[self.header]} header {_show(self.header)}, got {_show(found)}{hint}",
            self.path,
            1,
        )

    def fail(self, line: int, reason: str) -> None:
        """Raise, or record the row as skipped."""
        if self.on_error == "raise":
            raise DataError(reason, self.path, line)
        self.report.add(self.path, line, reason)

    def duplicate(self, line: int, first: int, filename: str) -> None:
        """An identical repeated row: always a warning-level skip."""
        self.report.add(self.path, line, f"identical duplicate of line {first} for '{filename}' ignored")

    def conflict(self, line: int, reason: str, filename: str) -> None:
        """Conflicting rows for one file: raise, or drop the whole clip."""
        self.fail(line, reason if self.on_error == "raise" else f"{reason}; clip dropped")
        self.dropped[filename] = line

    def is_dropped(self, line: int, filename: str) -> bool:
        if filename not in self.dropped:
            return False
        first = self.dropped[filename]
        self.report.add(self.path, line, f"'{filename}' was dropped after the conflict at line {first}")
        return True

    def clip(self, line: int, reason: str) -> None:
        """A row whose event was cut at the end of its clip (skip mode)."""
        self.clipped.add(self.path, line, reason)

    def finish(self) -> None:
        """Log what was skipped or cut and pass the skipped rows on to the caller's report."""
        if self.outer_report is not None:
            self.outer_report.skipped.extend(self.report.skipped)
        if len(self.report):
            logger.warning("%s: %s", self.path, self.report.summary())
        if len(self.clipped):
            logger.warning("%s: %s", self.path, self.clipped.summary(heading="cut {n} event(s) at their clip's end"))


def _show(fields: Iterable[str]) -> str:
    return "'" + "<TAB>".join(fields) + "'"


def _parse_time(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"{name} '{text}' is not a number") from None
    if not math.isfinite(value):
        raise _RowError(f"{name} '{text}' is not a finite number")
    if value < 0:
        raise _RowError(f"{name} {value} is negative")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _spaces_for_tabs(fields: list[str], header: tuple[str, ...]) -> bool:
    """Whether ``fields`` are the ``header``'s columns separated by spaces instead of tabs."""
    words = " ".join(fields).split()
    if len(fields) == len(header) or len(words) != len(header):
        return False
    return all(_is_number(w) for w, name in zip(words, header) if name in _NUMERIC_COLUMNS)


def _check_columns(fields: list[str], header: tuple[str, ...]) -> None:
    if _spaces_for_tabs(fields, header):
        raise _RowError(f"expected {len(header)} tab-separated columns, found spaces; separate the columns "
                        f"{_show(header)} with tabs")
    if header == STRONG_HEADER and len(fields) == 1:
        fields.extend(["", "", ""])  # a filename alone: an empty-event row whose tabs were stripped
    if len(fields) != len(header):
        raise _RowError(
            f"expected {len(header)} tab-separated column(s) {_show(header)}, got {len(fields)}"
        )
    if not fields[0]:
        raise _RowError("empty filename")


@dataclass(frozen=True)
class _Classes:
    """A known class list and where it comes from (for the message)."""

    names: frozenset[str]
    origin: str | None

    @classmethod
    def of(cls, classes: Iterable[str] | None, origin: str | None) -> "_Classes | None":
        return None if classes is None else cls(frozenset(classes), origin)

    def check(self, label: str) -> None:
        if label in self.names:
            return
        where = f" (from {self.origin})" if self.origin else ""
        raise _RowError(f"unknown label '{label}'; the classes{where} are {', '.join(sorted(self.names))}: "
                        "fix the label or the class list")


def _check_label(label: str, classes: _Classes | None) -> None:
    if classes is not None:
        classes.check(label)


@dataclass
class _Read:
    """A reader's result plus the distinct file names the metadata listed."""

    value: object
    listed: set[str] = field(default_factory=set)
    clipped: int = 0


def _read(
    path: str | Path,
    header: tuple[str, ...],
    parse: Callable[[list[str]], object],
    merge: Callable[[_Reader, dict, int, str, object], None],
    audio: _AudioIndex,
    on_error: str,
    report: SkipReport | None,
) -> _Read:
    """Shared loop: parse each row, check audio, and ``merge`` it into a dict (a ``_RowError`` there is a bad row)."""
    reader = _Reader(path, header, on_error, report)
    out: dict = {}
    listed: set[str] = set()
    for line, fields in reader.rows():
        try:
            _check_columns(fields, header)
            filename = fields[0]
            listed.add(filename)
            if reader.is_dropped(line, filename):
                continue
            value = parse(fields)
            audio.check(filename)
            merge(reader, out, line, filename, value)
        except _RowError as exc:
            reader.fail(line, str(exc))
    for filename in reader.dropped:
        out.pop(filename, None)
    reader.finish()
    return _Read(out, listed, len(reader.clipped))


class _ClipEnds:
    """The known length of each clip: its listed duration and its audio's length, whichever is shorter."""

    def __init__(self, audio: _AudioIndex, durations: Mapping[str, float] | None):
        self.audio = audio
        self.durations = durations or {}

    def end(self, filename: str) -> tuple[float, str] | None:
        """``(seconds, what says so)``, or ``None`` if nothing is known."""
        known = []
        if filename in self.durations:
            known.append((float(self.durations[filename]), "its listed duration is"))
        seconds = self.audio.seconds(filename)
        if seconds is not None:
            known.append((seconds, "its audio lasts"))
        return min(known) if known else None

    def fit(self, reader: _Reader, line: int, filename: str, ev: Event) -> Event:
        """``ev`` if it ends within its clip; else a bad row, or (skip mode) ``ev`` cut at the clip's end."""
        end = self.end(filename)
        if end is None or ev.offset <= end[0] + CLIP_END_TOLERANCE:
            return ev
        seconds, what = end
        clip = f"'{filename}' ({what} {seconds:.3f} s)"
        if ev.onset >= seconds:
            raise _RowError(f"event {ev.onset:g}-{ev.offset:g} s starts after the end of clip {clip}; "
                            "fix the times or the audio file")
        if reader.on_error == "raise":
            raise _RowError(f"offset {ev.offset:g} s lies past the end of clip {clip}; fix the offset or the "
                            "audio file (with on_error=skip such events are cut at the clip's end)")
        reader.clip(line, f"offset {ev.offset:g} s cut to the end of clip {clip}")
        return Event(ev.onset, seconds, ev.label)
