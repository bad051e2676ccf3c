"""Every SER preset trains to a bar on a tiny generated dataset; runs evaluate and predict; no target label leaks.

The dataset (``audioadapt synth ser --size tiny``: 32 source + 32 target
utterances) is generated once per test session and its feature caches are
shared by all runs. Networks, crops and epochs are shrunk by overrides so that
each run takes a few seconds on a CPU.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.api.ser import evaluate_ser_run, predict_ser, train_ser
from audioadapt.config.load import list_presets
from audioadapt.training.checkpoint import load_checkpoint
from audioadapt.training.ser_nnpm import STAGE1, SerNnpmMethod
from audioadapt.training.ser_predict import predict_dataset


#: ser_base (an NNPM run) trains in test_evaluate_and_predict_a_run.
PRESETS = [p for p in list_presets("ser_") if p not in ("ser_features", "ser_base")]
#: Shrinks any preset to seconds: 32 mels, a 16-unit SNSA, 3 s crops, 10 + 2 epochs of 8 + 8 utterances.
TINY = ["features.n_mels=32", "model.encoder.conv_channels=[16,16]", "model.encoder.lstm_hidden=16",
        "model.encoder.lstm_layers=1", "model.encoder.attention_dim=16", "model.encoder.dropout=0.0",
        "dataset.crop_seconds=3.0", "dataset.pad_to_crop=false", "source_validation.kind=none",
        "stage1.epochs=10", "stage1.lr=1e-2", "stage1.batch_size=8", "train.device=cpu",
        "train.progress_bar=false", "train.tensorboard=false", "train.log_every=1", "cache.num_workers=0",
        "cache.progress=false", "protocol.protocol=transductive"]
STAGE2 = ["stage2.epochs=2", "stage2.lr=1e-3", "stage2.source_batch_size=8", "stage2.target_batch_size=8"]


@pytest.fixture(scope="module")
def tiny(ser_tiny_dataset) -> Path:
    return ser_tiny_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_overrides(preset: str, *extra: str) -> list[str]:
    out = list(TINY) + ([] if preset == "ser_snsa_f" else STAGE2)
    if preset == "ser_dann":
        out.append("model.domain.hidden=[16]")
    return out + list(extra)


@pytest.fixture(scope="module")
def stage1_accuracy():
    """Source accuracy (evaluation crops, every source utterance) of each run's model at the end of stage 1."""
    found: list[float] = []
    original = SerNnpmMethod.on_phase_end

    def probe(self, phase, ctx):
        original(self, phase, ctx)
        if phase.name == STAGE1:
            ds = self.data.source_slots_eval
            pred = predict_dataset(self.model, self.normalizer, ds, 32, ctx.device)
            found.append(float((pred.labels == ds.labels).mean()))

    SerNnpmMethod.on_phase_end = probe
    yield found
    SerNnpmMethod.on_phase_end = original


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_to_a_bar(preset, tiny, tmp_path, stage1_accuracy):
    run = tmp_path / "run"
    result = train_ser(preset, tiny_overrides(preset), source=tiny, target=tiny, run_dir=run)
    kind = load_checkpoint(run / "last.pt")["meta"]["method"]
    # stage 1 learnt the source: chance is 25 %
    assert stage1_accuracy[-1] >= 0.5, stage1_accuracy[-1]
    rows = read_metrics(run)
    stage1 = [r for r in rows if r["phase"] == "stage1"]
    stage2 = [r for r in rows if r["phase"] == "stage2"]
    assert len(stage1) == 10 and float(stage1[-1]["train/source_ce"]) < float(stage1[0]["train/source_ce"])
    assert len(result.history) == len(rows)
    if kind == "snsa_f":
        assert not stage2
    else:
        assert len(stage2) == 2 and all(np.isfinite(float(r["train/loss"])) for r in stage2)
    if kind in ("nnpm", "snsa_wo_sl", "snsa_wo_hl"):
        for r in stage2:
            assert 0.0 <= float(r["train/pml_empty_fraction"]) <= 1.0
            assert 0.0 <= float(r["train/pml_mean_size"]) <= 32.0
            assert 0.0 <= float(r["train/memory_head_agreement"]) <= 1.0
        assert [float(r["train/memory_rate"]) for r in stage2] == [0.0, pytest.approx(0.4)]  # 0.4 in the last epoch
    if kind == "dann":
        assert float(stage2[0]["train/grl_weight"]) < float(stage2[1]["train/grl_weight"]) <= 1.0
    ckpt = torch.load(run / "last.pt", weights_only=True)
    meta = ckpt["meta"]
    assert meta["classes"] == ["angry", "happy", "sad", "neutral"] and meta["feature_config"]["n_mels"] == 32
    assert meta["model_config"]["encoder"]["lstm_hidden"] == 16 and "_extra_state" in meta["normalizer"]
    assert ("memory" in ckpt["method"]) == (kind in ("nnpm", "snsa_wo_sl", "snsa_wo_hl"))
    data = json.loads((run / "data.json").read_text())
    assert data["utterances"]["source_slots"] == 32 and data["utterances"]["target_adapt"] == 32


