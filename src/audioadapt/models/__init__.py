"""Networks: the CRNN feature extractor, frame/clip heads and the SED model;
the SNSA encoder and the SER model."""

from audioadapt.models.crnn import CRNN, CRNNConfig
from audioadapt.models.heads import FrameClipHead, HeadConfig, HeadOutput, pool_clip
from audioadapt.models.sed_model import FINAL_HEAD, LABELER_HEADS, SedModel, SedModelConfig, SedOutput
from audioadapt.models.ser_model import SerModel, SerModelConfig, SerOutput, UtteranceHead
from audioadapt.models.snsa import SnsaConfig, SnsaEncoder

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
    "SerModel",
    "SerModelConfig",
    "SerOutput",
    "SnsaConfig",
    "SnsaEncoder",
    "UtteranceHead",
    "pool_clip",
]
