"""The adversarial part of the SED methods: D behind the gradient reversal layer, alpha and ``L_d``.

Park et al.'s Adv.whole / Adv.time rows (:mod:`~audioadapt.training.sed_tri_adv`)
and the mean teacher with a domain classifier
(:mod:`~audioadapt.training.sed_mean_teacher`) share these pieces: the model's
GRL coefficient alpha follows ``method.grl_weight`` over the progress that
``method.grl_progress`` names (eq. 5), D's logits (one per clip or one per
frame) enter the domain loss of eq. 4, and that loss is added with
``method.loss_weights.domain``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from audioadapt.adaptation.losses import Divisor, domain_bce
from audioadapt.data.batch import SedBatch
from audioadapt.models.sed_model import SedModel, SedOutput

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.sed import SedMethodConfig
    from audioadapt.training.method import StepContext


def grl_coefficient(method: "SedMethodConfig", ctx: "StepContext") -> float:
    """alpha of eq. 5: ``method.grl_weight`` at the run's or the phase's progress (``method.grl_progress``)."""
    progress = ctx.run_progress if method.grl_progress == "run" else ctx.phase_progress
    return method.grl_weight.value(progress)


def set_grl_coefficient(model: SedModel, method: "SedMethodConfig", ctx: "StepContext") -> float:
    """Set the model's GRL to :func:`grl_coefficient` for the next forward passes; returns it."""
    alpha = grl_coefficient(method, ctx)
    model.set_grl_weight(alpha)
    return alpha


def domain_loss(model: SedModel, out: SedOutput, batch: SedBatch, divisor: Divisor | None = None) -> torch.Tensor:
    """``L_d`` (eq. 4) of D's logits in ``out``: per clip (Adv.whole) or per valid frame (Adv.time).

    Each domain is weighted by its inverse share of the batch when
    ``model.domain.balance``; ``divisor`` as in :mod:`audioadapt.adaptation.losses`.
    """
    if out.domain_logits is None:
        raise ValueError("the model output has no domain logits (run the model with domain=True and a D)")
    mask = out.frame_mask if out.domain_logits.dim() == 2 else None
    return domain_bce(out.domain_logits, batch.domain, model.cfg.domain.balance, mask, divisor)


__all__ = ["domain_loss", "grl_coefficient", "set_grl_coefficient"]
