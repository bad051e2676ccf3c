"""The SER network: SNSA encoder, utterance classifier and an optional domain classifier.

One set of weights encodes source and target utterances (the paper's
"Siamese" SNSA). The classifier :class:`UtteranceHead` is FC(4) on the
**unnormalised** utterance feature ``f``; memory operations of NNPM use the
L2-normalised ``f_hat`` (:attr:`SerOutput.feature_hat`).

For the DANN baseline a :class:`~audioadapt.adaptation.domain.DomainClassifier`
sees the encoder's output through the shared
:class:`~audioadapt.adaptation.grl.GradientReversal` layer:

* ``domain.mode = "whole"``: one logit per utterance from ``f``;
* ``domain.mode = "time"``: one logit per BLSTM frame from ``H`` (padded
  frames get a logit; :func:`~audioadapt.adaptation.losses.domain_bce` masks
  them with :attr:`SerOutput.frame_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from audioadapt.adaptation.domain import DomainClassifier, DomainConfig
from audioadapt.adaptation.grl import GradientReversal
from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.models.blocks import init_weights
from audioadapt.models.snsa import SnsaConfig, SnsaEncoder


def _no_domain() -> DomainConfig:
    return DomainConfig(mode="none")


@dataclass(frozen=True)
class SerModelConfig:
    """Architecture of the SER network.

    Attributes
    ----------
    encoder: the SNSA encoder (its ``init`` scheme also initialises the head
        and D).
    n_classes: emotion classes (the shared set :data:`~audioadapt.data.utterances.EMOTIONS`).
    head_dropout: dropout on ``f`` before the classifier (the encoder already
        drops out after every BLSTM layer).
    domain: domain classifier for the DANN baseline; ``mode: none`` (default)
        for none.
    """

    encoder: SnsaConfig = field(default_factory=SnsaConfig)
    n_classes: int = len(EMOTIONS)
    head_dropout: float = 0.0
    domain: DomainConfig = field(default_factory=_no_domain)

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ConfigError(f"n_classes must be at least 2, got {self.n_classes}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head_dropout must lie in [0, 1), got {self.head_dropout}")


class UtteranceHead(nn.Module):
    """Utterance classifier: ``Dropout -> Linear(feature, class)``, returning logits.

    Shapes: ``(batch, feature) -> (batch, class)``.
    """

    def __init__(self, in_dim: int, n_classes: int, dropout: float):
        super().__init__()
        if in_dim <= 0 or n_classes <= 0:
            raise ConfigError(f"in_dim and n_classes must be positive, got {in_dim}, {n_classes}")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(feature))


@dataclass
class SerOutput:
    """Outputs of :class:`SerModel`.

    Attributes
    ----------
    feature: utterance feature ``f`` ``(batch, 2u)``, not normalised.
    logits: classifier logits ``(batch, class)``.
    attention: pooling weights ``(batch, frame)``.
    frames: BLSTM outputs ``H`` ``(batch, frame, 2u)``.
    frame_mask: ``(batch, frame)`` at the output rate, or ``None``.
    domain_logits: ``(batch,)`` (whole) or ``(batch, frame)`` (time), or
        ``None`` without D or when not requested.
    """

    feature: torch.Tensor
    logits: torch.Tensor
    attention: torch.Tensor
    frames: torch.Tensor
    frame_mask: torch.Tensor | None
    domain_logits: torch.Tensor | None

    @property
    def feature_hat(self) -> torch.Tensor:
        """``f / ||f||_2`` ``(batch, 2u)``, the input of every memory operation."""
        return F.normalize(self.feature, dim=-1)


class SerModel(nn.Module):
    """SNSA encoder + :class:`UtteranceHead` + optional GRL/D.

    Parameters
    ----------
    cfg: architecture.
    n_mels: mel bins of the input features.
    """

    def __init__(self, cfg: SerModelConfig, n_mels: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = SnsaEncoder(cfg.encoder, n_mels)
        dim = self.encoder.output_dim
        self.head = UtteranceHead(dim, cfg.n_classes, cfg.head_dropout)
        self.grl: GradientReversal | None = None
        self.domain: DomainClassifier | None = None
        if cfg.domain.enabled:
            self.grl = GradientReversal()
            self.domain = DomainClassifier(dim, cfg.domain)
        init_weights(self.head, cfg.encoder.init)
        if self.domain is not None:
            init_weights(self.domain, cfg.encoder.init)

    @property
    def time_pooling(self) -> tuple[int, ...]:
        return self.encoder.time_pooling

    @property
    def feature_dim(self) -> int:
        """Size ``2u`` of the utterance feature (the memory's slot size)."""
        return self.encoder.output_dim

    def frame_grid(self, features: FeatureConfig) -> FrameGrid:
        """The time grid of the attention weights for the given features."""
        return FrameGrid.from_features(features, self.time_pooling)

    def freeze_conv(self, n: int) -> None:
        """Freeze the first ``n`` conv layers of the encoder (see :meth:`SnsaEncoder.freeze_conv`)."""
        self.encoder.freeze_conv(n)

    def set_grl_weight(self, value: float) -> None:
        """Set the gradient reversal coefficient; no-op without D."""
        if self.grl is not None:
            self.grl.set_coeff(value)

    def forward(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None = None, domain: bool = True
    ) -> SerOutput:
        """Encode and classify a batch of utterances (source or target alike).

        Parameters
        ----------
        features: log-mel ``(batch, frame, mel)``.
        frame_mask: ``(batch, frame)`` boolean at the input rate, ``True`` on
            real frames.
        domain: compute D's logits (when the model has D).
        """
        enc = self.encoder.encode(features, frame_mask)
        logits = self.head(enc.feature)
        domain_logits = None
        if domain and self.domain is not None and self.grl is not None:
            if self.domain.per_frame:
                domain_logits = self.domain(self.grl(enc.frames), enc.frame_mask)
            else:
                domain_logits = self.domain(self.grl(enc.feature).unsqueeze(1))
        return SerOutput(enc.feature, logits, enc.attention, enc.frames, enc.frame_mask, domain_logits)


__all__ = ["SerModel", "SerModelConfig", "SerOutput", "UtteranceHead"]
