"""Gradient reversal layer (Ganin & Lempitsky, ICML 2015).

Forward: the identity. Backward: the incoming gradient times ``-coeff``. With
a GRL between the feature extractor F and a domain classifier D, one
optimiser step on ``L_y + L_d`` updates D to *minimise* ``L_d`` and F to
*maximise* it with weight ``coeff`` (Park et al. eqs. 5-7, where the
coefficient is called alpha; in configs it is ``grl_weight``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from audioadapt.adaptation.schedules import ScheduleConfig
from audioadapt.errors import ConfigError


def _check_coeff(coeff: float) -> float:
    coeff = float(coeff)
    if not math.isfinite(coeff) or coeff < 0:
        raise ValueError(f"gradient reversal coefficient must be finite and >= 0, got {coeff}")
    return coeff


def check_coeff_schedule(schedule: ScheduleConfig, where: str) -> None:
    """Reject a schedule of the coefficient that can go below 0 (``where`` names it in the message)."""
    for name in ("start", "end"):
        value = getattr(schedule, name)
        if value < 0:
            raise ConfigError(f"{where}.{name} must be >= 0 (a gradient reversal coefficient), got {value}")


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-coeff`` backwards.

    Parameters
    ----------
    x: any tensor.
    coeff: reversal strength, finite and ``>= 0``.
    """
    return _GradientReversal.apply(x, _check_coeff(coeff))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` whose coefficient can change every step.

    The coefficient is plain state (not a parameter or buffer): set it from a
    schedule with :meth:`set_coeff` before each forward pass. It starts at 1,
    a plain reversal, until a schedule sets it.
    """

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = _check_coeff(coeff)

    def set_coeff(self, coeff: float) -> None:
        """Set the reversal coefficient used by the next forward passes."""
        self.coeff = _check_coeff(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


__all__ = ["GradientReversal", "check_coeff_schedule", "grad_reverse"]