def test_evaluate_and_predict_a_run(tiny, tmp_path, stage1_accuracy):
    run = tmp_path / "run"
    train_ser("ser_base", tiny_overrides("ser_base", "protocol.protocol=paper"), source=tiny, target=tiny,
              run_dir=run)
    assert stage1_accuracy[-1] >= 0.5 and load_checkpoint(run / "last.pt")["meta"]["method"] == "nnpm"
    results = evaluate_ser_run(run)
    test = results["test"]
    assert list(results) == ["test"] and test.n_utterances == 11  # ceil(0.33 * 32) of the paper split
    assert 0.0 <= test.ua <= 1.0 and 0.0 <= test.wa <= 1.0
    report = json.loads((run / "eval_test.json").read_text())
    assert report["entries"]["ua"] == pytest.approx(test.ua) and report["inputs"]["protocol"] == "paper"
    assert 0.0 <= report["entries"]["memory_head_agreement"] <= 1.0
    assert "### Per-class results" in (run / "eval_test.md").read_text()
    speakers = report["results"]["per_speaker"]  # the generated corpus has speaker ids
    assert sum(s["utterances"] for s in speakers.values()) == 11
    assert sum(s["correct"] for s in speakers.values()) == round(test.wa * 11)
    assert "### Per-speaker results" in (run / "eval_test.md").read_text()
    assert (run / "confusion_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(run / "predictions_test.csv", newline="") as fh:
        predictions = list(csv.DictReader(fh))
    assert len(predictions) == 11
    correct = sum(r["true"] == r["predicted"] for r in predictions)
    assert correct == test.n_correct
    # predicting the files themselves gives the same probabilities (same crop, same model) for files that fit in
    # one crop (a longer file is scored whole, in windows)
    import soundfile

    within = [r for r in predictions if soundfile.info(r["path"]).duration <= 3.0][:3]
    assert within
    files = [Path(r["path"]) for r in within]
    rows = predict_ser(run, files)
    for row, saved in zip(rows, within):
        assert row["label"] == saved["predicted"] and row["memory_label"] == saved["memory"]
        for c in ("angry", "happy", "sad", "neutral"):
            assert row[c] == pytest.approx(float(saved[c]), abs=1e-5)


def _scrambled_target(tiny: Path, out: Path, seed: int) -> Path:
    """A copy of the target manifest (same audio, absolute paths) whose labels are permuted."""
    with open(tiny / "target" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = [r["label"] for r in rows]
    if seed:
        labels = list(np.random.default_rng(seed).permutation(labels))
        assert labels != [r["label"] for r in rows]
    folder = out / "target"
    folder.mkdir(parents=True)
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker"])
        for r, label in zip(rows, labels):
            writer.writerow([str((tiny / "target" / r["path"]).resolve()), label, r["speaker"]])
    return folder / "manifest.csv"


#: Logged measures that read the target truth (``diagnostics.target_truth``); nothing else may.
TRUTH_COLUMNS = ("train/pml_purity", "train/pml_vote_accuracy", "train/head_target_accuracy")


def test_target_labels_never_reach_training(tiny, tmp_path):
    """Scrambling the target labels leaves training bit-identical (transductive split: the same utterances adapt).

    The truth diagnostics are switched on: they read the scrambled labels (their columns differ), and
    nothing else does.
    """
    finals = []
    for seed in (0, 1):
        manifest = _scrambled_target(tiny, tmp_path / f"labels{seed}", seed)
        run = tmp_path / f"run{seed}"
        train_ser("ser_nnpm", tiny_overrides("ser_nnpm", "stage1.epochs=3", "source_validation.kind=stratified",
                                             "source_validation.fraction=0.25", f"cache.directory={tmp_path}/cache",
                                             "diagnostics.target_truth=true"),
                  source=tiny, target=f"csv:{manifest}", run_dir=run)
        finals.append((torch.load(run / "last.pt", weights_only=True), read_metrics(run)))
    (a, rows_a), (b, rows_b) = finals
    for net in a["networks"]:
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), (net, key)
    assert torch.equal(a["method"]["memory"]["features"], b["method"]["memory"]["features"])
    stage2 = [(x, y) for x, y in zip(rows_a, rows_b) if x["phase"] == "stage2"]
    assert stage2 and all(x["train/head_target_accuracy"] != "" for x, _ in stage2)
    assert any(x[c] != y[c] for x, y in stage2 for c in TRUTH_COLUMNS)  # the switch did read the labels

    def without_truth(rows):
        return [{k: v for k, v in r.items() if k not in TRUTH_COLUMNS} for r in rows]

    assert without_truth(rows_a) == without_truth(rows_b) and any("val/source_ua" in r for r in rows_a)


def test_the_oracle_multilabels_lift_the_target_to_a_bar(tiny, tmp_path):
    """Oracle sets (every slot of the true emotion) adapt the encoder until the source head reads the target.

    The stage-1 model scores about 31 % UA on this target (chance 25 %). One seed's oracle UA moves by 10-20
    points between CPU kinds (other kernels, other rounding: 66 % on an AVX2 machine, 44 % with AVX-512 at lr
    1e-2, 8 epochs), so the 55 % bar is on the mean of two seeds at a gentler rate (seeds 0 and 1: 56 and 66 % with
    AVX-512). Sets that were not the true emotion's would not get there.
    """
    scores = []
    for seed in (0, 1):
        run = tmp_path / f"oracle{seed}"
        train_ser("ser_oracle", tiny_overrides("ser_oracle", "stage2.epochs=16", "stage2.lr=3e-3", "stage2.freeze_conv=0",
                                               "diagnostics.target_truth=true", f"train.seed={seed}"),
                  source=tiny, target=tiny, run_dir=run)
        stage2 = [r for r in read_metrics(run) if r["phase"] == "stage2"]
        assert len(stage2) == 16 and all(float(r["train/pml_purity"]) == 1.0 for r in stage2)
        assert all(float(r["train/pml_mean_size"]) == 8.0 for r in stage2)  # the 8 source utterances of each emotion
        scores.append(evaluate_ser_run(run)["test"].ua)
    assert sum(scores) / len(scores) >= 0.55, scores
