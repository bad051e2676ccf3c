"""EMO-DB, the Berlin Database of Emotional Speech (German, TU Berlin).

Layout (as downloaded; ``root`` is the folder that holds ``wav/``, or
``wav/`` itself)::

    wav/<ss><ttt><E><v>.wav        e.g. wav/03a01Fa.wav

* ``ss`` (characters 0-1): speaker, one of 03 08 09 10 11 12 13 14 15 16;
* ``ttt`` (characters 2-4): text, one of a01 a02 a04 a05 a07 b01 b02 b03 b09 b10;
* ``E`` (index 5): emotion letter;
* ``v`` (index 6): version letter.

Emotion letters: W anger (Wut), L boredom (Langeweile), E disgust (Ekel), A
fear (Angst), F happiness (Freude), T sadness (Trauer), N neutral. Mapping:
W -> angry, F -> happy, T -> sad, N -> neutral; L, E and A are dropped (kept
with ``label=None`` when ``keep_unmapped=True``). Labels always come from the
file name, never from a side table: some copies ship label tables with the
letters mapped wrongly.

Gender: speakers 03, 10, 11, 12, 15 are male; 08, 09, 13, 14, 16 female.

Counts to expect: 535 files (W 127, L 81, N 79, F 71, A 69, T 62, E 46); the
4-class subset has **339** (angry 127, happy 71, sad 62, neutral 79); per
speaker 03: 39, 08: 42, 09: 30, 10: 21, 11: 35, 12: 22, 13: 36, 14: 41,
15: 34, 16: 39.

Copies that were re-packed (other folder names, a manifest CSV, cut to 2 s)
are not in this layout: read them with :func:`~audioadapt.data.corpora.csv_manifest.prepare_csv`
and check their rate and duration.

``extra`` holds ``text_id`` and ``version``.
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
    unique_ids,
)
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import DataError

CORPUS = "emodb"

#: Native emotion letter -> shared emotion (``None``: dropped).
LABEL_MAP: dict[str, str | None] = {
    "W": "angry",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
    "L": None,
    "E": None,
    "A": None,
}

#: Speaker code -> gender (standard EMO-DB documentation).
SPEAKER_GENDER: dict[str, str] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}

_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<emotion>[A-Za-z])(?P<version>[a-z])$")
_EXPECTED = "wav/<ss><ttt><E><v>.wav files such as wav/03a01Fa.wav"


def _wav_dir(root: Path) -> Path:
    if (root / "wav").is_dir():
        return root / "wav"
    if root.name == "wav" and root.is_dir():
        return root
    raise layout_error("an EMO-DB", "emodb", root, _EXPECTED)


def prepare_emodb(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
) -> list[Utterance]:
    """Read EMO-DB from its published layout (see the module docstring).

    Parameters
    ----------
    root: the EMO-DB folder (holding ``wav/``) or its ``wav/`` folder.
    on_error: ``"raise"`` (default) or ``"skip"`` badly named files, recording
        them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: keep boredom, disgust and fear files with ``label=None``.
    check_audio: also read each audio header with soundfile.

    Returns
    -------
    list[Utterance]
        Sorted by utterance id (the file stem).
    """
    root = Path(root)
    problems = Problems(CORPUS, on_error, report)
    wav_dir = _wav_dir(root)
    files = audio_files(wav_dir)
    if not files:
        raise DataError(f"no .wav or .flac files in {wav_dir}; expected {_EXPECTED}. {describe(wav_dir)}", wav_dir)
    if not any(_NAME.match(p.stem) for p in files):
        raise DataError(
            f"no file in {wav_dir} is named like EMO-DB ({_EXPECTED}); e.g. {files[0].name!r}. "
            "Is this another corpus?",
            wav_dir,
        )
    utterances = []
    for path in files:
        m = _NAME.match(path.stem)
        if m is None:
            problems(f"not an EMO-DB file name; expected {_EXPECTED}", path)
            continue
        letter = m["emotion"]
        if letter not in LABEL_MAP:
            problems(f"unknown EMO-DB emotion letter {letter!r} at index 5; known: {', '.join(LABEL_MAP)}", path)
            continue
        label = LABEL_MAP[letter]
        if label is None and not keep_unmapped:
            continue
        try:
            info = check_audio_file(path, check_audio)
        except DataError as exc:
            problems.record(exc)
            continue
        utterances.append(
            Utterance(
                path=path,
                label=label,
                speaker=m["speaker"],
                corpus=CORPUS,
                utt_id=path.stem,
                gender=SPEAKER_GENDER.get(m["speaker"]),
                native_label=letter,
                extra={"text_id": m["text"], "version": m["version"], **info},
            )
        )
    return problems.finish(unique_ids(utterances, problems))
