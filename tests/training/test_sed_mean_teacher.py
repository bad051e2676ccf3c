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
