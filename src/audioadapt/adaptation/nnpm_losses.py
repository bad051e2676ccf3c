"""NNPM losses: source cross-entropy (eq. 5), target MSE (eq. 6),
hard-negative-mined target loss (eqs. 7-8) and the total (eq. 9).

Notation: ``s = f_hat M^T`` ``(batch, slot)`` are the similarities of the
target batch to the memory (gradient into ``f_hat`` only), ``P_t`` the
positive slots of target utterance ``t`` (eq. 4) and ``N_t`` the others.

* eq. 6 (SNSA-wo-HL): ``L_t = 1/B sum_t 1/N_s sum_i (s_ti - 1[i in P_t])^2``;
* eqs. 7-8 (NNPM, SNSA-wo-SL): keep the ``k_t = floor(r |N_t|)`` most
  similar negatives (at least 1 when ``N_t`` is not empty) ``N^r_t`` and::

      L_t = 1/B sum_t [ delta/|P_t| sum_{p in P_t} (s_tp - 1)^2
                        + 1/|N^r_t| sum_{n in N^r_t} (s_tn - y_neg)^2 ]

  with the positive term left out when ``P_t`` is empty;
* eq. 9: ``L = L_s + lambda L_t``.

The mining is vectorised: positives are masked to ``-inf``, one ``topk`` with
the largest ``k_t`` of the batch picks the candidates, and a validity mask
keeps the first ``k_t`` of each row. Losses are computed in at least float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from audioadapt.errors import ConfigError

TargetLoss = Literal["hard_negative", "mse_all"]

#: ``floor(r * n)`` is taken with this tolerance, so that e.g. 0.29 * 100
#: (28.999999999999996 in floating point) gives 29.
_FLOOR_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NnpmLossConfig:
    """Loss settings of NNPM and its ablations.

    Attributes
    ----------
    delta: weight of the positive term of eq. 8.
    hard_negative_ratio: ``r``, share of the negatives kept as hard negatives.
    negative_target: ``y_neg`` of the hard negatives, ``-1`` (MMCL) or ``0``.
    target_weight: ``lambda`` of eq. 9.
    target_loss: ``hard_negative`` (eqs. 7-8; NNPM and SNSA-wo-SL) or
        ``mse_all`` (eq. 6 over every slot with 0/1 targets; SNSA-wo-HL).
    source_loss: include the source cross-entropy (``False`` for SNSA-wo-SL).
    """

    delta: float = 1.0
    hard_negative_ratio: float = 0.01
    negative_target: float = -1.0
    target_weight: float = 1.0
    target_loss: TargetLoss = "hard_negative"
    source_loss: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta) and self.delta >= 0):
            raise ConfigError(f"delta must be finite and >= 0, got {self.delta}")
        if not 0.0 < self.hard_negative_ratio <= 1.0:
            raise ConfigError(f"hard_negative_ratio must lie in (0, 1], got {self.hard_negative_ratio}")
        if self.negative_target not in (0.0, -1.0):
            raise ConfigError(f"negative_target must be 0 or -1, got {self.negative_target}")
        if not (math.isfinite(self.target_weight) and self.target_weight >= 0):
            raise ConfigError(f"target_weight must be finite and >= 0, got {self.target_weight}")
        if self.target_loss not in ("hard_negative", "mse_all"):
            raise ConfigError(f"target_loss must be 'hard_negative' or 'mse_all', got {self.target_loss!r}")


def _float(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or float64 when it already is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_pair(similarity: torch.Tensor, positives: torch.Tensor) -> None:
    if similarity.dim() != 2 or similarity.shape[1] == 0:
        raise ValueError(f"similarity must be (batch, slot) with at least one slot, got {tuple(similarity.shape)}")
    if positives.shape != similarity.shape or positives.dtype != torch.bool:
        raise ValueError(
            f"positives must be a boolean {tuple(similarity.shape)} mask, got {positives.dtype} "
            f"{tuple(positives.shape)}"
        )


def source_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 5: mean cross-entropy of ``logits (batch, class)`` against ``labels (batch,)``."""
    return F.cross_entropy(_float(logits), labels.long())


