"""Agreement pseudo-labelling of tri-training (Park et al. Algorithm 1).

Two labelers F1 and F2 vote on every (frame, class) and (clip, class):

* positive (1) where both probabilities exceed ``threshold`` (tau = 0.5);
* negative (0) where both are at most ``negative_threshold`` (tau unless
  set lower: with e.g. 0.1 only confident frames become negatives);
* unknown (-1) otherwise, and on padded frames.

For clips with a known weak label, classes absent from it are forced to 0 in
every frame, so a pseudo label never contradicts the weak label and never
invents a positive for an absent class. For classes the weak label marks
present, ``present_negatives`` decides what becomes of the frames the vote
makes negative: ``keep`` them (the paper's rule, which can label a present
class negative on every frame), turn them into ``unknown``, or keep them only
``with_positive``, i.e. in clips where the class also has a positive frame.
Clip-level pseudo labels come from the labelers' clip outputs for clips
without a weak label; a known weak label is copied as it is.

Labels are ``torch.int8`` tensors (1 / 0 / -1) with the probabilities' leading
axes; everything is vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from audioadapt.data.labels import UNKNOWN


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Agreement rule settings.

    Attributes
    ----------
    threshold: both probabilities must exceed it for a positive (tau).
    negative_threshold: both must be at most this for a negative; ``None``
        uses ``threshold`` (with tau = 0.5 "confident" then adds nothing
        beyond agreement).
    weak_constraint: force classes absent from a known weak label to 0.
    present_negatives: the frames voted negative of a class that a clip's
        weak label marks present: ``keep`` (default, the paper's rule),
        ``unknown`` (never a negative frame for a present class), or
        ``with_positive`` (kept only where the class has a positive frame in
        the clip, so that a present class is never negative on every frame).
    median_filter: odd window (output frames) of a median filter applied
        over time to each labeler's frame probabilities before the vote;
        1 = off.
    clip_labels: give clips without a weak label clip-level pseudo labels
        from the clip outputs (otherwise their clip labels stay unknown).
    truth: the oracle bound, not a system: ``false`` (the labelers vote),
        ``true`` (every frame and clip label of the pseudo-labelled clips is
        their true label, read from the generator's ``metadata/truth``), or
        a folder holding ``weak.tsv`` and ``unlabeled.tsv`` (relative to the
        dataset root, or absolute). It measures what perfect pseudo labels
        would give; it needs the real domain's labels and is never a default.
    """

    threshold: float = 0.5
    negative_threshold: float | None = None
    weak_constraint: bool = True
    present_negatives: Literal["keep", "unknown", "with_positive"] = "keep"
    median_filter: int = 1
    clip_labels: bool = True
    truth: bool | str = False

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if self.negative_threshold is not None and not 0.0 <= self.negative_threshold <= self.threshold:
            raise ValueError(
                f"negative_threshold must lie in [0, threshold={self.threshold}], got {self.negative_threshold}"
            )
        if self.median_filter < 1 or self.median_filter % 2 == 0:
            raise ValueError(f"median_filter must be an odd number >= 1, got {self.median_filter}")
        if self.truth == "":
            raise ValueError("truth must be true, false or a folder, got ''")

    @property
    def resolved_negative_threshold(self) -> float:
        return self.threshold if self.negative_threshold is None else self.negative_threshold


def agreement(p1: torch.Tensor, p2: torch.Tensor, threshold: float, negative_threshold: float) -> torch.Tensor:
    """Vote of two labelers: 1 where both ``> threshold``, 0 where both
    ``<= negative_threshold``, else -1. Any shape; returns ``torch.int8``."""
    if p1.shape != p2.shape:
        raise ValueError(f"labeler outputs differ in shape: {tuple(p1.shape)} vs {tuple(p2.shape)}")
    out = torch.full(p1.shape, UNKNOWN, dtype=torch.int8, device=p1.device)
    out[(p1 > threshold) & (p2 > threshold)] = 1
    out[(p1 <= negative_threshold) & (p2 <= negative_threshold)] = 0
    return out


