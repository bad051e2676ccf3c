"""ShEMO, the Sharif Emotional Speech Database (Persian radio plays).

Layout (``female.zip`` and ``male.zip`` unpacked next to ``shemo.json``)::

    shemo.json
    female/<id>.wav        e.g. female/F03S02.wav
    male/<id>.wav          e.g. male/M01F01.wav

``shemo.json`` comes in two published forms, both accepted:

* an object ``{"F21N37": {"speaker_id": "F21", "gender": "female",
  "emotion": "neutral", "transcript": ..., "ipa": ...}, ...}``;
* an older list ``[{"id": "F21N37", "gender": ..., "emotion": ..., ...}, ...]``
  without ``speaker_id``.

Without ``shemo.json`` the labels and speakers are read from the file ids.

File id ``GssEnn``: ``G`` gender (F/M), ``ss`` speaker number, ``E`` emotion
letter **at position 3**, ``nn`` utterance number. ``F`` means *female* in
first position and *fear* in position 3, so ``F03S02`` is female speaker 03,
sad, and ``M01F01`` is male speaker 01, fear. Letters: A angry, H happy,
N neutral, S sad, W surprised, F fearful. Mapping: A -> angry, H -> happy,
S -> sad, N -> neutral; W and F are dropped (kept with ``label=None`` when
``keep_unmapped=True``). The json's ``emotion`` must agree with the letter.

Speaker id: the first three characters of the id (``F03``), i.e. the json's
``speaker_id``; speaker numbers are per gender, so ``F03`` and ``M03`` differ.

Counts to expect (``shemo.json``): 3 000 files, neutral 1 160, angry 1 042,
sad 362, happy 203, surprised 201, fearful 32; the 4-class subset has
**2 767**; 87 speakers (31 F, 56 M). Check each file's sample rate on load.

``extra`` holds ``transcript`` (when the json has one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from audioadapt.data.corpora._common import (
    OnError,
    Problems,
    audio_files,
    check_audio_file,
    layout_error,
    find_audio,
    read_text,
    referenced_audio,
    unique_ids,
)
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import DataError

CORPUS = "shemo"
METADATA = "shemo.json"

#: Emotion letter (position 3 of the id) -> shared emotion (``None``: dropped).
LABEL_MAP: dict[str, str | None] = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral", "W": None, "F": None}

#: Emotion letter -> the word ``shemo.json`` uses for it.
LETTER_NAMES: dict[str, str] = {
    "A": "angry",
    "H": "happy",
    "S": "sad",
    "N": "neutral",
    "W": "surprised",
    "F": "fearful",
}

_GENDER_FOLDERS = {"F": "female", "M": "male"}
_ID = re.compile(r"^(?P<speaker>(?P<gender>[FM])\d{2})(?P<emotion>[A-Z])(?P<number>\d+)$")
_EXPECTED = "shemo.json with audio in female/<id>.wav and male/<id>.wav (ids such as F03S02)"


def _entries(meta: Path, text: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", meta, exc.lineno) from exc
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(value, Mapping):
                raise DataError(f"entry {key!r} is not an object", meta, _line_of(text, str(key)))
            yield str(key), value
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if not isinstance(value, Mapping) or "id" not in value:
                raise DataError(f"list entry {i} is not an object with an 'id'", meta)
            yield str(value["id"]), value
    else:
        raise DataError("expected a JSON object (id -> fields) or a list of objects with 'id'", meta)


def _line_of(text: str, utt_id: str) -> int | None:
    """1-based line of the first ``"utt_id"`` in ``text``, if any."""
    pos = text.find(f'"{utt_id}"')
    return None if pos < 0 else text.count("\n", 0, pos) + 1


def _parse_id(utt_id: str) -> re.Match[str] | None:
    return _ID.match(utt_id)


def _check_fields(utt_id: str, m: re.Match[str], fields: Mapping[str, Any]) -> str | None:
    """A reason why the json fields contradict the id, or ``None``."""
    emotion = fields.get("emotion")
    if emotion is not None and str(emotion).lower() != LETTER_NAMES[m["emotion"]]:
        return f"emotion {emotion!r} disagrees with letter {m['emotion']!r} of id {utt_id}"
    gender = fields.get("gender")
    if gender is not None and str(gender).lower() != _GENDER_FOLDERS[m["gender"]]:
        return f"gender {gender!r} disagrees with id {utt_id}"
    speaker = fields.get("speaker_id")
    if speaker is not None and str(speaker) != m["speaker"]:
        return f"speaker_id {speaker!r} disagrees with id {utt_id}"
    return None


def _make(utt_id: str, m: re.Match[str], audio: Path, fields: Mapping[str, Any], info: dict) -> Utterance:
    extra = dict(info)
    if fields.get("transcript") is not None:
        extra["transcript"] = str(fields["transcript"])
    return Utterance(
        path=audio,
        label=LABEL_MAP[m["emotion"]],
        speaker=m["speaker"],
        corpus=CORPUS,
        utt_id=utt_id,
        gender=_GENDER_FOLDERS[m["gender"]],
        native_label=m["emotion"],
        extra=extra,
    )


def _from_json(root: Path, meta: Path, keep_unmapped: bool, check_audio: bool, problems: Problems) -> list[Utterance]:
    utterances = []
    text = read_text(meta)
    for utt_id, fields in _entries(meta, text):
        m = _parse_id(utt_id)
        line = _line_of(text, utt_id)
        if m is None:
            problems(f"malformed ShEMO id {utt_id!r}; expected GssEnn such as F03S02", meta, line)
            continue
        if m["emotion"] not in LABEL_MAP:
            problems(f"unknown ShEMO emotion letter {m['emotion']!r} in id {utt_id}; known: A H N S W F", meta, line)
            continue
        reason = _check_fields(utt_id, m, fields)
        if reason is not None:
            problems(reason, meta, line)
            continue
        if LABEL_MAP[m["emotion"]] is None and not keep_unmapped:
            continue
        folder = root / _GENDER_FOLDERS[m["gender"]]
        audio = find_audio(folder, utt_id)
        try:
            info = referenced_audio(audio, folder / f"{utt_id}.wav", meta, line, check_audio)
        except DataError as exc:
            problems.record(exc)
            continue
        assert audio is not None
        utterances.append(_make(utt_id, m, audio, fields, info))
    return utterances


def _from_names(root: Path, keep_unmapped: bool, check_audio: bool, problems: Problems) -> list[Utterance]:
    utterances = []
    for letter, name in _GENDER_FOLDERS.items():
        folder = root / name
        if not folder.is_dir():
            continue
        for audio in audio_files(folder):
            m = _parse_id(audio.stem)
            if m is None or m["gender"] != letter:
                problems(f"not a ShEMO file name for {name}/; expected {letter}ssEnn such as {letter}03S02", audio)
                continue
            if m["emotion"] not in LABEL_MAP:
                problems(f"unknown ShEMO emotion letter {m['emotion']!r} at position 3; known: A H N S W F", audio)
                continue
            if LABEL_MAP[m["emotion"]] is None and not keep_unmapped:
                continue
            try:
                info = check_audio_file(audio, check_audio)
            except DataError as exc:
                problems.record(exc)
                continue
            utterances.append(_make(audio.stem, m, audio, {}, info))
    return utterances


def prepare_shemo(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
) -> list[Utterance]:
    """Read ShEMO from its published layout (see the module docstring).

    Parameters
    ----------
    root: the folder holding ``shemo.json``, ``female/`` and ``male/``.
    on_error: ``"raise"`` (default) or ``"skip"`` bad entries and missing
        audio, recording them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: keep surprised and fearful utterances with ``label=None``.
    check_audio: also read each audio header with soundfile.

    Returns
    -------
    list[Utterance]
        Sorted by utterance id.
    """
    root = Path(root)
    problems = Problems(CORPUS, on_error, report)
    has_audio_dirs = any((root / name).is_dir() for name in _GENDER_FOLDERS.values())
    if not has_audio_dirs:
        raise layout_error("a ShEMO", "shemo", root, _EXPECTED)
    meta = root / METADATA
    if meta.is_file():
        utterances = _from_json(root, meta, keep_unmapped, check_audio, problems)
    else:
        utterances = _from_names(root, keep_unmapped, check_audio, problems)
    return problems.finish(unique_ids(utterances, problems))
