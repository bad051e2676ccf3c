"""``audioadapt sed train`` and ``audioadapt sed evaluate RUN_DIR`` end to end on a tiny generated dataset."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audioadapt.cli.main import main
from audioadapt.config.sed import load_sed_config
from audioadapt.training.checkpoint import make_checkpoint, save_checkpoint
from audioadapt.training.run_lock import RunLock

PRESET = "sed_adv_time_tri_training"
#: Shrinks the preset to seconds (as the training tests do).
SMALL = ["features.hop_length=1380", "features.n_mels=32", "model.crnn.filters=[8,16]", "model.crnn.kernel_sizes=[3,3]",
         "model.crnn.pooling=[[2,4],[2,8]]", "model.crnn.rnn_hidden=16", "model.crnn.rnn_layers=1",
         "model.domain.hidden=[16]", "train.device=cpu", "train.progress_bar=false", "train.tensorboard=false",
         "sampler.phase1.batch_sizes={synthetic: 4, weak: 4, unlabeled: 4}",
         "sampler.phase2.batch_sizes={synthetic: 4, weak: 4, unlabeled: 4}", "cache.num_workers=0",
         "cache.progress=false"]


@pytest.fixture(scope="module")
def tiny(sed_tiny_dataset):
    return sed_tiny_dataset


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory) -> tuple[Path, int, str]:
    """A finished run of the shrunk preset: its directory, the exit code and what ``sed train`` printed."""
    run = tmp_path_factory.mktemp("sed_train") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # options between the preset and the overrides, as in the usage line
        code = main(["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--fast-dev-run", "2", *SMALL])
    return run, code, out.getvalue()


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "copy"))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_then_evaluate_the_run(tiny, trained, capsys):
    run, code, out = trained
    assert code == 0
    assert f"run directory: {run}" in out and f"audioadapt sed evaluate {run}" in out
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("phase1,1,1,2,") and rows[2].startswith("phase2,1,2,4,")
    assert load_sed_config(run / "config.yaml").train.fast_dev_run == 2
    assert main(["sed", "evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "| macro |" in printed and "psds1" in printed
    saved = json.loads((run / "eval_validation.json").read_text())
    assert saved["inputs"]["run_dir"] == str(run) and saved["inputs"]["clips"] == 12
    # the report says which checkpoint it scored
    epoch = saved["inputs"]["global_epoch"]
    assert (saved["inputs"]["checkpoint"], saved["inputs"]["checkpoint_role"]) == (str(run / "best.pt"), "best")
    assert f"Checkpoint: `{run / 'best.pt'}` (best, epoch {epoch}, seed 0)" in printed
    assert f"(best, epoch {epoch}, seed 0)" in (run / "eval_validation.md").read_text()
    # ... the run's seed, how its epoch was selected and the torch that computed it
    assert saved["inputs"]["seed"] == 0 and saved["versions"]["torch"] == torch.__version__
    assert saved["inputs"]["selection"]["metric"] == "selection"
    assert saved["inputs"]["selection"]["global_epoch"] == epoch
    # one line per epoch in train.log (progress bars were off)
    log_lines = (run / "train.log").read_text().splitlines()
    epochs = [line.split(": ", 1)[1] for line in log_lines if " epoch 1/1 (step " in line]
    assert [e.split(":")[0] for e in epochs] == ["phase1 epoch 1/1 (step 2)", "phase2 epoch 1/1 (step 4)"]
    assert all(" | val selection=" in e and e.endswith(" s") and "loss=" in e for e in epochs)
    # resume a finished run: nothing left to do, still a clean exit, and the run's records stay as they were
    records = {name: (run / name).read_bytes() for name in ("data.json", "metrics.csv", "config.yaml")}
    assert main(["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--resume", "--fast-dev-run", "2",
                 *SMALL]) == 0
    assert {name: (run / name).read_bytes() for name in records} == records


def test_evaluate_says_when_it_falls_back_to_last(trained, tmp_path, capsys, caplog):
    run = _copy(trained[0], tmp_path)
    (run / "best.pt").unlink()
    with caplog.at_level(logging.INFO, logger="audioadapt"):
        assert main(["sed", "evaluate", str(run)]) == 0
    assert f"{run}: no best.pt (no epoch was selected on the validation metrics); using last.pt" in caplog.text
    assert f"using checkpoint {run / 'last.pt'} (last, epoch 2)" in caplog.text
    assert f"Checkpoint: `{run / 'last.pt'}` (last, epoch 2, seed 0)" in capsys.readouterr().out
    assert json.loads((run / "eval_validation.json").read_text())["inputs"]["checkpoint_role"] == "last"


def test_resume_on_other_data_is_refused_and_keeps_the_record(tiny, trained, tmp_path, capsys):
    run = _copy(trained[0], tmp_path)
    other = Path(shutil.copytree(tiny, tmp_path / "other", ignore=shutil.ignore_patterns("cache"),
                                 copy_function=os.symlink))
    weak = other / "metadata" / "train" / "weak.tsv"
    rows = weak.read_text().splitlines()
    weak.unlink()
    weak.write_text("\n".join(rows[:-1]) + "\n")  # one clip less
    before = (run / "data.json").read_bytes()
    assert main(["sed", "train", PRESET, "--data", str(other), "--out", str(run), "--resume", *SMALL]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'data.json'}: resuming on other data than the run was trained on (" in err
    assert "root" in err and "resume with the data recorded here, or train a new run" in err
    assert (run / "data.json").read_bytes() == before


def test_run_directory_errors_are_clean(trained, tmp_path, capsys):
    run = trained[0]
    base = ["sed", "train", PRESET, "--data", str(tmp_path / "nowhere"), *SMALL]
    # --resume of a directory without a run
    assert main([*base, "--out", str(tmp_path), "--resume"]) == 2
    assert f"{tmp_path}: holds no run to resume (no config.yaml)" in capsys.readouterr().err
    # a run another training holds
    lock = RunLock.acquire(run)
    try:
        assert main([*base, "--out", str(run), "--resume"]) == 2
    finally:
        lock.release()
    assert f"{run}: in use by another training (pid {os.getpid()})" in capsys.readouterr().err
    # an unwritable --out
    (tmp_path / "file").write_text("")
    assert main([*base, "--out", str(tmp_path / "file" / "run")]) == 2
    assert f"{tmp_path / 'file' / 'run'}: cannot write the run directory" in capsys.readouterr().err


def test_a_training_that_failed_at_start_up_does_not_block_the_next(tmp_path, capsys):
    run = tmp_path / "run"
    for data in ("first", "second"):  # two wrong dataset paths: the second start gets as far as its data
        (tmp_path / data).mkdir()
        assert main(["sed", "train", PRESET, "--data", str(tmp_path / data), "--out", str(run), *SMALL]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / data) in err and "already holds a run" not in err
    assert (run / "config.yaml").is_file() and not (run / "last.pt").exists()


def test_a_diverging_training_stops_with_a_clean_error(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--fast-dev-run", "2", *SMALL]
    assert main([*args, "train.lr=1e30"]) == 2
    err = capsys.readouterr().err
    assert f"audioadapt: error: {run}: training stopped in phase 'phase1', epoch 1, step " in err
    assert "; no checkpoint written; lower train.lr" in err and "Traceback" not in err


@pytest.mark.parametrize("meta", [{"task": "ser"}, {"dataset_config": {}}], ids=["task", "older-checkpoint"])
def test_a_ser_run_is_named_as_such(tmp_path, capsys, meta):
    run = tmp_path / "ser_run"
    meta = {**meta, "experiment_config": {"source": {"corpus": "emodb"}}}
    save_checkpoint(make_checkpoint(networks={}, method_state={}, progress={"global_epoch": 3}, best={}, meta=meta),
                    run / "last.pt")
    for command in (["evaluate", str(run)], ["predict", str(run), "clip.wav"]):
        assert main(["sed", *command]) == 2
        err = capsys.readouterr().err
        assert f"{run}: this is a SER run, not a SED run; use `audioadapt ser evaluate`" in err
        assert "unknown config key" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["sed", "train", "sed_nope", "--data", "."], "no preset or config file 'sed_nope'"),
    (["sed", "train", "sed_baseline", "--data", ".", "method.orthogonality.weight=0.5"], "no effect"),
    (["sed", "train", "sed_baseline", "--data", ".", "train.epochz=3"], "Did you mean 'epochs'"),
    (["sed", "train", "sed_baseline", "--data", ".", "--resume"], "--resume needs --out"),
    (["sed", "train", "sed_baseline", "--data", ".", "--fast-dev-run", "0"], "--fast-dev-run must be >= 1"),
    (["sed", "evaluate", "some_run", "--pred", "p.tsv"], "cannot be combined with RUN_DIR"),
    (["sed", "evaluate", "--split", "synthetic_valid", "--pred", "p.tsv", "--ref", "r.tsv"], "only apply to RUN_DIR"),
    (["sed", "evaluate"], "give RUN_DIR, or --ref REF.tsv with either --pred PRED.tsv or --scores DIR"),
])
def test_usage_errors_are_clean(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_directory_without_a_run_is_a_clean_error(tmp_path, capsys):
    assert main(["sed", "evaluate", str(tmp_path)]) == 2
    assert "last.pt" in capsys.readouterr().err


def test_a_redirected_log_has_no_bar_fragments_and_one_line_per_epoch(tiny, tmp_path):
    """Bars on by the settings, stderr to a file: no bar is drawn, every line is a whole log line."""
    run = tmp_path / "run"
    with_bars = [o for o in SMALL if o not in ("train.progress_bar=false", "cache.progress=false")]
    args = ["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--fast-dev-run", "2", *with_bars]
    with open(tmp_path / "stderr.txt", "w") as err, open(tmp_path / "stdout.txt", "w") as out:
        code = subprocess.call([sys.executable, "-m", "audioadapt.cli.main", *args], stdout=out, stderr=err,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    text = (tmp_path / "stderr.txt").read_text()
    assert code == 0, text
    assert "\r" not in text and "it/s" not in text
    lines = text.splitlines()
    # a log line starts with its level; the continuation lines of a data summary with two spaces
    assert all(line.startswith(("INFO ", "WARNING ", "  ")) for line in lines), lines
    assert sum(" epoch 1/1 (step " in line for line in lines) == 2
    assert sum("synthetic: 24 of 24 clips" in line for line in lines) == 1
    assert json.loads((run / "versions.json").read_text())["command"] == ["audioadapt", *args]


def test_predict_plots_draw_the_reference_events_of_ref(tiny, trained, tmp_path, capsys, caplog, monkeypatch):
    from audioadapt.data.dcase import read_strong_tsv
    from audioadapt.evaluation import sed_plot

    run = trained[0]
    ref = tiny / "metadata" / "validation" / "validation.tsv"
    audio = sorted((tiny / "audio" / "validation").glob("*.wav"))[:2]
    drawn = {}
    real = sed_plot.plot_detections

    def spy(path, *args, **kwargs):
        drawn[kwargs["title"]] = kwargs["reference"]
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sed_plot, "plot_detections", spy)
    plots = tmp_path / "plots"
    assert main(["sed", "predict", str(run), *map(str, audio), "--out", str(tmp_path / "events.tsv"),
                 "--plots", str(plots), "--ref", str(ref)]) == 0
    expected = read_strong_tsv(ref)
    assert drawn == {a.name: list(expected[a.name]) for a in audio} and all(drawn.values())
    assert sorted(p.name for p in plots.glob("*.png")) == sorted(f"{a.stem}.png" for a in audio)
    # a file the reference does not list: a plot without reference events, and a warning naming both
    partial = tmp_path / "partial.tsv"
    partial.write_text("filename\tonset\toffset\tevent_label\n" + f"{audio[0].name}\t1.0\t2.0\thum\n")
    with caplog.at_level(logging.WARNING, logger="audioadapt"):
        assert main(["sed", "predict", str(run), *map(str, audio), "--plots", str(plots), "--ref", str(partial)]) == 0
    assert drawn[audio[1].name] == [] and f"{partial} lists no row for {audio[1].name}" in caplog.text
    capsys.readouterr()


@pytest.mark.parametrize("ref_text, message", [
    (None, "--ref only applies with --plots"),
    ("filename\tonset\toffset\tevent_label\nx.wav\t1.0\t2.0\tmeow\n", ":2: "),
])
def test_predict_ref_errors_are_clean(tiny, trained, tmp_path, capsys, ref_text, message):
    ref = tmp_path / "ref.tsv"
    ref.write_text(ref_text or "filename\tonset\toffset\tevent_label\n")
    audio = sorted((tiny / "audio" / "validation").glob("*.wav"))[0]
    plots = [] if ref_text is None else ["--plots", str(tmp_path / "plots")]
    assert main(["sed", "predict", str(trained[0]), str(audio), *plots, "--ref", str(ref)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if ref_text is not None:
        assert f"{ref}:2:" in err and "meow" in err
