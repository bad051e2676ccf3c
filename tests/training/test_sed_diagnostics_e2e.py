"""SED diagnostics in real runs on the tiny generated dataset: the columns of metrics.csv and TensorBoard, and
the true labels of the weak and unlabelled clips, read for the pseudo-label scores, never reaching training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.api.sed import train_sed
from audioadapt.data.dcase import read_strong_tsv, write_strong_tsv
from audioadapt.data.synthetic.sed import TRUTH_DIR, TRUTH_SPLITS
from audioadapt.data.synthetic.sources import CLASS_NAMES
from audioadapt.training.logging import read_metrics
from audioadapt.training.sed_tri_adv import PSEUDO_LABEL_FILE

from .test_sed_e2e import tiny_overrides

pytestmark = pytest.mark.usefixtures("one_thread")

PRESET = "sed_adv_time_tri_training"


def _scalar_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return set(acc.Tags()["scalars"])


def _train(root: Path, run: Path, *extra: str) -> list[dict[str, str]]:
    overrides = tiny_overrides(PRESET, epochs=2, phase2=2) + ["method.diagnostics.every=2", *extra]
    train_sed(PRESET, overrides, data_root=root, run_dir=run)
    return read_metrics(run / "metrics.csv")


def test_diagnostics_reach_metrics_csv_tensorboard_and_the_pseudo_label_file(sed_tiny_dataset, tmp_path):
    run = tmp_path / "run"
    rows = _train(sed_tiny_dataset, run, "train.tensorboard=true", "method.diagnostics.pseudo_label_truth=true")
    per_step = {"saturation", "domain_acc_synthetic", "domain_acc_real", "domain_acc_balanced"}
    gradients = {"grad_ft", "grad_domain", "grad_total"}  # the cosine needs alpha > 0 (after the warm-up)
    for row in rows:
        names = {k[len("train/diag/"):] for k in row if k.startswith("train/diag/")}
        assert per_step | gradients <= names, (row["phase"], row["epoch"], names)  # 4 steps per epoch, every 2
        assert ({"eq8", "grad_f1", "grad_f2", "grad_labelers_eq8"} <= names) == (row["phase"] == "phase1")
        assert 0.0 <= float(row["train/diag/saturation"]) <= 1.0
        assert 0.0 <= float(row["train/diag/domain_acc_balanced"]) <= 1.0
    first_phase2 = next(r for r in rows if r["phase"] == "phase2")
    counts = [k for k in first_phase2 if k.startswith("train/pseudo/")]
    for source in ("weak", "unlabeled"):
        for key in ("frames_positive", "frames_negative", "frames_unknown", "clip_positive", "clip_unknown"):
            classes = {k.rsplit("/", 1)[1] for k in counts if k.startswith(f"train/pseudo/{source}/{key}/")}
            assert classes == set(CLASS_NAMES), (source, key)
    assert "train/pseudo/weak/truth_negative_precision/all_classes" in first_phase2
    later = [r for r in rows if r["phase"] == "phase2"][1:]
    assert later and not any(k.startswith("train/pseudo/") for r in later for k in r)  # once per round
    tags = _scalar_tags(run)
    assert {"train/diag/grad_domain", "train/diag/eq8", "train/diag/domain_acc_balanced",
            "train/pseudo/weak/truth_negative_precision/all_classes", "step/diag/saturation"} <= tags
    record = json.loads((run / PSEUDO_LABEL_FILE).read_text())[0]
    truth = record["sources"]["weak"]["truth"]
    assert set(truth) == set(record["sources"]["weak"]["per_class"]) | {"all_classes"}
    # with the weak constraint, a class absent from a weak label is negative, and truly absent
    assert truth["all_classes"]["negative_precision"] is not None and truth["all_classes"]["pseudo_negative"] > 0


def _scrambled_truth(root: Path, out: Path) -> Path:
    """A copy of the true labels where each clip gets another clip's events."""
    out.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split in TRUTH_SPLITS:
        clips = read_strong_tsv(root / TRUTH_DIR / f"{split}.tsv")
        names = list(clips)
        shuffled = [clips[names[i]] for i in rng.permutation(len(names))]
        assert shuffled != [clips[n] for n in names]
        write_strong_tsv(out / f"{split}.tsv", dict(zip(names, shuffled)))
    return out


