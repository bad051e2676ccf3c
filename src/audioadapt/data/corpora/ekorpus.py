"""EKORPUS, the Estonian Emotional Speech Corpus (EEKK; read speech, female voices).

Layout (as distributed, e.g. ``EKORPUS/`` on DagsHub
``kingabzpro/Estonian-Emotional-Speech-Corpus``): one flat folder::

    <id>.wav + <id>.TextGrid      numeric ids such as 120289, 13721, 57

The label is the text of the **first interval of the tier "emotion"** of the
TextGrid (long or short Praat text format; see
:mod:`audioadapt.data.corpora.textgrid`). The transcript, when present, is the
first interval of the tier ``"sentence"``. Labels: anger -> angry,
joy -> happy, sadness -> sad, neutral -> neutral (compared case-insensitively,
surrounding spaces ignored). Any other label is an error.

Speakers: the file names carry **no speaker id**, so ``speaker`` is ``None``
and no speaker-independent split is possible (the held-out-speaker protocol
falls back to a stratified split; see :mod:`audioadapt.data.protocols`).
``gender`` is ``"female"``: the corpus description gives a female voice.

Counts to expect: **1 164** labelled files (anger 306, joy 271, sadness 249,
neutral 338), 44.1 kHz, 16-bit, mono. The NNPM paper's own description of the
corpus (173 sentences, other shares) does not match the released data; record
the counts actually used.

A wav without a TextGrid, or a TextGrid without audio, is an error (or is
skipped with ``on_error="skip"``). ``extra`` holds ``transcript``.
"""

from __future__ import annotations

from pathlib import Path

from audioadapt.data.corpora._common import (
    OnError,
    Problems,
    audio_files,
    layout_error,
    find_audio,
    is_hidden,
    referenced_audio,
    unique_ids,
)
from audioadapt.data.corpora.textgrid import TextGrid, read_textgrid
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import DataError

CORPUS = "ekorpus"
EMOTION_TIER = "emotion"
SENTENCE_TIER = "sentence"

#: Native label -> shared emotion.
LABEL_MAP: dict[str, str] = {"anger": "angry", "joy": "happy", "sadness": "sad", "neutral": "neutral"}

_EXPECTED = "one flat folder of <id>.wav + <id>.TextGrid pairs (e.g. 120289.wav, 120289.TextGrid)"


def _first_text(grid: TextGrid, name: str) -> str | None:
    tier = grid.tier(name)
    if tier is None or not tier.items:
        return None
    item = tier.items[0]
    return item.text if tier.kind == "interval" else item.mark  # type: ignore[union-attr]


def prepare_ekorpus(
    root: str | Path,
    *,
    on_error: OnError = "raise",
    report: SkipReport | None = None,
    keep_unmapped: bool = False,
    check_audio: bool = False,
) -> list[Utterance]:
    """Read EKORPUS from its published layout (see the module docstring).

    Parameters
    ----------
    root: the flat folder of ``<id>.wav`` and ``<id>.TextGrid`` files.
    on_error: ``"raise"`` (default) or ``"skip"`` unreadable TextGrids,
        unknown labels and unpaired files, recording them in ``report``.
    report: collects skipped items when ``on_error="skip"``.
    keep_unmapped: accepted for a uniform interface; every EKORPUS label maps.
    check_audio: also read each audio header with soundfile.

    Returns
    -------
    list[Utterance]
        Sorted by utterance id; ``speaker`` is always ``None``.
    """
    del keep_unmapped  # all four EKORPUS labels are shared emotions
    root = Path(root)
    problems = Problems(CORPUS, on_error, report)
    if not root.is_dir():
        raise layout_error("an EKORPUS", "ekorpus", root, _EXPECTED)
    grids = sorted(p for p in root.iterdir() if p.suffix.lower() == ".textgrid" and p.is_file() and not is_hidden(p))
    if not grids:
        raise layout_error("an EKORPUS", "ekorpus", root, _EXPECTED)
    utterances = []
    for grid_path in grids:
        try:
            grid = read_textgrid(grid_path)
        except DataError as exc:
            problems.record(exc)
            continue
        native = _first_text(grid, EMOTION_TIER)
        if native is None:
            problems(f"no tier {EMOTION_TIER!r} with an interval (tiers: {list(grid.tier_names)})", grid_path)
            continue
        key = native.strip().lower()
        if key not in LABEL_MAP:
            problems(f"unknown EKORPUS emotion {native!r}; known: {', '.join(LABEL_MAP)}", grid_path)
            continue
        audio = find_audio(root, grid_path.stem)
        try:
            info = referenced_audio(audio, root / f"{grid_path.stem}.wav", grid_path, None, check_audio)
        except DataError as exc:
            problems.record(exc)
            continue
        assert audio is not None
        extra = dict(info)
        sentence = _first_text(grid, SENTENCE_TIER)
        if sentence is not None:
            extra["transcript"] = sentence.strip()
        utterances.append(
            Utterance(
                path=audio,
                label=LABEL_MAP[key],
                speaker=None,
                corpus=CORPUS,
                utt_id=grid_path.stem,
                gender="female",
                native_label=key,
                extra=extra,
            )
        )
    labelled = {g.stem for g in grids}
    for audio in audio_files(root):
        if audio.stem not in labelled:
            problems(f"audio without annotation: expected {audio.stem}.TextGrid next to it", audio)
    return problems.finish(unique_ids(utterances, problems))
