"""Pseudo multilabel of NNPM (eq. 4) and its statistics.

For a target utterance with normalised feature ``f_hat_t`` and the memory
``M`` (one slot per source utterance)::

    P_t = {i : M[i]^T f_hat_t > theta}        (strictly greater; theta = 0.9)

The comparison runs in the similarity's dtype (``theta`` is rounded to it,
as PyTorch does for a Python scalar).

The label lives over **slots** (each slot is a class, as in MMCL); the set of
emotions ``{c_i : i in P_t}`` is a by-product for logging and for the
majority-vote memory predictor. Everything is vectorised over
``(batch, slot)`` and computed without gradient.

Empty sets (no slot above ``theta``) follow ``empty_policy``:

* ``skip`` (default): the set stays empty and the utterance gets no target
  loss at all;
* ``negatives_only`` (the literal reading of eq. 8): the set stays empty and
  the target loss keeps only its hard-negative term for that utterance. Its
  hard negatives are then the slots most like it, so the term pushes it away
  from every slot and empties more sets: on RAVDESS -> EMO-DB and RAVDESS ->
  URDU the empty share ran from 0.16-0.34 to 1.0 within 50 stage-2 epochs
  (``docs/conventions.md``);
* ``top1``: the most similar slot becomes the single positive.

``rule: oracle`` replaces eq. 4 by the true target emotion
(:func:`oracle_multilabel`): the upper bound of the memory mechanism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from audioadapt.errors import ConfigError

EmptyPolicy = Literal["negatives_only", "top1", "skip"]
Rule = Literal["threshold", "oracle"]


@dataclass(frozen=True)
class PseudoMultilabelConfig:
    """Pseudo-multilabel rule.

    Attributes
    ----------
    threshold: similarity threshold ``theta``; a slot is positive when its
        inner product with ``f_hat`` is strictly greater (paper: 0.9).
    empty_policy: ``skip``, ``negatives_only`` or ``top1`` (see the module docstring).
    rule: ``threshold`` (eq. 4) or ``oracle``: every slot of the target
        utterance's **true** emotion is positive (:func:`oracle_multilabel`).
        The oracle reads target labels: it is the upper bound of what the
        memory mechanism can give (the ``ser_oracle`` row), never a system.
    """

    threshold: float = 0.9
    empty_policy: EmptyPolicy = "skip"
    rule: Rule = "threshold"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and -1.0 <= self.threshold < 1.0):
            raise ConfigError(f"threshold must lie in [-1, 1), got {self.threshold}")
        if self.empty_policy not in ("negatives_only", "top1", "skip"):
            raise ConfigError(f"empty_policy must be 'negatives_only', 'top1' or 'skip', got {self.empty_policy!r}")
        if self.rule not in ("threshold", "oracle"):
            raise ConfigError(f"rule must be 'threshold' or 'oracle', got {self.rule!r}")


@dataclass
class PseudoMultilabel:
    """Pseudo multilabels of a batch of target utterances.

    Attributes
    ----------
    positives: ``(batch, slot)`` boolean, ``P_t`` after the empty-set policy.
    empty: ``(batch,)`` boolean, ``True`` where the threshold rule itself
        found no slot (before the policy).
    """

    positives: torch.Tensor
    empty: torch.Tensor


def pseudo_multilabel(similarity: torch.Tensor, cfg: PseudoMultilabelConfig) -> PseudoMultilabel:
    """Eq. 4 for a batch.

    Parameters
    ----------
    similarity: ``(batch, slot)`` inner products ``M f_hat`` (see
        :meth:`audioadapt.adaptation.memory.MemoryBank.similarity`).
    cfg: threshold and empty-set policy.
    """
    if similarity.dim() != 2 or similarity.shape[1] == 0:
        raise ValueError(f"similarity must be (batch, slot) with at least one slot, got {tuple(similarity.shape)}")
    with torch.no_grad():
        positives = similarity > cfg.threshold
        empty = ~positives.any(dim=1)
        if cfg.empty_policy == "top1":
            top = F.one_hot(similarity.argmax(dim=1), similarity.shape[1]).bool()
            positives = positives | (top & empty.unsqueeze(1))
    return PseudoMultilabel(positives, empty)


def oracle_multilabel(truth: torch.Tensor, slot_labels: torch.Tensor) -> PseudoMultilabel:
    """The oracle's ``P_t``: every slot whose emotion is the target utterance's true one.

    Parameters
    ----------
    truth: ``(batch,)`` true emotion index of each target utterance (``-1``
        when unknown: an empty set).
    slot_labels: ``(slot,)`` emotion index of every slot.
    """
    if truth.dim() != 1 or slot_labels.dim() != 1:
        raise ValueError(f"truth (batch,) and slot labels (slot,) expected, got {tuple(truth.shape)} and "
                         f"{tuple(slot_labels.shape)}")
    positives = slot_labels.unsqueeze(0) == truth.to(slot_labels.device).unsqueeze(1)
    return PseudoMultilabel(positives, ~positives.any(dim=1))


def emotion_counts(positives: torch.Tensor, slot_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Positive slots per emotion ``(batch, class)``.

    Parameters
    ----------
    positives: ``(batch, slot)`` boolean.
    slot_labels: ``(slot,)`` emotion index of every slot.
    num_classes: number of emotions.
    """
    if positives.dim() != 2 or slot_labels.shape != positives.shape[1:]:
        raise ValueError(
            f"positives (batch, slot) and slot labels (slot,) disagree: {tuple(positives.shape)} vs "
            f"{tuple(slot_labels.shape)}"
        )
    onehot = F.one_hot(slot_labels.long(), num_classes).to(torch.float32)
    # float32 counts are exact up to 2**24 slots
    return (positives.to(torch.float32) @ onehot).round().long()


