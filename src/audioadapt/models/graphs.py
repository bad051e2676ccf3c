"""Inference graphs for export: log-mel in, probabilities out, as plain tensors.

:class:`~audioadapt.models.sed_model.SedModel` and
:class:`~audioadapt.models.ser_model.SerModel` return dataclasses and take
options (heads, masks, the domain classifier) that an exported graph has no
use for. These thin modules fix those options, put the normaliser in front and
return tensors, so ``torch.export`` and ``torch.onnx.export`` can trace them:

* :class:`SedGraph`: ``(batch, frame, mel)`` -> frame probabilities
  ``(batch, out_frame, class)`` and clip probabilities ``(batch, class)``,
  the mean of the predicting heads as ``sed predict`` takes it;
* :class:`SerGraph`: ``(batch, frame, mel)`` -> class probabilities ``(batch, class)``.

Every input frame is real (no padding mask): a runtime gives one window's
frames per row, as the predict commands do. :func:`operator_path` gives a
copy of a network that uses PyTorch's standard operators only (the fused CPU
kernel off), which is what another runtime can execute.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

from audioadapt.features.normalization import Normalizer
from audioadapt.models.blocks import ConvBlock
from audioadapt.models.sed_model import SedModel
from audioadapt.models.ser_model import SerModel

M = TypeVar("M", bound=nn.Module)


def operator_path(module: M) -> M:
    """A copy of ``module`` in eval mode whose conv blocks use PyTorch operators, not the fused kernel."""
    out = copy.deepcopy(module).eval()
    for block in out.modules():
        if isinstance(block, ConvBlock):
            block.fused_cpu = False
    return out


class _TraceableNormalizer(Normalizer):
    """A :class:`Normalizer` whose settings stay out of its state dict: tracers take tensors only."""

    get_extra_state = nn.Module.get_extra_state
    set_extra_state = nn.Module.set_extra_state


def traceable(normalizer: Normalizer) -> Normalizer:
    """A copy of ``normalizer`` (eval mode) with the same statistics and no settings in its state dict."""
    out = _TraceableNormalizer(normalizer.cfg, normalizer.n_mels)
    out.load_state_dict({k: v for k, v in normalizer.state_dict().items() if not k.endswith("_extra_state")})
    return out.eval()


class SedGraph(nn.Module):
    """Normaliser + SED network + mean of ``heads``: ``features -> (frame_probs, clip_probs)``."""

    def __init__(self, model: SedModel, normalizer: Normalizer, heads: Sequence[str]):
        super().__init__()
        unknown = [h for h in heads if h not in model.heads]
        if not heads or unknown:
            raise ValueError(f"heads must name heads of the model ({list(model.heads)}), got {list(heads)}")
        self.model, self.normalizer, self.head_names = model, traceable(normalizer), tuple(heads)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(self.normalizer(features), None, heads=self.head_names, domain=False)
        frame = torch.stack([out[h].frame_probs for h in self.head_names]).mean(0)
        clip = torch.stack([out[h].clip_probs for h in self.head_names]).mean(0)
        return frame, clip


class SerGraph(nn.Module):
    """Normaliser + SER network + softmax: ``features -> class probabilities``."""

    def __init__(self, model: SerModel, normalizer: Normalizer):
        super().__init__()
        self.model, self.normalizer = model, traceable(normalizer)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.normalizer(features), None, domain=False).logits, dim=-1)


__all__ = ["SedGraph", "SerGraph", "operator_path", "traceable"]
