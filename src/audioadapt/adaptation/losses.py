"""Classification and domain losses, all computed from logits.

Park et al. print eqs. 2-4 as sums of ``y log y_hat + (1 - y) log(1 - y_hat)``,
i.e. log-likelihoods without the minus sign. We *minimise* the ordinary binary
cross-entropy, which is their negative, and reduce by the **mean** over the
valid entries instead of a sum, so that the frame, clip and domain terms have
comparable scales whatever the batch composition.

Label conventions: ``-1`` marks an unknown label, which is masked out;
known labels lie in ``[0, 1]`` (soft labels are allowed). When nothing is
known, a loss returns an exact zero that is still attached to the graph, so a
batch without labelled rows can be back-propagated like any other.

Data-parallel training: DDP averages the gradients of the ranks' losses, and
the mean of per-rank means is the global-batch mean only when every rank has
as many valid entries (pseudo labels and padding make the counts differ).
Each loss takes a ``divisor``: a function from this rank's number of valid
entries to the number its sum is divided by. Passing the mean count over
ranks (:meth:`~audioadapt.training.distributed.DistInfo.all_reduce_mean`)
makes the rank average the mean over the global batch; every rank must then
call the loss (it is a collective), whatever its labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

#: Maps this rank's number of valid entries (a 0-d tensor) to the divisor of its sum.
Divisor = Callable[[torch.Tensor], torch.Tensor]


def _zero_like_graph(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum() * 0.0


def _masked_mean(losses: torch.Tensor, valid: torch.Tensor, divisor: Divisor | None) -> torch.Tensor | None:
    """Sum of ``losses`` over ``valid`` divided by their count (or ``divisor(count)``); ``None`` if that is 0."""
    if divisor is None:
        return losses[valid].mean() if bool(valid.any()) else None
    denominator = divisor(valid.sum())
    return losses[valid].sum() / denominator if bool(denominator > 0) else None


def masked_bce_with_logits(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None, divisor: Divisor | None = None
) -> torch.Tensor:
    """Mean binary cross-entropy over the known entries.

    Parameters
    ----------
    logits: any shape.
    targets: same shape; ``-1`` (any negative value) = unknown.
    mask: boolean, broadcastable to ``logits``; ``False`` entries are left
        out as well (e.g. padded frames).
    divisor: see the module docstring; ``None`` divides by the count.

    Returns
    -------
    A scalar: mean BCE over entries with a known target and a true mask, or
    0 (with a valid graph) when there is none.
    """
    if targets.shape != logits.shape:
        raise ValueError(f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}")
    valid = targets >= 0
    if mask is not None:
        valid = valid & mask.bool()
    targets = targets.to(logits.dtype).clamp(min=0.0)
    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return masked_mean(losses, valid, divisor)


def masked_mean(losses: torch.Tensor, valid: torch.Tensor, divisor: Divisor | None = None) -> torch.Tensor:
    """Mean of elementwise ``losses`` over the ``valid`` entries (same shape), divided as the module docstring
    says; 0 with a valid graph when no entry is valid."""
    mean = _masked_mean(losses, valid, divisor)
    return _zero_like_graph(losses) if mean is None else mean


def frame_bce(
    frame_logits: torch.Tensor, frame_targets: torch.Tensor, frame_mask: torch.Tensor | None = None,
    divisor: Divisor | None = None,
) -> torch.Tensor:
    """Frame-level (strong) loss ``L_frame``.

    Parameters
    ----------
    frame_logits: ``(batch, frame, class)``.
    frame_targets: ``(batch, frame, class)``; ``-1`` = unknown (e.g. a weak or
        unlabelled clip, or a disagreement of the pseudo-labellers).
    frame_mask: ``(batch, frame)`` boolean, ``False`` on padded frames.
    divisor: see the module docstring.
    """
    mask = None if frame_mask is None else frame_mask.bool().unsqueeze(-1)
    return masked_bce_with_logits(frame_logits, frame_targets, mask, divisor)


def clip_bce(clip_logits: torch.Tensor, clip_targets: torch.Tensor, divisor: Divisor | None = None) -> torch.Tensor:
    """Clip-level (weak) loss ``L_clip``.

    Parameters
    ----------
    clip_logits: ``(batch, class)``.
    clip_targets: ``(batch, class)``; ``-1`` = unknown.
    divisor: see the module docstring.
    """
    return masked_bce_with_logits(clip_logits, clip_targets, divisor=divisor)


def domain_bce(
    domain_logits: torch.Tensor,
    domain_labels: torch.Tensor,
    balance: bool,
    frame_mask: torch.Tensor | None = None,
    divisor: Divisor | None = None,
) -> torch.Tensor:
    """Domain loss ``L_d`` per clip (Adv.whole) or per frame (Adv.time).

    Parameters
    ----------
    domain_logits: ``(batch,)`` or ``(batch, frame)``.
    domain_labels: ``(batch,)`` with 0 or 1 (the SED trainer uses 1 = real,
        0 = synthetic); ``-1`` leaves a clip out. Per-frame logits share their
        clip's label.
    balance: weight each domain by the inverse of its share of the valid
        entries, so the loss is the mean of the per-domain mean BCEs (each
        domain present counts equally). Without it, the plain mean.
    frame_mask: ``(batch, frame)`` boolean, only with per-frame logits.
    divisor: see the module docstring; with ``balance`` each domain's count
        goes through it, and the domains present on some rank count.

    Returns
    -------
    A scalar; 0 with a valid graph when no entry is valid.
    """
    if domain_labels.dim() != 1 or domain_labels.shape[0] != domain_logits.shape[0]:
        raise ValueError(
            f"domain labels must be (batch,) = ({domain_logits.shape[0]},), got {tuple(domain_labels.shape)}"
        )
    labels = domain_labels
    valid = labels >= 0
    if domain_logits.dim() == 2:
        labels = labels.unsqueeze(1).expand_as(domain_logits)
        valid = valid.unsqueeze(1).expand_as(domain_logits)
        if frame_mask is not None:
            if frame_mask.shape != domain_logits.shape:
                raise ValueError(
                    f"frame mask {tuple(frame_mask.shape)} does not match logits {tuple(domain_logits.shape)}"
                )
            valid = valid & frame_mask.bool()
    elif domain_logits.dim() != 1:
        raise ValueError(f"domain logits must be (batch,) or (batch, frame), got {tuple(domain_logits.shape)}")
    elif frame_mask is not None:
        raise ValueError("frame_mask only applies to per-frame domain logits")
    if bool(((labels != 0) & (labels != 1) & valid).any()):
        raise ValueError("domain labels must be 0, 1 or -1")
    targets = labels.clamp(min=0).to(domain_logits.dtype)
    losses = F.binary_cross_entropy_with_logits(domain_logits, targets, reduction="none")
    groups = (valid & (labels == 0), valid & (labels == 1)) if balance else (valid,)
    means = [m for m in (_masked_mean(losses, sel, divisor) for sel in groups) if m is not None]
    return torch.stack(means).mean() if means else _zero_like_graph(domain_logits)


__all__ = ["Divisor", "clip_bce", "domain_bce", "frame_bce", "masked_bce_with_logits", "masked_mean"]
