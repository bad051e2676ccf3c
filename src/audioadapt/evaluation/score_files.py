"""Frame-score files in sed_scores_eval's format: one TSV per audio file.

A score file holds a header ``onset offset <class 1> <class 2> ...`` and one
row per frame: its onset and offset in seconds and each class's score
(tab-separated). Each frame starts where the previous one ended, so the file
carries the ``frame + 1`` frame boundaries of
:func:`~audioadapt.evaluation.decoding.frame_boundaries`. This is what
``sed_scores_eval.io.write_sed_scores`` writes and ``read_sed_scores`` reads,
and what DCASE task 4 (2023+) asks systems to submit.

A folder of score files names each file after its audio file without the
extension (``clip_01.wav`` -> ``clip_01.tsv``), the audio id by which
sed_scores_eval matches scores, reference events and durations. An audio
file named with a sub-folder (``sub/x.wav``, as ``sed predict`` names files
found in sub-folders) gets ``sub/x.tsv``; :func:`read_score_folder` reads
sub-folders, sed_scores_eval's reader only a flat folder.

Scores are written with the shortest decimal text that reads back to the
same float, so a written folder evaluates exactly like the arrays it came
from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from audioadapt.errors import DataError

#: Extension of a score file.
SCORE_SUFFIX = ".tsv"
#: The first two columns of a score file.
TIME_COLUMNS = ("onset", "offset")
#: Largest gap between a frame's onset and the previous frame's offset (seconds).
BOUNDARY_TOLERANCE = 1e-6


def audio_id(filename: str) -> str:
    """The audio id of a file name: without its extension, as sed_scores_eval matches files."""
    path = PurePosixPath(filename)
    return str(path.with_suffix("")) if path.suffix else str(path)


def audio_ids(filenames: Iterable[str], where: str | Path | None = None) -> dict[str, str]:
    """``{filename: audio id}``; two files with one id (``a.wav``, ``a.flac``) are a :class:`DataError`."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in filenames:
        key = audio_id(name)
        if key in seen and seen[key] != name:
            raise DataError(f"files {seen[key]!r} and {name!r} would share the score file {key}{SCORE_SUFFIX}; "
                            "give them names that differ before the extension", where)
        seen[key] = name
        out[name] = key
    return out


@dataclass(frozen=True)
class ScoreSet:
    """Frame scores of many audio files, keyed by audio id.

    Attributes
    ----------
    classes: the score columns, in order.
    scores: per audio id a ``(frame, class)`` array.
    timestamps: per audio id its ``frame + 1`` frame boundaries in seconds.
    folder: where they were read from (``None`` when built in memory).
    """

    classes: tuple[str, ...]
    scores: dict[str, np.ndarray]
    timestamps: dict[str, np.ndarray]
    folder: Path | None = None

    def end_times(self) -> dict[str, float]:
        """Per audio id the end of its last frame, the clip length when nothing else is known."""
        return {key: float(ts[-1]) for key, ts in self.timestamps.items()}


# --------------------------------------------------------------------------- writing
def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    if not classes:
        raise ValueError("a score file needs at least one class")
    bad = [c for c in classes if not c or c in TIME_COLUMNS or any(ch in c for ch in "\t\r\n")]
    if bad or len(set(classes)) != len(classes):
        raise ValueError(f"class names must be distinct, non-empty, without tabs or line breaks and not "
                         f"{' or '.join(TIME_COLUMNS)}: {list(classes)}")
    return classes


def format_score_file(scores: np.ndarray, timestamps: np.ndarray, classes: Sequence[str]) -> str:
    """The text of one score file (see the module docstring)."""
    classes = _check_classes(classes)
    scores = np.asarray(scores, dtype=np.float64)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise ValueError(f"scores must be (frame, {len(classes)}), got {scores.shape}")
    if timestamps.shape != (len(scores) + 1,):
        raise ValueError(f"timestamps must hold frame + 1 = {len(scores) + 1} boundaries, got {timestamps.shape}")
    if len(scores) == 0:
        raise ValueError("a score file needs at least one frame")
    if not (np.all(np.isfinite(scores)) and np.all(np.diff(timestamps) > 0)):
        raise ValueError("scores must be finite and frame boundaries increasing")
    lines = ["\t".join((*TIME_COLUMNS, *classes))]
    for onset, offset, row in zip(timestamps[:-1].tolist(), timestamps[1:].tolist(), scores.tolist()):
        lines.append("\t".join(map(repr, (onset, offset, *row))))
    return "\n".join(lines) + "\n"


def score_file_paths(folder: str | Path, filenames: Iterable[str]) -> dict[str, Path]:
    """``{filename: folder/<audio id>.tsv}`` (see :func:`audio_ids`)."""
    folder = Path(folder)
    return {name: folder / f"{key}{SCORE_SUFFIX}" for name, key in audio_ids(filenames, folder).items()}


