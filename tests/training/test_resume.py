"""A killed run resumed from its last checkpoint ends exactly like an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audioadapt.errors import CheckpointError
from audioadapt.training import load_checkpoint
from audioadapt.training.logging import read_metrics

from . import toy

TOY_SCRIPT = Path(toy.__file__)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    method, result = toy.train(run_dir, tensorboard=True)
    return run_dir, method, result


def _assert_same_run(run_dir: Path, ref_dir: Path) -> None:
    assert (run_dir / "metrics.csv").read_bytes() == (ref_dir / "metrics.csv").read_bytes()
    for name in ("last.pt", "best.pt"):
        got, want = load_checkpoint(run_dir / name), load_checkpoint(ref_dir / name)
        assert got["progress"] == want["progress"]
        assert got["best"] == want["best"]
        for net, state in want["networks"].items():
            for key, tensor in state.items():
                assert torch.equal(got["networks"][net][key], tensor), f"{name}: {net}.{key} differs"
        assert torch.equal(got["method"]["pseudo"], want["method"]["pseudo"])
        assert got["method"]["steps_seen"] == want["method"]["steps_seen"]
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name]


def test_sigkilled_process_resumes_to_identical_weights_and_csv(tmp_path, reference):
    ref_dir, _, _ = reference
    run_dir = tmp_path / "run"
    # phase one, second epoch, third batch: last.pt holds epoch 1 of 3
    proc = subprocess.run(
        [sys.executable, str(TOY_SCRIPT), "--run-dir", str(run_dir), "--kill-at", "step:one:1:2"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(run_dir / "last.pt")["progress"]["global_epoch"] == 1
    assert len(read_metrics(run_dir / "metrics.csv")) == 1

    method, result = toy.train(run_dir, resume=True, tensorboard=True)
    assert method.hook_calls[0] == "start:one:1"  # resumed inside phase one
    assert [row["global_epoch"] for row in result.history] == [2, 3, 4, 5]
    _assert_same_run(run_dir, ref_dir)


@pytest.mark.parametrize(
    "kill_at, resumed_at",
    [
        ("state_dict:8", "start:one:1"),  # after epoch 2's CSV row, before its checkpoint: row 2 is dropped
        ("phase_end:one", "start:one:3"),  # during the pseudo-labelling pass between the phases
        ("step:two:1:3", "start:two:1"),  # inside phase two, with pseudo labels in the method state
    ],
)
def test_failure_then_resume_matches_uninterrupted_run(tmp_path, reference, kill_at, resumed_at):
    ref_dir, ref_method, _ = reference
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        toy.train(run_dir, kill_at=kill_at)
    method, _ = toy.train(run_dir, resume=True, tensorboard=True)
    assert method.hook_calls[0] == resumed_at
    assert method.hook_calls[-1] == "end:two"
    _assert_same_run(run_dir, ref_dir)
    # the sampler of every epoch saw the run-wide epoch number
    seen = [e for s in method.samplers for e in s.epochs_seen]
    assert seen == sorted(set(seen)) and seen[-1] == 4


def test_resume_without_checkpoint_starts_fresh(tmp_path, reference):
    ref_dir = reference[0]
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected"):
        toy.train(run_dir, kill_at="step:one:0:1")  # before any checkpoint
    assert not (run_dir / "last.pt").exists()
    toy.train(run_dir, resume=True)
    assert (run_dir / "metrics.csv").read_bytes() == (ref_dir / "metrics.csv").read_bytes()


def test_resume_of_a_finished_run_trains_no_more(tmp_path, reference):
    ref_dir = reference[0]
    run_dir = tmp_path / "run"
    toy.train(run_dir)
    method, result = toy.train(run_dir, resume=True)
    assert result.history == [] and method.hook_calls == []
    assert (run_dir / "metrics.csv").read_bytes() == (ref_dir / "metrics.csv").read_bytes()


def test_resume_into_other_phases_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    toy.train(run_dir, epochs=(1, 1))
    ckpt = load_checkpoint(run_dir / "last.pt")
    ckpt["progress"]["phase"] = "renamed"
    torch.save(ckpt, run_dir / "last.pt")
    with pytest.raises(CheckpointError, match="phase 'renamed'"):
        toy.train(run_dir, resume=True, epochs=(1, 1))
