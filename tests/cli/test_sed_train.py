"""``audioadapt sed train`` and ``audioadapt sed evaluate RUN_DIR`` end to end on a tiny generated dataset."""

from __future__ import annotations

import json

import pytest

from audioadapt.cli.main import main
from audioadapt.config.sed import load_sed_config

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


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_then_evaluate_the_run(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    # options between the preset and the overrides, as in the usage line
    code = main(["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--fast-dev-run", "2", *SMALL])
    assert code == 0
    out = capsys.readouterr().out
    assert f"run directory: {run}" in out and f"audioadapt sed evaluate {run}" in out
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("phase1,1,1,2,") and rows[2].startswith("phase2,1,2,4,")
    assert load_sed_config(run / "config.yaml").train.fast_dev_run == 2
    assert main(["sed", "evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "| macro |" in printed and "psds1" in printed
    saved = json.loads((run / "eval_validation.json").read_text())
    assert saved["inputs"]["run_dir"] == str(run) and saved["inputs"]["clips"] == 12
    # resume a finished run: nothing left to do, still a clean exit
    assert main(["sed", "train", PRESET, "--data", str(tiny), "--out", str(run), "--resume", "--fast-dev-run", "2",
                 *SMALL]) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["sed", "train", "sed_nope", "--data", "."], "no preset or config file 'sed_nope'"),
    (["sed", "train", "sed_baseline", "--data", ".", "method.orthogonality.weight=0.5"], "no effect"),
    (["sed", "train", "sed_baseline", "--data", ".", "train.epochz=3"], "Did you mean 'epochs'"),
    (["sed", "train", "sed_baseline", "--data", ".", "--resume"], "--resume needs --out"),
    (["sed", "train", "sed_baseline", "--data", ".", "--fast-dev-run", "0"], "--fast-dev-run must be >= 1"),
    (["sed", "evaluate", "some_run", "--pred", "p.tsv"], "cannot be combined with RUN_DIR"),
    (["sed", "evaluate", "--split", "synthetic_valid", "--pred", "p.tsv", "--ref", "r.tsv"], "only apply to RUN_DIR"),
    (["sed", "evaluate"], "give RUN_DIR, or both --pred"),
])
def test_usage_errors_are_clean(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_directory_without_a_run_is_a_clean_error(tmp_path, capsys):
    assert main(["sed", "evaluate", str(tmp_path)]) == 2
    assert "last.pt" in capsys.readouterr().err
