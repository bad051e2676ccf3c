"""URDU loader on a generated tree in the published layout (Angry/ Happy/ Neutral/ Sad/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.data.corpora.urdu import prepare_urdu
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import DataError

FILES = {
    "Angry": ["SM1_F10_A010", "SM4_F2_A0100"],
    "Happy": ["SF2_F3_H01", "SM5_F7_H8"],
    "Neutral": ["SM5_F2_N05"],
    "Sad": ["SF10_F1_S01", "SM25_F4_S040"],
}


@pytest.fixture
def urdu(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "URDU-Dataset"
    for folder, stems in FILES.items():
        for stem in stems:
            make_audio(root / folder / f"{stem}.wav")
    (root / "README.md").write_text("Angry, Happy, Neutral, and Emotion\n")
    (root / "Happy" / ".DS_Store").write_bytes(b"\x00")
    return root


def test_labels_from_folders_and_speakers_from_names(urdu: Path) -> None:
    utts = {u.utt_id: u for u in prepare_urdu(urdu)}
    assert set(utts) == {s for stems in FILES.values() for s in stems}
    for folder, stems in FILES.items():
        for stem in stems:
            assert utts[stem].label == folder.lower() and utts[stem].native_label == folder
    assert utts["SM1_F10_A010"].speaker == "SM1" and utts["SM1_F10_A010"].gender == "male"
    assert utts["SF10_F1_S01"].speaker == "SF10" and utts["SF10_F1_S01"].gender == "female"
    assert utts["SM25_F4_S040"].speaker == "SM25"
    assert utts["SM4_F2_A0100"].extra["file_number"] == 2
    assert all(u.corpus == "urdu" for u in utts.values())


def test_flac_copy(tmp_path: Path, make_audio) -> None:
    stems = {"Angry": "SM1_F1_A01", "Happy": "SF2_F1_H01", "Neutral": "SM5_F1_N1", "Sad": "SF1_F1_S1"}
    for folder, stem in stems.items():
        make_audio(tmp_path / folder / f"{stem}.flac")
    utts = prepare_urdu(tmp_path)
    assert {u.utt_id: u.label for u in utts} == {stem: folder.lower() for folder, stem in stems.items()}
    assert all(u.path.suffix == ".flac" for u in utts)


def test_letter_must_agree_with_folder(urdu: Path, make_audio) -> None:
    bad = make_audio(urdu / "Happy" / "SM1_F11_A011.wav")
    with pytest.raises(DataError, match="letter 'A' disagrees with folder Happy/") as info:
        prepare_urdu(urdu)
    assert info.value.path == bad


def test_bad_name_and_skip(urdu: Path, make_audio) -> None:
    bad = make_audio(urdu / "Sad" / "recording 1.wav")
    with pytest.raises(DataError, match="not an URDU file name") as info:
        prepare_urdu(urdu)
    assert info.value.path == bad
    report = SkipReport()
    assert len(prepare_urdu(urdu, on_error="skip", report=report)) == 7
    assert report.skipped[0][0] == str(bad)


def test_missing_class_folder(urdu: Path) -> None:
    import shutil

    shutil.rmtree(urdu / "Neutral")
    with pytest.raises(DataError, match="missing: Neutral/"):
        prepare_urdu(urdu)


def test_emodb_folder_is_rejected(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "wav" / "03a01Fa.wav")
    with pytest.raises(DataError, match="Expected class folders Angry/ Happy/ Neutral/ Sad/") as info:
        prepare_urdu(tmp_path)
    assert "'emodb'" in str(info.value)
