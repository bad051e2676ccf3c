"""Any speech-emotion corpus described by a CSV manifest.

Format: UTF-8 CSV with a **required header row** naming at least the path and
label columns::

    path,label,speaker
    audio/03a01Fa.flac,happy,03
    audio/03a01Wa.flac,angry,03

* ``path``: the audio file, relative to the CSV's folder (or absolute);
* ``label``: one of ``angry happy sad neutral``, or a native label mapped
  through ``label_map`` (a value of ``None`` in the map drops that label);
  any other value, an empty cell included, is a bad row (an error naming
  the line, or a counted skip with ``on_error="skip"``) unless the map
  names it (``{"": None}`` drops rows without a label);
* ``speaker`` (optional): speaker id, empty for unknown;
* ``gender`` (optional): F/M/female/male;
* ``id`` (optional): utterance id (default: the file stem);
* every other column is kept in :attr:`Utterance.extra` as text.

Column names can be changed (``label_column="emotion4"`` reads the manifests
of re-packed copies such as ``path,emotion7,emotion4,speaker,...``, with
``label_map={"": None}`` where that column is empty for emotions outside the
four). Rows whose label maps to ``None`` are dropped unless
``keep_unmapped=True``; then they, and rows with an empty label, are kept
with ``label=None``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from audioadapt.data.corpora._common import OnError, Problems, read_text, referenced_audio, unique_ids
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import EMOTIONS, Utterance, normalize_gender
from audioadapt.errors import ConfigError, DataError

#: File name looked for when ``root`` is a folder.
MANIFEST_NAME = "manifest.csv"


def _csv_path(root: Path) -> Path:
    if root.is_dir():
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise DataError(f"no {MANIFEST_NAME} in this folder; pass the CSV file itself", root)
        return path
    if not root.is_file():
        raise DataError("manifest CSV not found", root)
    return root


def _check_label_map(label_map: Mapping[str, str | None] | None) -> dict[str, str | None]:
    if label_map is None:
        return {}
    bad = {k: v for k, v in label_map.items() if v is not None and v not in EMOTIONS}
    if bad:
        raise ConfigError(f"label_map values must be one of {list(EMOTIONS)} or None, got {bad}")
    return dict(label_map)


def prepare_csv(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
    label_map: Mapping[str, str | None] | None = None,
    corpus: str | None = None,
    path_column: str = "path",
    label_column: str = "label",
    speaker_column: str = "speaker",
    gender_column: str = "gender",
    id_column: str = "id",
) -> list[Utterance]:
    """Read utterances from a CSV manifest (see the module docstring).

    Parameters
    ----------
    root: the CSV file, or a folder holding ``manifest.csv``.
    on_error: ``"raise"`` (default) or ``"skip"`` bad rows, recording them in ``report``.
    report: collects skipped rows when ``on_error="skip"``.
    keep_unmapped: keep rows without a shared label, with ``label=None``.
    check_audio: also read each audio header with soundfile.
    label_map: native label -> shared emotion (or ``None`` to drop it).
    corpus: corpus name of the utterances (default: the CSV's folder name).
    path_column, label_column, speaker_column, gender_column, id_column:
        column names; only the path and label columns are required.

    Returns
    -------
    list[Utterance]
        Sorted by utterance id.
    """
    problems = Problems(corpus or "csv", on_error, report)
    mapping = _check_label_map(label_map)
    csv_path = _csv_path(Path(root))
    corpus = problems.corpus = corpus or csv_path.resolve().parent.name or "csv"
    reader = csv.reader(io.StringIO(read_text(csv_path), newline=""))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        expected = f"{path_column},{label_column}[,{speaker_column}]"
        raise DataError(f"empty first line; expected a header row '{expected}'", csv_path, 1)
    header = [h.strip() for h in header]
    missing = [c for c in (path_column, label_column) if c not in header]
    if missing:
        raise DataError(
            f"header lacks column(s) {missing}; found {header}. The first row must name the columns, "
            f"e.g. '{path_column},{label_column},{speaker_column}'",
            csv_path,
            1,
        )
    known = {path_column, label_column, speaker_column, gender_column, id_column}
    utterances = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems(f"expected {len(header)} fields ({','.join(header)}), found {len(row)}", csv_path, line)
            continue
        cells = {name: cell.strip() for name, cell in zip(header, row)}
        raw = cells[label_column]
        if raw in mapping:
            label = mapping[raw]
        elif raw in EMOTIONS:
            label = raw
        elif raw == "" and keep_unmapped:
            label = None
        elif raw == "":
            problems(f"empty {label_column!r}; expected one of {list(EMOTIONS)} (fill it in, or skip such "
                     "rows with the corpus's on_error=skip)", csv_path, line)
            continue
        else:
            hint = " or a key of label_map" if mapping else "; pass label_map to map native labels"
            problems(f"unknown label {raw!r}; expected one of {list(EMOTIONS)}{hint}", csv_path, line)
            continue
        if label is None and not keep_unmapped:
            continue
        try:
            gender = normalize_gender(cells.get(gender_column))
        except ValueError as exc:
            problems(str(exc), csv_path, line)
            continue
        if not cells[path_column]:
            problems(f"empty {path_column!r}", csv_path, line)
            continue
        audio = Path(cells[path_column])
        audio = audio if audio.is_absolute() else csv_path.parent / audio
        try:
            info = referenced_audio(audio if audio.exists() else None, audio, csv_path, line, check_audio, exact=True)
        except DataError as exc:
            problems.record(exc)
            continue
        extra = {k: v for k, v in cells.items() if k not in known and v != ""}
        extra.update(info)
        utterances.append(
            Utterance(
                path=audio,
                label=label,
                speaker=cells.get(speaker_column) or None,
                corpus=corpus,
                utt_id=cells.get(id_column) or audio.stem,
                gender=gender,
                native_label=raw or None,
                extra=extra,
            )
        )
    return problems.finish(unique_ids(utterances, problems))
