"""Classifier heads with a frame-level (strong) and a clip-level (weak) output.

Each head maps frame features ``h (batch, frame, feature)`` to frame logits
``z_tk = w_k^T h_t + b_k`` and pools the frame probabilities
``y_tk = sigmoid(z_tk)`` into a clip probability ``y_k``. Pooling modes:

``attention_class`` (default, the DESED / DCASE-baseline convention)
    An attention layer gives ``a_t = softmax_k(v_k^T h_t + c_k)``: the softmax
    runs over the **class** axis, then is clamped to ``[1e-7, 1]``, and
    ``y_k = sum_t y_tk a_tk / sum_t a_tk``. It is the default because the
    baselines Park et al. compare against pool this way; it is not
    attention over time in the usual sense (each frame's weights sum to 1
    over classes), but the normalisation makes ``y_k`` a weighted mean over
    frames.
``attention_time``
    ``a_tk = softmax_t(v_k^T h_t + c_k)``: the softmax runs over time, as in
    most weak-label attention pooling; ``y_k = sum_t a_tk y_tk``.
``mean`` / ``max``
    Plain mean or max of ``y_tk`` over frames.

Padded frames (``False`` in the optional ``(batch, frame)`` mask) are
excluded from every sum and from the max. DESED fills padded attention logits
with ``-1e30`` before a class-axis softmax, which leaves them a uniform weight;
here they get weight zero.

Clip logits: every mode above is a weighted mean (or max) of sigmoids, so the
clip output is a probability. Its logit is computed exactly and stably as
``log y_k - log(1 - y_k)`` with ``log y_k = logsumexp_t(log w_tk + logsigmoid(z_tk))``
and ``log(1 - y_k) = logsumexp_t(log w_tk + logsigmoid(-z_tk))`` (the weights
sum to one); for ``max`` it is the max frame logit. ``sigmoid(clip_logits)``
equals ``clip_probs``, so BCE can always be taken from logits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Pooling = Literal["attention_class", "attention_time", "mean", "max"]
LayerName = Literal["first", "output", "hidden"]


@dataclass(frozen=True)
class HeadConfig:
    """Shape of every classifier head (``f1``, ``f2``, ``ft``).

    Attributes
    ----------
    pooling: clip pooling, see the module docstring.
    attention_clamp_min: lower clamp of the class-axis attention weights
        (DESED: 1e-7; the upper clamp is 1).
    dropout: dropout on the features before the head (DESED: 0.5).
    hidden_dim: size of an optional hidden layer (``Linear`` + ReLU) shared by
        the strong and attention outputs; ``None`` for none. With a hidden
        layer, the "first layer" of eq. 8 is unambiguous.
    labeler_hidden_dim: hidden layer of the labelers F1 and F2 only, in place
        of ``hidden_dim`` (the final classifier Ft keeps ``hidden_dim``, so it
        stays the baseline's head); ``None`` gives the labelers
        ``hidden_dim`` too. Labelers with a hidden layer are ATDA's (Saito et
        al.) and make eq. 8's "first layer of two labelers" a hidden layer.
    """

    pooling: Pooling = "attention_class"
    attention_clamp_min: float = 1e-7
    dropout: float = 0.5
    hidden_dim: int | None = None
    labeler_hidden_dim: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.attention_clamp_min < 1.0:
            raise ValueError(f"attention_clamp_min must lie in (0, 1), got {self.attention_clamp_min}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        for name in ("hidden_dim", "labeler_hidden_dim"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or null, got {value}")

    @property
    def has_attention(self) -> bool:
        return self.pooling in ("attention_class", "attention_time")

    def for_labeler(self) -> HeadConfig:
        """The shape of a labeler head: ``labeler_hidden_dim`` as its hidden layer, when set."""
        if self.labeler_hidden_dim is None:
            return self
        return dataclasses.replace(self, hidden_dim=self.labeler_hidden_dim)


@dataclass
class HeadOutput:
    """Outputs of one :class:`FrameClipHead`.

    Attributes
    ----------
    frame_logits: ``(batch, frame, class)``.
    frame_probs: ``(batch, frame, class)``, ``sigmoid(frame_logits)``.
    clip_probs: ``(batch, class)``, the pooled frame probabilities.
    clip_logits: ``(batch, class)``, exact logit of ``clip_probs``.
    attention: ``(batch, frame, class)`` normalised pooling weights (zero on
        padded frames); ``None`` for ``max`` pooling.
    """

    frame_logits: torch.Tensor
    frame_probs: torch.Tensor
    clip_probs: torch.Tensor
    clip_logits: torch.Tensor
    attention: torch.Tensor | None


def _check_mask(mask: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.shape != (batch, frames):
        raise ValueError(f"frame mask must be (batch, frame) = {(batch, frames)}, got {tuple(mask.shape)}")
    mask = mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every clip needs at least one unmasked frame")
    return mask


def pooling_log_weights(
    mode: Pooling,
    frame_logits: torch.Tensor,
    attention_logits: torch.Tensor | None,
    mask: torch.Tensor | None,
    clamp_min: float,
) -> torch.Tensor:
    """Log pooling weights ``log w_tk`` that sum to one over valid frames.

    Parameters
    ----------
    mode: ``attention_class``, ``attention_time`` or ``mean``.
    frame_logits: ``(batch, frame, class)`` (used for its shape).
    attention_logits: ``(batch, frame, class)``; required for attention modes.
    mask: ``(batch, frame)`` boolean or ``None``.
    clamp_min: lower clamp of the class-axis attention weights.

    Returns
    -------
    ``(batch, frame, class)``; ``-inf`` on padded frames.
    """
    pad = None if mask is None else ~mask.unsqueeze(-1)
    if mode == "mean":
        log_a = torch.zeros_like(frame_logits)
    elif mode == "attention_class":
        if attention_logits is None:
            raise ValueError("attention_class pooling needs attention logits")
        # clamp(softmax, m, 1) == exp(clamp(log_softmax, log m, 0)), gradients included
        log_a = attention_logits.log_softmax(dim=-1).clamp(min=math.log(clamp_min), max=0.0)
    elif mode == "attention_time":
        if attention_logits is None:
            raise ValueError("attention_time pooling needs attention logits")
        log_a = attention_logits
    else:
        raise ValueError(f"no pooling weights for mode {mode!r}")
    if pad is not None:
        log_a = log_a.masked_fill(pad, float("-inf"))
    return log_a - torch.logsumexp(log_a, dim=1, keepdim=True)


def pool_clip(
    mode: Pooling,
    frame_logits: torch.Tensor,
    attention_logits: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    clamp_min: float = HeadConfig.attention_clamp_min,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Pool frame logits into clip probabilities and logits.

    Parameters
    ----------
    mode: pooling mode (see the module docstring).
    frame_logits: ``(batch, frame, class)``.
    attention_logits: ``(batch, frame, class)`` for the attention modes.
    mask: ``(batch, frame)`` boolean, ``True`` on real frames.
    clamp_min: lower clamp of the class-axis attention weights.

    Returns
    -------
    ``(clip_probs, clip_logits, weights)``: ``(batch, class)`` twice and the
    ``(batch, frame, class)`` pooling weights (``None`` for ``max``).
    """
    b, t, _ = frame_logits.shape
    mask = _check_mask(mask, b, t)
    if mode == "max":
        z = frame_logits if mask is None else frame_logits.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        clip_logits = z.amax(dim=1)
        return torch.sigmoid(clip_logits), clip_logits, None
    log_w = pooling_log_weights(mode, frame_logits, attention_logits, mask, clamp_min)
    weights = log_w.exp()
    clip_probs = (weights * torch.sigmoid(frame_logits)).sum(dim=1)
    log_pos = torch.logsumexp(log_w + F.logsigmoid(frame_logits), dim=1)
    log_neg = torch.logsumexp(log_w + F.logsigmoid(-frame_logits), dim=1)
    return clip_probs, log_pos - log_neg, weights


