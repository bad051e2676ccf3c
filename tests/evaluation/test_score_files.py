"""Frame-score files: exact round trips, names, folder checks, errors naming file and line, sed_scores_eval."""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.errors import DataError
from audioadapt.evaluation.decoding import DecodeConfig, frame_boundaries, postprocess_scores
from audioadapt.evaluation.score_files import (
    audio_id,
    check_score_folder,
    format_score_file,
    read_score_file,
    read_score_folder,
    write_score_files,
)

CLASSES = ["Alarm_bell_ringing", "Dog", "Speech"]


def _case(sed_grid, seed: int = 0, clip: float = 10.0):
    rng = np.random.default_rng(seed)
    raw = rng.random((160, len(CLASSES))).astype(np.float32)  # network output precision
    post = postprocess_scores(raw, sed_grid, DecodeConfig(), clip)
    return post, frame_boundaries(len(post), sed_grid, clip)


def test_text_format_is_sed_scores_eval_s(sed_grid):
    scores, bounds = _case(sed_grid)
    lines = format_score_file(scores, bounds, CLASSES).splitlines()
    assert lines[0] == "onset\toffset\tAlarm_bell_ringing\tDog\tSpeech"
    assert len(lines) == 1 + 160
    first = lines[1].split("\t")
    assert float(first[0]) == 0.0 and float(first[1]) == bounds[1] and float(first[2]) == scores[0, 0]
    assert float(lines[-1].split("\t")[1]) == 10.0  # the last frame is cut at the clip's end


def test_written_folder_reads_back_exactly(tmp_path, sed_grid):
    scores, bounds = {}, {}
    for i, name in enumerate(["a.wav", "b.flac", "sub/c.wav"]):
        scores[name], bounds[name] = _case(sed_grid, i, clip=10.0 - i)
    paths = write_score_files(tmp_path / "scores", scores, bounds, CLASSES)
    assert {k: p.relative_to(tmp_path / "scores").as_posix() for k, p in paths.items()} == \
        {"a.wav": "a.tsv", "b.flac": "b.tsv", "sub/c.wav": "sub/c.tsv"}
    found = read_score_folder(tmp_path / "scores")
    assert found.classes == tuple(CLASSES) and sorted(found.scores) == ["a", "b", "sub/c"]
    for name in scores:
        key = audio_id(name)
        np.testing.assert_array_equal(found.scores[key], scores[name])  # bit for bit
        np.testing.assert_array_equal(found.timestamps[key], bounds[name])
    assert found.end_times()["sub/c"] == 8.0
    # writing the same clips again is allowed; nothing else may be in the folder
    write_score_files(tmp_path / "scores", scores, bounds, CLASSES)


def test_audio_ids_strip_the_extension_only():
    assert audio_id("YAbc_30.000_40.000.wav") == "YAbc_30.000_40.000"
    assert audio_id("sub/x.flac") == "sub/x"
    assert audio_id("noext") == "noext"


def test_names_that_would_share_a_file_are_refused(tmp_path, sed_grid):
    s, b = _case(sed_grid)
    with pytest.raises(DataError, match="'a.wav' and 'a.flac' would share the score file a.tsv"):
        write_score_files(tmp_path, {"a.wav": s, "a.flac": s}, {"a.wav": b, "a.flac": b}, CLASSES)


def test_a_folder_with_other_files_is_refused_before_writing(tmp_path, sed_grid):
    folder = tmp_path / "scores"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "stale.tsv").write_text("onset\toffset\tDog\n0\t1\t0.5\n")
    with pytest.raises(DataError) as err:
        check_score_folder(folder, ["a.wav"])
    assert str(err.value) == (f"{folder}: the score folder holds 1 other file(s), e.g. 'old/stale.tsv'; write score "
                              "files into a new or empty folder (every file there is read as the scores of one clip)")
    s, b = _case(sed_grid)
    with pytest.raises(DataError):
        write_score_files(folder, {"a.wav": s}, {"a.wav": b}, CLASSES)
    assert not (folder / "a.tsv").exists()


@pytest.mark.parametrize("text, line, message", [
    ("", 1, "the score file is empty"),
    ("filename\tonset\toffset\n", 1, "expected the header 'onset<TAB>offset<TAB><class>...'"),
    ("onset\toffset\tDog\tDog\n0\t1\t0.5\t0.5\n", 1, "class names must be distinct"),
    ("onset\toffset\tDog\n0\t0.5\t0.1\n0.5\t1.0\n", 3, "expected 3 tab-separated columns, got 2"),
    ("onset\toffset\tDog\n0\t0.5\t0.1\n0.5\t1.0\thigh\n", 3, "Dog is not a number: 'high'"),
    ("onset\toffset\tDog\n0\t0.5\tnan\n", 2, "Dog must be finite"),
    ("onset\toffset\tDog\n0\t0.5\t0.1\n0.6\t1.0\t0.2\n", 3, "the frame starts at 0.6 s, not where the previous"),
    ("onset\toffset\tDog\n0.5\t0.5\t0.1\n", 2, "the frame ends (0.5) before it starts (0.5)"),
])
def test_bad_score_files_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "x.tsv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_score_file(path)
    assert str(err.value).startswith(f"{path}:{line}: {message}")


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder of score files"):
        read_score_folder(tmp_path / "nope")
    with pytest.raises(DataError, match=r"holds no score files \(\*.tsv\)"):
        read_score_folder(tmp_path)
    (tmp_path / "a.tsv").write_text("onset\toffset\tDog\tSpeech\n0\t1\t0.1\t0.2\n")
    (tmp_path / "b.tsv").write_text("onset\toffset\tSpeech\tDog\n0\t1\t0.1\t0.2\n")
    with pytest.raises(DataError) as err:
        read_score_folder(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'b.tsv'}:1: the class columns differ from those of {tmp_path / 'a.tsv'}: "
                              "['Speech', 'Dog'] instead of ['Dog', 'Speech']")


# --------------------------------------------------------------------------- the reference implementation
def test_sed_scores_eval_reads_ours_and_we_read_theirs(tmp_path, sed_grid):
    io = pytest.importorskip("sed_scores_eval.base_modules.io")
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    scores, bounds = {}, {}
    for i in range(3):
        scores[f"clip_{i}.wav"], bounds[f"clip_{i}.wav"] = _case(sed_grid, i, clip=9.5 + 0.2 * i)
    write_score_files(tmp_path / "ours", scores, bounds, CLASSES)
    theirs = io.read_sed_scores(tmp_path / "ours")
    assert sorted(theirs) == ["clip_0", "clip_1", "clip_2"]
    for i in range(3):
        frame = theirs[f"clip_{i}"]
        assert list(frame.columns) == ["onset", "offset", *CLASSES]
        np.testing.assert_array_equal(frame[CLASSES].to_numpy(), scores[f"clip_{i}.wav"])
        np.testing.assert_array_equal(frame["onset"].to_numpy(), bounds[f"clip_{i}.wav"][:-1])
    written = {f"clip_{i}": create_score_dataframe(scores[f"clip_{i}.wav"], bounds[f"clip_{i}.wav"], CLASSES)
               for i in range(3)}
    io.write_sed_scores(written, tmp_path / "theirs")
    found = read_score_folder(tmp_path / "theirs")
    for i in range(3):
        np.testing.assert_array_equal(found.scores[f"clip_{i}"], scores[f"clip_{i}.wav"])
        np.testing.assert_array_equal(found.timestamps[f"clip_{i}"], bounds[f"clip_{i}.wav"])
