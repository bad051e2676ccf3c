"""The ``audioadapt`` entry point: errors become one line and exit code 2."""

from __future__ import annotations

import errno

import pytest

from audioadapt.cli import main as cli_main


def fail_with(monkeypatch, exc: BaseException) -> None:
    """Make ``audioadapt config list`` raise ``exc`` inside its handler."""
    def raising(prefix):
        raise exc

    monkeypatch.setattr("audioadapt.config.list_presets", raising)


@pytest.mark.parametrize("exc, line", [
    (PermissionError(errno.EACCES, "Permission denied", "/ro/out.json"), "/ro/out.json: Permission denied"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/nonexistent/x.json"),
     "/nonexistent/x.json: No such file or directory"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "out"), "out: Is a directory"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "a.tmp", None, "b"), "a.tmp -> b: Invalid cross-device link"),
])
def test_os_errors_are_one_line(monkeypatch, capsys, exc, line):
    fail_with(monkeypatch, exc)
    assert cli_main.main(["config", "list"]) == 2
    assert capsys.readouterr().err == f"audioadapt: error: {line}\n"


def test_verbose_shows_the_traceback_too(monkeypatch, capsys):
    fail_with(monkeypatch, PermissionError(errno.EACCES, "Permission denied", "/ro/x"))
    assert cli_main.main(["-v", "config", "list"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("audioadapt: error: /ro/x: Permission denied\n")
