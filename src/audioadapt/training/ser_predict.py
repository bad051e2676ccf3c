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
* :func:`read_meta`: a checkpoint's settings as its run was trained with
  (older runs lack later settings);
* :func:`predict_features` / :func:`predict_files`: label and probabilities of
  inputs of any length, scored in windows of the training crop and averaged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
from audioadapt.data.ser_dataset import SerBatch, SerDataset, SerDatasetConfig
from audioadapt.data.ser_frontend import NO_FRONTEND, check_frontend_features, frontend_with_offset
from audioadapt.data.utterances import Utterance
from audioadapt.errors import CheckpointError, ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
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


def _stored_dataset(dataset: Mapping[str, Any]) -> dict[str, Any]:
    """A saved ``dataset`` section; one saved before ``frontend`` existed had none (:data:`NO_FRONTEND`)."""
    from audioadapt.config.load import to_dict

    return {**dataset} if "frontend" in dataset else {**dataset, "frontend": to_dict(NO_FRONTEND)}


def read_meta(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """A SER checkpoint's ``meta`` (checked), its settings as the run was trained with.

    A dataset configuration saved before ``dataset.frontend`` existed gets
    ``frontend`` off (both in ``dataset_config`` and in ``experiment_config``),
    not today's defaults: those runs were trained on untouched features.
    """
    meta = dict(_meta(checkpoint))
    meta["dataset_config"] = _stored_dataset(meta["dataset_config"])
    if "experiment_config" in meta:
        experiment = dict(meta["experiment_config"])
        experiment["dataset"] = _stored_dataset(experiment.get("dataset") or {})
        meta["experiment_config"] = experiment
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


def _nearest_labels(memory: MemoryBank | None, features: torch.Tensor) -> np.ndarray | None:
    """Label of the memory slot nearest to each row of ``features`` (normalised here), or ``None``."""
    if memory is None:
        return None
    bank = memory.to(features.device)
    return bank.nearest_label(torch.nn.functional.normalize(features, dim=1)).cpu().numpy()


def predict_dataset(model: SerModel, normalizer: Normalizer, dataset: SerDataset, batch_size: int,
                    device: torch.device | str = "cpu", *, memory: MemoryBank | None = None,
                    mask_padding: bool = True, num_workers: int = 0) -> SerPredictions:
    """Head predictions and probabilities of every utterance of ``dataset`` (and the memory predictor)."""
    features, logits = encode_dataset(model, normalizer, dataset, batch_size, device, mask_padding=mask_padding,
                                      num_workers=num_workers)
    probs = torch.softmax(logits, dim=1)
    return SerPredictions(probs.cpu().numpy(), probs.argmax(dim=1).cpu().numpy(),
                          _nearest_labels(memory, features))


# -- whole files, in windows ----------------------------------------------------------------
def window_starts(num_frames: int, crop_frames: int | None, hop_frames: int) -> list[int]:
    """First input frame of each window of ``crop_frames`` that covers ``num_frames`` frames.

    One window (from 0) when the input fits in a crop or ``crop_frames`` is
    ``None``; otherwise a window every ``hop_frames`` frames and, where those
    leave frames uncovered at the end, a last window ending at the last
    frame, so that every window is a whole crop.
    """
    if hop_frames < 1:
        raise ValueError(f"hop_frames must be >= 1, got {hop_frames}")
    if crop_frames is None or num_frames <= crop_frames:
        return [0]
    starts = list(range(0, num_frames - crop_frames + 1, hop_frames))
    if starts[-1] + crop_frames < num_frames:
        starts.append(num_frames - crop_frames)
    return starts


@dataclass
class SerWindows:
    """Predictions of the windows that files were scored in, file after file.

    Attributes
    ----------
    file: ``(window,)`` index of the window's file.
    start, end: ``(window,)`` seconds of the window's first and last frame in its file, on the file's
        own time axis (silence that the front end trimmed from its start counted).
    probabilities: ``(window, class)`` softmax of the head.
    labels: ``(window,)`` the head's class (argmax).
    memory_labels: ``(window,)`` label of the nearest memory slot, or ``None``.
    """

    file: np.ndarray
    start: np.ndarray
    end: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    memory_labels: np.ndarray | None = None


@dataclass
class SerFilePredictions(SerPredictions):
    """Per-file predictions aggregated over windows (see :func:`predict_features`), and the windows.

    Attributes
    ----------
    durations: ``(file,)`` seconds from each input's first to its last frame (its length to one STFT hop).
    windows: every window's prediction.
    embeddings: ``(file, 2u)`` mean over each file's windows of their unit-length utterance features ``f_hat``
        (the vectors the memory compares; the memory label is the slot nearest to this mean).
    """

    durations: np.ndarray = field(default_factory=lambda: np.zeros(0))
    windows: SerWindows | None = None
    embeddings: np.ndarray | None = None


def predict_features(model: SerModel, normalizer: Normalizer, features: Sequence[np.ndarray],
                     features_config: FeatureConfig, dataset_config: SerDatasetConfig, *, batch_size: int,
                     device: torch.device | str = "cpu", memory: MemoryBank | None = None,
                     mask_padding: bool = True, hop_seconds: float | None = None) -> SerFilePredictions:
    """Emotion of whole inputs of any length: the mean over windows of ``crop_seconds``.

    Each ``(frame, mel)`` log-mel of ``features`` goes through the run's
    front end (``dataset_config.frontend``) once, whole, as training and
    evaluation see whole utterances; it is then cut into windows of
    ``dataset_config.crop_seconds`` (the model's input length in training)
    starting every ``hop_seconds`` (default: ``crop_seconds``, windows side
    by side), the last one ending at the input's end (:func:`window_starts`);
    an input no longer than a crop is one window, as in evaluation. A file's
    probabilities are the mean of its windows' probabilities and its label
    their argmax; its memory label is the slot nearest to the mean of its
    windows' normalised features. Window times are seconds of the input as
    given: when trimming cut leading silence, the frames it cut are added back.
    """
    grid = FrameGrid.from_features(features_config)
    check_frontend_features(dataset_config.frontend, features_config)
    shaped = [frontend_with_offset(np.asarray(x), dataset_config.frontend, features_config) for x in features]
    windows_config = dataclasses.replace(dataset_config, frontend=NO_FRONTEND)  # the front end is applied
    utts = [Utterance(Path(f"input{i}"), None, None, "files", f"input{i}") for i in range(len(features))]
    files = SerDataset(utts, [x for x, _ in shaped], features_config, windows_config, train=False,
                       use_labels=False)
    crop = files.crop_frames
    seconds = hop_seconds if hop_seconds is not None else dataset_config.crop_seconds
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"the window hop must be positive, got {seconds} s")
    hop = 1 if seconds is None else max(1, round(seconds / grid.input_hop_seconds))
    owner, starts, parts = [], [], []
    for i, (x, offset) in enumerate(shaped):
        for start in window_starts(len(x), crop, hop):
            owner.append(i)
            starts.append(offset + start)
            parts.append(x[start: start + (len(x) if crop is None else crop)])
    window_utts = [Utterance(Path(f"window{k}"), None, None, "files", f"window{k}") for k in range(len(parts))]
    windows = SerDataset(window_utts, parts, features_config, windows_config, train=False, use_labels=False)
    feats, logits = encode_dataset(model, normalizer, windows, batch_size, device, mask_padding=mask_padding)
    probs = torch.softmax(logits, dim=1)
    index = torch.as_tensor(owner, dtype=torch.long, device=probs.device)
    counts = torch.bincount(index, minlength=len(features)).unsqueeze(1).to(probs.dtype)
    mean_probs = torch.zeros(len(features), probs.shape[1], dtype=probs.dtype, device=probs.device)
    mean_probs.index_add_(0, index, probs).div_(counts)
    mean_feats = torch.zeros(len(features), feats.shape[1], dtype=feats.dtype, device=feats.device)
    mean_feats.index_add_(0, index, torch.nn.functional.normalize(feats, dim=1))
    hop_s = grid.input_hop_seconds
    start_s = np.asarray(starts, dtype=np.float64) * hop_s
    lengths = np.asarray([len(p) for p in parts], dtype=np.float64)
    frames = np.asarray([len(x) for x in features], dtype=np.float64)
    durations = (frames - 1) * hop_s
    window_rows = SerWindows(np.asarray(owner, dtype=np.int64), start_s,
                             np.minimum(start_s + (lengths - 1) * hop_s, durations[owner]),
                             probs.cpu().numpy(), probs.argmax(dim=1).cpu().numpy(), _nearest_labels(memory, feats))
    return SerFilePredictions(mean_probs.cpu().numpy(), mean_probs.argmax(dim=1).cpu().numpy(),
                              _nearest_labels(memory, mean_feats), durations=durations, windows=window_rows,
                              embeddings=(mean_feats / counts.to(mean_feats.dtype)).cpu().numpy())


