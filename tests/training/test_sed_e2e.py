"""Every SED preset trains to a bar on a tiny generated dataset; runs resume, checkpoint and evaluate.

The dataset (``audioadapt synth sed --size tiny``) is generated once per test
session; feature caches are shared by all runs. Networks and inputs are shrunk
by overrides so that each run takes a few seconds on a CPU.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from audioadapt.api.sed import evaluate_sed_run, train_sed
from audioadapt.config.sed import load_sed_config
from audioadapt.training import sed_tri_adv
from audioadapt.training.checkpoint import load_checkpoint

PRESETS = ("sed_baseline", "sed_adv_whole", "sed_adv_time", "sed_tri_training", "sed_adv_whole_tri_training",
           "sed_adv_time_tri_training", "sed_mean_teacher", "sed_paper_adv_whole", "sed_paper_adv_time",
           "sed_paper_tri_training", "sed_paper_adv_whole_tri_training", "sed_paper_adv_time_tri_training",
           "sed_oracle")


@pytest.fixture(scope="module")
def tiny(sed_tiny_dataset) -> Path:
    return sed_tiny_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_overrides(preset: str, epochs: int = 8, phase2: int = 3) -> list[str]:
    """Shrink ``preset`` to seconds: 160 x 32 inputs, a 2-block CRNN, 4 steps per epoch."""
    cfg = load_sed_config(preset)
    out = ["features.hop_length=1380", "features.n_mels=32", "model.crnn.filters=[8,16]",
           "model.crnn.kernel_sizes=[3,3]", "model.crnn.pooling=[[2,4],[2,8]]", "model.crnn.rnn_hidden=16",
           "model.crnn.rnn_layers=1", "model.crnn.dropout=0.0", "model.head.dropout=0.0", "train.lr=3e-3",
           f"train.epochs={epochs}", "train.device=cpu", "train.progress_bar=false", "train.tensorboard=false",
           "train.log_every=1", "sampler.phase1.batch_sizes.synthetic=4", "sampler.phase1.batch_sizes.weak=4",
           "sampler.phase1.steps_per_epoch=4", "cache.num_workers=0", "cache.progress=false",
           "method.predict.batch_size=16"]
    if cfg.sampler.phase1.batch_sizes.get("unlabeled", 0):
        out.append("sampler.phase1.batch_sizes.unlabeled=4")
    if cfg.method.uses_labelers:
        out += ["sampler.phase2.batch_sizes={synthetic: 4, weak: 4, unlabeled: 4}", "sampler.phase2.steps_per_epoch=4",
                f"method.phase2_epochs={phase2}"]
    if cfg.method.adversarial != "none":
        out.append("model.domain.hidden=[16]")
    return out


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ft_loss(row: dict[str, str], kind: str) -> float:
    """The final classifier's training loss (frame + clip) of one epoch row."""
    if kind == "mean_teacher":
        return float(row["train/frame"]) + float(row["train/clip"])
    return float(row["train/ft_frame"]) + float(row["train/ft_clip"])


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_to_a_bar(preset, tiny, tmp_path):
    run = tmp_path / "run"
    # The real-domain validation split must never be read while training: point it nowhere.
    hidden = ["data.layout.validation_tsv=absent/validation.tsv", "data.layout.validation_audio=absent"]
    result = train_sed(preset, tiny_overrides(preset) + hidden, data_root=tiny, run_dir=run)
    cfg = load_sed_config(preset)
    rows = read_metrics(run)
    phase1 = [r for r in rows if r["phase"] in ("phase1", "train")]
    first, last = ft_loss(phase1[0], cfg.method.kind), ft_loss(phase1[-1], cfg.method.kind)
    assert last < 0.75 * first, f"{preset}: Ft loss went from {first:.3f} to {last:.3f}"
    assert {k for k in rows[-1] if k.startswith("val/")} == {"val/selection", "val/synthetic_event_f1",
                                                            "val/weak_clip_f1"}
    assert result.best["metric"] == "selection" and (run / "best.pt").is_file()
    if cfg.method.uses_labelers:
        assert [r["phase"] for r in rows].count("phase2") == 3
        passes = json.loads((run / sed_tri_adv.PSEUDO_LABEL_FILE).read_text())
        assert set(passes[0]["sources"]) == {"weak", "unlabeled"}
    data = json.loads((run / "data.json").read_text())
    assert data["clips"]["synthetic"] + data["clips"]["synthetic_valid"] == 24
    assert ("unlabeled" in data["clips"]) == ("unlabeled" in cfg.needed_sources())


