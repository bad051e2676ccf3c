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


#: Every command that shows progress (feature caches, generation, training, benchmark runs), with its arguments.
PROGRESS_COMMANDS = [
    ["synth", "sed", "out"], ["synth", "ser", "out"], ["sed", "demo"], ["sed", "train", "p", "--data", "d"],
    ["sed", "evaluate", "run"], ["sed", "benchmark", "--data", "d", "--out", "o"],
    ["sed", "sweep", "--row", "r", "--data", "d", "--out", "o", "--grid", "a=1,2"],
    ["ser", "demo"], ["ser", "train", "p"], ["ser", "evaluate", "run"],
    ["ser", "benchmark", "--source", "s", "--target", "t", "--out", "o"],
    ["sed", "predict", "run", "a.wav"], ["sed", "tune-thresholds", "run"], ["ser", "predict", "run", "a.wav"],
]


@pytest.mark.parametrize("args", PROGRESS_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_with_progress_accepts_no_progress(args):
    parser = cli_main.build_parser()
    assert parser.parse_args(args).progress is True
    assert parser.parse_args([*args, "--no-progress"]).progress is False


def test_other_ranks_print_no_results(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    assert cli_main.main(["config", "list", "sed_base"]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    assert cli_main.main(["config", "list", "sed_base"]) == 0
    assert capsys.readouterr().out == "sed_base\nsed_baseline\n"


def test_errors_of_other_ranks_still_reach_stderr(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    fail_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert cli_main.main(["config", "list"]) == 2
    assert capsys.readouterr().err == "audioadapt: error: No space left on device\n"