def median_smooth(probs: torch.Tensor, window: int) -> torch.Tensor:
    """Median filter over time of ``(batch, frame, class)`` probabilities.

    Edges are extended by mirror symmetry including the edge sample
    (``d c b a | a b c d``, ``scipy.ndimage`` mode ``reflect``).
    """
    if window == 1:
        return probs
    half = window // 2
    t = probs.shape[1]
    idx = torch.arange(-half, t + half, device=probs.device)
    idx = torch.remainder(idx, 2 * t)
    idx = torch.where(idx >= t, 2 * t - 1 - idx, idx)
    padded = probs.index_select(1, idx)  # (batch, frame + 2 half, class)
    windows = padded.unfold(1, window, 1)  # (batch, frame, class, window)
    return windows.median(dim=-1).values


def _check_weak(weak: torch.Tensor | None, batch: int, classes: int) -> torch.Tensor | None:
    if weak is None:
        return None
    if weak.shape != (batch, classes):
        raise ValueError(f"weak labels must be (batch, class) = {(batch, classes)}, got {tuple(weak.shape)}")
    return weak


def frame_pseudo_labels(
    p1: torch.Tensor,
    p2: torch.Tensor,
    cfg: PseudoLabelConfig,
    weak_labels: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Frame-level pseudo labels.

    Parameters
    ----------
    p1, p2: frame probabilities of the two labelers, ``(batch, frame, class)``.
    cfg: agreement settings.
    weak_labels: ``(batch, class)``: 1 present, 0 absent, -1 unknown (an
        unlabelled clip), or ``None`` when no clip has one.
    frame_mask: ``(batch, frame)`` boolean, ``False`` on padded frames.

    Returns
    -------
    ``(batch, frame, class)`` ``torch.int8`` in {1, 0, -1}.
    """
    if p1.dim() != 3:
        raise ValueError(f"frame probabilities must be (batch, frame, class), got {tuple(p1.shape)}")
    if cfg.median_filter > 1:
        p1 = median_smooth(p1, cfg.median_filter)
        p2 = median_smooth(p2, cfg.median_filter)
    labels = agreement(p1, p2, cfg.threshold, cfg.resolved_negative_threshold)
    valid = None
    if frame_mask is not None:
        if frame_mask.shape != p1.shape[:2]:
            raise ValueError(f"frame mask must be {tuple(p1.shape[:2])}, got {tuple(frame_mask.shape)}")
        valid = frame_mask.bool().unsqueeze(-1)
        labels = labels.masked_fill(~valid, UNKNOWN)
    weak = _check_weak(weak_labels, p1.shape[0], p1.shape[2])
    if weak is not None:
        labels = _apply_weak_labels(labels, weak, cfg, valid)
    return labels


def _apply_weak_labels(labels: torch.Tensor, weak: torch.Tensor, cfg: PseudoLabelConfig,
                       valid: torch.Tensor | None) -> torch.Tensor:
    """Frame votes ``(batch, frame, class)`` reconciled with the clips' weak labels ``(batch, class)``.

    ``valid``: ``(batch, frame, 1)``, ``False`` on padded frames (already unknown), or ``None``.
    """
    if cfg.weak_constraint:
        absent = (weak == 0).unsqueeze(1)
        labels = labels.masked_fill(absent if valid is None else absent & valid, 0)
    if cfg.present_negatives == "keep":
        return labels
    present = weak == 1
    if cfg.present_negatives == "with_positive":
        present = present & ~(labels == 1).any(dim=1)
    return labels.masked_fill(present.unsqueeze(1) & (labels == 0), UNKNOWN)


def clip_pseudo_labels(
    c1: torch.Tensor, c2: torch.Tensor, cfg: PseudoLabelConfig, weak_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Clip-level pseudo labels ``(batch, class)`` (``torch.int8``).

    Known weak-label entries (``>= 0``) are copied; the others come from the
    agreement of the clip probabilities ``c1, c2 (batch, class)`` when
    ``cfg.clip_labels`` is set, and stay -1 otherwise.
    """
    if cfg.clip_labels:
        labels = agreement(c1, c2, cfg.threshold, cfg.resolved_negative_threshold)
    else:
        labels = torch.full(c1.shape, UNKNOWN, dtype=torch.int8, device=c1.device)
    weak = _check_weak(weak_labels, c1.shape[0], c1.shape[1])
    if weak is not None:
        known = weak >= 0
        labels = torch.where(known, weak.to(torch.int8), labels)
    return labels


@dataclass
class PseudoLabels:
    """Pseudo labels of a batch: ``frame (batch, frame, class)`` and ``clip (batch, class)``, int8."""

    frame: torch.Tensor
    clip: torch.Tensor


def make_pseudo_labels(
    frame_probs1: torch.Tensor,
    frame_probs2: torch.Tensor,
    clip_probs1: torch.Tensor,
    clip_probs2: torch.Tensor,
    cfg: PseudoLabelConfig,
    weak_labels: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
) -> PseudoLabels:
    """Frame and clip pseudo labels of one batch from the two labelers' outputs."""
    with torch.no_grad():
        frame = frame_pseudo_labels(frame_probs1, frame_probs2, cfg, weak_labels, frame_mask)
        clip = clip_pseudo_labels(clip_probs1, clip_probs2, cfg, weak_labels)
    return PseudoLabels(frame, clip)


@dataclass
class PseudoLabelStats:
    """Counts for logging; per-class lists are in class-index order.

    Attributes
    ----------
    clips: clips counted.
    clips_labelled: clips with at least one known frame label.
    coverage: fraction of the valid (frame, class) entries that are known.
    frames_positive, frames_negative, frames_unknown: per class, over valid frames.
    events: per class, runs of consecutive positive frames.
    clips_with_events: per class, clips with at least one positive frame.
    clip_positive, clip_negative: per class, clip-level pseudo labels.
    """

    clips: int
    clips_labelled: int
    coverage: float
    frames_positive: list[int] = field(default_factory=list)
    frames_negative: list[int] = field(default_factory=list)
    frames_unknown: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    clips_with_events: list[int] = field(default_factory=list)
    clip_positive: list[int] = field(default_factory=list)
    clip_negative: list[int] = field(default_factory=list)

    def as_dict(self, class_names: list[str] | None = None) -> dict:
        """Flat dict for loggers: ``events/<class>`` etc. (class index without names)."""
        out: dict = {"clips": self.clips, "clips_labelled": self.clips_labelled, "coverage": self.coverage}
        for key in ("frames_positive", "frames_negative", "frames_unknown", "events",
                    "clips_with_events", "clip_positive", "clip_negative"):
            values = getattr(self, key)
            names = class_names if class_names is not None else [str(i) for i in range(len(values))]
            if len(names) != len(values):
                raise ValueError(f"{len(names)} class names for {len(values)} classes")
            for name, v in zip(names, values):
                out[f"{key}/{name}"] = v
        return out


def pseudo_label_stats(labels: PseudoLabels, frame_mask: torch.Tensor | None = None) -> PseudoLabelStats:
    """Count what was pseudo-labelled, per class.

    Parameters
    ----------
    labels: the output of :func:`make_pseudo_labels` (or several concatenated).
    frame_mask: ``(batch, frame)``; padded frames are not counted.
    """
    frame = labels.frame
    b, t, k = frame.shape
    valid = torch.ones(b, t, dtype=torch.bool, device=frame.device) if frame_mask is None else frame_mask.bool()
    v = valid.unsqueeze(-1).expand_as(frame)
    pos = (frame == 1) & v
    neg = (frame == 0) & v
    unk = (frame == UNKNOWN) & v
    prev = torch.zeros_like(pos)
    prev[:, 1:] = pos[:, :-1]
    onsets = pos & ~prev
    known = (pos | neg)
    n_valid = int(v.sum())

    def per_class(x: torch.Tensor) -> list[int]:
        return [int(c) for c in x.sum(dim=tuple(range(x.dim() - 1))).tolist()]

    return PseudoLabelStats(
        clips=b,
        clips_labelled=int(known.flatten(1).any(dim=1).sum()),
        coverage=float(known.sum()) / n_valid if n_valid else 0.0,
        frames_positive=per_class(pos),
        frames_negative=per_class(neg),
        frames_unknown=per_class(unk),
        events=per_class(onsets),
        clips_with_events=per_class(pos.any(dim=1)),
        clip_positive=per_class(labels.clip == 1),
        clip_negative=per_class(labels.clip == 0),
    )


__all__ = [
    "UNKNOWN",
    "PseudoLabelConfig",
    "PseudoLabelStats",
    "PseudoLabels",
    "agreement",
    "clip_pseudo_labels",
    "frame_pseudo_labels",
    "make_pseudo_labels",
    "median_smooth",
    "pseudo_label_stats",
]
