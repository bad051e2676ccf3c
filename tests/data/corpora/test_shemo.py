"""ShEMO loader on a generated tree in the published layout (shemo.json + female/ male/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audioadapt.data.corpora.shemo import prepare_shemo
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import DataError

EMOTION_WORDS = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral", "W": "surprised", "F": "fearful"}
IDS = ["F03S02", "F01A01", "F21W09", "M01F01", "M02H05", "M05N21", "M03A10"]


def _fields(utt_id: str, with_speaker: bool = True) -> dict:
    fields = {
        "gender": "female" if utt_id[0] == "F" else "male",
        "emotion": EMOTION_WORDS[utt_id[3]],
        "transcript": f"متن {utt_id}",
        "ipa": "mætn",
    }
    if with_speaker:
        fields = {"speaker_id": utt_id[:3], **fields}
    return fields


@pytest.fixture
def shemo(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "ShEMO"
    for utt_id in IDS:
        make_audio(root / ("female" if utt_id[0] == "F" else "male") / f"{utt_id}.wav")
    meta = {utt_id: _fields(utt_id) for utt_id in IDS}
    (root / "shemo.json").write_text(json.dumps(meta, indent=4, ensure_ascii=False), encoding="utf-8")
    return root


def test_position_three_is_the_emotion(shemo: Path) -> None:
    utts = {u.utt_id: u for u in prepare_shemo(shemo)}
    # F03S02: female speaker 03, sad. M01F01 is fear (F in position 3), so dropped; F21W09 surprised, dropped.
    assert set(utts) == {"F03S02", "F01A01", "M02H05", "M05N21", "M03A10"}
    f03 = utts["F03S02"]
    assert (f03.label, f03.speaker, f03.gender, f03.native_label) == ("sad", "F03", "female", "S")
    assert f03.path == shemo / "female" / "F03S02.wav"
    assert utts["F01A01"].label == "angry" and utts["F01A01"].gender == "female"
    assert utts["M02H05"].label == "happy" and utts["M02H05"].speaker == "M02"
    assert utts["M03A10"].gender == "male" and utts["M03A10"].path.parent.name == "male"
    assert utts["M05N21"].label == "neutral"
    assert f03.extra["transcript"] == "متن F03S02"


def test_keep_unmapped_keeps_fear_and_surprise(shemo: Path) -> None:
    utts = {u.utt_id: u for u in prepare_shemo(shemo, keep_unmapped=True)}
    fear = utts["M01F01"]
    assert (fear.label, fear.native_label, fear.gender, fear.speaker) == (None, "F", "male", "M01")
    assert utts["F21W09"].native_label == "W" and utts["F21W09"].label is None


def test_list_form_of_the_json(shemo: Path) -> None:
    entries = [{"id": utt_id, **_fields(utt_id, with_speaker=False)} for utt_id in IDS]
    (shemo / "shemo.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    utts = {u.utt_id: u for u in prepare_shemo(shemo)}
    assert utts["F03S02"].speaker == "F03" and utts["F03S02"].label == "sad"
    assert "M01F01" not in utts


def test_without_json_labels_come_from_file_names(shemo: Path) -> None:
    (shemo / "shemo.json").unlink()
    utts = {u.utt_id: u for u in prepare_shemo(shemo)}
    assert set(utts) == {"F03S02", "F01A01", "M02H05", "M05N21", "M03A10"}
    assert utts["F03S02"].label == "sad" and "transcript" not in utts["F03S02"].extra


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def test_json_emotion_disagreeing_with_the_id(shemo: Path) -> None:
    meta_path = shemo / "shemo.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["M02H05"]["emotion"] = "sad"
    meta_path.write_text(json.dumps(meta, indent=4), encoding="utf-8")
    with pytest.raises(DataError, match="disagrees with letter 'H'") as info:
        prepare_shemo(shemo)
    assert info.value.path == meta_path and info.value.line == _line_of(meta_path, '"M02H05"')


def test_unknown_emotion_letter(shemo: Path, make_audio) -> None:
    meta_path = shemo / "shemo.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["F04X01"] = {"speaker_id": "F04", "gender": "female", "emotion": "bored"}
    meta_path.write_text(json.dumps(meta, indent=4), encoding="utf-8")
    make_audio(shemo / "female" / "F04X01.wav")
    with pytest.raises(DataError, match="unknown ShEMO emotion letter 'X'") as info:
        prepare_shemo(shemo)
    assert info.value.line == _line_of(meta_path, '"F04X01"')


def test_missing_audio_names_json_and_file(shemo: Path) -> None:
    (shemo / "male" / "M05N21.wav").unlink()
    with pytest.raises(DataError, match="audio file not found") as info:
        prepare_shemo(shemo)
    assert info.value.path == shemo / "shemo.json"
    assert str(shemo / "male" / "M05N21.wav") in str(info.value)


def test_skip_mode_and_invalid_json(shemo: Path) -> None:
    (shemo / "male" / "M05N21.wav").unlink()
    (shemo / "female" / "F01A01.wav").unlink()
    report = SkipReport()
    utts = prepare_shemo(shemo, on_error="skip", report=report)
    assert len(report) == 2 and {u.utt_id for u in utts} == {"F03S02", "M02H05", "M03A10"}
    (shemo / "shemo.json").write_text('{\n  "F03S02": {\n  "emotion": "sad",,\n}', encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON") as info:
        prepare_shemo(shemo)
    assert info.value.line == 3


def test_wrong_layout(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "wav" / "03a01Fa.wav")
    with pytest.raises(DataError, match="Expected shemo.json with audio in female/") as info:
        prepare_shemo(tmp_path)
    assert "'emodb'" in str(info.value)
