"""EMO-DB loader on a generated tree in the published layout (wav/<ss><ttt><E><v>.wav)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from audioadapt.data.corpora.emodb import prepare_emodb
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import DataError

FILES = {
    "03a01Fa": ("happy", "03", "male"),
    "03a01Wa": ("angry", "03", "male"),
    "08b02Tb": ("sad", "08", "female"),
    "16a04Nc": ("neutral", "16", "female"),
    "15a05La": (None, "15", "male"),  # boredom
    "09b10Ab": (None, "09", "female"),  # fear (A = Angst)
    "13a07Ea": (None, "13", "female"),  # disgust
}


@pytest.fixture
def emodb(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "emodb"
    for stem in FILES:
        make_audio(root / "wav" / f"{stem}.wav")
    (root / "wav" / "._03a01Fa.wav").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (root / "erkennung.txt").write_text("Satz Erkennung\n")
    (root / "lablaut").mkdir()
    return root


def test_labels_speakers_and_gender(emodb: Path) -> None:
    utts = {u.utt_id: u for u in prepare_emodb(emodb)}
    expected = {stem: v for stem, v in FILES.items() if v[0] is not None}
    assert set(utts) == set(expected)
    for stem, (label, speaker, gender) in expected.items():
        u = utts[stem]
        assert (u.label, u.speaker, u.gender, u.native_label) == (label, speaker, gender, stem[5])
        assert u.path == emodb / "wav" / f"{stem}.wav" and u.corpus == "emodb"
        assert u.extra["text_id"] == stem[2:5]


def test_keep_unmapped_keeps_boredom_fear_disgust(emodb: Path) -> None:
    utts = {u.utt_id: u for u in prepare_emodb(emodb, keep_unmapped=True)}
    assert set(utts) == set(FILES)
    assert {utts[s].native_label for s in ("15a05La", "09b10Ab", "13a07Ea")} == {"L", "A", "E"}
    assert all(utts[s].label is None for s in ("15a05La", "09b10Ab", "13a07Ea"))


def test_wav_folder_itself_and_flac(emodb: Path, make_audio) -> None:
    make_audio(emodb / "wav" / "10b03Wd.flac")
    utts = {u.utt_id: u for u in prepare_emodb(emodb / "wav")}
    assert utts["10b03Wd"].label == "angry" and utts["10b03Wd"].path.suffix == ".flac"


def test_bad_file_name(emodb: Path, make_audio) -> None:
    bad = make_audio(emodb / "wav" / "03a01.wav")
    with pytest.raises(DataError, match="not an EMO-DB file name") as info:
        prepare_emodb(emodb)
    assert info.value.path == bad


def test_unknown_emotion_letter(emodb: Path, make_audio) -> None:
    bad = make_audio(emodb / "wav" / "03a01Xa.wav")
    with pytest.raises(DataError, match="unknown EMO-DB emotion letter 'X'") as info:
        prepare_emodb(emodb)
    assert info.value.path == bad


def test_skip_mode(emodb: Path, make_audio, caplog: pytest.LogCaptureFixture) -> None:
    make_audio(emodb / "wav" / "03a01Xa.wav")
    make_audio(emodb / "wav" / "notes.wav")
    report = SkipReport()
    with caplog.at_level(logging.WARNING):
        utts = prepare_emodb(emodb, on_error="skip", report=report)
    assert len(report) == 2 and len(utts) == 4
    assert "03a01Xa.wav" in caplog.text and "notes.wav" in caplog.text


def test_urdu_folder_is_rejected_with_the_expected_layout(tmp_path: Path, make_audio) -> None:
    stems = {"Angry": "SM1_F10_A010", "Happy": "SF2_F1_H01", "Neutral": "SM5_F1_N01", "Sad": "SF1_F1_S1"}
    for name, stem in stems.items():
        make_audio(tmp_path / name / f"{stem}.wav")
    with pytest.raises(DataError, match=r"Expected wav/<ss><ttt><E><v>\.wav") as info:
        prepare_emodb(tmp_path)
    assert "'urdu'" in str(info.value)
    assert info.value.path == tmp_path


def test_wav_folder_of_another_corpus(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "wav" / "SM1_F10_A010.wav")
    with pytest.raises(DataError, match="no file .* is named like EMO-DB"):
        prepare_emodb(tmp_path)


def test_empty_and_unreadable_audio(emodb: Path) -> None:
    (emodb / "wav" / "03a01Fa.wav").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        prepare_emodb(emodb)
    (emodb / "wav" / "03a01Fa.wav").write_bytes(b"RIFF....WAVEjunk")
    prepare_emodb(emodb)  # only existence is checked by default
    with pytest.raises(DataError, match="cannot read audio header") as info:
        prepare_emodb(emodb, check_audio=True)
    assert info.value.path == emodb / "wav" / "03a01Fa.wav"


def test_duplicate_stem_in_two_formats(emodb: Path, make_audio) -> None:
    make_audio(emodb / "wav" / "03a01Fa.flac")
    with pytest.raises(DataError, match="duplicate utterance id '03a01Fa'"):
        prepare_emodb(emodb)
