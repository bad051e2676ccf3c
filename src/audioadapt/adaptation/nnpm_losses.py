"""NNPM losses: source cross-entropy (eq. 5), target MSE (eq. 6),
hard-negative-mined target loss (eqs. 7-8) and the total (eq. 9).

Notation: ``s = f_hat M^T`` ``(batch, slot)`` are the similarities of the
target batch to the memory (gradient into ``f_hat`` only), ``P_t`` the
positive slots of target utterance ``t`` (eq. 4) and ``N_t`` the others.

* eq. 6 (SNSA-wo-HL): ``L_t = 1/B sum_t 1/N_s sum_i (s_ti - 1[i in P_t])^2``;
* eqs. 7-8 (NNPM, SNSA-wo-SL): keep the ``k_t`` most similar eligible
  negatives ``N^r_t`` and::

      L_t = 1/B sum_t [ delta/|P_t| sum_{p in P_t} (s_tp - 1)^2
                        + 1/|N^r_t| sum_{n in N^r_t} (s_tn - y_neg)^2 ]

  with the positive term left out when ``P_t`` is empty. The eligible
  negatives are the slots outside ``P_t`` whose emotion ``P_t`` does not hold
  (``negatives: other_emotions``; ``all`` = every slot outside ``P_t``), and
  ``k_t = floor(r N_s)`` (``hard_negative_count: slots``; ``negatives`` =
  ``floor(r |N_t|)``), at least 1 and at most ``|N_t|``;
* SNSA-wo-HL: the same eq. 8 with every eligible negative (``all_negatives``),
  or eq. 6 (``mse_all``);
* eq. 9: ``L = L_s + lambda L_t``.

The mining is vectorised: non-candidates are masked to ``-inf``, one ``topk``
with the largest ``k_t`` of the batch picks the negatives, and a validity
mask keeps the first ``k_t`` of each row. Losses are computed in at least
float32, and are returned per utterance and part as well
(:class:`TargetLossParts`) for the diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from audioadapt.errors import ConfigError

TargetLoss = Literal["hard_negative", "all_negatives", "mse_all"]
NegativeRule = Literal["other_emotions", "all"]
CountBase = Literal["slots", "negatives"]

#: ``floor(r * n)`` is taken with this tolerance, so that e.g. 0.29 * 100
#: (28.999999999999996 in floating point) gives 29.
_FLOOR_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NnpmLossConfig:
    """Loss settings of NNPM and its ablations.

    Attributes
    ----------
    delta: weight of the positive term of eq. 8.
    hard_negative_ratio: ``r``, share kept as hard negatives.
    hard_negative_count: what ``r`` is a share of: ``slots`` (default,
        ``k = floor(r N_s)``, so the count grows with the memory and does not
        shrink when the positive set grows or slots are excluded) or
        ``negatives`` (``k_t = floor(r |N_t|)``, the literal eq. 7).
    negatives: the slots eligible as negatives ``N_t``: ``other_emotions``
        (default: slots of an emotion that ``P_t`` holds are never pushed
        away; with an empty ``P_t`` every slot is eligible) or ``all`` (every
        slot outside ``P_t``).
    negative_target: ``y_neg`` of the negatives, ``-1`` (MMCL) or ``0``.
    target_weight: ``lambda`` of eq. 9.
    target_loss: ``hard_negative`` (eqs. 7-8; NNPM and SNSA-wo-SL),
        ``all_negatives`` (eq. 8 over every eligible negative instead of the
        hardest ``k``: SNSA-wo-HL, which differs from NNPM in the mining only)
        or ``mse_all`` (eq. 6 over every slot with 0/1 targets: the earlier
        reading of SNSA-wo-HL, which also drops ``delta`` and ``y_neg``).
    source_loss: include the source cross-entropy (``False`` for SNSA-wo-SL).
    """

    delta: float = 1.0
    hard_negative_ratio: float = 0.01
    hard_negative_count: CountBase = "slots"
    negatives: NegativeRule = "other_emotions"
    negative_target: float = -1.0
    target_weight: float = 1.0
    target_loss: TargetLoss = "hard_negative"
    source_loss: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta) and self.delta >= 0):
            raise ConfigError(f"delta must be finite and >= 0, got {self.delta}")
        if not 0.0 < self.hard_negative_ratio <= 1.0:
            raise ConfigError(f"hard_negative_ratio must lie in (0, 1], got {self.hard_negative_ratio}")
        if self.hard_negative_count not in ("slots", "negatives"):
            raise ConfigError(f"hard_negative_count must be 'slots' or 'negatives', got {self.hard_negative_count!r}")
        if self.negatives not in ("other_emotions", "all"):
            raise ConfigError(f"negatives must be 'other_emotions' or 'all', got {self.negatives!r}")
        if self.negative_target not in (0.0, -1.0):
            raise ConfigError(f"negative_target must be 0 or -1, got {self.negative_target}")
        if not (math.isfinite(self.target_weight) and self.target_weight >= 0):
            raise ConfigError(f"target_weight must be finite and >= 0, got {self.target_weight}")
        if self.target_loss not in ("hard_negative", "all_negatives", "mse_all"):
            raise ConfigError(f"target_loss must be 'hard_negative', 'all_negatives' or 'mse_all', got "
                              f"{self.target_loss!r}")


def _float(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or float64 when it already is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_mask(similarity: torch.Tensor, mask: torch.Tensor, name: str) -> None:
    if similarity.dim() != 2 or similarity.shape[1] == 0:
        raise ValueError(f"similarity must be (batch, slot) with at least one slot, got {tuple(similarity.shape)}")
    if mask.shape != similarity.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"{name} must be a boolean {tuple(similarity.shape)} mask, got {mask.dtype} {tuple(mask.shape)}"
        )


def source_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 5: mean cross-entropy of ``logits (batch, class)`` against ``labels (batch,)``."""
    return F.cross_entropy(_float(logits), labels.long())


