"""The run-directory lock: one holder at a time, released when its process ends, stale locks taken over."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from audioadapt.errors import ConfigError
from audioadapt.training import run_lock
from audioadapt.training.run_lock import LOCK_FILE, RunLock, pid_alive

HOLDER = """
import sys, time
from audioadapt.training.run_lock import RunLock
RunLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def _reaped() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_until_release(tmp_path):
    lock = RunLock.acquire(tmp_path)
    with pytest.raises(ConfigError, match=rf"in use by another training \(pid {os.getpid()}\)"):
        RunLock.acquire(tmp_path)
    lock.release()
    lock.release()  # twice is harmless
    RunLock.acquire(tmp_path).release()


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"pid {proc.pid}\)"):
            RunLock.acquire(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    RunLock.acquire(tmp_path).release()


def test_without_fcntl_the_lock_file_holds_the_pid(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(run_lock, "fcntl", None)
    lock = RunLock.acquire(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    with pytest.raises(ConfigError, match=rf"pid {os.getpid()}\)"):
        RunLock.acquire(tmp_path)
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    # a lock file left by a process that has ended is stale: taken over, with a warning
    dead = _reaped()
    assert not pid_alive(dead)
    (tmp_path / LOCK_FILE).write_text(f"{dead}\n")
    with caplog.at_level(logging.WARNING, logger="audioadapt"):
        RunLock.acquire(tmp_path).release()
    assert f"stale lock of process {dead}" in caplog.text
