"""EKORPUS loader on a generated flat folder of <id>.wav + <id>.TextGrid (long and short formats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.data.corpora.ekorpus import prepare_ekorpus
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import DataError


def long_textgrid(emotion: str, sentence: str, duration: float = 2.0) -> str:
    """A Praat long-format TextGrid with tiers "sentence" and "emotion" (emotion second on purpose)."""
    tiers = [("sentence", sentence), ("emotion", emotion)]
    out = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0 ",
        f"xmax = {duration} ",
        "tiers? <exists> ",
        f"size = {len(tiers)} ",
        "item []: ",
    ]
    for i, (name, text) in enumerate(tiers, start=1):
        out += [
            f"    item [{i}]:",
            '        class = "IntervalTier" ',
            f'        name = "{name}" ',
            "        xmin = 0 ",
            f"        xmax = {duration} ",
            "        intervals: size = 2 ",
            "        intervals [1]:",
            "            xmin = 0 ",
            f"            xmax = {duration / 2} ",
            f'            text = "{text}" ',
            "        intervals [2]:",
            f"            xmin = {duration / 2} ",
            f"            xmax = {duration} ",
            '            text = "later" ',
        ]
    return "\n".join(out) + "\n"


def short_textgrid(emotion: str, sentence: str, duration: float = 2.0) -> str:
    """The same content in Praat's short text format."""
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(duration), "<exists>", "2"]
    for name, text in (("emotion", emotion), ("sentence", sentence)):
        out += ['"IntervalTier"', f'"{name}"', "0", str(duration), "1", "0", str(duration), f'"{text}"']
    return "\n".join(out) + "\n"


FILES = {
    "120289": (long_textgrid, "anger", "angry"),
    "57": (short_textgrid, "joy", "happy"),
    "13721": (long_textgrid, "sadness", "sad"),
    "203": (short_textgrid, " neutral ", "neutral"),
}


@pytest.fixture
def ekorpus(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "EKORPUS"
    for stem, (writer, native, _) in FILES.items():
        make_audio(root / f"{stem}.wav")
        encoding = "utf-16" if stem == "13721" else "utf-8"  # Praat writes UTF-16 when text is not ASCII
        (root / f"{stem}.TextGrid").write_text(writer(native, f"lause {stem} õunad"), encoding=encoding)
    return root


def test_labels_from_first_emotion_interval(ekorpus: Path) -> None:
    utts = {u.utt_id: u for u in prepare_ekorpus(ekorpus)}
    assert {k: u.label for k, u in utts.items()} == {stem: v[2] for stem, v in FILES.items()}
    assert all(u.speaker is None and u.corpus == "ekorpus" for u in utts.values())
    assert utts["13721"].extra["transcript"] == "lause 13721 õunad"
    assert utts["57"].native_label == "joy" and utts["57"].path == ekorpus / "57.wav"


def test_unknown_label_names_the_textgrid(ekorpus: Path) -> None:
    bad = ekorpus / "57.TextGrid"
    bad.write_text(short_textgrid("surprise", "x"), encoding="utf-8")
    with pytest.raises(DataError, match="unknown EKORPUS emotion 'surprise'") as info:
        prepare_ekorpus(ekorpus)
    assert info.value.path == bad


def test_missing_emotion_tier(ekorpus: Path) -> None:
    bad = ekorpus / "203.TextGrid"
    bad.write_text(short_textgrid("joy", "x").replace('"emotion"', '"mood"'), encoding="utf-8")
    with pytest.raises(DataError, match="no tier 'emotion'") as info:
        prepare_ekorpus(ekorpus)
    assert info.value.path == bad and "mood" in str(info.value)


def test_malformed_textgrid_names_file_and_line(ekorpus: Path) -> None:
    bad = ekorpus / "120289.TextGrid"
    lines = long_textgrid("anger", "x").splitlines()
    broken = max(i for i, x in enumerate(lines) if "intervals: size" in x)  # the emotion tier's item count
    lines[broken] = '        intervals: size = "two" '
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="expected number of items") as info:
        prepare_ekorpus(ekorpus)
    assert (info.value.path, info.value.line) == (bad, broken + 1)


def test_unpaired_files(ekorpus: Path, make_audio) -> None:
    (ekorpus / "57.wav").unlink()
    with pytest.raises(DataError, match="audio file not found") as info:
        prepare_ekorpus(ekorpus)
    assert info.value.path == ekorpus / "57.TextGrid"
    (ekorpus / "57.TextGrid").unlink()
    orphan = make_audio(ekorpus / "999.wav")
    with pytest.raises(DataError, match="audio without annotation") as info:
        prepare_ekorpus(ekorpus)
    assert info.value.path == orphan


def test_skip_mode_counts(ekorpus: Path, make_audio) -> None:
    (ekorpus / "57.wav").unlink()
    make_audio(ekorpus / "999.wav")
    report = SkipReport()
    utts = prepare_ekorpus(ekorpus, on_error="skip", report=report)
    assert len(report) == 2 and {u.utt_id for u in utts} == {"120289", "13721", "203"}


def test_wrong_layout(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "female" / "F03S02.wav")
    make_audio(tmp_path / "male" / "M01A01.wav")
    with pytest.raises(DataError, match=r"<id>\.wav \+ <id>\.TextGrid") as info:
        prepare_ekorpus(tmp_path)
    assert "'shemo'" in str(info.value)
