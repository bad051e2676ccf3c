"""The SED network of Park et al.: shared F, named heads and an optional D.

``F`` (:class:`~audioadapt.models.crnn.CRNN`) produces frame features; each
named head (``f1``, ``f2``: the labelers; ``ft``: the final classifier) has a
strong and a weak output; an optional domain classifier ``D`` sees F's
features through a gradient reversal layer. The baseline uses ``ft`` alone
and no D. Which losses use which output is the trainer's business.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from audioadapt.adaptation.domain import DomainClassifier, DomainConfig
from audioadapt.adaptation.grl import GradientReversal
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.models.blocks import init_weights, pool_frame_mask
from audioadapt.models.crnn import CRNN, CRNNConfig
from audioadapt.models.heads import FrameClipHead, HeadConfig, HeadOutput

LABELER_HEADS = ("f1", "f2")
FINAL_HEAD = "ft"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SedModelConfig:
    """Architecture of the whole SED network.

    Attributes
    ----------
    crnn: feature extractor F (its ``init`` scheme also initialises the heads
        and D).
    head: shape shared by every head (the labelers may have their own
        hidden layer, ``head.labeler_hidden_dim``).
    heads: names of the heads; the default is the tri-training set
        (``f1``, ``f2`` labelers and ``ft`` final classifier). The baseline
        uses ``["ft"]``.
    domain: domain classifier D; ``mode: none`` for no D.
    """

    crnn: CRNNConfig = field(default_factory=CRNNConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    heads: tuple[str, ...] = LABELER_HEADS + (FINAL_HEAD,)
    domain: DomainConfig = field(default_factory=DomainConfig)

    def __post_init__(self) -> None:
        if not self.heads:
            raise ValueError("heads must name at least one head")
        if len(set(self.heads)) != len(self.heads):
            raise ValueError(f"head names must be unique, got {list(self.heads)}")
        bad = [h for h in self.heads if not _NAME.match(h)]
        if bad:
            raise ValueError(f"head names must be identifiers, got {bad}")


def head_config(head: HeadConfig, name: str) -> HeadConfig:
    """The shape of the head ``name``: the labelers F1, F2 take ``head.labeler_hidden_dim`` when set."""
    return head.for_labeler() if name in LABELER_HEADS else head


@dataclass
class SedOutput:
    """Outputs of :class:`SedModel`.

    Attributes
    ----------
    features: F's output ``(batch, frame, feature)`` at the output frame rate.
    heads: one :class:`~audioadapt.models.heads.HeadOutput` per computed head.
    domain_logits: ``(batch,)`` (whole) or ``(batch, frame)`` (time), or
        ``None`` without D or when not requested.
    frame_mask: ``(batch, frame)`` boolean at the output frame rate, or ``None``.
    """

    features: torch.Tensor
    heads: dict[str, HeadOutput]
    domain_logits: torch.Tensor | None
    frame_mask: torch.Tensor | None

    def __getitem__(self, name: str) -> HeadOutput:
        return self.heads[name]


class SedModel(nn.Module):
    """F + named heads + optional GRL/D.

    Parameters
    ----------
    cfg: architecture.
    n_mels: mel bins of the input features.
    n_classes: number of event classes.
    """

    def __init__(self, cfg: SedModelConfig, n_mels: int, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.n_classes = n_classes
        self.encoder = CRNN(cfg.crnn, n_mels)
        dim = self.encoder.output_dim
        self.heads = nn.ModuleDict({name: FrameClipHead(dim, n_classes, head_config(cfg.head, name))
                                    for name in cfg.heads})
        self.grl: GradientReversal | None = None
        self.domain: DomainClassifier | None = None
        if cfg.domain.enabled:
            self.grl = GradientReversal()
            self.domain = DomainClassifier(dim, cfg.domain)
        init_weights(self.heads, cfg.crnn.init)
        if self.domain is not None:
            init_weights(self.domain, cfg.crnn.init)

    @property
    def time_pooling(self) -> tuple[int, ...]:
        """Per-block time pooling of F."""
        return self.encoder.time_pooling

    def frame_grid(self, features: FeatureConfig) -> FrameGrid:
        """The time grid of this model's outputs for the given features."""
        return FrameGrid.from_features(features, self.time_pooling)

    def set_grl_weight(self, value: float) -> None:
        """Set the gradient reversal coefficient (alpha, ``grl_weight``); no-op without D."""
        if self.grl is not None:
            self.grl.set_coeff(value)

    def forward(
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        heads: Sequence[str] | None = None,
        domain: bool = True,
    ) -> SedOutput:
        """Run F, the requested heads and D.

        Parameters
        ----------
        features: log-mel ``(batch, frame, mel)``.
        frame_mask: ``(batch, frame)`` boolean at the **input** frame rate,
            ``True`` on real frames; pooled to the output rate.
        heads: names of the heads to compute (all by default), e.g. ``["ft"]``
            in phase 2, where the labelers are not trained.
        domain: compute D's logits (when the model has D).
        """
        names = list(self.heads.keys()) if heads is None else list(heads)
        unknown = [n for n in names if n not in self.heads]
        if unknown:
            raise ValueError(f"unknown heads {unknown}; this model has {list(self.heads.keys())}")
        h = self.encoder(features)
        mask = None
        if frame_mask is not None:
            if frame_mask.shape != features.shape[:2]:
                raise ValueError(
                    f"frame mask must be (batch, frame) = {tuple(features.shape[:2])}, "
                    f"got {tuple(frame_mask.shape)}"
                )
            mask = pool_frame_mask(frame_mask, self.time_pooling)
        outputs = {name: self.heads[name](h, mask) for name in names}
        domain_logits = None
        if domain and self.domain is not None and self.grl is not None:
            domain_logits = self.domain(self.grl(h), mask)
        return SedOutput(h, outputs, domain_logits, mask)


__all__ = ["FINAL_HEAD", "LABELER_HEADS", "SedModel", "SedModelConfig", "SedOutput", "head_config"]