def check_score_folder(folder: str | Path, filenames: Iterable[str]) -> dict[str, Path]:
    """Check, before any work, that the score files of ``filenames`` can go into ``folder``.

    The folder must not hold other files: a stale score file would be
    evaluated with the new ones (and sed_scores_eval refuses anything but
    ``.tsv`` files). Returns the paths of :func:`score_file_paths`.
    """
    folder = Path(folder)
    paths = score_file_paths(folder, filenames)
    if folder.is_dir():
        wanted = {p.resolve() for p in paths.values()}
        others = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                        if not p.is_dir() and p.resolve() not in wanted)
        if others:
            raise DataError(f"the score folder holds {len(others)} other file(s), e.g. {others[0]!r}; write score "
                            "files into a new or empty folder (every file there is read as the scores of one clip)",
                            folder)
    return paths


def write_score_files(folder: str | Path, scores: Mapping[str, np.ndarray], timestamps: Mapping[str, np.ndarray],
                      classes: Sequence[str]) -> dict[str, Path]:
    """Write one score file per ``{filename: (frame, class) scores}`` into ``folder``; returns their paths.

    ``timestamps`` gives each file's ``frame + 1`` boundaries. The folder is
    checked first (:func:`check_score_folder`); every file is written atomically.
    """
    paths = check_score_folder(folder, scores)
    for name, path in paths.items():
        text = format_score_file(scores[name], timestamps[name], classes)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


# --------------------------------------------------------------------------- reading
def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{column} is not a number: {text!r}", path, line) from None
    if not math.isfinite(value):
        raise DataError(f"{column} must be finite, got {text!r}", path, line)
    return value


def read_score_file(path: str | Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """One score file: ``(classes, (frame, class) scores, frame + 1 timestamps)``.

    Every problem is a :class:`DataError` naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the score file: {getattr(exc, 'strerror', None) or exc}", path) from exc
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    if len(header) < 3 or tuple(header[:2]) != TIME_COLUMNS:
        raise DataError(f"expected the header 'onset<TAB>offset<TAB><class>...' of a score file, got "
                        f"{lines[0][:80]!r}" if lines else "the score file is empty", path, 1)
    classes = tuple(header[2:])
    try:
        _check_classes(classes)
    except ValueError as exc:
        raise DataError(str(exc), path, 1) from None
    rows: list[list[float]] = []
    previous_offset = None
    for line_no, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        fields = raw.split("\t")
        if len(fields) != len(header):
            raise DataError(f"expected {len(header)} tab-separated columns, got {len(fields)}", path, line_no)
        values = [_number(f, path, line_no, col) for f, col in zip(fields, header)]
        onset, offset = values[0], values[1]
        if not offset > onset:
            raise DataError(f"the frame ends ({offset}) before it starts ({onset})", path, line_no)
        if previous_offset is not None and abs(onset - previous_offset) > BOUNDARY_TOLERANCE:
            raise DataError(f"the frame starts at {onset} s, not where the previous one ended ({previous_offset} s)",
                            path, line_no)
        previous_offset = offset
        rows.append(values)
    if not rows:
        raise DataError("the score file holds no frames", path)
    table = np.asarray(rows, dtype=np.float64)
    timestamps = np.append(table[:, 0], table[-1, 1])
    return classes, table[:, 2:], timestamps


def read_score_folder(folder: str | Path) -> ScoreSet:
    """Every score file under ``folder`` (sub-folders included), keyed by audio id.

    All files must have the same class columns in the same order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("no such folder of score files" if not folder.exists() else "not a folder of score files",
                        folder)
    files = sorted(p for p in folder.rglob(f"*{SCORE_SUFFIX}") if p.is_file())
    if not files:
        raise DataError(f"the folder holds no score files (*{SCORE_SUFFIX})", folder)
    classes: tuple[str, ...] | None = None
    scores, timestamps = {}, {}
    for path in files:
        found, values, bounds = read_score_file(path)
        if classes is None:
            classes, first = found, path
        elif found != classes:
            raise DataError(f"the class columns differ from those of {first}: {list(found)} instead of "
                            f"{list(classes)}", path, 1)
        key = PurePosixPath(*path.relative_to(folder).with_suffix("").parts)
        scores[str(key)] = values
        timestamps[str(key)] = bounds
    assert classes is not None
    return ScoreSet(classes, scores, timestamps, folder)


__all__ = [
    "BOUNDARY_TOLERANCE",
    "SCORE_SUFFIX",
    "ScoreSet",
    "audio_id",
    "audio_ids",
    "check_score_folder",
    "format_score_file",
    "read_score_file",
    "read_score_folder",
    "score_file_paths",
    "write_score_files",
]
