"""``audioadapt ser train / evaluate / predict`` end to end on a tiny generated dataset."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from audioadapt.cli.main import main
from audioadapt.config.ser import load_ser_config
from audioadapt.training.checkpoint import make_checkpoint, save_checkpoint

#: Shrinks ser_demo to seconds (as the training tests do).
SMALL = ["features.n_mels=32", "model.encoder.conv_channels=[16,16]", "model.encoder.lstm_hidden=16",
         "model.encoder.attention_dim=16", "dataset.crop_seconds=3.0", "stage1.epochs=3", "stage1.batch_size=8",
         "stage2.epochs=1", "stage2.source_batch_size=8", "stage2.target_batch_size=8", "train.device=cpu",
         "train.progress_bar=false", "train.tensorboard=false", "cache.num_workers=0", "cache.progress=false"]


@pytest.fixture(scope="module")
def tiny(ser_tiny_dataset) -> Path:
    return ser_tiny_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_evaluate_predict(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    # options between the preset and the overrides, as in the usage line
    code = main(["ser", "train", "ser_demo", "--source", str(tiny), "--target", f"generated:{tiny}",
                 "--out", str(run), *SMALL])
    assert code == 0
    out = capsys.readouterr().out
    assert "stage 1 selected epoch" in out and f"audioadapt ser evaluate {run}" in out
    cfg = load_ser_config(run / "config.yaml")
    assert (cfg.source.corpus, cfg.target.corpus, cfg.source.root) == ("generated", "generated", str(tiny))
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 + 1 and rows[-1].startswith("stage2,1,4,")

    assert main(["ser", "evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "# target test" in printed and "| ua |" in printed and "### Confusion matrix" in printed
    saved = json.loads((run / "eval_test.json").read_text())
    assert saved["inputs"]["utterances"] == 11 and (run / "confusion_test.png").is_file()
    # the report says which checkpoint it scored
    assert (saved["inputs"]["checkpoint"], saved["inputs"]["checkpoint_role"]) == (str(run / "last.pt"), "last")
    # ... and its Markdown names the file, that it is the last one, its epoch and the run's seed
    assert saved["inputs"]["global_epoch"] == 4 and saved["inputs"]["seed"] == cfg.train.seed
    assert (f"Checkpoint: `{run / 'last.pt'}` (last, epoch 4, seed {cfg.train.seed})"
            in (run / "eval_test.md").read_text())
    # the same target read through its manifest elsewhere gives the same split and scores
    assert main(["ser", "evaluate", str(run), "--target", f"csv:{tiny / 'target' / 'manifest.csv'}"]) == 0
    again = json.loads((run / "eval_test.json").read_text())
    assert again["entries"] == saved["entries"] and again["inputs"]["target"].startswith("csv:")
    capsys.readouterr()

    audio = tiny / "target" / "audio"
    listing = tmp_path / "files.txt"
    listing.write_text("# two files\n" + "\n".join(str(p) for p in sorted(audio.glob("*.wav"))[:2]) + "\n")
    assert main(["ser", "predict", str(run), str(listing), str(audio / "target_00005.wav")]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [Path(r["path"]).name for r in table] == ["target_00000.wav", "target_00001.wav", "target_00005.wav"]
    for r in table:
        probs = [float(r[c]) for c in ("angry", "happy", "sad", "neutral")]
        assert abs(sum(probs) - 1) < 1e-4
        assert r["label"] == ("angry", "happy", "sad", "neutral")[probs.index(max(probs))]
        assert r["memory_label"] in ("angry", "happy", "sad", "neutral")
    out_json = tmp_path / "pred.json"
    assert main(["ser", "predict", str(run), str(audio), "--out", str(out_json)]) == 0
    assert len(json.loads(out_json.read_text())) == 32

    # resume a finished run, corpora from the run: nothing left to do, still a clean exit
    records = {name: (run / name).read_bytes() for name in ("data.json", "metrics.csv", "config.yaml")}
    assert main(["ser", "train", "ser_demo", "--out", str(run), "--resume", *SMALL]) == 0
    # on another source corpus it is refused, and the run's records stay as they were
    other = f"csv:{tiny / 'target' / 'manifest.csv'}"
    assert main(["ser", "train", "ser_demo", "--out", str(run), "--resume", "--source", other, *SMALL]) == 2
    assert f"{run / 'data.json'}: resuming on other data than the run was trained on" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in records} == records


def test_user_errors_exit_with_a_message(tiny, tmp_path, capsys):
    assert main(["ser", "train", "ser_nnpm", "--source", "ravdes:/x", "--target", str(tiny)]) == 2
    assert "unknown corpus 'ravdes'" in capsys.readouterr().err
    assert main(["ser", "train", "ser_nnpm", "--target", str(tiny), "--out", str(tmp_path / "r"), *SMALL]) == 2
    assert "no source corpus: give --source" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["ser", "train", "ser_nnpm", "--resume", "--source", str(tiny), "--target", str(tiny)]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["ser", "predict", str(tmp_path / "nothing"), str(tiny / "target" / "audio")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["ser", "train", "ser_nnpm", "--source", str(tiny), "--target", str(tiny), "memory.rate_end=2"]) == 2
    assert "rate_end" in capsys.readouterr().err
    assert main(["ser", "train", "ser_nnpm", "--resume", "--out", str(tmp_path)]) == 2
    assert f"{tmp_path}: holds no run to resume (no config.yaml)" in capsys.readouterr().err


@pytest.mark.parametrize("meta", [{"task": "sed"}, {"data_root": "/data"}], ids=["task", "older-checkpoint"])
def test_a_sed_run_is_named_as_such(tmp_path, capsys, meta):
    run = tmp_path / "sed_run"
    meta = {**meta, "experiment_config": {"sampler": {}}}
    save_checkpoint(make_checkpoint(networks={}, method_state={}, progress={"global_epoch": 3}, best={}, meta=meta),
                    run / "last.pt")
    for command in (["evaluate", str(run)], ["predict", str(run), "clip.wav"]):
        assert main(["ser", *command]) == 2
        err = capsys.readouterr().err
        assert f"{run}: this is a SED run, not a SER run; use `audioadapt sed evaluate`" in err


def test_outputs_that_cannot_be_written_are_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("audioadapt.api.ser.predict_ser", pytest.fail)  # must not be reached
    monkeypatch.setattr("audioadapt.api.ser.evaluate_ser_run", pytest.fail)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["ser", "predict", str(tmp_path), "x.wav", "--out", str(a_file / "p.csv")]) == 2
    assert capsys.readouterr().err == (f"audioadapt: error: {a_file / 'p.csv'}: cannot write --out: {a_file} is "
                                       "a file, not a folder\n")
    real = os.access
    monkeypatch.setattr("audioadapt.cli.outputs.os.access",
                        lambda path, mode: False if Path(path) == tmp_path else real(path, mode))
    assert main(["ser", "evaluate", str(tmp_path)]) == 2
    assert f"{tmp_path}: cannot write the evaluation report into the run: folder {tmp_path} is not writable" \
        in capsys.readouterr().err


def test_predict_scores_long_files_in_windows(tmp_path, capsys):
    import numpy as np

    from audioadapt.api.ser import checkpoint_meta
    from audioadapt.audio.io import write_audio
    from audioadapt.data.utterances import EMOTIONS
    from audioadapt.features.normalization import Normalizer
    from audioadapt.models.ser_model import SerModel
    from audioadapt.training.ser_predict import model_networks

    cfg = load_ser_config("ser_demo", [*SMALL, "dataset.crop_seconds=1.0"])
    model = SerModel(cfg.model, cfg.features.n_mels)
    meta = checkpoint_meta(cfg, Normalizer(cfg.normalizer, cfg.features.n_mels), EMOTIONS)
    run = tmp_path / "run"
    save_checkpoint(make_checkpoint(networks=model_networks(model), method_state={}, progress={}, best={},
                                    meta=meta), run / "last.pt")
    rate = cfg.features.sample_rate
    wav = write_audio(tmp_path / "long.wav", np.random.default_rng(0).normal(size=int(2.5 * rate)).astype(np.float32)
                      * 0.1, rate)
    assert main(["ser", "predict", str(run), str(wav)]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["windows"] == "3"
    assert main(["ser", "predict", str(run), str(wav), "--windows", "--hop", "0.5", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["window"], r["start"], r["end"]) for r in rows] == [
        ("mean", 0.0, 2.5), (0, 0.0, 1.0), (1, 0.5, 1.5), (2, 1.0, 2.0), (3, 1.5, 2.5)]
    assert main(["ser", "predict", str(run), str(wav), "--hop", "0"]) == 2
    assert "--hop must be positive, got 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ser", "predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "in windows of the run's crop length" in text and "mean of its windows' probabilities" in text
    assert "--windows" in text
