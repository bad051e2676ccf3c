"""SER inference shared by training (memory initialisation, source validation) and evaluation.

* :func:`run_ser_model`: normalise a batch and run the network;
* :func:`encode_dataset`: one pass over a dataset in eval mode giving the
  utterance features ``f`` and the head's logits;
* :func:`predict_dataset`: head predictions and class probabilities, and the
  nearest-memory-slot prediction beside them when a memory is given
  (the notes' diagnostic memory predictor: the label of
  ``argmax_i M[i]^T f_hat``);
* :func:`model_networks` / :func:`load_ser_model` / :func:`load_memory`: the
  names under which a :class:`~audioadapt.models.ser_model.SerModel` is
  checkpointed, and the way back from a checkpoint;
* :func:`predict_files`: label and probabilities of audio files, features
  computed on the fly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
from audioadapt.data.ser_dataset import SerBatch, SerDataset, SerDatasetConfig
from audioadapt.data.utterances import Utterance
from audioadapt.errors import CheckpointError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.normalization import Normalizer
from audioadapt.models.ser_model import SerModel, SerModelConfig, SerOutput

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.features.logmel import LogMel

log = logging.getLogger(__name__)

#: Keys of a SER checkpoint's ``meta`` that inference needs.
META_KEYS = ("model_config", "feature_config", "normalizer", "classes", "dataset_config")


# -- checkpoint names -----------------------------------------------------------------
def model_networks(model: SerModel) -> dict[str, nn.Module]:
    """The parts of ``model`` as named networks: ``encoder``, ``head`` and (DANN) ``domain``."""
    nets: dict[str, nn.Module] = {"encoder": model.encoder, "head": model.head}
    if model.domain is not None:
        nets["domain"] = model.domain
    return nets


def _meta(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = checkpoint.get("meta") or {}
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"the checkpoint's meta lacks {missing}; it was not written by a SER run")
    return meta


def load_ser_model(checkpoint: Mapping[str, Any]) -> tuple[SerModel, Normalizer]:
    """Rebuild the model and the normaliser of a loaded SER checkpoint (eval mode)."""
    from audioadapt.config.load import from_dict
    from audioadapt.training.checkpoint import restore_networks

    meta = _meta(checkpoint)
    features = from_dict(FeatureConfig, meta["feature_config"])
    model = SerModel(from_dict(SerModelConfig, meta["model_config"]), features.n_mels)
    restore_networks(model_networks(model), checkpoint)
    normalizer = Normalizer.from_state_dict(meta["normalizer"])
    return model.eval(), normalizer.eval()


def load_memory(checkpoint: Mapping[str, Any]) -> MemoryBank | None:
    """The memory bank saved in a checkpoint's method state, or ``None`` when it holds none."""
    state = (checkpoint.get("method") or {}).get("memory")
    if not state:
        return None
    features, labels = state["features"], state["labels"]
    bank = MemoryBank(features.shape[0], features.shape[1], len(_meta(checkpoint)["classes"]), MemoryConfig())
    bank.load_state_dict({"features": features, "labels": labels})
    return bank if bank.initialized else None


# -- running the model ------------------------------------------------------------------
def run_ser_model(model: SerModel, normalizer: Normalizer, batch: SerBatch, *, mask_padding: bool = True,
                  domain: bool = False) -> SerOutput:
    """Normalise ``batch.features`` (valid frames only) and run ``model``.

    With ``mask_padding`` the encoder ignores padded frames; otherwise the
    padding (zeros after normalisation) is encoded like speech.
    """
    x = normalizer(batch.features, batch.lengths)
    return model(x, batch.frame_mask() if mask_padding else None, domain=domain)