def negative_candidates(positives: torch.Tensor, rule: NegativeRule = "all",
                        slot_labels: torch.Tensor | None = None, num_classes: int | None = None) -> torch.Tensor:
    """``(batch, slot)`` slots eligible as negatives ``N_t`` under ``rule``.

    ``all``: every slot outside ``P_t``. ``other_emotions``: in addition no
    slot whose emotion (``slot_labels``) one of ``P_t``'s slots carries; a
    row with an empty ``P_t`` keeps every slot.
    """
    if rule == "all":
        return ~positives
    if slot_labels is None or num_classes is None:
        raise ValueError("the 'other_emotions' negatives need the slot labels and the number of classes")
    from audioadapt.adaptation.pseudo_multilabel import emotion_counts

    held = emotion_counts(positives, slot_labels, num_classes) > 0  # (batch, class)
    return ~positives & ~held[:, slot_labels.long()]


def hard_negative_counts(candidates: torch.Tensor, ratio: float, num_slots: int | None = None) -> torch.Tensor:
    """Eq. 7's ``k_t`` ``(batch,)``: ``floor(ratio * n)``, at least 1 and at most ``|N_t|`` (0 when it is empty).

    ``n`` is ``num_slots`` when given (the ``slots`` count base), else the
    row's number of candidates ``|N_t|`` (``negatives``).
    """
    n_neg = candidates.sum(dim=1)
    base = n_neg.double() if num_slots is None else torch.full_like(n_neg, int(num_slots), dtype=torch.float64)
    k = torch.floor(base * ratio + _FLOOR_TOLERANCE).long()
    return torch.minimum(k.clamp(min=1), n_neg)


@dataclass
class TargetLossParts:
    """``L_t`` per target utterance, split into its two parts, and the mined negatives.

    Attributes
    ----------
    positive: ``(batch,)`` the positive term (0 where ``P_t`` is empty).
    negative: ``(batch,)`` the negative term.
    hard: ``(batch, k_max)`` slot indices of the mined negatives (sorted by
        similarity, hardest first); only the first ``k_t`` of a row count.
    hard_valid: ``(batch, k_max)`` boolean, which entries of ``hard`` count.
    """

    positive: torch.Tensor
    negative: torch.Tensor
    hard: torch.Tensor
    hard_valid: torch.Tensor

    @property
    def value(self) -> torch.Tensor:
        """The scalar ``L_t``: the batch mean of both parts."""
        return (self.positive + self.negative).mean()