def vote_labels(positives: torch.Tensor, slot_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Majority emotion of each ``P_t`` ``(batch,)``; ``-1`` for an empty set.

    Ties go to the lowest emotion index. A diagnostic memory predictor next
    to :meth:`audioadapt.adaptation.memory.MemoryBank.nearest_label`.
    """
    counts = emotion_counts(positives, slot_labels, num_classes)
    votes = counts.argmax(dim=1)
    return torch.where(counts.sum(dim=1) > 0, votes, torch.full_like(votes, -1))


@dataclass(frozen=True)
class PseudoMultilabelStats:
    """Sums over target utterances; add batches with ``+``, read the means.

    Attributes
    ----------
    count: target utterances seen.
    empty: utterances whose threshold rule found no slot.
    size_total: sum of ``|P_t|`` (after the empty-set policy).
    nonempty: utterances with a non-empty ``P_t`` (after the policy).
    distinct_total: sum over those of the number of distinct emotions in ``P_t``.
    """

    count: int = 0
    empty: int = 0
    size_total: int = 0
    nonempty: int = 0
    distinct_total: int = 0

    def __add__(self, other: "PseudoMultilabelStats") -> "PseudoMultilabelStats":
        return PseudoMultilabelStats(
            self.count + other.count,
            self.empty + other.empty,
            self.size_total + other.size_total,
            self.nonempty + other.nonempty,
            self.distinct_total + other.distinct_total,
        )

    @property
    def empty_fraction(self) -> float:
        """Share of target utterances with an empty set (NaN before any)."""
        return self.empty / self.count if self.count else math.nan

    @property
    def mean_size(self) -> float:
        """Mean ``|P_t|`` over all target utterances, empty sets included (NaN before any)."""
        return self.size_total / self.count if self.count else math.nan

    @property
    def mean_distinct_emotions(self) -> float:
        """Mean number of distinct emotions per non-empty set (NaN when there is none)."""
        return self.distinct_total / self.nonempty if self.nonempty else math.nan

    def as_dict(self, prefix: str = "pml_") -> dict[str, float]:
        """The three means, for logging."""
        return {
            f"{prefix}empty_fraction": self.empty_fraction,
            f"{prefix}mean_size": self.mean_size,
            f"{prefix}mean_distinct_emotions": self.mean_distinct_emotions,
        }


def pseudo_multilabel_stats(
    labels: PseudoMultilabel, slot_labels: torch.Tensor, num_classes: int
) -> PseudoMultilabelStats:
    """Statistics of one batch of pseudo multilabels.

    Parameters
    ----------
    labels: output of :func:`pseudo_multilabel`.
    slot_labels: ``(slot,)`` emotion index of every slot (``MemoryBank.labels``).
    num_classes: number of emotions.
    """
    with torch.no_grad():
        counts = emotion_counts(labels.positives, slot_labels, num_classes)
        sizes = counts.sum(dim=1)
        distinct = (counts > 0).sum(dim=1)
        return PseudoMultilabelStats(
            count=int(labels.positives.shape[0]),
            empty=int(labels.empty.sum()),
            size_total=int(sizes.sum()),
            nonempty=int((sizes > 0).sum()),
            distinct_total=int(distinct.sum()),
        )


__all__ = [
    "EmptyPolicy",
    "PseudoMultilabel",
    "PseudoMultilabelConfig",
    "PseudoMultilabelStats",
    "Rule",
    "emotion_counts",
    "oracle_multilabel",
    "pseudo_multilabel",
    "pseudo_multilabel_stats",
    "vote_labels",
]
