"""IEMOCAP (English, USC SAIL): the source corpus of cross-lingual SER.

Layout (``IEMOCAP_full_release/``, as released; ``root`` may be that folder or
its parent)::

    Session{1..5}/sentences/wav/<dialog>/<utt>.wav
    Session{1..5}/dialog/EmoEvaluation/<dialog>.txt

Only the top-level ``.txt`` files of ``EmoEvaluation/`` are read; its
subfolders (``Categorical/``, ``Attribute/``, ``Self-evaluation/``) and macOS
``._*`` files are skipped. In a label file, a line that starts with ``[`` is
one turn::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(start and end in seconds, utterance id, consensus label, valence/arousal/
dominance). Other lines (the ``%`` header, per-annotator lines such as
``C-E1:`` or ``A-E2:``, blank lines) are ignored.

Label codes: ``neu hap exc sad ang fru sur fea dis oth xxx``. Mapping:
neu -> neutral, hap -> happy, **exc -> happy** (excited is merged into happy,
as in the NNPM paper), sad -> sad, ang -> angry; the others are dropped (kept
with ``label=None`` when ``keep_unmapped=True``). Any other code is an error.

Utterance ids look like ``Ses01F_impro01_F000`` or ``Ses01F_script01_1_M012``:
the speaker is the ``SesNN`` prefix plus the first letter of the **last**
``_`` field (``Ses01F``, ``Ses01M``), so 10 speakers; the dialog is the id
without its last field; the second field tells improvised from scripted.

Counts to expect: 10 039 labelled turns; the 4-class subset has **5 531**
(neutral 1 708, angry 1 103, sad 1 084, happy 595 + excited 1 041), by session
1 085, 1 023, 1 151, 1 031, 1 241.

``extra`` holds ``session`` (int), ``dialog``, ``kind`` (``"impro"`` or
``"script"``), ``start``/``end`` (s) and ``vad`` (valence, arousal, dominance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from audioadapt.data.corpora._common import (
    OnError,
    Problems,
    logger,
    describe,
    layout_error,
    find_audio,
    is_hidden,
    read_text,
    referenced_audio,
    unique_ids,
)
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import DataError

CORPUS = "iemocap"

#: Native label code -> shared emotion (``None``: dropped).
LABEL_MAP: dict[str, str | None] = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
    "fru": None,
    "sur": None,
    "fea": None,
    "dis": None,
    "oth": None,
    "xxx": None,
}

SESSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)

_EXPECTED = (
    "Session1..Session5/ holding sentences/wav/<dialog>/<utt>.wav and dialog/EmoEvaluation/<dialog>.txt "
    "(IEMOCAP_full_release)"
)

_LABEL_LINE = re.compile(
    r"^\[\s*(?P<start>[-+\d.eE]+)\s*-\s*(?P<end>[-+\d.eE]+)\s*\]"
    r"\s+(?P<utt>\S+)\s+(?P<code>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$"
)
_LINE_FORMAT = "'[start - end]<TAB>utterance<TAB>label<TAB>[V, A, D]'"
_UTT_ID = re.compile(r"^(?P<ses>Ses\d{2})[FM]_(?P<kind>[A-Za-z]+)[^_]*(?:_[^_]+)*_(?P<gender>[FM])[^_]*$")


def _corpus_root(root: Path) -> Path:
    nested = root / "IEMOCAP_full_release"
    if not (root / "Session1").is_dir() and nested.is_dir():
        return nested
    return root


def _label_files(session_dir: Path) -> list[Path]:
    folder = session_dir / "dialog" / "EmoEvaluation"
    if not folder.is_dir():
        raise DataError(f"missing label folder {folder} (expected Session<n>/dialog/EmoEvaluation/*.txt)", session_dir)
    return sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file() and not is_hidden(p))


def _parse_vad(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _read_label_file(
    path: Path,
    session: int,
    wav_dir: Path,
    *,
    keep_unmapped: bool,
    check_audio: bool,
    problems: Problems,
) -> Iterable[Utterance]:
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.startswith("["):
            continue
        m = _LABEL_LINE.match(line)
        if m is None:
            problems(f"malformed label line; expected {_LINE_FORMAT}", path, lineno)
            continue
        utt_id, code = m["utt"], m["code"]
        if code not in LABEL_MAP:
            problems(f"unknown IEMOCAP label code {code!r} for {utt_id}; known: {', '.join(LABEL_MAP)}", path, lineno)
            continue
        ident = _UTT_ID.match(utt_id)
        if ident is None:
            problems(f"malformed utterance id {utt_id!r}; expected e.g. Ses01F_impro01_F000", path, lineno)
            continue
        try:
            vad = _parse_vad(m["vad"])
            start, end = float(m["start"]), float(m["end"])
        except ValueError:
            problems("malformed times or [V, A, D] values", path, lineno)
            continue
        label = LABEL_MAP[code]
        if label is None and not keep_unmapped:
            continue
        dialog = utt_id.rsplit("_", 1)[0]
        audio = find_audio(wav_dir / dialog, utt_id)
        try:
            info = referenced_audio(audio, wav_dir / dialog / f"{utt_id}.wav", path, lineno, check_audio)
        except DataError as exc:
            problems.record(exc)
            continue
        assert audio is not None
        yield Utterance(
            path=audio,
            label=label,
            speaker=f"{ident['ses']}{ident['gender']}",
            corpus=CORPUS,
            utt_id=utt_id,
            gender="female" if ident["gender"] == "F" else "male",
            native_label=code,
            extra={
                "session": session,
                "dialog": dialog,
                "kind": "impro" if ident["kind"].startswith("impro") else "script",
                "start": start,
                "end": end,
                "vad": vad,
                **info,
            },
        )


def prepare_iemocap(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
    sessions: Iterable[int] | None = None,
) -> list[Utterance]:
    """Read IEMOCAP from its release layout (see the module docstring).

    Parameters
    ----------
    root: ``IEMOCAP_full_release`` (or the folder that contains it).
    on_error: ``"raise"`` (default) or ``"skip"`` bad lines and missing audio,
        recording them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: keep turns labelled fru/sur/fea/dis/oth/xxx with ``label=None``.
    check_audio: also read each audio header with soundfile.
    sessions: which of Session1..5 to read (each must be present); ``None``
        reads every session folder that exists (a warning names missing ones).

    Returns
    -------
    list[Utterance]
        Sorted by utterance id.
    """
    root = _corpus_root(Path(root))
    problems = Problems(CORPUS, on_error, report)
    present = tuple(n for n in SESSIONS if (root / f"Session{n}").is_dir())
    if not present:
        raise layout_error("an IEMOCAP", "iemocap", root, _EXPECTED)
    if sessions is None:
        sessions = present
        if present != SESSIONS:
            logger.warning("IEMOCAP: reading sessions %s only; the others are missing in %s", list(present), root)
    sessions = tuple(sessions)
    utterances: list[Utterance] = []
    for n in sessions:
        if n not in SESSIONS:
            raise DataError(f"IEMOCAP has sessions 1-5, not {n}", root)
        session_dir = root / f"Session{n}"
        if not session_dir.is_dir():
            raise DataError(f"missing folder Session{n}/ (asked for sessions {list(sessions)}). {describe(root)}", root)
        wav_dir = session_dir / "sentences" / "wav"
        if not wav_dir.is_dir():
            expected = "Session<n>/sentences/wav/<dialog>/<utt>.wav"
            raise DataError(f"missing audio folder {wav_dir} (expected {expected})", session_dir)
        for label_file in _label_files(session_dir):
            utterances.extend(
                _read_label_file(
                    label_file, n, wav_dir, keep_unmapped=keep_unmapped, check_audio=check_audio, problems=problems
                )
            )
    return problems.finish(unique_ids(utterances, problems))