class FrameClipHead(nn.Module):
    """One classifier (``F_1``, ``F_2`` or ``F_t``): strong and weak outputs.

    Layers: Dropout -> [hidden Linear + ReLU] -> ``strong`` Linear (frame
    logits) and, for attention pooling, ``attention`` Linear.

    Parameters
    ----------
    in_dim: feature size of ``h`` (256 for the default CRNN).
    n_classes: number of event classes.
    cfg: head configuration.
    """

    def __init__(self, in_dim: int, n_classes: int, cfg: HeadConfig):
        super().__init__()
        if in_dim <= 0 or n_classes <= 0:
            raise ValueError(f"in_dim and n_classes must be positive, got {in_dim}, {n_classes}")
        self.cfg = cfg
        self.n_classes = n_classes
        self.dropout = nn.Dropout(cfg.dropout)
        self.hidden: nn.Linear | None = None
        if cfg.hidden_dim is not None:
            self.hidden = nn.Linear(in_dim, cfg.hidden_dim)
            in_dim = cfg.hidden_dim
        self.strong = nn.Linear(in_dim, n_classes)
        self.attention: nn.Linear | None = nn.Linear(in_dim, n_classes) if cfg.has_attention else None

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> HeadOutput:
        """Apply the head.

        Parameters
        ----------
        h: frame features ``(batch, frame, feature)``.
        mask: ``(batch, frame)`` boolean, ``True`` on real frames, or ``None``.
        """
        x = self.dropout(h)
        if self.hidden is not None:
            x = torch.relu(self.hidden(x))
        frame_logits = self.strong(x)
        att = self.attention(x) if self.attention is not None else None
        clip_probs, clip_logits, weights = pool_clip(
            self.cfg.pooling, frame_logits, att, mask, self.cfg.attention_clamp_min
        )
        return HeadOutput(frame_logits, torch.sigmoid(frame_logits), clip_probs, clip_logits, weights)

    def layer_weight(self, which: LayerName) -> torch.Tensor:
        """Weight matrix ``(out, in)`` of a layer, for the orthogonality term (eq. 8).

        ``"output"`` stacks the strong and attention matrices (``[2K, in]``;
        only the strong one without attention); ``"hidden"`` is the hidden
        layer; ``"first"`` is the hidden layer when there is one, else the
        stacked output matrices.
        """
        if which == "hidden" or (which == "first" and self.hidden is not None):
            if self.hidden is None:
                raise ValueError("this head has no hidden layer (set head.hidden_dim)")
            return self.hidden.weight
        if which in ("first", "output"):
            if self.attention is None:
                return self.strong.weight
            return torch.cat([self.strong.weight, self.attention.weight], dim=0)
        raise ValueError(f"unknown layer {which!r}; use first, output or hidden")


__all__ = ["FrameClipHead", "HeadConfig", "HeadOutput", "LayerName", "Pooling", "pool_clip", "pooling_log_weights"]
