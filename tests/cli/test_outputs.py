"""Output paths checked before a command starts its work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audioadapt.cli.outputs import check_output_file, check_output_folder, check_run_output
from audioadapt.errors import DataError

as_root = os.geteuid() == 0


def deny(monkeypatch, folder: Path) -> None:
    """Make the permission check see ``folder`` as not writable (root ignores chmod)."""
    real = os.access
    monkeypatch.setattr("audioadapt.cli.outputs.os.access",
                        lambda path, mode: False if Path(path) == folder else real(path, mode))


def test_new_files_and_folders_below_a_writable_folder_are_fine(tmp_path):
    check_output_file(tmp_path / "a" / "b" / "x.json")  # missing folders are created when writing
    check_output_folder(tmp_path / "plots")
    (tmp_path / "x.tsv").write_text("old")
    check_output_file(tmp_path / "x.tsv")  # replaced


def test_files_and_folders_in_the_wrong_place_are_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder") as err:
        check_output_file(tmp_path / "file" / "x.json", "--out")
    assert err.value.path == tmp_path / "file" / "x.json" and "cannot write --out" in str(err.value)
    with pytest.raises(DataError, match="this is a file, not a folder"):
        check_output_folder(tmp_path / "file", "the dataset")
    with pytest.raises(DataError, match="this is a folder; give a file name"):
        check_output_file(tmp_path)


@pytest.mark.skipif(as_root, reason="root ignores file permissions")
def test_read_only_folder_and_file(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "old.tsv").write_text("x")
    (locked / "old.tsv").chmod(0o444)
    locked.chmod(0o555)
    try:
        with pytest.raises(DataError, match=f"folder {locked} is not writable"):
            check_output_file(locked / "new" / "x.json")
        with pytest.raises(DataError, match="the file is read-only"):
            check_output_file(locked / "old.tsv")
        with pytest.raises(DataError, match="not writable"):
            check_output_folder(locked)
    finally:
        locked.chmod(0o755)


def test_read_only_folder_as_the_check_sees_it(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    deny(monkeypatch, locked)
    with pytest.raises(DataError, match=f"folder {locked} is not writable") as err:
        check_output_file(locked / "new" / "x.json", "--out")
    assert err.value.path == locked / "new" / "x.json"
    with pytest.raises(DataError, match="cannot write the evaluation report into the run"):
        check_run_output(locked)
    check_run_output(tmp_path / "not-a-run")  # left to the run loader
