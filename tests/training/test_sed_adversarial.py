"""The adversarial pieces shared by the SED methods: alpha's schedule and the domain loss of D's logits."""

from __future__ import annotations

import pytest
import torch

from audioadapt.adaptation.losses import domain_bce
from audioadapt.models.sed_model import SedOutput
from audioadapt.training.sed_adversarial import domain_loss, grl_coefficient, set_grl_coefficient

from . import test_sed_tri_adv as support


def test_alpha_follows_the_schedule_over_the_run_or_the_phase():
    method = support.make_method("sed_adv_time_tri_training")
    m = method.cfg.method
    ctx = support.context(method, 1)  # start of phase 2 = half of the run
    assert grl_coefficient(m, ctx) == pytest.approx(m.grl_weight.value(0.5))
    per_phase = support.make_method("sed_adv_time_tri_training", ("method.grl_progress=phase",))
    assert grl_coefficient(per_phase.cfg.method, support.context(per_phase, 1)) == pytest.approx(0.0)
    alpha = set_grl_coefficient(method.model, m, ctx)
    assert method.model.grl.coeff == alpha


@pytest.mark.parametrize("preset", ["sed_adv_time", "sed_adv_whole"])
def test_domain_loss_masks_padded_frames_only_per_frame(preset):
    method = support.make_method(preset)
    model = method.model.eval()
    batch = support.mixed_batch(method)
    out = model(method.normalizer(batch.features), torch.ones(batch.features.shape[:2], dtype=torch.bool))
    per_frame = out.domain_logits.dim() == 2
    assert per_frame == (preset == "sed_adv_time")
    mask = out.frame_mask.clone()
    if per_frame:
        mask[0, -3:] = False  # three padded frames of the first clip
        out = SedOutput(out.features, out.heads, out.domain_logits, mask)
    expected = domain_bce(out.domain_logits, batch.domain, True, mask if per_frame else None)
    torch.testing.assert_close(domain_loss(model, out, batch), expected)


def test_domain_loss_needs_domain_logits():
    method = support.make_method("sed_adv_time")
    batch = support.mixed_batch(method)
    out = method.model(method.normalizer(batch.features), domain=False)
    with pytest.raises(ValueError, match="no domain logits"):
        domain_loss(method.model, out, batch)
