"""``audioadapt sed benchmark`` as a user runs it with its log redirected: whole lines, data summary once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from audioadapt.api.benchmark import CELL_FILE


@pytest.fixture(scope="module")
def redirected(sed_tiny_dataset, sed_tiny_profile, tmp_path_factory):
    """Two rows, one seed, bars on in the settings, stdout and stderr to files: (out dir, exit code, stderr)."""
    tmp = tmp_path_factory.mktemp("sed_benchmark_cli")
    profile = tmp / "profile.yaml"
    profile.write_text(sed_tiny_profile.read_text().replace("progress_bar: false, ", "")
                       .replace("{num_workers: 0, progress: false}", "{num_workers: 0}"))
    out = tmp / "bench"
    args = ["sed", "benchmark", "--data", str(sed_tiny_dataset), "--out", str(out), "--profile", str(profile),
            "--seeds", "0", "--rows", "baseline", "tri_training"]
    with open(tmp / "stderr.txt", "w") as err, open(tmp / "stdout.txt", "w") as std:
        code = subprocess.call([sys.executable, "-m", "audioadapt.cli.main", *args], stdout=std, stderr=err,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    return out, code, (tmp / "stderr.txt").read_text()


def test_the_log_has_whole_lines_and_no_bar(redirected):
    _, code, err = redirected
    assert code == 0, err
    assert "\r" not in err and "run/s" not in err and "it/s" not in err
    lines = err.splitlines()
    assert all(line.startswith(("INFO ", "WARNING ", "  ")) for line in lines), lines
    # one summary line per epoch of each run: 2 epochs of the baseline, 2 + 1 of tri-training
    assert sum(" epoch " in line and " (step " in line for line in lines) == 5


def test_the_data_summary_is_printed_once(redirected):
    _, _, err = redirected
    for line in ("  synthetic: 24 of 24 clips", "  weak: 12 of 12 clips", "  unlabeled: 12 of 12 clips",
                 "SED data: synthetic 19, weak 10, synthetic_valid 5, weak_valid 2"):
        assert err.count(line) == 1, line
    caches = [line for line in err.splitlines() if line.startswith("INFO audioadapt.features.cache")]
    assert caches and len(caches) == len(set(caches))  # each cache named once (a reused one: once per split)


def test_each_run_keeps_its_own_records(redirected):
    out, _, _ = redirected
    for row in ("baseline", "tri_training"):
        run = out / "runs" / row / "seed0"
        log = (run / "train.log").read_text()
        assert "  synthetic: 24 of 24 clips" in log  # the console printed it once; every run's log has it
        assert sum(" (step " in line for line in log.splitlines()) == (2 if row == "baseline" else 3)
        cell = json.loads((run / CELL_FILE).read_text())
        assert cell["selection"]["metric"] == "selection"
        assert cell["selection"] == json.loads((run / "summary.json").read_text())["selection"]
