"""SED diagnostics: each quantity on a constructed case with a known answer, and the methods' hooks.

The end-to-end runs (metrics.csv and TensorBoard columns, the true labels never reaching training) are in
``test_sed_diagnostics_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality
from audioadapt.config.sed import load_sed_config
from audioadapt.data.batch import REAL_DOMAIN, SYNTHETIC_DOMAIN
from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.models.heads import FrameClipHead, HeadConfig
from audioadapt.training import Trainer
from audioadapt.training.sed_diagnostics import (
    PseudoLabelTruth,
    SedDiagnosticsConfig,
    domain_accuracies,
    domain_counts,
    eq8_value,
    round_logs,
    saturation_counts,
    truth_scores,
)

from .test_sed_tri_adv import CLASSES, context, make_method, mixed_batch

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- single quantities
def test_saturation_counts_valid_entries_above_the_threshold():
    h = torch.tensor([[[0.995, -0.2], [-0.999, 0.5], [0.999, 0.999]]])  # (1 clip, 3 frames, 2 units)
    assert saturation_counts(h, None, 0.99).tolist() == [4.0, 6.0]
    mask = torch.tensor([[True, True, False]])  # the last frame is padding
    assert saturation_counts(h, mask, 0.99).tolist() == [2.0, 4.0]
    assert saturation_counts(h, mask, 0.9975).tolist() == [1.0, 4.0]


def test_domain_accuracy_per_clip_per_frame_and_balanced():
    labels = torch.tensor([SYNTHETIC_DOMAIN, SYNTHETIC_DOMAIN, REAL_DOMAIN, REAL_DOMAIN, REAL_DOMAIN, -1])
    per_clip = torch.tensor([-1.0, 2.0, 0.5, 3.0, -0.1, 5.0])  # logit > 0: real; the -1 clip is left out
    counts = domain_counts(per_clip, labels)
    assert counts.tolist() == [1.0, 2.0, 2.0, 3.0]
    acc = domain_accuracies(counts.tolist())
    assert acc == pytest.approx({"domain_acc_synthetic": 0.5, "domain_acc_real": 2 / 3,
                                 "domain_acc_balanced": (0.5 + 2 / 3) / 2})
    per_frame = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]])  # clip 0 synthetic, clip 1 real
    mask = torch.tensor([[True, True, False], [True, False, False]])
    counts = domain_counts(per_frame, torch.tensor([SYNTHETIC_DOMAIN, REAL_DOMAIN]), mask)
    assert counts.tolist() == [2.0, 2.0, 1.0, 1.0]
    assert domain_accuracies([3.0, 4.0, 0.0, 0.0]) == {"domain_acc_synthetic": 0.75}  # no balanced value alone


def test_eq8_value_leaves_lambda_out():
    torch.manual_seed(0)
    heads = [FrameClipHead(8, 3, HeadConfig()) for _ in range(2)]
    cfg = OrthogonalityConfig(weight=0.0)
    expected = float(labeler_orthogonality(*heads, OrthogonalityConfig(weight=1.0, layer=cfg.layer)).detach())
    assert eq8_value(*heads, cfg) == pytest.approx(expected) and expected > 0


def test_truth_scores_precision_recall_and_negative_precision():
    # clip 0: 4 valid frames of class a; clip 1: 2 valid frames (then padding)
    frame = torch.tensor([[[1, 0], [1, -1], [0, 0], [-1, 1]],
                          [[1, 0], [0, 0], [1, 1], [1, 1]]], dtype=torch.int8)
    truth = [np.array([[1, 0], [0, 0], [1, 0], [1, 1]]), np.array([[1, 0], [0, 0], [0, 0], [0, 0]])]
    scores = truth_scores(frame, [4, 2], truth, ("a", "b"))
    a, b = scores["a"], scores["b"]
    # class a: pseudo 1 at (0,0) T, (0,1) F, (1,0) T; pseudo 0 at (0,2) T(missed), (1,1) F; truth positives 4
    assert a == {"precision": 2 / 3, "recall": 2 / 4, "negative_precision": 1 / 2, "pseudo_positive": 3,
                 "pseudo_negative": 2, "true_positive_entries": 4}
    # class b: pseudo 1 at (0,3) T; pseudo 0 at (0,0), (0,2), (1,0), (1,1), all true negatives
    assert b["precision"] == 1.0 and b["recall"] == 1.0 and b["negative_precision"] == 1.0
    pooled = scores["all_classes"]
    assert pooled["precision"] == pytest.approx(3 / 4) and pooled["recall"] == pytest.approx(3 / 5)
    empty = truth_scores(torch.full((1, 2, 1), -1, dtype=torch.int8), [2], [np.zeros((2, 1))], ("a",))
    assert empty["a"]["precision"] is None and empty["a"]["recall"] is None


def test_round_logs_flatten_counts_and_defined_scores():
    record = {"round": 1, "sources": {"weak": {
        "per_class": {"a": {"frames_positive": 3, "frames_negative": 5, "frames_unknown": 2, "events": 1,
                            "clip_positive": 1, "clip_negative": 0, "clip_unknown": 1}},
        "truth": {"a": {"precision": 0.5, "recall": None, "negative_precision": 1.0}}}}}
    logs = round_logs(record)
    assert logs == {"pseudo/weak/frames_positive/a": 3.0, "pseudo/weak/frames_negative/a": 5.0,
                    "pseudo/weak/frames_unknown/a": 2.0, "pseudo/weak/clip_positive/a": 1.0,
                    "pseudo/weak/clip_negative/a": 0.0, "pseudo/weak/clip_unknown/a": 1.0,
                    "pseudo/weak/truth_precision/a": 0.5, "pseudo/weak/truth_negative_precision/a": 1.0}


# --------------------------------------------------------------------------- configuration
def test_config_defaults_validation_and_truth_folder(tmp_path):
    cfg = SedDiagnosticsConfig()
    assert cfg.enabled and cfg.every == 10 and cfg.gradient_at == "features" and cfg.pseudo_label_truth is False
    assert cfg.truth_dir(tmp_path) is None
    assert SedDiagnosticsConfig(pseudo_label_truth=True).truth_dir(tmp_path) == tmp_path / "metadata" / "truth"
    assert SedDiagnosticsConfig(pseudo_label_truth="elsewhere").truth_dir(tmp_path) == tmp_path / "elsewhere"
    assert SedDiagnosticsConfig(pseudo_label_truth="/abs/t").truth_dir(tmp_path) == Path("/abs/t")
    for bad in ({"every": 0}, {"saturation_threshold": 1.0}, {"pseudo_label_truth": ""}):
        with pytest.raises(ConfigError):
            SedDiagnosticsConfig(**bad)


def test_config_keys_and_settings_a_run_would_ignore():
    cfg = load_sed_config("sed_tri_training", ["method.diagnostics.every=3",
                                               "method.diagnostics.pseudo_label_truth=true"])
    assert cfg.method.diagnostics.every == 3 and cfg.method.diagnostics.pseudo_label_truth is True
    path = load_sed_config("sed_tri_training", ["method.diagnostics.pseudo_label_truth=my/truth"])
    assert path.method.diagnostics.pseudo_label_truth == "my/truth"
    with pytest.raises(ConfigError, match="pseudo_label_truth"):
        load_sed_config("sed_baseline", ["method.diagnostics.pseudo_label_truth=true"])  # no pseudo labels
    with pytest.raises(ConfigError, match="diagnostics.every"):
        load_sed_config("sed_baseline", ["method.diagnostics.enabled=false", "method.diagnostics.every=3"])
    with pytest.raises(ConfigError, match="gradient_at"):
        load_sed_config("sed_baseline", ["method.diagnostics.gradient_at=weights"])


# --------------------------------------------------------------------------- the methods' hooks
def test_training_step_logs_every_quantity_and_gradients_every_n_steps():
    method = make_method("sed_adv_time_tri_training", ("method.grl_weight.kind=constant", "method.grl_weight.end=0.3",
                                                       "method.grl_weight.warmup=0.0", "method.diagnostics.every=2"))
    method.model.eval()
    batch = mixed_batch(method)
    ctx = context(method)
    logs = method.training_step(batch, ctx).logs
    expected = {"saturation", "domain_acc_synthetic", "domain_acc_real", "domain_acc_balanced", "eq8",
                "grad_f1", "grad_f2", "grad_ft", "grad_domain", "grad_y", "grad_total", "grad_cos_domain_y",
                "grad_labelers_eq8", "grad_labelers_y"}
    assert {k[len("diag/"):] for k in logs if k.startswith("diag/")} == expected
    assert 0.0 <= logs["diag/saturation"] <= 1.0 and logs["diag/eq8"] > 0
    # the domain gradient at F's output, computed directly: w_d * L_d through the GRL (-alpha)
    terms = method.compute_losses(batch, ctx)
    weighted = method.cfg.method.loss_weights.domain * terms["domain"]
    (direct,) = torch.autograd.grad(weighted, method._outputs.features)
    assert logs["diag/grad_domain"] == pytest.approx(float(direct.norm()), rel=1e-5)
    ctx.step = 1  # not a gradient step
    logs = method.training_step(batch, ctx).logs
    assert "diag/saturation" in logs and not any(k.startswith("diag/grad_") for k in logs)
    ctx.phase_index = 1  # phase 2: no labelers, no eq. 8
    ctx.step = 2
    logs = method.training_step(batch, ctx).logs
    assert "diag/eq8" not in logs and "diag/grad_f1" not in logs and "diag/grad_ft" in logs


def test_alpha_zero_sends_no_domain_gradient_to_f_and_parameters_mode_agrees_in_direction():
    method = make_method("sed_adv_time", ("method.grl_weight.kind=constant", "method.grl_weight.end=0.0"))
    method.model.eval()
    logs = method.training_step(mixed_batch(method), context(method)).logs
    assert logs["diag/grad_domain"] == 0.0 and logs["diag/grad_ft"] > 0 and "diag/eq8" not in logs
    params = make_method("sed_adv_time", ("method.diagnostics.gradient_at=parameters",))
    params.model.eval()
    logs = params.training_step(mixed_batch(params), context(params)).logs
    assert logs["diag/grad_ft"] > 0 and "diag/grad_domain" in logs


def test_disabled_diagnostics_log_nothing():
    method = make_method("sed_adv_time_tri_training", ("method.diagnostics.enabled=false",))
    logs = method.training_step(mixed_batch(method), context(method)).logs
    assert not any(k.startswith(("diag/", "pseudo/")) for k in logs)


@pytest.mark.parametrize("adversarial", ["none", "time"])
def test_mean_teacher_logs_its_terms(adversarial):
    from .test_sed_mean_teacher import context as mt_context
    from .test_sed_mean_teacher import make_method as make_mean_teacher

    alpha = ("method.grl_weight.kind=constant", "method.grl_weight.warmup=0.0") if adversarial == "time" else ()
    method = make_mean_teacher((f"method.adversarial={adversarial}", *alpha))
    logs = method.training_step(mixed_batch(method), mt_context(method, step=0)).logs
    assert {"diag/saturation", "diag/grad_ft", "diag/grad_consistency", "diag/grad_total"} <= set(logs)
    domain = {"diag/grad_domain", "diag/grad_cos_domain_y", "diag/domain_acc_balanced"}
    assert (domain <= set(logs)) == (adversarial == "time")
    assert not any("eq8" in k or "grad_y" in k for k in logs)


def test_measuring_changes_nothing_in_training():
    """The same run with every diagnostic at every step and without them ends with the same weights."""
    finals = []
    for extra in (("method.diagnostics.every=1", "method.diagnostics.gradient_at=parameters"),
                  ("method.diagnostics.enabled=false",)):
        method = make_method("sed_adv_time_tri_training", ("train.epochs=1", "method.phase2_epochs=1") + extra)
        result = Trainer(method.cfg.train).fit(method)
        finals.append(({n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in method.networks().items()},
                       result))
    (a, ra), (b, rb) = finals
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
    assert any(k.startswith("train/diag/") for k in ra.history[0]) and not any("diag" in k for k in rb.history[0])
    assert any(k.startswith("train/pseudo/weak/frames_positive/") for k in ra.history[-1])
    assert [r["train/loss"] for r in ra.history] == [r["train/loss"] for r in rb.history]


def test_truth_folder_is_read_as_the_training_labels_are_encoded(tmp_path):
    method = make_method("sed_tri_training")
    ds = method.data.source("weak")
    truth = PseudoLabelTruth(tmp_path)
    with pytest.raises(DataError, match="no true labels"):
        truth.frames("weak", ds)
    from audioadapt.data.dcase import write_strong_tsv

    clips = {r.filename: (Event(0.0, 0.3, CLASSES[0]),) for r in ds.records}
    write_strong_tsv(tmp_path / "weak.tsv", dict(list(clips.items())[:-1]))
    with pytest.raises(DataError, match="no true labels for 1 clip"):
        PseudoLabelTruth(tmp_path).frames("weak", ds)
    write_strong_tsv(tmp_path / "weak.tsv", clips)
    frames = PseudoLabelTruth(tmp_path).frames("weak", ds)
    assert len(frames) == len(ds) and frames[0].shape == (ds.num_output_frames(0), len(CLASSES))
    assert frames[0][:, 0].tolist()[:6] == [1, 1, 1, 1, 1, 0]  # 0.3 s at 62.6 ms per frame, offset ceiled
    assert frames[0][:, 1:].sum() == 0