def test_true_labels_never_reach_training_or_selection(sed_tiny_dataset, tmp_path):
    """The same run scored against the true labels and against scrambled ones: identical weights, pseudo labels,
    losses, validation and best checkpoint; only the truth scores differ."""
    scrambled = _scrambled_truth(sed_tiny_dataset, tmp_path / "scrambled")
    runs = {"true": ["method.diagnostics.pseudo_label_truth=true"],
            "scrambled": [f"method.diagnostics.pseudo_label_truth={scrambled}"]}
    results = {}
    for name, extra in runs.items():
        rows = _train(sed_tiny_dataset, tmp_path / name, *extra)
        results[name] = (rows, torch.load(tmp_path / name / "last.pt", weights_only=True),
                         torch.load(tmp_path / name / "best.pt", weights_only=True))
    (rows_a, last_a, best_a), (rows_b, last_b, best_b) = results["true"], results["scrambled"]
    for net, state in last_a["networks"].items():
        for key, value in state.items():
            assert torch.equal(value, last_b["networks"][net][key]), (net, key)
            assert torch.equal(best_a["networks"][net][key], best_b["networks"][net][key]), (net, key)
    assert best_a["best"] == best_b["best"] and best_a["progress"] == best_b["progress"]
    for source, labels in last_a["method"]["pseudo"].items():
        assert torch.equal(labels["frame"], last_b["method"]["pseudo"][source]["frame"])
        assert torch.equal(labels["clip"], last_b["method"]["pseudo"][source]["clip"])

    def without_truth(rows):
        return [{k: v for k, v in r.items() if "/truth_" not in k} for r in rows]

    assert without_truth(rows_a) == without_truth(rows_b)
    key = "train/pseudo/weak/truth_negative_precision/all_classes"
    scored = [(r[key], s[key]) for r, s in zip(rows_a, rows_b) if key in r]
    assert scored and all(a != b for a, b in scored)  # the switch did read each folder


def test_the_oracle_row_trains_on_the_true_labels(sed_tiny_dataset, tmp_path):
    """``sed_oracle``: the pseudo labels are the true labels (precision and recall 1, no unknown entry), read from
    the folder that ``method.pseudo_labels.truth`` names; another folder gives other labels and another run."""
    from audioadapt.config.sed import load_sed_config

    assert load_sed_config("sed_oracle").method.pseudo_labels.truth is True
    assert load_sed_config("sed_adv_time_tri_training").method.pseudo_labels.truth is False
    overrides = tiny_overrides("sed_oracle", epochs=2, phase2=2) + ["method.diagnostics.pseudo_label_truth=true"]
    train_sed("sed_oracle", overrides, data_root=sed_tiny_dataset, run_dir=tmp_path / "oracle")
    record = json.loads((tmp_path / "oracle" / PSEUDO_LABEL_FILE).read_text())[0]
    for source in ("weak", "unlabeled"):
        scores = record["sources"][source]["truth"]["all_classes"]
        assert scores["precision"] == 1.0 and scores["recall"] == 1.0 and scores["negative_precision"] == 1.0
        assert record["sources"][source]["coverage"] == 1.0
    scrambled = _scrambled_truth(sed_tiny_dataset, tmp_path / "scrambled")
    train_sed("sed_oracle", overrides + [f"method.pseudo_labels.truth={scrambled}"], data_root=sed_tiny_dataset,
              run_dir=tmp_path / "other")
    a = torch.load(tmp_path / "oracle" / "last.pt", weights_only=True)["method"]["pseudo"]["weak"]["frame"]
    b = torch.load(tmp_path / "other" / "last.pt", weights_only=True)["method"]["pseudo"]["weak"]["frame"]
    assert not torch.equal(a, b)
