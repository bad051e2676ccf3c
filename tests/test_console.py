"""The console of a command: progress bars only on a terminal, log lines, data summaries once, rank 0 speaks."""

from __future__ import annotations

import io
import logging

import pytest

from audioadapt import console
from audioadapt.console import RepeatTrimmer, command_console, launch_rank, show_progress
from audioadapt.training.logging import progress_bar


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_switch(monkeypatch):
    monkeypatch.setattr(console, "_progress", None)


def _record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_a_data_summary_is_shown_once_and_a_later_one_only_with_its_new_lines():
    trim = RepeatTrimmer().trim
    head = "/data: 10 classes (dataset.json)"
    first = f"{head}\n  synthetic: 24 of 24 clips\n  weak: 12 of 12 clips"
    record = _record("audioadapt.data.corpora.desed", first)
    assert trim(record) is record
    assert trim(_record("audioadapt.data.corpora.desed", first)) is None
    more = _record("audioadapt.data.corpora.desed", f"{first}\n  unlabeled: 12 of 12 clips")
    assert trim(more).getMessage() == f"{head}\n  unlabeled: 12 of 12 clips"
    assert more.getMessage() == f"{first}\n  unlabeled: 12 of 12 clips"  # the record itself is left as it was
    assert trim(_record("audioadapt.data.corpora.desed", f"{head}\n  weak: 12 of 12 clips")) is None
    other = "/other: 10 classes (dataset.json)\n  synthetic: 24 of 24 clips"  # another dataset: all new
    assert trim(_record("audioadapt.data.corpora.desed", other)).getMessage() == other
    cache = "/data/cache/weak-1234: reusing feature cache of 12 item(s)"
    assert trim(_record("audioadapt.features.cache", cache)) is not None
    assert trim(_record("audioadapt.features.cache", cache)) is None
    # every other logger repeats freely (per-run lines such as the pseudo-label counts)
    assert trim(_record("audioadapt.training.sed_tri_adv", "round 1")) is not None
    assert trim(_record("audioadapt.training.sed_tri_adv", "round 1")) is not None


def test_the_console_prints_a_repeated_summary_once():
    stream = io.StringIO()
    with command_console(stream=stream):
        for _ in range(3):
            logging.getLogger("audioadapt.training.sed_data").info("SED data: synthetic 19, weak 10")
    assert stream.getvalue() == "INFO audioadapt.training.sed_data: SED data: synthetic 19, weak 10\n"


def test_bars_only_on_a_terminal_and_not_with_no_progress():
    assert show_progress(True) and not show_progress(False)  # the library default: as the caller asks
    with command_console(stream=io.StringIO()):
        assert not show_progress(True)
        assert type(progress_bar(3, "x", True)).__name__ == "_NoBar"
    assert show_progress(True)  # restored after the command
    with command_console(stream=Terminal()):
        assert show_progress(True) and not show_progress(False)
        bar = progress_bar(3, "x", True)
        assert type(bar).__name__ != "_NoBar"
        bar.close()
    with command_console(progress=False, stream=Terminal()):
        assert not show_progress(True)


def test_log_lines_go_to_the_stream_and_the_handler_leaves_with_the_command():
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    with command_console(stream=stream):
        logging.getLogger("audioadapt.x").info("hello")
        logging.getLogger("audioadapt.x").debug("details")
    assert stream.getvalue() == "INFO audioadapt.x: hello\n"
    assert root.handlers == before
    with command_console(verbose=True, stream=stream):
        logging.getLogger("audioadapt.x").debug("details")
    assert stream.getvalue().endswith("DEBUG audioadapt.x: details\n")


def test_other_ranks_show_only_warnings_with_their_rank_and_no_bars():
    stream = Terminal()
    with command_console(rank=1, stream=stream):
        logging.getLogger("audioadapt.data.corpora.desed").info("synthetic: 24 of 24 clips")
        logging.getLogger("audioadapt.x").warning("disk almost full")
        assert not show_progress(True)
    assert stream.getvalue() == "[rank 1] WARNING audioadapt.x: disk almost full\n"


@pytest.mark.parametrize("env, rank", [({}, 0), ({"RANK": "3"}, 3), ({"RANK": "x"}, 0), ({"RANK": ""}, 0)])
def test_launch_rank_reads_torchrun_s_variable(env, rank):
    assert launch_rank(env) == rank


def test_the_command_line_is_the_recorded_one_else_the_process_s(monkeypatch):
    import sys

    monkeypatch.setattr(console, "_command", None)
    assert console.command_line() == sys.argv
    console.set_command(["audioadapt", "config", "show", "sed_baseline"])
    assert console.command_line() == ["audioadapt", "config", "show", "sed_baseline"]
