"""Dynamic external memory of NNPM (eq. 3): one slot per source utterance.

The bank holds two buffers (so they follow ``.to(device)``, ``state_dict``
and DDP broadcasts like any module state):

* ``features (slot, feature)``: L2-normalised source features ``M``;
* ``labels (slot,)``: the emotion index of each slot's utterance (fixed).

Life cycle (nothing happens implicitly; the training step calls each part):

1. :meth:`MemoryBank.initialize` from one pass of the stage-1 model over the
   whole source set;
2. each step, :meth:`MemoryBank.similarity` (``f_hat M^T``, gradient into
   ``f_hat`` only) for pseudo labels and losses, **then**
3. :meth:`MemoryBank.write` of the step's detached source features, with the
   rate of :meth:`MemoryConfig.epoch_rate` (linear 0 -> 0.4 over the run,
   the last epoch writing with 0.4)::

       old convention (default, MMCL):  M[i] <- rate * M[i] + (1 - rate) * f_hat_i
       new convention:                  M[i] <- (1 - rate) * M[i] + rate * f_hat_i
       then                             M[i] <- M[i] / ||M[i]||_2

Data parallel: every rank must apply the same writes. Gather the source
indices and features of all ranks first (e.g.
:meth:`audioadapt.training.distributed.DistInfo.all_gather`) and pass the
gathered tensors to :meth:`write`. An index that occurs several times in one
write (``DistributedSampler`` pads by repeating samples) is written once with
the renormalised mean of its features; the mean is a matmul, so the result
does not depend on the order of the rows, and ranks stay identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from audioadapt.adaptation.schedules import linear_ramp
from audioadapt.errors import ConfigError

RateConvention = Literal["old", "new"]
RateEnd = Literal["last_epoch", "after_last_epoch"]
EncoderMode = Literal["eval", "train"]

#: Feature rows with a norm below this are refused (they have no direction).
_MIN_NORM = 1e-12


@dataclass(frozen=True)
class MemoryConfig:
    """Memory update settings (eq. 3).

    Attributes
    ----------
    rate_start, rate_end: the updating rate rises linearly from ``rate_start``
        to ``rate_end`` over the adaptation run (paper: 0 -> 0.4 over 50 epochs).
    rate_weights: which term the rate weights: ``old`` (default, MMCL's
        momentum: ``rate * M + (1 - rate) * f_hat``, so rate 0 overwrites) or
        ``new`` (``(1 - rate) * M + rate * f_hat``, so rate 0 freezes the memory).
    rate_reaches_end: ``last_epoch`` (default: epoch ``e`` of ``E`` gets
        progress ``e / (E - 1)``, so the first epoch writes with
        ``rate_start`` and the last with ``rate_end``) or ``after_last_epoch``
        (progress ``e / E``: the last epoch stops one step short, 0.392 of
        0.4 after 50 epochs).
    encoder_mode: how the network runs for everything that meets the memory
        (the target similarities, hence pseudo multilabels and ``L_t``, and
        the source features written): ``eval`` (default, dropout off, as
        the memory was initialised) or ``train`` (the training-mode
        encoder, dropout on).
    """

    rate_start: float = 0.0
    rate_end: float = 0.4
    rate_weights: RateConvention = "old"
    rate_reaches_end: RateEnd = "last_epoch"
    encoder_mode: EncoderMode = "eval"

    def __post_init__(self) -> None:
        for name in ("rate_start", "rate_end"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must lie in [0, 1], got {value}")
        if self.rate_weights not in ("old", "new"):
            raise ConfigError(f"rate_weights must be 'old' or 'new', got {self.rate_weights!r}")
        if self.rate_reaches_end not in ("last_epoch", "after_last_epoch"):
            raise ConfigError(f"rate_reaches_end must be 'last_epoch' or 'after_last_epoch', got "
                              f"{self.rate_reaches_end!r}")
        if self.encoder_mode not in ("eval", "train"):
            raise ConfigError(f"encoder_mode must be 'eval' or 'train', got {self.encoder_mode!r}")

    def rate(self, progress: float) -> float:
        """Updating rate at training progress ``progress`` in ``[0, 1]``."""
        return linear_ramp(progress, self.rate_start, self.rate_end)

    def epoch_rate(self, epoch: int, epochs: int) -> float:
        """Updating rate of 0-based ``epoch`` of ``epochs`` (see ``rate_reaches_end``).

        A single epoch gets ``rate_end`` with ``last_epoch`` (it is the last one)
        and ``rate_start`` with ``after_last_epoch``.
        """
        if epochs < 1 or not 0 <= epoch < epochs:
            raise ValueError(f"epoch must lie in [0, {epochs}), got {epoch}")
        if self.rate_reaches_end == "after_last_epoch":
            return self.rate(epoch / epochs)
        return self.rate(epoch / (epochs - 1) if epochs > 1 else 1.0)


def _check_rows(features: torch.Tensor, dim: int, what: str) -> None:
    if features.dim() != 2 or features.shape[1] != dim:
        raise ValueError(f"{what} must be (rows, {dim}), got {tuple(features.shape)}")
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{what} contain NaN or infinite values")
    if features.shape[0] and float(features.norm(dim=1).min()) < _MIN_NORM:
        raise ValueError(f"{what} contain an all-zero row, which has no direction")


class MemoryBank(nn.Module):
    """One L2-normalised feature slot per source utterance, with its label.

    Parameters
    ----------
    num_slots: number of source utterances ``N_s``.
    dim: feature size ``2u``.
    num_classes: number of emotion classes (labels lie in ``[0, num_classes)``).
    cfg: update settings.
    """

    features: torch.Tensor
    labels: torch.Tensor

    def __init__(self, num_slots: int, dim: int, num_classes: int, cfg: MemoryConfig):
        super().__init__()
        if num_slots <= 0 or dim <= 0 or num_classes <= 0:
            raise ConfigError(
                f"num_slots, dim and num_classes must be positive, got {num_slots}, {dim}, {num_classes}"
            )
        self.cfg = cfg
        self.num_classes = num_classes
        self.register_buffer("features", torch.zeros(num_slots, dim))
        self.register_buffer("labels", torch.full((num_slots,), -1, dtype=torch.long))

    @property
    def num_slots(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def initialized(self) -> bool:
        """True once every slot has a label (after :meth:`initialize` or a checkpoint load)."""
        return bool((self.labels >= 0).all())

    def extra_repr(self) -> str:
        return f"num_slots={self.num_slots}, dim={self.dim}, num_classes={self.num_classes}, cfg={self.cfg}"

    @torch.no_grad()
    def initialize(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Fill every slot.

        Parameters
        ----------
        features: ``(slot, feature)`` source features in slot order (normalised here).
        labels: ``(slot,)`` emotion indices.
        """
        _check_rows(features, self.dim, "memory features")
        if features.shape[0] != self.num_slots:
            raise ValueError(f"need one feature per slot ({self.num_slots}), got {features.shape[0]}")
        if labels.shape != (self.num_slots,):
            raise ValueError(f"labels must be ({self.num_slots},), got {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integers, got {labels.dtype}")
        if bool(((labels < 0) | (labels >= self.num_classes)).any()):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")
        self.features.copy_(F.normalize(features.detach().to(self.features.dtype), dim=1))
        self.labels.copy_(labels)

    @torch.no_grad()
    def write(self, indices: torch.Tensor, features: torch.Tensor, rate: float) -> None:
        """Eq. 3 for the slots in ``indices``; other slots are untouched.

        Parameters
        ----------
        indices: ``(rows,)`` slot index of each row (the source sample
            indices, gathered over ranks under DDP).
        features: ``(rows, feature)`` source features of this step (any norm;
            detached and normalised here).
        rate: updating rate in ``[0, 1]``, weighting the term named by
            ``cfg.rate_weights``.
        """
        rate = float(rate)
        if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
            raise ValueError(f"rate must lie in [0, 1], got {rate}")
        if indices.dim() != 1 or indices.shape[0] != features.shape[0]:
            raise ValueError(
                f"indices must be (rows,) with one index per feature row ({features.shape[0]}), "
                f"got {tuple(indices.shape)}"
            )
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be integers, got {indices.dtype}")
        _check_rows(features, self.dim, "written features")
        if indices.numel() == 0:
            return
        if bool(((indices < 0) | (indices >= self.num_slots)).any()):
            raise IndexError(f"slot indices must lie in [0, {self.num_slots})")
        f_hat = F.normalize(features.detach().to(self.features.device, self.features.dtype), dim=1)
        slots, inverse = torch.unique(indices.to(self.features.device), return_inverse=True)
        if slots.numel() < indices.numel():
            groups = torch.arange(slots.numel(), device=slots.device).unsqueeze(1) == inverse.unsqueeze(0)
            f_hat = F.normalize(groups.to(f_hat.dtype) @ f_hat, dim=1)
        else:
            f_hat = f_hat[torch.argsort(inverse)]
        old = self.features.index_select(0, slots)
        keep = rate if self.cfg.rate_weights == "old" else 1.0 - rate
        mixed = keep * old + (1.0 - keep) * f_hat
        norm = mixed.norm(dim=1, keepdim=True)
        # opposite unit vectors mixed half-and-half cancel out; keep the new direction then
        mixed = torch.where(norm > 1e-6, mixed / norm.clamp_min(1e-6), f_hat)
        self.features.index_copy_(0, slots, mixed)

    def similarity(self, f_hat: torch.Tensor) -> torch.Tensor:
        """Inner products ``f_hat M^T`` ``(batch, slot)``.

        ``f_hat`` ``(batch, feature)`` must already be L2-normalised (e.g.
        :attr:`audioadapt.models.ser_model.SerOutput.feature_hat`); the
        gradient flows into it, never into the memory.
        """
        if f_hat.dim() != 2 or f_hat.shape[1] != self.dim:
            raise ValueError(f"features must be (batch, {self.dim}), got {tuple(f_hat.shape)}")
        return f_hat @ self.features.to(f_hat.dtype).t()

    @torch.no_grad()
    def nearest_label(self, f_hat: torch.Tensor) -> torch.Tensor:
        """Label of the most similar slot ``(batch,)``: the diagnostic memory predictor."""
        return self.labels[self.similarity(f_hat).argmax(dim=1)]


__all__ = ["EncoderMode", "MemoryBank", "MemoryConfig", "RateConvention", "RateEnd"]
