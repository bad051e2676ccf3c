"""A trained SED run loaded once for interactive use: events and frame probabilities of any audio.

>>> det = audioadapt.load("runs/demo")            # a SedSystem
>>> det.predict("street.wav")                      # [Event(onset=1.2, offset=3.4, label='dog'), ...]
>>> det.scores(y, sample_rate=44100).columns()    # {"time": ..., "dog": ..., ...}: a DataFrame's columns

Inputs are scored as ``audioadapt sed predict`` scores files (see
:mod:`audioadapt.training.sed_files`): the run's features, clip-length
windows joined before decoding with the run's ``decode`` settings and the
class thresholds tuned for the checkpoint, if any (:mod:`audioadapt.api.sed_decode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from audioadapt.audio.waveform import AudioInput, read_input
from audioadapt.data.manifest import Event
from audioadapt.features.frames import FrameGrid

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.sed import SedExperimentConfig


@dataclass(frozen=True)
class SedFrameScores:
    """Frame probabilities of one input.

    Attributes
    ----------
    name: the file, or ``<waveform>``.
    classes: the event classes, in column order.
    times: ``(frame,)`` start of each output frame in seconds.
    probabilities: ``(frame, class)`` probabilities (mean of the run's predicting heads).
    frame_seconds: length of an output frame.
    duration: seconds of audio.
    """

    name: str
    classes: tuple[str, ...]
    times: np.ndarray
    probabilities: np.ndarray
    frame_seconds: float
    duration: float

    def columns(self) -> dict[str, np.ndarray]:
        """``{"time": times, class: probabilities, ...}``, e.g. for ``pandas.DataFrame``."""
        return {"time": self.times, **{c: self.probabilities[:, k] for k, c in enumerate(self.classes)}}


class SedSystem:
    """A SED run's predicting network with its features, normaliser and decode settings.

    Build it with :func:`audioadapt.load`. ``predict`` and ``scores`` take an
    audio file or a waveform (``(sample,)`` or ``(channel, sample)``, numpy or
    torch) with its ``sample_rate``.

    Attributes
    ----------
    task: ``"sed"``.
    run_dir, checkpoint: the run and the checkpoint file loaded.
    classes: the event classes.
    config: the run's experiment configuration.
    decode: the decode settings ``predict`` uses (the run's, with tuned class thresholds when there are).
    compile: whether scoring runs the network through ``torch.compile`` (the run's
        ``method.predict.compile`` unless set; the first call of each input shape compiles).
    """

    task = "sed"

    def __init__(self, run_dir: Path, checkpoint: Path, ckpt: dict[str, Any], cfg: "SedExperimentConfig",
                 device: torch.device):
        from audioadapt.api.sed import predicting_model
        from audioadapt.api.sed_decode import resolve_run_decode

        self.run_dir, self.checkpoint, self.config, self.device = run_dir, checkpoint, cfg, device
        self.classes: tuple[str, ...] = tuple(ckpt["meta"]["classes"])
        self.model, self.normalizer = predicting_model(ckpt, cfg)
        self.model.to(device).eval()
        self.normalizer.to(device).eval()
        self.grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
        self.decode = resolve_run_decode(cfg.decode, self.classes, checkpoint).decode
        self.compile: bool = cfg.method.predict.compile

    def scores(self, audio: AudioInput, sample_rate: int | None = None) -> SedFrameScores:
        """Frame probabilities of ``audio`` over its whole length, with each frame's start time."""
        from audioadapt.training.sed_files import score_signals

        cfg = self.config
        signal, name = read_input(audio, sample_rate, cfg.features.sample_rate)
        (scored,) = score_signals(self.model, self.normalizer, [(name, Path(name), signal)], self.classes,
                                  cfg.features, self.grid, cfg.method.predict.heads, cfg.method.predict.batch_size,
                                  self.device, self.compile)
        times = np.asarray(self.grid.output_frame_to_seconds(np.arange(len(scored.frame))), dtype=np.float64)
        return SedFrameScores(name, self.classes, times, scored.frame, self.grid.output_hop_seconds,
                              scored.duration)

    def predict(self, audio: AudioInput, sample_rate: int | None = None) -> list[Event]:
        """Sound events of ``audio`` sorted by onset (:class:`~audioadapt.data.manifest.Event`)."""
        from audioadapt.evaluation.decoding import decode_batch

        s = self.scores(audio, sample_rate)
        return decode_batch({s.name: s.probabilities}, self.classes, self.grid, self.decode,
                            {s.name: s.duration})[s.name]

    def __repr__(self) -> str:
        return f"SedSystem({str(self.checkpoint)!r}, classes={list(self.classes)})"


__all__ = ["SedFrameScores", "SedSystem"]
