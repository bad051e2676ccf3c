"""Networks: the CRNN feature extractor, frame/clip heads and the SED model."""

from audioadapt.models.crnn import CRNN, CRNNConfig
from audioadapt.models.heads import FrameClipHead, HeadConfig, HeadOutput, pool_clip
from audioadapt.models.sed_model import FINAL_HEAD, LABELER_HEADS, SedModel, SedModelConfig, SedOutput

__all__ = [
    "CRNN",
    "CRNNConfig",
    "FINAL_HEAD",
    "FrameClipHead",
    "HeadConfig",
    "HeadOutput",
    "LABELER_HEADS",
    "SedModel",
    "SedModelConfig",
    "SedOutput",
    "pool_clip",
]
