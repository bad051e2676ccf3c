"""Task-agnostic adaptation blocks: gradient reversal, domain classifiers,
losses, the orthogonality term, agreement pseudo labels, schedules, and the
NNPM memory bank, pseudo multilabels and losses."""

from audioadapt.adaptation.domain import DomainClassifier, DomainConfig
from audioadapt.adaptation.grl import GradientReversal, grad_reverse
from audioadapt.adaptation.losses import clip_bce, domain_bce, frame_bce, masked_bce_with_logits
from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
from audioadapt.adaptation.nnpm_losses import NnpmLoss, NnpmLossConfig, nnpm_loss
from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality, orthogonality_penalty
from audioadapt.adaptation.pseudo_labels import (
    PseudoLabelConfig,
    PseudoLabels,
    PseudoLabelStats,
    make_pseudo_labels,
    pseudo_label_stats,
)
from audioadapt.adaptation.pseudo_multilabel import PseudoMultilabelConfig, pseudo_multilabel
from audioadapt.adaptation.schedules import ScheduleConfig, constant, linear_ramp, sigmoid_ramp

__all__ = [
    "DomainClassifier",
    "DomainConfig",
    "GradientReversal",
    "MemoryBank",
    "MemoryConfig",
    "NnpmLoss",
    "NnpmLossConfig",
    "OrthogonalityConfig",
    "PseudoLabelConfig",
    "PseudoLabelStats",
    "PseudoLabels",
    "PseudoMultilabelConfig",
    "ScheduleConfig",
    "clip_bce",
    "constant",
    "domain_bce",
    "frame_bce",
    "grad_reverse",
    "labeler_orthogonality",
    "linear_ramp",
    "make_pseudo_labels",
    "masked_bce_with_logits",
    "nnpm_loss",
    "orthogonality_penalty",
    "pseudo_multilabel",
    "pseudo_label_stats",
    "sigmoid_ramp",
]