def shortest_input(logmel: "LogMel", frames: int) -> int:
    """Fewest samples that ``logmel`` turns into at least ``frames`` frames (and the STFT accepts)."""
    cfg = logmel.cfg
    need = (frames - 1) * cfg.hop_length + cfg.n_fft - (2 * (cfg.n_fft // 2) if cfg.center else 0)
    return max(logmel.min_num_samples, need)


def signal_features(logmel: "LogMel", signal: np.ndarray, min_frames: int, name: str | Path) -> np.ndarray:
    """``(frame, mel)`` log-mel of a ``(sample,)`` signal at ``logmel``'s rate, at least ``min_frames`` long.

    A shorter signal is padded with zeros at its end, with a warning naming ``name``.
    """
    from audioadapt.audio.io import pad_or_crop

    min_samples = shortest_input(logmel, min_frames)
    if len(signal) < min_samples:
        log.warning("%s: %d sample(s) is shorter than the shortest input of the model; padded with zeros to %d",
                    name, len(signal), min_samples)
        signal = pad_or_crop(signal, min_samples)
    with torch.inference_mode():
        return logmel(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32)).unsqueeze(0))[0].numpy()


def predict_files(checkpoint: Mapping[str, Any], paths: Sequence[str | Path], *, batch_size: int | None = None,
                  device: torch.device | str = "cpu", hop_seconds: float | None = None) -> SerFilePredictions:
    """Predict the emotion of audio files with a loaded SER checkpoint.

    Each file is decoded at the run's sample rate and scored whole, in
    windows of ``dataset_config.crop_seconds`` whose probabilities are
    averaged (:func:`predict_features`); a file no longer than a crop is one
    window, cropped and padded as the test side is. A file shorter than the
    model's shortest input (one STFT frame per step of its time pooling) is
    padded with zeros at its end to that length, with a warning, as ``sed
    predict`` pads short files to the clip length; a file without samples
    raises :class:`~audioadapt.errors.AudioError`.
    """
    from audioadapt.audio.io import load_audio
    from audioadapt.config.load import from_dict
    from audioadapt.features.logmel import LogMel

    meta = read_meta(checkpoint)
    features_cfg = from_dict(FeatureConfig, meta["feature_config"])
    model, normalizer = load_ser_model(checkpoint)
    model.to(device)
    normalizer.to(device)
    logmel = LogMel(features_cfg)
    frames = math.prod(model.time_pooling)
    feats = [signal_features(logmel, load_audio(p, features_cfg.sample_rate), frames, p) for p in paths]
    dataset_cfg = from_dict(SerDatasetConfig, meta["dataset_config"])
    return predict_features(model, normalizer, feats, features_cfg, dataset_cfg,
                            batch_size=batch_size or int(meta.get("predict_batch_size", 32)), device=device,
                            memory=load_memory(checkpoint), mask_padding=bool(meta.get("mask_padding", True)),
                            hop_seconds=hop_seconds)


__all__ = [
    "META_KEYS",
    "SerFilePredictions",
    "SerPredictions",
    "SerWindows",
    "encode_dataset",
    "inference_mode",
    "load_memory",
    "load_ser_model",
    "model_networks",
    "predict_dataset",
    "predict_features",
    "predict_files",
    "read_meta",
    "run_ser_model",
    "shortest_input",
    "signal_features",
    "window_starts",
]
