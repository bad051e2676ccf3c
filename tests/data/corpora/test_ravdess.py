"""RAVDESS loader on generated trees: the official Actor_NN layout and a re-packed copy with a manifest."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from audioadapt.data.corpora import load_corpus
from audioadapt.data.corpora.ravdess import prepare_ravdess
from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import label_counts
from audioadapt.errors import ConfigError, DataError

#: actor -> stems (modality-channel-emotion-intensity-statement-repetition-actor)
FILES = {
    "01": ["03-01-01-01-01-01-01", "03-01-02-01-01-01-01", "03-01-03-02-02-01-01", "03-01-05-01-01-02-01",
           "03-01-06-01-01-01-01"],
    "02": ["03-01-04-02-01-01-02", "03-01-02-02-02-02-02", "03-01-05-02-02-01-02", "03-01-08-01-01-01-02"],
}


@pytest.fixture
def official(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "Audio_Speech_Actors_01-24"
    for actor, stems in FILES.items():
        for stem in stems:
            make_audio(root / f"Actor_{actor}" / f"{stem}.wav")
    (root / "Actor_01" / ".DS_Store").write_bytes(b"\x00")
    return root


def test_official_layout_labels_speakers_and_fields(official: Path) -> None:
    utts = {u.utt_id: u for u in prepare_ravdess(official)}
    # calm (02), fearful (06) and surprised (08) are dropped
    assert set(utts) == {"03-01-01-01-01-01-01", "03-01-03-02-02-01-01", "03-01-05-01-01-02-01",
                         "03-01-04-02-01-01-02", "03-01-05-02-02-01-02"}
    assert {k: u.label for k, u in utts.items()} == {
        "03-01-01-01-01-01-01": "neutral", "03-01-03-02-02-01-01": "happy", "03-01-05-01-01-02-01": "angry",
        "03-01-04-02-01-01-02": "sad", "03-01-05-02-02-01-02": "angry"}
    happy = utts["03-01-03-02-02-01-01"]
    assert happy.speaker == "Actor_01" and happy.gender == "male" and happy.native_label == "happy"
    assert dict(happy.extra) == {"intensity": "strong", "statement": "02", "repetition": "01"}
    sad = utts["03-01-04-02-01-01-02"]
    assert sad.speaker == "Actor_02" and sad.gender == "female" and sad.corpus == "ravdess"
    assert load_corpus("RAVDESS", official) == list(utts.values())


def test_calm_is_merged_into_neutral_on_request(official: Path) -> None:
    merged = {u.utt_id: u for u in prepare_ravdess(official, calm="neutral")}
    assert merged["03-01-02-01-01-01-01"].label == "neutral"
    assert merged["03-01-02-01-01-01-01"].native_label == "calm"
    assert label_counts(merged.values())["neutral"] == 3
    kept = {u.utt_id: u.label for u in prepare_ravdess(official, keep_unmapped=True)}
    assert len(kept) == 9 and kept["03-01-02-02-02-02-02"] is None and kept["03-01-06-01-01-01-01"] is None
    with pytest.raises(ConfigError, match="calm must be one of \\['drop', 'neutral'\\]"):
        prepare_ravdess(official, calm="merge")


def test_actor_must_agree_with_folder(official: Path, make_audio) -> None:
    bad = make_audio(official / "Actor_02" / "03-01-03-01-01-01-01.wav")
    with pytest.raises(DataError, match="actor 01 in the file name disagrees with its folder Actor_02/") as info:
        prepare_ravdess(official)
    assert info.value.path == bad


def test_song_and_bad_names_are_problems_that_can_be_skipped(official: Path, make_audio) -> None:
    song = make_audio(official / "Actor_01" / "03-02-03-01-01-01-01.wav")
    with pytest.raises(DataError, match="is not audio-only speech") as info:
        prepare_ravdess(official)
    assert info.value.path == song
    odd = make_audio(official / "Actor_02" / "take 1.wav")
    report = SkipReport()
    assert len(prepare_ravdess(official, on_error="skip", report=report)) == 5
    assert sorted(Path(p).name for p, _, _ in report.skipped) == ["03-02-03-01-01-01-01.wav", odd.name]


def test_unknown_emotion_code(official: Path, make_audio) -> None:
    make_audio(official / "Actor_01" / "03-01-09-01-01-01-01.wav")
    with pytest.raises(DataError, match="unknown RAVDESS emotion code '09'"):
        prepare_ravdess(official)


def test_other_layouts_are_refused(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "wav" / "03a01Fa.wav")
    with pytest.raises(DataError, match="Expected Actor_NN/ folders") as info:
        prepare_ravdess(tmp_path)
    assert "'emodb'" in str(info.value)
    (tmp_path / "Actor_01").mkdir()
    make_audio(tmp_path / "Actor_01" / "03-01-07-01-01-01-01.wav")  # disgust only: nothing of the four
    with pytest.raises(DataError, match="no RAVDESS speech file with one of the four emotions"):
        prepare_ravdess(tmp_path)


def _repacked(root: Path, make_audio, rows: list[tuple[str, str, str]]) -> Path:
    """A copy in the shared layout: flat audio/<stem>.flac and manifest.csv (path,emotion4,speaker,...)."""
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "emotion4", "speaker", "gender", "duration_s"])
        for stem, emotion, speaker in rows:
            make_audio(root / "audio" / f"{stem}.flac")
            writer.writerow([f"audio/{stem}.flac", emotion, speaker, "male", "0.05"])
    return root


def test_repacked_copy_is_read_through_its_manifest(tmp_path: Path, make_audio) -> None:
    root = _repacked(tmp_path, make_audio, [("03-01-01-01-01-01-01", "neutral", "ravdess_a01"),
                                            ("03-01-05-02-02-01-24", "angry", "ravdess_a24")])
    make_audio(root / "audio" / "03-01-04-01-01-01-03.flac")  # not in the manifest: not read
    utts = prepare_ravdess(root)
    assert [(u.utt_id, u.label, u.speaker, u.gender) for u in utts] == [
        ("03-01-01-01-01-01-01", "neutral", "Actor_01", "male"),
        ("03-01-05-02-02-01-24", "angry", "Actor_24", "female")]
    assert all(u.path.suffix == ".flac" and u.path.is_file() for u in utts)


@pytest.mark.parametrize("row, message", [
    (("03-01-04-01-01-01-01", "angry", "ravdess_a01"), "manifest.csv:3: emotion4 'angry' disagrees with the emotion code 04"),
    (("03-01-04-01-01-01-01", "sad", "ravdess_a02"), "manifest.csv:3: speaker 'ravdess_a02' disagrees with actor 01"),
])
def test_manifest_rows_must_agree_with_file_names(tmp_path: Path, make_audio, row, message) -> None:
    root = _repacked(tmp_path, make_audio, [("03-01-01-01-01-01-01", "neutral", "ravdess_a01"), row])
    with pytest.raises(DataError, match=message) as info:
        prepare_ravdess(root)
    assert info.value.path == root / "manifest.csv" and info.value.line == 3


def test_manifest_with_missing_audio_names_its_line(tmp_path: Path, make_audio) -> None:
    root = _repacked(tmp_path, make_audio, [("03-01-01-01-01-01-01", "neutral", "ravdess_a01")])
    with open(root / "manifest.csv", "a", newline="") as fh:
        fh.write("audio/03-01-03-01-01-01-01.flac,happy,ravdess_a01,male,1.0\n")
    with pytest.raises(DataError, match="audio file not found") as info:
        prepare_ravdess(root)
    assert info.value.line == 3
    assert len(prepare_ravdess(root, on_error="skip")) == 1
