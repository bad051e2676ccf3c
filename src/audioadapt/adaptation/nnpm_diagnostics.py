"""Per-step diagnostics of NNPM's pseudo multilabels and target loss (logged per epoch in ``metrics.csv``).

They tell whether the memory mechanism can help: whether the sets are the
head's own predictions (``pml_head_vote_agreement`` near 1 means the pseudo
multilabels add nothing the head does not already say), whether they empty
out, whether ``L_t`` mostly repels (``target_loss_negative`` against
``target_loss_positive``) and which slots the mining pushes away.

With the true emotions of the target batch (``truth``; only behind the
explicit ``diagnostics.target_truth`` switch, never used for training or
selection) they also measure the sets against the truth:

==============================  ============================================================
``pml_purity``                  share of a non-empty set's slots that carry the true emotion
``pml_vote_accuracy``           the set's majority emotion is the true one (non-empty sets)
``head_target_accuracy``        the head's class is the true one (all target utterances)
==============================  ============================================================

Names of the always-logged values (means over the batch):
``pml_empty_fraction``, ``pml_mean_size`` (empty sets included),
``pml_mean_size_nonempty``, ``pml_mean_distinct_emotions``,
``pml_head_vote_agreement`` (the set's majority emotion is the head's
class), ``memory_head_agreement`` (the nearest slot's emotion is the head's
class), ``target_loss_positive`` / ``target_loss_negative`` (the two parts of
``L_t``, summing to it), ``hard_negative_count``, ``hard_negative_similarity``
(mean similarity of the mined negatives) and ``hard_negative_vote_share``
(share of the mined negatives of a non-empty set that carry the set's
majority emotion). A value without any utterance to average over (e.g. no
non-empty set in the batch) is left out of that step.
"""

from __future__ import annotations

import torch

from audioadapt.adaptation.nnpm_losses import TargetLossParts
from audioadapt.adaptation.pseudo_multilabel import PseudoMultilabel, emotion_counts, vote_labels


def _mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor | None:
    """Mean of ``values`` over ``where`` (``None`` when ``where`` is empty)."""
    n = int(where.sum())
    return None if n == 0 else values[where].float().mean()


@torch.no_grad()
def nnpm_step_diagnostics(
    labels: PseudoMultilabel,
    slot_labels: torch.Tensor,
    num_classes: int,
    similarity: torch.Tensor,
    head_labels: torch.Tensor,
    parts: TargetLossParts,
    truth: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The diagnostics of one stage-2 step (see the module docstring).

    Parameters
    ----------
    labels: the batch's pseudo multilabels.
    slot_labels: ``(slot,)`` emotion of every memory slot.
    num_classes: number of emotions.
    similarity: ``(batch, slot)`` similarities the labels came from.
    head_labels: ``(batch,)`` the head's class of each target utterance.
    parts: the target loss per utterance and part, with the mined negatives.
    truth: ``(batch,)`` true emotions of the target batch (``-1`` unknown),
        or ``None`` to leave the truth measures out.
    """
    counts = emotion_counts(labels.positives, slot_labels, num_classes)  # (batch, class)
    sizes = counts.sum(dim=1)
    nonempty = sizes > 0
    votes = vote_labels(labels.positives, slot_labels, num_classes)
    nearest = slot_labels[similarity.argmax(dim=1)]
    out: dict[str, torch.Tensor | None] = {
        "pml_empty_fraction": labels.empty.float().mean(),
        "pml_mean_size": sizes.float().mean(),
        "pml_mean_size_nonempty": _mean(sizes, nonempty),
        "pml_mean_distinct_emotions": _mean((counts > 0).sum(dim=1), nonempty),
        "pml_head_vote_agreement": _mean(votes == head_labels, nonempty),
        "memory_head_agreement": (nearest == head_labels).float().mean(),
        "target_loss_positive": parts.positive.mean(),
        "target_loss_negative": parts.negative.mean(),
    }
    valid = parts.hard_valid
    k = valid.sum(dim=1)
    out["hard_negative_count"] = k.float().mean()
    if bool(valid.any()):
        out["hard_negative_similarity"] = similarity.gather(1, parts.hard)[valid].float().mean()
        hard_emotions = slot_labels[parts.hard]  # (batch, k_max)
        of_vote = ((hard_emotions == votes.unsqueeze(1)) & valid).sum(dim=1).float() / k.clamp(min=1)
        out["hard_negative_vote_share"] = _mean(of_vote, nonempty & (k > 0))
    if truth is not None:
        truth = truth.to(slot_labels.device)
        known = truth >= 0
        true_slots = counts.gather(1, truth.clamp(min=0).unsqueeze(1)).squeeze(1)
        purity = true_slots.float() / sizes.clamp(min=1)
        out["pml_purity"] = _mean(purity, nonempty & known)
        out["pml_vote_accuracy"] = _mean(votes == truth, nonempty & known)
        out["head_target_accuracy"] = _mean(head_labels == truth, known)
    return {name: value for name, value in out.items() if value is not None}


__all__ = ["nnpm_step_diagnostics"]
