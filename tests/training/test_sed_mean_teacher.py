"""The DCASE 2019 mean-teacher method: ramp-up, EMA, teacher noise and loss wiring."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from audioadapt.config.sed import load_sed_config
from audioadapt.features.config import FeatureConfig
from audioadapt.features.logmel import LogMel
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import SedModel
from audioadapt.training import StepContext
from audioadapt.training.distributed import DistInfo
from audioadapt.training.sed_mean_teacher import (
    TEACHER_PREFIX,
    SedMeanTeacherMethod,
    consistency_rampup,
    ema_coefficient,
    ema_update,
    linear_mel_noise,
)

from . import test_sed_tri_adv as support


def make_method(extra: tuple[str, ...] = ()) -> SedMeanTeacherMethod:
    cfg = load_sed_config("sed_mean_teacher", support.unit_overrides("sed_mean_teacher") + list(extra))
    torch.manual_seed(0)
    model = SedModel(cfg.model, support.N_MELS, len(support.CLASSES))
    return SedMeanTeacherMethod(cfg, model, Normalizer(cfg.normalizer, support.N_MELS), support.make_module(cfg))


def context(method: SedMeanTeacherMethod, epoch: int = 0, step: int = 1) -> StepContext:
    phases = tuple(method.phases(method.cfg.train))
    return StepContext(config=method.cfg.train, dist=DistInfo(), phases=phases, epoch=epoch, step=step,
                       steps_per_epoch=1)


def test_rampup_follows_the_2019_sigmoid_over_the_first_half():
    assert consistency_rampup(0.0, 0.5) == pytest.approx(math.exp(-5.0))
    assert consistency_rampup(0.25, 0.5) == pytest.approx(math.exp(-5.0 * 0.25))
    assert consistency_rampup(0.5, 0.5) == 1.0 and consistency_rampup(0.9, 0.5) == 1.0
    method = make_method(("train.epochs=10",))
    assert method.consistency_weight(context(method, epoch=5)) == pytest.approx(2.0)
    assert method.consistency_weight(context(method, epoch=0)) == pytest.approx(2.0 * math.exp(-5.0))


def test_ema_coefficient_copies_first_then_saturates():
    assert ema_coefficient(0, 0.999) == 0.0
    assert ema_coefficient(1, 0.999) == pytest.approx(0.5)
    assert ema_coefficient(10_000, 0.999) == 0.999
    teacher, student = nn.Linear(2, 2), nn.Linear(2, 2)
    before = teacher.weight.detach().clone()
    ema_update(teacher, student, 0.75)
    torch.testing.assert_close(teacher.weight, 0.75 * before + 0.25 * student.weight.detach())


def test_linear_mel_noise_only_raises_the_linear_mel():
    cfg = FeatureConfig()
    mult = LogMel(cfg).db_multiplier
    x = torch.linspace(-40.0, 60.0, 200).reshape(1, 20, 10)
    torch.testing.assert_close(linear_mel_noise(x, cfg, 0.0, mult), x, rtol=0, atol=1e-4)
    torch.manual_seed(0)
    noisy = linear_mel_noise(x, cfg, 0.25, mult)
    assert (noisy >= x - 1e-4).all()
    low = x < -20  # |N(0, 0.25)| dominates a linear amplitude of 0.1 or less
    assert (noisy[low] - x[low]).mean() > 5.0
    assert (noisy[x > 40] - x[x > 40]).abs().max() < 0.1
    assert noisy.max() <= cfg.db_range[1]


def test_networks_phases_and_teacher_has_no_gradient():
    method = make_method()
    nets = method.networks()
    assert set(nets) == {"encoder", "ft", f"{TEACHER_PREFIX}encoder", f"{TEACHER_PREFIX}ft"}
    (phase,) = method.phases(method.cfg.train)
    assert set(phase.trainable) == {"encoder", "ft"}
    assert not any(p.requires_grad for p in method.teacher.parameters())


def test_consistency_reaches_all_rows_and_bce_only_labelled_ones():
    method = make_method(("method.mean_teacher.teacher_noise=none",))
    method.student.eval()
    batch = support.mixed_batch(method)
    batch.features.requires_grad_(True)
    terms = method.compute_losses(batch, context(method))
    names = method.data.train.source_names
    rows = {n: batch.source == names.index(n) for n in names}
    per_row = {}
    for name, term in terms.items():
        (g,) = torch.autograd.grad(term, batch.features, retain_graph=True, allow_unused=True)
        per_row[name] = torch.zeros(batch.size) if g is None else g.abs().flatten(1).sum(1)
    for name in ("consistency_strong", "consistency_weak"):
        assert (per_row[name] > 0).all(), name
    assert (per_row["frame"][rows["weak"] | rows["unlabeled"]] == 0).all()
    # the preset follows the 2019 code: only weak rows enter the clip loss
    assert (per_row["clip"][rows["synthetic"] | rows["unlabeled"]] == 0).all()
    assert (per_row["clip"][rows["weak"]] > 0).any()


def test_after_optimizer_step_moves_the_teacher_towards_the_student():
    method = make_method()
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    first = [p.detach().clone() for p in method.student.parameters()]
    method.after_optimizer_step(None, context(method, step=1))  # first update: a copy
    for t, s in zip(method.teacher.parameters(), first):
        torch.testing.assert_close(t, s)
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    method.after_optimizer_step(None, context(method, step=2))  # alpha 0.5
    for t, s in zip(method.teacher.parameters(), first):
        torch.testing.assert_close(t, s + 0.5)


def test_masked_mse_divides_by_the_divisor_of_the_valid_count():
    from audioadapt.training.sed_mean_teacher import _masked_mse

    a = torch.tensor([[[1.0, 3.0], [2.0, 2.0], [9.0, 9.0]]])  # (batch 1, frame 3, class 2)
    b = torch.zeros_like(a)
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(_masked_mse(a, b, mask), torch.tensor((1 + 9 + 4 + 4) / 4))
    # under DDP the divisor maps this rank's count (4) to the mean count over ranks, e.g. 6
    seen = []

    def divisor(count):
        seen.append(int(count))
        return torch.tensor(6.0)

    torch.testing.assert_close(_masked_mse(a, b, mask, divisor), torch.tensor(18 / 6))
    assert seen == [4]
    torch.testing.assert_close(_masked_mse(a, b, None), (a**2).mean())


# --------------------------------------------------------------------------- with Adv.time (beyond the paper)
ADV_MT = "sed_adv_time_mean_teacher"


def make_adv_method(extra: tuple[str, ...] = ()) -> SedMeanTeacherMethod:
    cfg = load_sed_config(ADV_MT, support.unit_overrides(ADV_MT) + list(extra))
    torch.manual_seed(0)
    model = SedModel(cfg.model, support.N_MELS, len(support.CLASSES))
    return SedMeanTeacherMethod(cfg, model, Normalizer(cfg.normalizer, support.N_MELS), support.make_module(cfg))


def test_adv_time_student_trains_d_and_the_teacher_is_its_ema():
    method = make_adv_method()
    assert method.adversarial and method.student.domain.per_frame
    nets = method.networks()
    assert {"domain", f"{TEACHER_PREFIX}domain"} <= set(nets)
    (phase,) = method.phases(method.cfg.train)
    assert set(phase.trainable) == {"encoder", "ft", "domain"}
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    method.after_optimizer_step(None, context(method, step=1))  # first update: a copy, D included
    for t, s in zip(method.teacher.parameters(), method.student.parameters()):
        torch.testing.assert_close(t, s)


def test_adv_time_domain_gradient_reaches_the_student_reversed_and_scaled():
    from audioadapt.adaptation.losses import domain_bce

    method = make_adv_method(("method.grl_weight.kind=constant", "method.grl_weight.end=0.3",
                              "method.grl_weight.warmup=0", "method.mean_teacher.teacher_noise=none"))
    model = method.student.eval()
    batch = support.mixed_batch(method)
    terms = method.compute_losses(batch, context(method))
    enc, dom = list(model.encoder.parameters()), list(model.domain.parameters())
    reversed_f, through_d = support.grads(terms["domain"], enc), support.grads(terms["domain"], dom)
    h = model.encoder(method.normalizer(batch.features))  # the same loss without the GRL
    plain = domain_bce(model.domain(h), batch.domain, True, None)
    assert terms["domain"].item() == pytest.approx(plain.item())
    for r, p in zip(reversed_f, support.grads(plain, enc)):
        torch.testing.assert_close(r, -0.3 * p, rtol=1e-4, atol=1e-7)
    for r, p in zip(through_d, support.grads(plain, dom)):
        torch.testing.assert_close(r, p)  # D itself minimises L_d


def test_adv_time_training_step_adds_the_weighted_domain_loss_and_logs_alpha():
    method = make_adv_method(("method.loss_weights.domain=2", "train.epochs=10"))
    method.student.eval()
    ctx = context(method, epoch=5)
    out = method.training_step(support.mixed_batch(method), ctx)
    t = {k: float(v) for k, v in out.logs.items()}
    w = t["consistency_weight"]
    expected = t["frame"] + t["clip"] + w * (t["consistency_strong"] + t["consistency_weak"]) + 2 * t["domain"]
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-5)
    # alpha follows the Park rows' schedule over the (single-phase) run
    assert t["grl_weight"] == pytest.approx(method.cfg.method.grl_weight.value(0.5))
    plain = make_method()
    logs = plain.training_step(support.mixed_batch(plain), context(plain)).logs
    assert "domain" not in logs and "grl_weight" not in logs


def test_adv_time_mean_teacher_trains_to_a_bar(sed_tiny_dataset, tmp_path, one_thread):
    from audioadapt.api.sed import train_sed

    from .test_sed_e2e import ft_loss, read_metrics, tiny_overrides

    run = tmp_path / "run"
    hidden = ["data.layout.validation_tsv=absent/validation.tsv", "data.layout.validation_audio=absent"]
    result = train_sed(ADV_MT, tiny_overrides(ADV_MT) + hidden, data_root=sed_tiny_dataset, run_dir=run)
    rows = [r for r in read_metrics(run) if r["phase"] == "train"]
    first, last = ft_loss(rows[0], "mean_teacher"), ft_loss(rows[-1], "mean_teacher")
    assert last < 0.75 * first, f"student loss went from {first:.3f} to {last:.3f}"
    assert float(rows[-1]["train/domain"]) > 0 and float(rows[-1]["train/grl_weight"]) > 0
    assert result.best["metric"] == "selection" and (run / "best.pt").is_file()
