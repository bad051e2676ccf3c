"""A trained SER run loaded once for interactive use: the emotion of any audio.

>>> ser = audioadapt.load("runs/nnpm")              # a SerSystem
>>> ser.predict("speech.wav").label                  # "neutral"
>>> ser.predict(y, sample_rate=16000, windows=True).windows   # one EmotionWindow per window

Inputs of any length are scored as ``audioadapt ser predict`` scores files:
through the run's front end once, whole, then in windows of the run's
``dataset.crop_seconds`` whose class probabilities are averaged
(:func:`~audioadapt.training.ser_predict.predict_features`); window times
are seconds of the input as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from audioadapt.audio.waveform import AudioInput, read_input

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.ser import SerExperimentConfig
    from audioadapt.training.ser_predict import SerFilePredictions


@dataclass(frozen=True)
class EmotionWindow:
    """The prediction of one window: ``start`` and ``end`` in seconds, ``label`` and ``probabilities``."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class EmotionPrediction:
    """The emotion of one input.

    Attributes
    ----------
    label: the class of the highest mean probability.
    probabilities: ``{class: mean probability over the windows}``.
    memory_label: the nearest memory slot's label (runs with a memory), else ``None``.
    windows: one :class:`EmotionWindow` per window when asked for, else ``None``.
    """

    label: str
    probabilities: dict[str, float]
    memory_label: str | None = None
    windows: list[EmotionWindow] | None = None


@dataclass(frozen=True)
class EmotionScores:
    """Class probabilities of one input and of each of its windows.

    Attributes
    ----------
    classes: the emotions, in column order.
    probabilities: ``(class,)`` mean of the windows' probabilities.
    window_start, window_end: ``(window,)`` seconds.
    window_probabilities: ``(window, class)``.
    """

    classes: tuple[str, ...]
    probabilities: np.ndarray
    window_start: np.ndarray
    window_end: np.ndarray
    window_probabilities: np.ndarray


class SerSystem:
    """A SER run's network with its features, normaliser, crop length and memory.

    Build it with :func:`audioadapt.load`. ``predict`` and ``scores`` take an
    audio file or a waveform (``(sample,)`` or ``(channel, sample)``, numpy or
    torch) with its ``sample_rate``; ``hop_seconds`` sets the step between
    windows (default: the crop length).

    Attributes
    ----------
    task: ``"ser"``.
    run_dir, checkpoint: the run and the checkpoint file loaded.
    classes: the emotions.
    config: the run's experiment configuration.
    """

    task = "ser"

    def __init__(self, run_dir: Path, checkpoint: Path, ckpt: dict[str, Any], cfg: "SerExperimentConfig",
                 device: torch.device):
        from audioadapt.features.logmel import LogMel
        from audioadapt.training.ser_predict import load_memory, load_ser_model

        self.run_dir, self.checkpoint, self.config, self.device = run_dir, checkpoint, cfg, device
        meta = ckpt["meta"]
        self.classes: tuple[str, ...] = tuple(meta["classes"])
        self.model, self.normalizer = load_ser_model(ckpt)
        self.model.to(device)
        self.normalizer.to(device)
        self.memory = load_memory(ckpt)
        self.mask_padding = bool(meta.get("mask_padding", True))
        self.logmel = LogMel(cfg.features)

    def _predict(self, audio: AudioInput, sample_rate: int | None,
                 hop_seconds: float | None) -> "SerFilePredictions":
        from audioadapt.training.ser_predict import predict_features, signal_features

        cfg = self.config
        signal, name = read_input(audio, sample_rate, cfg.features.sample_rate)
        feats = signal_features(self.logmel, signal, math.prod(self.model.time_pooling), name)
        return predict_features(self.model, self.normalizer, [feats], cfg.features, cfg.dataset,
                                batch_size=cfg.method.predict_batch_size, device=self.device, memory=self.memory,
                                mask_padding=self.mask_padding, hop_seconds=hop_seconds)

    def scores(self, audio: AudioInput, sample_rate: int | None = None,
               hop_seconds: float | None = None) -> EmotionScores:
        """Class probabilities of ``audio``: their mean over its windows, and each window's."""
        pred = self._predict(audio, sample_rate, hop_seconds)
        w = pred.windows
        return EmotionScores(self.classes, pred.probabilities[0], w.start, w.end, w.probabilities)

    def predict(self, audio: AudioInput, sample_rate: int | None = None, windows: bool = False,
                hop_seconds: float | None = None) -> EmotionPrediction:
        """The emotion of ``audio`` and the class probabilities (with each window's when ``windows``)."""
        pred = self._predict(audio, sample_rate, hop_seconds)
        w = pred.windows
        rows = [EmotionWindow(float(w.start[k]), float(w.end[k]), self.classes[int(w.labels[k])],
                              self._named(w.probabilities[k])) for k in range(len(w.file))] if windows else None
        memory = None if pred.memory_labels is None else self.classes[int(pred.memory_labels[0])]
        return EmotionPrediction(self.classes[int(pred.labels[0])], self._named(pred.probabilities[0]), memory, rows)

    def embed(self, audio: AudioInput, sample_rate: int | None = None,
              hop_seconds: float | None = None) -> np.ndarray:
        """The utterance feature of ``audio``: ``(2u,)``, the mean over its windows of the unit-length features
        ``f_hat`` (what the memory compares, and the head's input up to normalisation), for probes and plots."""
        embeddings = self._predict(audio, sample_rate, hop_seconds).embeddings
        assert embeddings is not None
        return embeddings[0]

    def _named(self, probs: np.ndarray) -> dict[str, float]:
        return {c: float(p) for c, p in zip(self.classes, probs)}

    def __repr__(self) -> str:
        return f"SerSystem({str(self.checkpoint)!r}, classes={list(self.classes)})"


__all__ = ["EmotionPrediction", "EmotionScores", "EmotionWindow", "SerSystem"]
