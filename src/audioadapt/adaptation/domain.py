"""Domain classifiers D (real vs synthetic, or source vs target).

Two granularities, after Park et al. section 3.1:

* ``whole`` (Adv.whole): one logit per clip. Frame features are averaged over
  the valid frames (masked mean over time), then an MLP maps
  ``feature -> hidden ... -> 1``.
* ``time`` (Adv.time): one logit per frame from the same MLP applied to every
  frame.

D returns logits; :func:`audioadapt.adaptation.losses.domain_bce` turns them
into the domain loss. The gradient reversal sits in front of D in the model
that owns it (see :class:`audioadapt.adaptation.grl.GradientReversal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class DomainConfig:
    """Domain classifier and domain loss settings.

    Attributes
    ----------
    mode: ``none`` (no D), ``whole`` (Adv.whole) or ``time`` (Adv.time, the
        paper's best system).
    hidden: sizes of the MLP's hidden layers (``256 -> 128 -> 1`` by default).
    activation: hidden activation, ``relu`` or ``leaky_relu`` (slope 0.2).
    dropout: dropout after each hidden activation.
    balance: weight each domain's term by its inverse share of the batch in
        the domain loss, so that both domains count equally.
    """

    mode: Literal["none", "whole", "time"] = "time"
    hidden: tuple[int, ...] = (128,)
    activation: Literal["relu", "leaky_relu"] = "relu"
    dropout: float = 0.0
    balance: bool = True

    def __post_init__(self) -> None:
        if any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


def masked_time_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``h (batch, frame, feature)`` over the valid frames -> ``(batch, feature)``."""
    if mask is None:
        return h.mean(dim=1)
    m = mask.to(h.dtype).unsqueeze(-1)
    count = m.sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError("every clip needs at least one unmasked frame")
    return (h * m).sum(dim=1) / count


class DomainClassifier(nn.Module):
    """MLP domain classifier on frame features.

    Parameters
    ----------
    in_dim: feature size of ``h``.
    cfg: configuration; ``cfg.mode`` must be ``whole`` or ``time``.
    """

    def __init__(self, in_dim: int, cfg: DomainConfig):
        super().__init__()
        if not cfg.enabled:
            raise ValueError("DomainClassifier needs mode 'whole' or 'time', got 'none'")
        self.cfg = cfg
        layers: list[nn.Module] = []
        size = in_dim
        for width in cfg.hidden:
            layers.append(nn.Linear(size, width))
            layers.append(nn.ReLU() if cfg.activation == "relu" else nn.LeakyReLU(0.2))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            size = width
        layers.append(nn.Linear(size, 1))
        self.mlp = nn.Sequential(*layers)

    @property
    def per_frame(self) -> bool:
        return self.cfg.mode == "time"

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Domain logits.

        Parameters
        ----------
        h: ``(batch, frame, feature)`` features (after the gradient reversal).
        mask: ``(batch, frame)`` boolean, ``True`` on real frames; padded
            frames are left out of the ``whole`` mean. In ``time`` mode they
            still get a logit; the loss masks them.

        Returns
        -------
        ``(batch,)`` for ``whole``, ``(batch, frame)`` for ``time``.
        """
        if self.per_frame:
            return self.mlp(h).squeeze(-1)
        return self.mlp(masked_time_mean(h, mask)).squeeze(-1)


__all__ = ["DomainClassifier", "DomainConfig", "masked_time_mean"]
