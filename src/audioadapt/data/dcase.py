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
is in :mod:`audioadapt.data.corpora.desed`; the headers and the row checks
the readers share are in :mod:`audioadapt.data.dcase_format`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from audioadapt.data.dcase_format import (
    CLIP_END_TOLERANCE,
    DURATIONS_HEADER,
    STRONG_HEADER,
    UNLABELED_HEADER,
    WEAK_HEADER,
    OnError,
    _AudioIndex,
    _check_label,
    _Classes,
    _ClipEnds,
    _parse_time,
    _Read,
    _read,
    _Reader,
    _RowError,
)
from audioadapt.data.manifest import Event, SkipReport


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


# --------------------------------------------------------------------------- strong
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
