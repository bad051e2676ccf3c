"""Audio files from command-line inputs: files, folders, list files, and their output names."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.audio import collect
from audioadapt.audio.collect import collect_audio, collect_named_audio
from audioadapt.errors import DataError


@pytest.fixture
def tree(tmp_path) -> Path:
    """``data/`` with nested audio, a non-audio file and a list file beside it."""
    data = tmp_path / "data"
    for rel in ("b.wav", "a.flac", "sub/c.WAV", "sub/deeper/a.flac", "notes.md"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b"x")
    (tmp_path / "files.txt").write_text(f"# comment\n\ndata/b.wav\n  data/sub/c.WAV  \n{data / 'a.flac'}\n")
    return tmp_path


def test_folders_are_searched_recursively_and_sorted(tree):
    data = tree / "data"
    assert collect_audio([data]) == [data / "a.flac", data / "b.wav", data / "sub/c.WAV", data / "sub/deeper/a.flac"]


def test_list_files_resolve_relative_to_the_list_and_files_pass_as_they_are(tree):
    data = tree / "data"
    assert collect_audio([tree / "files.txt", data / "notes.md"]) == [
        tree / "data/b.wav", tree / "data/sub/c.WAV", data / "a.flac", data / "notes.md"]


def test_bad_inputs_name_the_file(tree):
    with pytest.raises(DataError, match="no such audio file, folder or list") as err:
        collect_audio([tree / "missing.wav"])
    assert err.value.path == tree / "missing.wav"
    (tree / "empty").mkdir()
    with pytest.raises(DataError, match="no audio file"):
        collect_audio([tree / "empty"])
    bad = tree / "bad.lst"
    bad.write_text("data/b.wav\ndata/gone.wav\n")
    with pytest.raises(DataError, match="'data/gone.wav' does not exist") as err:
        collect_audio([bad])
    assert (err.value.path, err.value.line) == (bad, 2)
    with pytest.raises(DataError, match="no audio file to predict"):
        collect_audio([])


def test_names_are_relative_to_their_folder_or_list_and_unique(tree):
    data = tree / "data"
    named = collect_named_audio([data, tree / "files.txt", data / "notes.md"])
    # files reached twice are kept once, under the first name
    assert named == {"a.flac": data / "a.flac", "b.wav": data / "b.wav", "sub/c.WAV": data / "sub/c.WAV",
                     "sub/deeper/a.flac": data / "sub/deeper/a.flac", "notes.md": data / "notes.md"}
    listed = collect_named_audio([tree / "files.txt"])
    assert list(listed) == ["data/b.wav", "data/sub/c.WAV", "a.flac"]  # as written; absolute: the file name
    clash = collect_named_audio([data / "a.flac", data / "sub/deeper/a.flac"])
    assert clash == {str((data / "a.flac").resolve()): data / "a.flac",
                     str((data / "sub/deeper/a.flac").resolve()): data / "sub/deeper/a.flac"}


def test_ser_api_still_exports_the_collectors():
    from audioadapt.api import ser

    assert ser.collect_audio is collect.collect_audio
    assert (ser.AUDIO_EXTENSIONS, ser.LIST_EXTENSIONS) == (collect.AUDIO_EXTENSIONS, collect.LIST_EXTENSIONS)
