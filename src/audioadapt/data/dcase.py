"""DCASE task 4 metadata: tab-separated strong, weak and unlabeled files.

Formats (DCASE 2019 / DESED, with a header row):

* strong: ``filename onset offset event_label``; a row with empty onset,
  offset and label (or the file name alone, where an editor stripped the
  trailing tabs) marks a clip that contains no event;
* weak: ``filename event_labels`` with comma-separated labels (an empty
  field means a clip known to hold no event);
* unlabeled: ``filename``;
* durations: ``filename duration``.

Readers check the header and every row. The header may list the expected
columns in another order (e.g. ``filename event_label onset offset``, as some
systems write predictions); columns are then matched by name. A row whose
columns are separated by spaces instead of tabs is named as such. A bad row
raises :class:`~audioadapt.errors.DataError` naming the file and the 1-based
line; with ``on_error="skip"`` the row is recorded in a
:class:`~audioadapt.data.manifest.SkipReport` instead and reading goes on.

Known classes: given a class list (and, for the message, where it comes
from), any other label is a bad row.

Clip ends: a strong event must end within its clip, whose length is the
shortest of what is known about it: the listed duration (``durations``) and
the audio file's own length (read from its header when ``audio_dir`` is
given; a truncated file counts with the samples it really holds). An event
that ends later (beyond :data:`CLIP_END_TOLERANCE`) is a bad row; in skip mode
it is cut at the clip's end instead (counted and logged), and an event that
starts after the end is skipped.

Duplicate rules (the same file named on several rows):

* strong: many event rows per file are normal. A row identical to an earlier
  one (same file, times and label, or a second empty-event row) is dropped
  with a warning, in both modes. A file with both an empty-event row and
  events is an error.
* weak and durations: an identical repeated row is dropped with a warning; a
  repeat with different tags (or duration) is an error.
* unlabeled: any repeated file name is an error.

In skip mode a clip whose rows conflict is dropped completely, since neither
version of its labels can be trusted; its later rows are reported as well.
Blank lines are ignored.

Loading a whole dataset in the DESED 2019 layout (with clip counts per split)
is in :mod:`audioadapt.data.corpora.desed`.
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


# --------------------------------------------------------------------------- writers
def _fmt_time(t: float) -> str:
    return f"{t:.3f}"


def _write_lines(path: str | Path, lines: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _strong_lines(clips: Mapping[str, Iterable[Event]]) -> list[str]:
    lines = ["filename\tonset\toffset\tevent_label"]
    for filename, events in clips.items():
        events = sorted(events)
        if not events:
            lines.append(f"{filename}\t\t\t")
        for ev in events:
            lines.append(f"{filename}\t{_fmt_time(ev.onset)}\t{_fmt_time(ev.offset)}\t{ev.label}")
    return lines


def format_strong_tsv(clips: Mapping[str, Iterable[Event]]) -> str:
    """The text :func:`write_strong_tsv` writes (e.g. to print it)."""
    return "\n".join(_strong_lines(clips)) + "\n"


def write_strong_tsv(path: str | Path, clips: Mapping[str, Iterable[Event]]) -> Path:
    """Write strong labels; a clip without events gets one empty-event row."""
    return _write_lines(path, _strong_lines(clips))


def write_weak_tsv(path: str | Path, clips: Mapping[str, Iterable[str]]) -> Path:
    """Write weak labels (sorted, comma-separated)."""
    lines = ["filename\tevent_labels"]
    for filename, tags in clips.items():
        lines.append(f"{filename}\t{','.join(sorted(tags))}")
    return _write_lines(path, lines)


def write_unlabeled_tsv(path: str | Path, filenames: Iterable[str]) -> Path:
    """Write an unlabeled list."""
    return _write_lines(path, ["filename", *filenames])


def write_durations_tsv(path: str | Path, durations: Mapping[str, float]) -> Path:
    """Write a ``filename duration`` file (needed by PSDS and segment metrics)."""
    lines = ["filename\tduration"] + [f"{f}\t{d:.3f}" for f, d in durations.items()]
    return _write_lines(path, lines)


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


# --------------------------------------------------------------------------- strong
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


def _strong(
    path: str | Path,
    *,
    classes: Iterable[str] | None = None,
    classes_from: str | None = None,
    audio_dir: str | Path | None = None,
    durations: Mapping[str, float] | None = None,
    on_error: str = "raise",
    report: SkipReport | None = None,
) -> _Read:
    known = _Classes.of(classes, classes_from)
    audio = _AudioIndex(audio_dir)
    ends = _ClipEnds(audio, durations)

    def parse(fields: list[str]) -> Event | None:
        _, onset, offset, label = fields
        if not (onset or offset or label):
            return None
        if not (onset and offset and label):
            raise _RowError("partially empty row: onset, offset and event_label must all be set or all be empty")
        ev = Event(_parse_time(onset, "onset"), _parse_time(offset, "offset"), label)
        if ev.onset >= ev.offset:
            raise _RowError(f"onset {ev.onset} is not before offset {ev.offset}")
        _check_label(label, known)
        return ev

    def merge(reader: _Reader, out: dict, line: int, filename: str, ev: Event | None) -> None:
        if ev is not None:
            ev = ends.fit(reader, line, filename, ev)
        rows = out.setdefault(filename, {})  # event (None = empty marker) -> first line
        if ev in rows:
            reader.duplicate(line, rows[ev], filename)
        elif (ev is None and rows) or (ev is not None and None in rows):
            first = min(rows.values())
            reader.conflict(line, f"'{filename}' has both an empty-event row and events (see line {first})", filename)
        else:
            rows[ev] = line

    result = _read(path, STRONG_HEADER, parse, merge, audio, on_error, report)
    result.value = {f: tuple(sorted(e for e in rows if e is not None)) for f, rows in result.value.items()}
    return result


def read_strong_tsv(
    path: str | Path,
    *,
    classes: Iterable[str] | None = None,
    classes_from: str | None = None,
    audio_dir: str | Path | None = None,
    durations: Mapping[str, float] | None = None,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
) -> dict[str, tuple[Event, ...]]:
    """Read a strong-label file.

    Parameters
    ----------
    path: the TSV file (header ``filename onset offset event_label``).
    classes: if given, any other label is an error.
    classes_from: where ``classes`` comes from (e.g. a file), named in the
        error about an unknown label.
    audio_dir: if given, every listed file must exist there, and its events
        must end within its audio.
    durations: clip lengths by file name (e.g. :func:`read_durations_tsv`);
        events must end within them.
    on_error: ``"raise"`` (default) or ``"skip"`` bad rows into ``report``
        (events past a clip's end are then cut at the end, and logged).
    report: collects skipped rows (and ignored duplicates).

    Returns
    -------
    File name -> its events sorted by onset, in file order; a clip marked by
    the empty-event row maps to ``()``.
    """
    return _strong(path, classes=classes, classes_from=classes_from, audio_dir=audio_dir, durations=durations,
                   on_error=on_error, report=report).value


# --------------------------------------------------------------------------- weak
def _weak(
    path: str | Path,
    *,
    classes: Iterable[str] | None = None,
    classes_from: str | None = None,
    audio_dir: str | Path | None = None,
    on_error: str = "raise",
    report: SkipReport | None = None,
) -> _Read:
    known = _Classes.of(classes, classes_from)

    def parse(fields: list[str]) -> frozenset[str]:
        text = fields[1]
        if not text:
            return frozenset()
        labels = [t.strip() for t in text.split(",")]
        if any(not t for t in labels):
            raise _RowError(f"empty label in '{text}'")
        for label in labels:
            _check_label(label, known)
        return frozenset(labels)

    def merge(reader: _Reader, out: dict, line: int, filename: str, tags: frozenset[str]) -> None:
        if filename not in out:
            out[filename] = (tags, line)
        elif out[filename][0] == tags:
            reader.duplicate(line, out[filename][1], filename)
        else:
            first_tags, first = out[filename]
            reader.conflict(
                line,
                f"'{filename}' is listed again with different tags {sorted(tags)} "
                f"(line {first} has {sorted(first_tags)})",
                filename,
            )

    result = _read(path, WEAK_HEADER, parse, merge, _AudioIndex(audio_dir), on_error, report)
    result.value = {f: tags for f, (tags, _) in result.value.items()}
    return result


def read_weak_tsv(
    path: str | Path,
    *,
    classes: Iterable[str] | None = None,
    classes_from: str | None = None,
    audio_dir: str | Path | None = None,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
) -> dict[str, frozenset[str]]:
    """Read a weak-label file (header ``filename event_labels``).

    Parameters as :func:`read_strong_tsv`. Returns file name -> clip tags, in
    file order.
    """
    return _weak(path, classes=classes, classes_from=classes_from, audio_dir=audio_dir, on_error=on_error,
                 report=report).value


# --------------------------------------------------------------------------- unlabeled
def _unlabeled(
    path: str | Path,
    *,
    audio_dir: str | Path | None = None,
    on_error: str = "raise",
    report: SkipReport | None = None,
) -> _Read:
    def merge(reader: _Reader, out: dict, line: int, filename: str, _: object) -> None:
        if filename in out:
            reader.fail(line, f"duplicate file name '{filename}' (first at line {out[filename]})")
        else:
            out[filename] = line

    result = _read(path, UNLABELED_HEADER, lambda fields: None, merge, _AudioIndex(audio_dir), on_error, report)
    result.value = list(result.value)
    return result


def read_unlabeled_tsv(
    path: str | Path,
    *,
    audio_dir: str | Path | None = None,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
) -> list[str]:
    """Read an unlabeled list (header ``filename``); returns the names in file order.

    A repeated name is an error; in skip mode the repeat is skipped and the
    first occurrence kept.
    """
    return _unlabeled(path, audio_dir=audio_dir, on_error=on_error, report=report).value


# --------------------------------------------------------------------------- durations
def read_durations_tsv(
    path: str | Path,
    *,
    audio_dir: str | Path | None = None,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
) -> dict[str, float]:
    """Read a ``filename duration`` file; durations must be positive seconds."""

    def parse(fields: list[str]) -> float:
        value = _parse_time(fields[1], "duration")
        if value == 0:
            raise _RowError("duration is zero")
        return value

    def merge(reader: _Reader, out: dict, line: int, filename: str, value: float) -> None:
        if filename not in out:
            out[filename] = (value, line)
        elif out[filename][0] == value:
            reader.duplicate(line, out[filename][1], filename)
        else:
            reader.conflict(
                line, f"'{filename}' is listed again with duration {value} (line {out[filename][1]})", filename
            )

    result = _read(path, DURATIONS_HEADER, parse, merge, _AudioIndex(audio_dir), on_error, report)
    return {f: v for f, (v, _) in result.value.items()}


__all__ = [
    "CLIP_END_TOLERANCE",
    "DURATIONS_HEADER",
    "STRONG_HEADER",
    "UNLABELED_HEADER",
    "WEAK_HEADER",
    "format_strong_tsv",
    "read_durations_tsv",
    "read_strong_tsv",
    "read_unlabeled_tsv",
    "read_weak_tsv",
    "write_durations_tsv",
    "write_strong_tsv",
    "write_unlabeled_tsv",
    "write_weak_tsv",
]
