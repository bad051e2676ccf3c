"""URDU emotional speech (Latif et al. 2018; Urdu TV talk shows).

Layout (the ``siddiquelatif/URDU-Dataset`` repository)::

    Angry/<name>.wav  Happy/<name>.wav  Neutral/<name>.wav  Sad/<name>.wav

The label comes from the folder: Angry -> angry, Happy -> happy, Neutral ->
neutral, Sad -> sad (nothing is dropped). File names follow
``S<G><k>_F<n>_<E><m>.wav``, e.g. ``SM1_F10_A010.wav``: ``G`` gender (M/F),
``k`` speaker number, ``n`` file number of that speaker, ``E`` emotion letter
(A/H/N/S, must agree with the folder), ``m`` a running number that is not
consistently zero-padded. Speaker id = ``S<G><k>`` (e.g. ``SM1``).

Counts to expect: 400 files, 100 per class, 0.99-3.00 s at 44.1 kHz.

Caveats: the file names hold 29 speaker codes (18 M, 11 F) although the
corpus README says 38 speakers, so speaker ids are approximate; and speakers
are strongly confounded with emotion (26 of 29 codes occur in one emotion
only; all angry clips are male). Report which split was used.

``extra`` holds ``file_number``.
"""

from __future__ import annotations

import re
from pathlib import Path

from audioadapt.data.corpora._common import (
    OnError,
    Problems,
    audio_files,
    check_audio_file,
    describe,
    layout_error,
    is_hidden,
    unique_ids,
)
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import DataError

CORPUS = "urdu"

#: Class folder -> (shared emotion, emotion letter in the file name).
FOLDERS: dict[str, tuple[str, str]] = {
    "Angry": ("angry", "A"),
    "Happy": ("happy", "H"),
    "Neutral": ("neutral", "N"),
    "Sad": ("sad", "S"),
}

_NAME = re.compile(r"^(?P<speaker>S(?P<gender>[MF])\d+)_F(?P<file>\d+)_(?P<emotion>[A-Z])\d+$")
_EXPECTED = (
    "class folders Angry/ Happy/ Neutral/ Sad/ holding S<G><k>_F<n>_<E><m>.wav files such as Angry/SM1_F10_A010.wav"
)


def _class_folders(root: Path) -> dict[str, Path]:
    """Class name -> folder, matching folder names case-insensitively."""
    if not root.is_dir():
        raise layout_error("an URDU", "urdu", root, _EXPECTED)
    found = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not is_hidden(p)}
    folders = {name: found[name.lower()] for name in FOLDERS if name.lower() in found}
    if not folders:
        raise layout_error("an URDU", "urdu", root, _EXPECTED)
    missing = [name for name in FOLDERS if name not in folders]
    if missing:
        raise DataError(f"URDU class folder(s) missing: {', '.join(f'{m}/' for m in missing)}. {describe(root)}", root)
    return folders


def prepare_urdu(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
) -> list[Utterance]:
    """Read URDU from its published layout (see the module docstring).

    Parameters
    ----------
    root: the folder holding ``Angry/ Happy/ Neutral/ Sad/``.
    on_error: ``"raise"`` (default) or ``"skip"`` badly named files, recording
        them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: accepted for a uniform interface; every URDU class maps.
    check_audio: also read each audio header with soundfile.

    Returns
    -------
    list[Utterance]
        Sorted by utterance id (the file stem).
    """
    del keep_unmapped  # all four URDU classes are shared emotions
    root = Path(root)
    problems = Problems(CORPUS, on_error, report)
    utterances = []
    for name, folder in _class_folders(root).items():
        label, letter = FOLDERS[name]
        for audio in audio_files(folder):
            m = _NAME.match(audio.stem)
            if m is None:
                problems("not an URDU file name; expected S<G><k>_F<n>_<E><m> such as SM1_F10_A010", audio)
                continue
            if m["emotion"] != letter:
                reason = f"emotion letter {m['emotion']!r} disagrees with folder {folder.name}/ (expects {letter!r})"
                problems(reason, audio)
                continue
            try:
                info = check_audio_file(audio, check_audio)
            except DataError as exc:
                problems.record(exc)
                continue
            utterances.append(
                Utterance(
                    path=audio,
                    label=label,
                    speaker=m["speaker"],
                    corpus=CORPUS,
                    utt_id=audio.stem,
                    gender="male" if m["gender"] == "M" else "female",
                    native_label=name,
                    extra={"file_number": int(m["file"]), **info},
                )
            )
    return problems.finish(unique_ids(utterances, problems))
