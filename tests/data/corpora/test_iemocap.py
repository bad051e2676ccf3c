"""IEMOCAP loader on a generated tree in the release layout."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from audioadapt.data.corpora.iemocap import prepare_iemocap
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import DataError

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

# (utterance id, label code) per dialog; annotator lines are added by _turn.
DIALOGS = {
    1: {
        "Ses01F_impro01": [
            ("Ses01F_impro01_F000", "neu"),
            ("Ses01F_impro01_M000", "exc"),
            ("Ses01F_impro01_F001", "fru"),
            ("Ses01F_impro01_M001", "ang"),
        ],
    },
    2: {
        "Ses02M_script01_1": [
            ("Ses02M_script01_1_F003", "sad"),
            ("Ses02M_script01_1_M012", "hap"),
            ("Ses02M_script01_1_M013", "xxx"),
        ],
    },
}


def _turn(utt: str, code: str, start: float) -> str:
    return (
        f"[{start:.4f} - {start + 1.5:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]\n"
        "C-E1:\tNeutral;\t()\n"
        "C-E2:\tFrustration; Anger;\t(a comment [with brackets])\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
    )


def _label_text(turns: list[tuple[str, str]]) -> str:
    return HEADER + "".join(_turn(u, c, 2.0 * i + 0.5) for i, (u, c) in enumerate(turns))


@pytest.fixture
def iemocap(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    for session, dialogs in DIALOGS.items():
        sdir = root / f"Session{session}"
        evaluation = sdir / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        for dialog, turns in dialogs.items():
            (evaluation / f"{dialog}.txt").write_text(_label_text(turns))
            # macOS resource fork and annotator sub-folders must be ignored.
            (evaluation / f"._{dialog}.txt").write_bytes(b"[\x00\x05\x16\x07 not a label line \xff\n")
            (evaluation / "Categorical").mkdir(exist_ok=True)
            (evaluation / "Categorical" / f"{dialog}_e1_cat.txt").write_text("[garbage line\n")
            for utt, _ in turns:
                make_audio(sdir / "sentences" / "wav" / dialog / f"{utt}.wav")
    return root


def _by_id(utts):
    return {u.utt_id: u for u in utts}


def test_labels_speakers_and_mapping(iemocap: Path) -> None:
    utts = _by_id(prepare_iemocap(iemocap.parent))  # the parent of IEMOCAP_full_release works too
    assert set(utts) == {
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses02M_script01_1_F003",
        "Ses02M_script01_1_M012",
    }
    exc = utts["Ses01F_impro01_M000"]
    assert (exc.label, exc.native_label) == ("happy", "exc")
    assert utts["Ses02M_script01_1_M012"].label == "happy"
    assert utts["Ses01F_impro01_F000"].label == "neutral"
    assert utts["Ses01F_impro01_M001"].label == "angry"
    assert utts["Ses02M_script01_1_F003"].label == "sad"
    # speaker = session prefix + gender letter of the *last* field (not of the dialog name)
    assert exc.speaker == "Ses01M" and exc.gender == "male"
    assert utts["Ses02M_script01_1_F003"].speaker == "Ses02F"
    assert utts["Ses02M_script01_1_F003"].gender == "female"
    assert exc.path == iemocap / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav"
    assert exc.corpus == "iemocap"
    assert exc.extra["session"] == 1 and exc.extra["kind"] == "impro" and exc.extra["dialog"] == "Ses01F_impro01"
    assert exc.extra["vad"] == (2.5, 3.0, 3.5)
    assert utts["Ses02M_script01_1_M012"].extra["kind"] == "script"


def test_keep_unmapped_and_sessions(iemocap: Path) -> None:
    utts = _by_id(prepare_iemocap(iemocap, keep_unmapped=True))
    assert utts["Ses01F_impro01_F001"].label is None and utts["Ses01F_impro01_F001"].native_label == "fru"
    assert utts["Ses02M_script01_1_M013"].native_label == "xxx"
    only2 = prepare_iemocap(iemocap, sessions=[2])
    assert {u.extra["session"] for u in only2} == {2}
    with pytest.raises(DataError, match="Session3"):
        prepare_iemocap(iemocap, sessions=[3])


def _replace_line(path: Path, old: str, new: str) -> int:
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(old))
    lines[index] = new
    path.write_text("".join(lines))
    return index + 1


def test_unknown_label_code_names_file_and_line(iemocap: Path) -> None:
    label_file = iemocap / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    line = _replace_line(label_file, "[2.5000", "[2.5000 - 4.0000]\tSes01F_impro01_M000\tbor\t[2.5, 2.5, 2.5]\n")
    with pytest.raises(DataError, match="unknown IEMOCAP label code 'bor'") as info:
        prepare_iemocap(iemocap)
    assert info.value.path == label_file and info.value.line == line
    assert f"Ses01F_impro01.txt:{line}" in str(info.value)


def test_malformed_label_line(iemocap: Path) -> None:
    label_file = iemocap / "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt"
    line = _replace_line(label_file, "[0.5000", "[0.5000 - 2.0000]\tSes02M_script01_1_F003\n")
    with pytest.raises(DataError, match="malformed label line") as info:
        prepare_iemocap(iemocap)
    assert (info.value.path, info.value.line) == (label_file, line)


def test_missing_audio_names_label_file_line_and_audio(iemocap: Path) -> None:
    wav = iemocap / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav"
    wav.unlink()
    with pytest.raises(DataError, match="audio file not found") as info:
        prepare_iemocap(iemocap)
    label_file = iemocap / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    expected_line = label_file.read_text().splitlines().index(
        next(x for x in label_file.read_text().splitlines() if "Ses01F_impro01_M001" in x)
    ) + 1
    assert (info.value.path, info.value.line) == (label_file, expected_line)
    assert str(wav) in str(info.value)


def test_skip_mode_counts_and_logs(iemocap: Path, caplog: pytest.LogCaptureFixture) -> None:
    (iemocap / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav").unlink()
    label_file = iemocap / "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt"
    _replace_line(label_file, "[0.5000", "[0.5000 - 2.0000]\tSes02M_script01_1_F003\tzzz\t[1, 2, 3]\n")
    report = SkipReport()
    with caplog.at_level(logging.WARNING):
        utts = prepare_iemocap(iemocap, on_error="skip", report=report)
    assert len(report) == 2
    assert {u.utt_id for u in utts} == {"Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses02M_script01_1_M012"}
    assert "skipped 2" in caplog.text and "zzz" in caplog.text


def test_wrong_layout_says_what_was_expected(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "Angry" / "SM1_F1_A01.wav")
    for name in ("Happy", "Neutral", "Sad"):
        (tmp_path / name).mkdir()
    with pytest.raises(DataError, match="Session1..Session5") as info:
        prepare_iemocap(tmp_path)
    assert "'urdu'" in str(info.value) and "Angry/" in str(info.value)


def test_missing_label_folder(iemocap: Path) -> None:
    import shutil

    shutil.rmtree(iemocap / "Session2" / "dialog")
    with pytest.raises(DataError, match="EmoEvaluation"):
        prepare_iemocap(iemocap)


def test_missing_sessions_are_read_with_a_warning(iemocap: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        utts = prepare_iemocap(iemocap)
    assert {u.extra["session"] for u in utts} == {1, 2}
    assert "sessions [1, 2] only" in caplog.text


def test_check_audio_reads_headers(iemocap: Path) -> None:
    utts = prepare_iemocap(iemocap, check_audio=True)
    assert all(u.extra["sample_rate"] == 16000 and u.extra["frames"] > 0 for u in utts)
    bad = iemocap / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    bad.write_bytes(b"RIFF not really audio at all")
    prepare_iemocap(iemocap)  # existence only: still fine
    with pytest.raises(DataError, match="unusable audio"):
        prepare_iemocap(iemocap, check_audio=True)