def _no_hard(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    empty = torch.zeros(s.shape[0], 0, device=s.device)
    return empty.long(), empty.bool()


def hard_negative_terms(similarity: torch.Tensor, positives: torch.Tensor, candidates: torch.Tensor,
                        k: torch.Tensor, delta: float, negative_target: float) -> TargetLossParts:
    """Eq. 8 per utterance with the ``k_t`` most similar candidates as ``N^r_t``, vectorised.

    Candidates are masked to ``-inf`` where not eligible, one ``topk`` with the
    largest ``k_t`` of the batch picks them and a validity mask keeps the
    first ``k_t`` of each row.
    """
    _check_mask(similarity, positives, "positives")
    _check_mask(similarity, candidates, "candidates")
    s = _float(similarity)
    n_pos = positives.sum(dim=1)
    pos_sq = torch.where(positives, (s - 1.0).pow(2), torch.zeros_like(s)).sum(dim=1)
    pos_term = delta * pos_sq / n_pos.clamp(min=1)  # 0 where P_t is empty
    k_max = int(k.max()) if k.numel() else 0
    if k_max == 0:
        hard, valid = _no_hard(s)
        return TargetLossParts(pos_term, torch.zeros_like(pos_term), hard, valid)
    scores = s.detach().masked_fill(~candidates, float("-inf"))
    hard = scores.topk(k_max, dim=1, sorted=True).indices
    valid = torch.arange(k_max, device=s.device).unsqueeze(0) < k.unsqueeze(1)
    picked = s.gather(1, hard)
    neg_sq = torch.where(valid, (picked - negative_target).pow(2), torch.zeros_like(picked)).sum(dim=1)
    return TargetLossParts(pos_term, neg_sq / k.clamp(min=1), hard, valid)


def hard_negative_mse(
    similarity: torch.Tensor,
    positives: torch.Tensor,
    delta: float,
    ratio: float,
    negative_target: float,
    *,
    candidates: torch.Tensor | None = None,
    num_slots: int | None = None,
) -> torch.Tensor:
    """Eqs. 7-8, vectorised over the batch and the slots.

    Parameters
    ----------
    similarity: ``(batch, slot)`` similarities ``f_hat M^T`` (with gradient).
    positives: ``(batch, slot)`` boolean ``P_t``.
    delta: weight of the positive term.
    ratio: hard-negative ratio ``r``.
    negative_target: ``y_neg``.
    candidates: the eligible negatives (default: every slot outside ``P_t``).
    num_slots: count ``k = floor(r num_slots)`` instead of ``floor(r |N_t|)``.

    Returns
    -------
    The scalar ``L_t`` (mean over the batch).
    """
    _check_mask(similarity, positives, "positives")
    candidates = ~positives if candidates is None else candidates
    k = hard_negative_counts(candidates, ratio, num_slots)
    return hard_negative_terms(similarity, positives, candidates, k, delta, negative_target).value


def target_mse(similarity: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Eq. 6: mean over target utterances and **all** slots of ``(s - 1[i in P_t])^2``."""
    return _mse_all_terms(similarity, positives).value


def _mse_all_terms(similarity: torch.Tensor, positives: torch.Tensor) -> TargetLossParts:
    """Eq. 6 per utterance, its sum split over the positive slots and the others."""
    _check_mask(similarity, positives, "positives")
    s = _float(similarity)
    sq = (s - positives.to(s.dtype)).pow(2) / s.shape[1]
    zero = torch.zeros_like(sq)
    hard, valid = _no_hard(s)
    return TargetLossParts(torch.where(positives, sq, zero).sum(dim=1), torch.where(positives, zero, sq).sum(dim=1),
                           hard, valid)


def target_loss_parts(similarity: torch.Tensor, positives: torch.Tensor, cfg: NnpmLossConfig,
                      slot_labels: torch.Tensor | None = None, num_classes: int | None = None,
                      active: torch.Tensor | None = None) -> TargetLossParts:
    """``L_t`` of the configured kind, per utterance and part (``slot_labels`` for ``other_emotions``).

    ``active``: ``(batch,)`` boolean, the utterances whose terms count (``None``: all); the others contribute 0
    and no mined negative, and the batch mean still divides by the whole batch.
    """
    parts = _target_loss_parts(similarity, positives, cfg, slot_labels, num_classes)
    if active is None:
        return parts
    if active.shape != parts.positive.shape:
        raise ValueError(f"active must be ({parts.positive.shape[0]},), got {tuple(active.shape)}")
    keep = active.to(parts.positive.device)
    zero = torch.zeros_like(parts.positive)
    return TargetLossParts(torch.where(keep, parts.positive, zero), torch.where(keep, parts.negative, zero),
                           parts.hard, parts.hard_valid & keep.unsqueeze(1))


def _target_loss_parts(similarity: torch.Tensor, positives: torch.Tensor, cfg: NnpmLossConfig,
                       slot_labels: torch.Tensor | None, num_classes: int | None) -> TargetLossParts:
    if cfg.target_loss == "mse_all":
        return _mse_all_terms(similarity, positives)
    _check_mask(similarity, positives, "positives")
    candidates = negative_candidates(positives, cfg.negatives, slot_labels, num_classes)
    if cfg.target_loss == "all_negatives":
        k = candidates.sum(dim=1)
    else:
        k = hard_negative_counts(candidates, cfg.hard_negative_ratio,
                                 similarity.shape[1] if cfg.hard_negative_count == "slots" else None)
    return hard_negative_terms(similarity, positives, candidates, k, cfg.delta, cfg.negative_target)


def target_loss(similarity: torch.Tensor, positives: torch.Tensor, cfg: NnpmLossConfig,
                slot_labels: torch.Tensor | None = None, num_classes: int | None = None) -> torch.Tensor:
    """The scalar ``L_t`` of the configured kind (see :func:`target_loss_parts`)."""
    return target_loss_parts(similarity, positives, cfg, slot_labels, num_classes).value


@dataclass
class NnpmLoss:
    """The total loss and its parts (scalars; ``source`` is ``None`` without the source term).

    ``target_parts`` holds ``L_t`` per utterance and part, and the mined negatives.
    """

    total: torch.Tensor
    source: torch.Tensor | None
    target: torch.Tensor
    target_parts: TargetLossParts


def nnpm_loss(
    source_logits: torch.Tensor | None,
    source_labels: torch.Tensor | None,
    similarity: torch.Tensor,
    positives: torch.Tensor,
    cfg: NnpmLossConfig,
    slot_labels: torch.Tensor | None = None,
    num_classes: int | None = None,
    active: torch.Tensor | None = None,
) -> NnpmLoss:
    """Eq. 9: ``L = L_s + lambda L_t`` (``L = lambda L_t`` when ``cfg.source_loss`` is off).

    Parameters
    ----------
    source_logits, source_labels: ``(batch_s, class)`` and ``(batch_s,)``;
        may be ``None`` when ``cfg.source_loss`` is off.
    similarity: ``(batch_t, slot)`` target similarities to the memory.
    positives: ``(batch_t, slot)`` boolean pseudo multilabels.
    cfg: loss settings.
    slot_labels, num_classes: the emotion of every slot and the number of
        emotions (needed by ``negatives: other_emotions``).
    active: ``(batch_t,)`` the target utterances whose ``L_t`` terms count (``None``: all).
    """
    parts = target_loss_parts(similarity, positives, cfg, slot_labels, num_classes, active)
    l_t = parts.value
    total = cfg.target_weight * l_t
    l_s = None
    if cfg.source_loss:
        if source_logits is None or source_labels is None:
            raise ValueError("the source loss is on but no source logits/labels were given")
        l_s = source_cross_entropy(source_logits, source_labels)
        total = l_s + total
    return NnpmLoss(total, l_s, l_t, parts)


__all__ = [
    "CountBase",
    "NegativeRule",
    "NnpmLoss",
    "NnpmLossConfig",
    "TargetLoss",
    "TargetLossParts",
    "hard_negative_counts",
    "hard_negative_mse",
    "hard_negative_terms",
    "negative_candidates",
    "nnpm_loss",
    "source_cross_entropy",
    "target_loss",
    "target_loss_parts",
    "target_mse",
]
