"""RAVDESS speech, the Ryerson Audio-Visual Database of Emotional Speech and Song (English, acted).

Official layout (``Audio_Speech_Actors_01-24.zip``; ``root`` is the folder
that holds the actor folders)::

    Actor_NN/03-01-EE-II-SS-RR-AA.wav        e.g. Actor_01/03-01-05-02-01-01-01.wav

The seven two-digit fields of a file name are modality (03 audio-only),
vocal channel (01 speech, 02 song), emotion ``EE``, intensity ``II`` (01
normal, 02 strong), statement ``SS`` (01 "Kids are talking by the door", 02
"Dogs are sitting by the door"), repetition ``RR`` and actor ``AA`` (01-24;
odd ids are male, even ids female). The actor in the name must match its
``Actor_NN`` folder.

Emotion codes: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
07 disgust, 08 surprised. Mapping: 01 -> neutral, 03 -> happy, 04 -> sad,
05 -> angry. Calm is dropped by default (it is a class of its own in RAVDESS);
``calm="neutral"`` merges it into neutral. Fearful, disgust and surprised are
dropped (kept with ``label=None`` when ``keep_unmapped=True``, calm too when
it is not merged). Only speech (channel 01) of the audio-only modality (03) is
read; other files in the tree are problems.

The re-packed copy of ``../shared/data/ravdess`` (16 kHz FLAC in a flat
``audio/`` folder, file stems unchanged, with a ``manifest.csv`` of
``path,emotion4,speaker,gender,duration_s``) is read through its manifest: the
files are the rows' ``path`` values, labels and actors still come from the
file names, and a row whose ``emotion4`` or speaker disagrees with its file
name is a problem naming the manifest line.

Speaker id: ``Actor_NN`` (the official folder name). ``extra`` holds
``intensity`` (``normal``/``strong``), ``statement`` and ``repetition``.

Counts to expect: 1 440 speech files (24 actors x 60): neutral 96, calm 192,
every other emotion 192 (96 per intensity); the 4-class subset has **672**
(angry, happy, sad 192 each, neutral 96), **864** with calm merged.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

from audioadapt.data.corpora._common import (
    OnError,
    Problems,
    audio_files,
    check_audio_file,
    describe,
    is_hidden,
    layout_error,
    read_text,
    referenced_audio,
    unique_ids,
)
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import ConfigError, DataError

CORPUS = "ravdess"

Calm = Literal["drop", "neutral"]
_CALM = ("drop", "neutral")

#: Native emotion code -> shared emotion (``None``: dropped); calm ("02") follows ``calm``.
LABEL_MAP: dict[str, str | None] = {
    "01": "neutral",
    "02": None,
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": None,
    "07": None,
    "08": None,
}
#: Native emotion code -> RAVDESS's own emotion name (``native_label``).
EMOTION_NAMES: dict[str, str] = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
_CALM_CODE = "02"
_INTENSITY = {"01": "normal", "02": "strong"}
_SPEECH = ("03", "01")  # modality audio-only, vocal channel speech

_NAME = re.compile(
    r"^(?P<modality>\d{2})-(?P<channel>\d{2})-(?P<emotion>\d{2})-(?P<intensity>\d{2})-(?P<statement>\d{2})"
    r"-(?P<repetition>\d{2})-(?P<actor>\d{2})$"
)
_ACTOR_DIR = re.compile(r"^Actor_(?P<actor>\d{2})$", re.IGNORECASE)
_EXPECTED = "Actor_NN/ folders holding 03-01-EE-II-SS-RR-AA.wav files such as Actor_01/03-01-05-02-01-01-01.wav"
_MANIFEST = "manifest.csv"
_MANIFEST_COLUMNS = ("path", "emotion4", "speaker")


def speaker_id(actor: str) -> str:
    """The speaker id of a two-digit actor number: ``Actor_NN``."""
    return f"Actor_{actor}"


def _check_calm(calm: str) -> None:
    if calm not in _CALM:
        raise ConfigError(f"calm must be one of {list(_CALM)} (drop it, or merge it into neutral), got {calm!r}")


def _label(code: str, calm: str) -> str | None:
    return "neutral" if code == _CALM_CODE and calm == "neutral" else LABEL_MAP[code]


def _actor_folders(root: Path) -> list[tuple[Path, str]]:
    """``(folder, actor)`` of every ``Actor_NN`` folder directly in ``root``."""
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        m = _ACTOR_DIR.match(p.name)
        if m and p.is_dir() and not is_hidden(p):
            out.append((p, m["actor"]))
    return out


class _Reader:
    """Turns RAVDESS file names into utterances, applying the label policy and recording problems."""

    def __init__(self, problems: Problems, calm: str, keep_unmapped: bool, check_audio: bool):
        self.problems = problems
        self.calm = calm
        self.keep_unmapped = keep_unmapped
        self.check_audio = check_audio

    def parse(self, path: Path, where: Path, line: int | None) -> tuple[re.Match, str | None] | None:
        """The name's fields and its shared label; ``None`` when the file is dropped or a problem."""
        m = _NAME.match(path.stem)
        if m is None:
            self.problems(f"not a RAVDESS file name {path.name!r}; expected {_EXPECTED}", where, line)
            return None
        if (m["modality"], m["channel"]) != _SPEECH:
            self.problems(f"{path.name}: modality {m['modality']} / vocal channel {m['channel']} is not audio-only "
                          "speech (03-01); this loader reads the speech files only", where, line)
            return None
        code = m["emotion"]
        if code not in LABEL_MAP:
            self.problems(f"{path.name}: unknown RAVDESS emotion code {code!r} in the third field; known: "
                          f"{', '.join(LABEL_MAP)}", where, line)
            return None
        if m["intensity"] not in _INTENSITY:
            self.problems(f"{path.name}: unknown intensity {m['intensity']!r} in the fourth field; known: 01, 02",
                          where, line)
            return None
        label = _label(code, self.calm)
        if label is None and not self.keep_unmapped:
            return None
        return m, label

    def utterance(self, path: Path, m: re.Match, label: str | None, info: dict) -> Utterance:
        actor = m["actor"]
        return Utterance(
            path=path,
            label=label,
            speaker=speaker_id(actor),
            corpus=CORPUS,
            utt_id=path.stem,
            gender="male" if int(actor) % 2 else "female",
            native_label=EMOTION_NAMES[m["emotion"]],
            extra={"intensity": _INTENSITY[m["intensity"]], "statement": m["statement"],
                   "repetition": m["repetition"], **info},
        )