def test_checkpoint_is_self_describing_and_evaluation_writes_reports(tiny, tmp_path):
    run = tmp_path / "run"
    train_sed("sed_adv_time_tri_training", tiny_overrides("sed_adv_time_tri_training", 2, 1), data_root=tiny,
              run_dir=run)
    raw = torch.load(run / "best.pt", weights_only=True)  # plain tensors and values only
    meta = raw["meta"]
    assert {"model_config", "feature_config", "normalizer", "classes", "audioadapt_version"} <= set(meta)
    assert meta["model_config"]["heads"] == ["f1", "f2", "ft"] and meta["feature_config"]["n_mels"] == 32
    assert len(meta["classes"]) == 10 and "_extra_state" in meta["normalizer"]
    evaluation = evaluate_sed_run(run)
    entries = evaluation.entries()
    assert {"event_macro_f1", "segment_macro_f1", "psds1", "psds2"} <= set(entries)
    assert evaluation.inputs["clips"] == 12 and evaluation.inputs["split"] == "validation"
    saved = json.loads((run / "eval_validation.json").read_text())
    assert saved["entries"]["event_macro_f1"] == pytest.approx(entries["event_macro_f1"])
    assert (run / "eval_validation.md").read_text().startswith("## SED evaluation")
    assert (run / "predictions_validation.tsv").read_text().startswith("filename\tonset\toffset\tevent_label")
    synth = evaluate_sed_run(run, split="synthetic_valid", write=False)
    assert synth.inputs["clips"] == 5


def test_killed_run_resumes_to_the_same_weights_with_its_pseudo_labels(tiny, tmp_path, monkeypatch):
    preset = "sed_tri_training"
    overrides = tiny_overrides(preset, epochs=2, phase2=2)
    full = tmp_path / "full"
    train_sed(preset, overrides, data_root=tiny, run_dir=full)

    original = sed_tri_adv.SedTriAdvMethod.training_step
    calls = {"phase2": 0}

    def dies_in_phase2(self, batch, ctx):
        if ctx.phase.name == "phase2":
            calls["phase2"] += 1
            if calls["phase2"] > 5:  # inside phase 2's second epoch (4 steps per epoch)
                raise KeyboardInterrupt
        return original(self, batch, ctx)

    cut = tmp_path / "cut"
    monkeypatch.setattr(sed_tri_adv.SedTriAdvMethod, "training_step", dies_in_phase2)
    with pytest.raises(KeyboardInterrupt):
        train_sed(preset, overrides, data_root=tiny, run_dir=cut)
    monkeypatch.setattr(sed_tri_adv.SedTriAdvMethod, "training_step", original)
    assert load_checkpoint(cut / "last.pt")["progress"]["phase"] == "phase2"
    train_sed(preset, overrides, run_dir=cut, resume=True)  # the dataset root comes from the run
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(cut / "last.pt")
    for name in a["networks"]:
        for key, value in a["networks"][name].items():
            torch.testing.assert_close(b["networks"][name][key], value, msg=f"{name}.{key}")
    torch.testing.assert_close(b["method"]["pseudo"]["weak"]["frame"], a["method"]["pseudo"]["weak"]["frame"])
    assert read_metrics(full) == read_metrics(cut)