@contextmanager
def inference_mode(*modules: nn.Module):
    """Eval mode and no gradient for ``modules``; their modes are restored afterwards."""
    saved = [(m, m.training) for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in saved:
            m.train(training)


def encode_dataset(model: SerModel, normalizer: Normalizer, dataset: SerDataset, batch_size: int,
                   device: torch.device | str = "cpu", *, mask_padding: bool = True,
                   num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``f`` ``(utterance, 2u)`` and logits ``(utterance, class)`` of every item, in dataset order."""
    from audioadapt.training.ser_data import SerDataModule

    features, logits = [], []
    with inference_mode(model, normalizer):
        for batch in SerDataModule.eval_loader(dataset, batch_size, num_workers):
            out = run_ser_model(model, normalizer, batch.to(device), mask_padding=mask_padding)
            features.append(out.feature.float())
            logits.append(out.logits.float())
    return torch.cat(features), torch.cat(logits)


@dataclass
class SerPredictions:
    """Predictions for a set of utterances, in dataset order.

    Attributes
    ----------
    probabilities: ``(utterance, class)`` softmax of the head.
    labels: ``(utterance,)`` the head's class (argmax).
    memory_labels: ``(utterance,)`` label of the nearest memory slot, or ``None``.
    """

    probabilities: np.ndarray
    labels: np.ndarray
    memory_labels: np.ndarray | None = None

    @property
    def memory_agreement(self) -> float | None:
        """Share of utterances where the memory predictor agrees with the head."""
        if self.memory_labels is None or not len(self.labels):
            return None
        return float((self.memory_labels == self.labels).mean())


def predict_dataset(model: SerModel, normalizer: Normalizer, dataset: SerDataset, batch_size: int,
                    device: torch.device | str = "cpu", *, memory: MemoryBank | None = None,
                    mask_padding: bool = True, num_workers: int = 0) -> SerPredictions:
    """Head predictions and probabilities of every utterance of ``dataset`` (and the memory predictor)."""
    features, logits = encode_dataset(model, normalizer, dataset, batch_size, device, mask_padding=mask_padding,
                                      num_workers=num_workers)
    probs = torch.softmax(logits, dim=1)
    memory_labels = None
    if memory is not None:
        bank = memory.to(features.device)
        memory_labels = bank.nearest_label(torch.nn.functional.normalize(features, dim=1)).cpu().numpy()
    return SerPredictions(probs.cpu().numpy(), probs.argmax(dim=1).cpu().numpy(), memory_labels)


def shortest_input(logmel: "LogMel", frames: int) -> int:
    """Fewest samples that ``logmel`` turns into at least ``frames`` frames (and the STFT accepts)."""
    cfg = logmel.cfg
    need = (frames - 1) * cfg.hop_length + cfg.n_fft - (2 * (cfg.n_fft // 2) if cfg.center else 0)
    return max(logmel.min_num_samples, need)


def _signal(path: str | Path, sample_rate: int, min_samples: int) -> np.ndarray:
    """The file's samples at ``sample_rate``, zero-padded at the end to ``min_samples``."""
    from audioadapt.audio.io import load_audio, pad_or_crop

    signal = load_audio(path, sample_rate)
    if len(signal) < min_samples:
        log.warning("%s: %d sample(s) is shorter than the shortest input of the model; padded with zeros to %d",
                    path, len(signal), min_samples)
        signal = pad_or_crop(signal, min_samples)
    return signal


def predict_files(checkpoint: Mapping[str, Any], paths: Sequence[str | Path], *, batch_size: int | None = None,
                  device: torch.device | str = "cpu") -> SerPredictions:
    """Predict the emotion of audio files with a loaded SER checkpoint.

    Each file is decoded at the run's sample rate and cropped like the test
    side (``dataset_config.eval_crop`` of ``crop_seconds``). A file shorter
    than the model's shortest input (one STFT frame per step of its time
    pooling) is padded with zeros at its end to that length, with a warning,
    as ``sed predict`` pads short files to the clip length; a file without
    samples raises :class:`~audioadapt.errors.AudioError`.
    """
    from audioadapt.config.load import from_dict
    from audioadapt.features.logmel import LogMel

    meta = _meta(checkpoint)
    features_cfg = from_dict(FeatureConfig, meta["feature_config"])
    dataset_cfg = from_dict(SerDatasetConfig, meta["dataset_config"])
    model, normalizer = load_ser_model(checkpoint)
    model.to(device)
    normalizer.to(device)
    logmel = LogMel(features_cfg)
    min_samples = shortest_input(logmel, math.prod(model.time_pooling))
    feats = []
    with torch.inference_mode():
        for path in paths:
            signal = torch.from_numpy(_signal(path, features_cfg.sample_rate, min_samples)).unsqueeze(0)
            feats.append(logmel(signal)[0].numpy())
    utts = [Utterance(Path(p), None, None, "files", f"file{i}") for i, p in enumerate(paths)]
    dataset = SerDataset(utts, feats, features_cfg, dataset_cfg, train=False, use_labels=False)
    return predict_dataset(model, normalizer, dataset, batch_size or int(meta.get("predict_batch_size", 32)),
                           device, memory=load_memory(checkpoint), mask_padding=bool(meta.get("mask_padding", True)))


__all__ = [
    "META_KEYS",
    "SerPredictions",
    "encode_dataset",
    "inference_mode",
    "load_memory",
    "load_ser_model",
    "model_networks",
    "predict_dataset",
    "predict_files",
    "run_ser_model",
    "shortest_input",
]