def target_mse(similarity: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Eq. 6: mean over target utterances and **all** slots of ``(s - 1[i in P_t])^2``."""
    _check_pair(similarity, positives)
    s = _float(similarity)
    return (s - positives.to(s.dtype)).pow(2).mean()


def hard_negative_counts(positives: torch.Tensor, ratio: float) -> torch.Tensor:
    """Eq. 7's ``k_t = floor(ratio * |N_t|)``, at least 1 when ``N_t`` is not empty ``(batch,)``."""
    n_neg = (~positives).sum(dim=1)
    k = torch.floor(n_neg.double() * ratio + _FLOOR_TOLERANCE).long()
    return torch.minimum(k.clamp(min=1), n_neg)


def hard_negative_mse(
    similarity: torch.Tensor,
    positives: torch.Tensor,
    delta: float,
    ratio: float,
    negative_target: float,
) -> torch.Tensor:
    """Eqs. 7-8, vectorised over the batch and the slots.

    Parameters
    ----------
    similarity: ``(batch, slot)`` similarities ``f_hat M^T`` (with gradient).
    positives: ``(batch, slot)`` boolean ``P_t``.
    delta: weight of the positive term.
    ratio: hard-negative ratio ``r``.
    negative_target: ``y_neg``.

    Returns
    -------
    The scalar ``L_t`` (mean over the batch).
    """
    _check_pair(similarity, positives)
    s = _float(similarity)
    n_pos = positives.sum(dim=1)
    pos_sq = torch.where(positives, (s - 1.0).pow(2), torch.zeros_like(s)).sum(dim=1)
    pos_term = delta * pos_sq / n_pos.clamp(min=1)  # 0 where P_t is empty

    k = hard_negative_counts(positives, ratio)
    k_max = int(k.max())
    neg_term = torch.zeros_like(pos_term)
    if k_max > 0:
        candidates = s.detach().masked_fill(positives, float("-inf"))
        idx = candidates.topk(k_max, dim=1, sorted=True).indices
        hard = s.gather(1, idx)
        valid = torch.arange(k_max, device=s.device).unsqueeze(0) < k.unsqueeze(1)
        neg_sq = torch.where(valid, (hard - negative_target).pow(2), torch.zeros_like(hard)).sum(dim=1)
        neg_term = neg_sq / k.clamp(min=1)
    return (pos_term + neg_term).mean()


def target_loss(similarity: torch.Tensor, positives: torch.Tensor, cfg: NnpmLossConfig) -> torch.Tensor:
    """``L_t`` of the configured kind (eqs. 7-8 or eq. 6)."""
    if cfg.target_loss == "mse_all":
        return target_mse(similarity, positives)
    return hard_negative_mse(similarity, positives, cfg.delta, cfg.hard_negative_ratio, cfg.negative_target)


@dataclass
class NnpmLoss:
    """The total loss and its parts (scalars; ``source`` is ``None`` without the source term)."""

    total: torch.Tensor
    source: torch.Tensor | None
    target: torch.Tensor


def nnpm_loss(
    source_logits: torch.Tensor | None,
    source_labels: torch.Tensor | None,
    similarity: torch.Tensor,
    positives: torch.Tensor,
    cfg: NnpmLossConfig,
) -> NnpmLoss:
    """Eq. 9: ``L = L_s + lambda L_t`` (``L = lambda L_t`` when ``cfg.source_loss`` is off).

    Parameters
    ----------
    source_logits, source_labels: ``(batch_s, class)`` and ``(batch_s,)``;
        may be ``None`` when ``cfg.source_loss`` is off.
    similarity: ``(batch_t, slot)`` target similarities to the memory.
    positives: ``(batch_t, slot)`` boolean pseudo multilabels.
    cfg: loss settings.
    """
    l_t = target_loss(similarity, positives, cfg)
    total = cfg.target_weight * l_t
    l_s = None
    if cfg.source_loss:
        if source_logits is None or source_labels is None:
            raise ValueError("the source loss is on but no source logits/labels were given")
        l_s = source_cross_entropy(source_logits, source_labels)
        total = l_s + total
    return NnpmLoss(total, l_s, l_t)


__all__ = [
    "NnpmLoss",
    "NnpmLossConfig",
    "TargetLoss",
    "hard_negative_counts",
    "hard_negative_mse",
    "nnpm_loss",
    "source_cross_entropy",
    "target_loss",
    "target_mse",
]
