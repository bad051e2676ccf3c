"""Generic CSV manifest loader: path,label[,speaker] with a header, relative paths, label maps."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.data.corpora.csv_manifest import prepare_csv
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import ConfigError, DataError


@pytest.fixture
def corpus(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "mycorpus"
    for name in ("a1", "a2", "b1", "b2", "c1"):
        make_audio(root / "audio" / f"{name}.flac")
    return root


def write(path: Path, *rows: str) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_basic_manifest(corpus: Path) -> None:
    csv_path = write(
        corpus / "manifest.csv",
        "path,label,speaker",
        "audio/a1.flac,angry,s1",
        "audio/a2.flac,sad,s1",
        "audio/b1.flac,neutral,",
        "",
        f"{corpus / 'audio' / 'b2.flac'},happy,s2",
    )
    utts = {u.utt_id: u for u in prepare_csv(csv_path)}
    assert {k: u.label for k, u in utts.items()} == {"a1": "angry", "a2": "sad", "b1": "neutral", "b2": "happy"}
    assert utts["a1"].path == corpus / "audio" / "a1.flac" and utts["a1"].speaker == "s1"
    assert utts["b1"].speaker is None and utts["b2"].speaker == "s2"
    assert {u.corpus for u in utts.values()} == {"mycorpus"}  # the CSV's folder name
    assert [u.utt_id for u in prepare_csv(corpus, corpus="x")] == ["a1", "a2", "b1", "b2"]  # folder -> manifest.csv


def test_repacked_copy_columns_label_map_and_extra(corpus: Path) -> None:
    csv_path = write(
        corpus / "list.csv",
        "path,emotion7,emotion4,speaker,gender,text_id",
        "audio/a1.flac,happiness,happy,03,M,a01",
        "audio/a2.flac,boredom,,03,M,a02",
        "audio/b1.flac,anger,angry,08,F,a01",
    )
    utts = {u.utt_id: u for u in prepare_csv(csv_path, label_column="emotion4", label_map={"": None})}
    assert set(utts) == {"a1", "b1"}
    assert utts["a1"].gender == "male" and utts["b1"].gender == "female"
    assert utts["a1"].extra["emotion7"] == "happiness" and utts["a1"].extra["text_id"] == "a01"
    kept = {u.utt_id: u for u in prepare_csv(csv_path, label_column="emotion4", keep_unmapped=True)}
    assert kept["a2"].label is None
    mapped = prepare_csv(
        csv_path, label_column="emotion7", label_map={"happiness": "happy", "anger": "angry", "boredom": None}
    )
    assert {u.utt_id: u.label for u in mapped} == {"a1": "happy", "b1": "angry"}
    assert {u.utt_id: u.native_label for u in mapped} == {"a1": "happiness", "b1": "anger"}


def test_unknown_label_names_line(corpus: Path) -> None:
    csv_path = write(corpus / "m.csv", "path,label", "audio/a1.flac,angry", "audio/a2.flac,furious")
    with pytest.raises(DataError, match="unknown label 'furious'") as info:
        prepare_csv(csv_path)
    assert (info.value.path, info.value.line) == (csv_path, 3)
    with pytest.raises(ConfigError, match="label_map values"):
        prepare_csv(csv_path, label_map={"furious": "rage"})
    assert [u.label for u in prepare_csv(csv_path, label_map={"furious": "angry"})] == ["angry", "angry"]


def test_header_required(corpus: Path) -> None:
    csv_path = write(corpus / "m.csv", "audio/a1.flac,angry", "audio/a2.flac,sad")
    with pytest.raises(DataError, match="header lacks column") as info:
        prepare_csv(csv_path)
    assert info.value.line == 1
    with pytest.raises(DataError, match="empty first line"):
        prepare_csv(write(corpus / "e.csv", ""))


def test_missing_audio_and_bad_rows(corpus: Path) -> None:
    csv_path = write(corpus / "m.csv", "path,label,speaker", "audio/a1.flac,angry,s1", "audio/zz.wav,sad,s1")
    with pytest.raises(DataError, match="audio file not found") as info:
        prepare_csv(csv_path)
    assert (info.value.path, info.value.line) == (csv_path, 3) and "zz.wav" in str(info.value)
    csv_path = write(corpus / "n.csv", "path,label,speaker", "audio/a1.flac,angry", "audio/a2.flac,sad,s1")
    with pytest.raises(DataError, match="expected 3 fields") as info:
        prepare_csv(csv_path)
    assert info.value.line == 2
    csv_path = write(corpus / "g.csv", "path,label,gender", "audio/a1.flac,angry,x")
    with pytest.raises(DataError, match="unknown gender"):
        prepare_csv(csv_path)


def test_skip_mode(corpus: Path) -> None:
    rows = ["path,label", "audio/a1.flac,angry", "audio/zz.wav,sad", "audio/b1.flac,calm", "audio/c1.flac,happy"]
    csv_path = write(corpus / "m.csv", *rows)
    report = SkipReport()
    utts = prepare_csv(csv_path, on_error="skip", report=report)
    assert [u.utt_id for u in utts] == ["a1", "c1"]
    assert [line for _, line, _ in report.skipped] == [3, 4]


def test_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no manifest.csv"):
        prepare_csv(tmp_path)
    with pytest.raises(DataError, match="not found"):
        prepare_csv(tmp_path / "nothing.csv")


def test_empty_label_is_a_bad_row(corpus: Path, caplog) -> None:
    rows = ["path,label,speaker", "audio/a1.flac,angry,s1", "audio/a2.flac,,s1", "audio/b1.flac,sad,s2"]
    csv_path = write(corpus / "m.csv", *rows)
    with pytest.raises(DataError, match="empty 'label'; expected one of") as info:
        prepare_csv(csv_path)
    assert (info.value.path, info.value.line) == (csv_path, 3) and "on_error=skip" in str(info.value)
    report = SkipReport()
    with caplog.at_level("WARNING", logger="audioadapt.data.corpora"):
        utts = prepare_csv(csv_path, on_error="skip", report=report)
    assert [u.utt_id for u in utts] == ["a1", "b1"]
    assert report.skipped == [(str(csv_path), 3, report.skipped[0][2])] and "empty 'label'" in report.skipped[0][2]
    assert "skipped 1 row(s)" in caplog.text
    assert [u.label for u in prepare_csv(csv_path, keep_unmapped=True)] == ["angry", None, "sad"]