def _read_official(root: Path, folders: list[tuple[Path, str]], reader: _Reader) -> list[Utterance]:
    utterances = []
    for folder, actor in folders:
        for path in audio_files(folder):
            parsed = reader.parse(path, path, None)
            if parsed is None:
                continue
            m, label = parsed
            if m["actor"] != actor:
                reader.problems(f"actor {m['actor']} in the file name disagrees with its folder {folder.name}/", path)
                continue
            try:
                info = check_audio_file(path, reader.check_audio)
            except DataError as exc:
                reader.problems.record(exc)
                continue
            utterances.append(reader.utterance(path, m, label, info))
    return utterances


def _read_manifest(manifest: Path, reader: _Reader) -> list[Utterance]:
    """The re-packed copy: audio named by the manifest's ``path`` column, checked against its other columns."""
    rows = csv.reader(io.StringIO(read_text(manifest), newline=""))
    header = [h.strip() for h in next(rows, [])]
    missing = [c for c in _MANIFEST_COLUMNS if c not in header]
    if missing:
        raise DataError(f"a RAVDESS manifest needs the columns {list(_MANIFEST_COLUMNS)}; {missing} missing "
                        f"from the header {header}", manifest, 1)
    utterances = []
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            reader.problems(f"expected {len(header)} fields ({','.join(header)}), found {len(row)}", manifest, line)
            continue
        cells = {name: cell.strip() for name, cell in zip(header, row)}
        audio = Path(cells["path"])
        audio = audio if audio.is_absolute() else manifest.parent / audio
        parsed = reader.parse(audio, manifest, line)
        if parsed is None:
            continue
        m, label = parsed
        stated = cells["emotion4"] or None
        if stated is not None and stated != label:
            reader.problems(f"emotion4 {stated!r} disagrees with the emotion code {m['emotion']} of {audio.name} "
                            f"({EMOTION_NAMES[m['emotion']]})", manifest, line)
            continue
        digits = re.search(r"(\d+)$", cells["speaker"])
        if digits is None or int(digits[1]) != int(m["actor"]):
            reader.problems(f"speaker {cells['speaker']!r} disagrees with actor {m['actor']} of {audio.name}",
                            manifest, line)
            continue
        try:
            info = referenced_audio(audio if audio.exists() else None, audio, manifest, line, reader.check_audio,
                                    exact=True)
        except DataError as exc:
            reader.problems.record(exc)
            continue
        utterances.append(reader.utterance(audio, m, label, info))
    return utterances


def prepare_ravdess(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
    calm: Calm = "drop",
) -> list[Utterance]:
    """Read RAVDESS speech from its official layout, or a re-packed copy through its manifest.

    Parameters
    ----------
    root: the folder holding ``Actor_01/ ... Actor_24/``, or a re-packed copy
        holding ``manifest.csv`` (see the module docstring).
    on_error: ``"raise"`` (default) or ``"skip"`` badly named files and bad
        manifest rows, recording them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: keep fearful, disgust, surprised (and calm unless merged)
        with ``label=None``.
    check_audio: also read each audio header with soundfile.
    calm: ``"drop"`` (default) or ``"neutral"`` (merge calm into neutral).

    Returns
    -------
    list[Utterance]
        Sorted by utterance id (the file stem).
    """
    _check_calm(calm)
    root = Path(root)
    problems = Problems(CORPUS, on_error, report)
    reader = _Reader(problems, calm, keep_unmapped, check_audio)
    folders = _actor_folders(root)
    if folders:
        utterances = _read_official(root, folders, reader)
    elif (root / _MANIFEST).is_file():
        utterances = _read_manifest(root / _MANIFEST, reader)
    else:
        raise layout_error("a RAVDESS", CORPUS, root, f"{_EXPECTED}, or a re-packed copy with a {_MANIFEST}")
    if not utterances and not problems.recorded:
        raise DataError(f"no RAVDESS speech file with one of the four emotions under {root}. {describe(root)}", root)
    return problems.finish(unique_ids(utterances, problems))


__all__ = ["CORPUS", "EMOTION_NAMES", "LABEL_MAP", "prepare_ravdess", "speaker_id"]
