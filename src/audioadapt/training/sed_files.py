"""Frame probabilities of whole audio files of any length with a SED model.

Each file is decoded at the features' sample rate (mono) and turned into
log-mel features exactly as the training clips are (same
:class:`~audioadapt.features.logmel.LogMel` and ``FeatureConfig``; clips
padded with zeros or cropped from the start to ``clip_seconds``).

Files longer than ``clip_seconds`` are cut into clip-length windows. A window
starts every ``step`` samples, ``step`` being the largest whole number of
model output frames that fits in a clip, so every window starts on the output
frame grid of the file: window ``k`` contributes its first ``step`` frames
(the last window all of its frames) and the stitched sequence is the frame
scores of the whole file, frame ``n`` starting at ``n * output_hop`` seconds.
Neighbouring windows overlap by less than one output frame; the last one is
zero-padded like a short clip. Decoding the stitched scores once lets events
run across window boundaries. With ``clip_seconds`` unset, every file is one
window of its own length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audioadapt.audio.io import load_audio, pad_or_crop
from audioadapt.data.manifest import ClipRecord
from audioadapt.data.sed_dataset import SedDataset
from audioadapt.errors import AudioError, ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.logmel import LogMel
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import SedModel
from audioadapt.training.sed_predict import predict_scores

#: ``ClipRecord.source`` of the windows handed to the model.
PREDICT_SOURCE = "files"


@dataclass(frozen=True)
class FileScores:
    """What the model saw and said about one audio file.

    Attributes
    ----------
    name: the file's name in the output.
    path: the audio file.
    duration: its length in seconds (after resampling).
    features: ``(frame, mel)`` log-mel of the whole file (before normalisation).
    frame: ``(out_frame, class)`` probabilities over the whole file, cut
        after the last output frame that starts before ``duration``.
    """

    name: str
    path: Path
    duration: float
    features: np.ndarray
    frame: np.ndarray


@dataclass(frozen=True)
class WindowPlan:
    """How files are cut into model inputs.

    Attributes
    ----------
    clip_samples: samples per window, ``None`` for one window per file.
    step_frames: output frames kept from every window but the last.
    step_samples: samples between window starts (``step_frames`` output frames).
    """

    clip_samples: int | None
    step_frames: int = 0
    step_samples: int = 0

    @classmethod
    def from_features(cls, features: FeatureConfig, grid: FrameGrid) -> "WindowPlan":
        """The plan of ``features.clip_seconds`` on the model's output ``grid``."""
        if features.clip_seconds is None:
            return cls(None)
        clip = grid.seconds_to_samples(features.clip_seconds)
        hop = grid.hop_length * grid.pooling_factor
        if clip < hop:
            raise ConfigError(f"features.clip_seconds={features.clip_seconds} is shorter than one output frame")
        return cls(clip, clip // hop, (clip // hop) * hop)

    def windows(self, signal: np.ndarray) -> list[np.ndarray]:
        """The model inputs of a ``(sample,)`` signal."""
        clip = self.clip_samples
        if clip is None:
            return [signal]
        count = 1 + max(0, math.ceil((len(signal) - clip) / self.step_samples))
        return [pad_or_crop(signal[k * self.step_samples: k * self.step_samples + clip], clip)
                for k in range(count)]

    @staticmethod
    def stitch(parts: Sequence[np.ndarray], step: int) -> np.ndarray:
        """Join per-window arrays along time, keeping ``step`` rows of each but the last."""
        return np.concatenate([p[:step] for p in parts[:-1]] + [parts[-1]], axis=0)


@dataclass
class _Pending:
    name: str
    path: Path
    num_samples: int
    features: list[np.ndarray]


def score_files(model: SedModel, normalizer: Normalizer, files: Mapping[str, Path], classes: Sequence[str],
                features: FeatureConfig, grid: FrameGrid, heads: Sequence[str], batch_size: int,
                device: torch.device | str = "cpu", compile: bool = False) -> Iterator[FileScores]:
    """Frame probabilities (mean of ``heads``) of each file of ``{name: path}``, in order.

    ``classes`` are the model's classes, ``features`` the run's feature
    settings and ``grid`` their frame grid with the model's time pooling.

    Files are read and scored a batch of windows at a time, so memory does
    not grow with the number of files. Unreadable files raise
    :class:`~audioadapt.errors.AudioError` naming the file. ``compile``: run the
    network through ``torch.compile`` (``method.predict.compile``).
    """
    signals = ((name, Path(path), load_audio(path, features.sample_rate)) for name, path in files.items())
    yield from score_signals(model, normalizer, signals, classes, features, grid, heads, batch_size, device,
                             compile)


def score_signals(model: SedModel, normalizer: Normalizer, signals: Iterable[tuple[str, Path, np.ndarray]],
                  classes: Sequence[str], features: FeatureConfig, grid: FrameGrid, heads: Sequence[str],
                  batch_size: int, device: torch.device | str = "cpu", compile: bool = False) -> Iterator[FileScores]:
    """:func:`score_files` of ``(name, path, signal)`` triples, each signal mono at ``features.sample_rate``."""
    logmel = LogMel(features)
    plan = WindowPlan.from_features(features, grid)
    pending: list[_Pending] = []
    for name, path, signal in signals:
        windows = plan.windows(signal)
        if windows[0].shape[-1] < logmel.min_num_samples:
            raise AudioError(f"too short for the STFT ({len(signal)} samples at {features.sample_rate} Hz)", path)
        with torch.inference_mode():
            feats = [logmel(torch.from_numpy(w)).numpy() for w in windows]
        pending.append(_Pending(name, Path(path), len(signal), feats))
        if sum(len(p.features) for p in pending) >= batch_size:
            yield from _flush(model, normalizer, pending, classes, plan, grid, heads, batch_size, device, compile)
            pending = []
    yield from _flush(model, normalizer, pending, classes, plan, grid, heads, batch_size, device, compile)


def _flush(model: SedModel, normalizer: Normalizer, pending: list[_Pending], classes: Sequence[str],
           plan: WindowPlan, grid: FrameGrid, heads: Sequence[str], batch_size: int,
           device: torch.device | str, compile: bool) -> Iterator[FileScores]:
    if not pending:
        return
    records = [ClipRecord(f"{i}:{k}", p.path, PREDICT_SOURCE) for i, p in enumerate(pending)
               for k in range(len(p.features))]
    feats = [f for p in pending for f in p.features]
    dataset = SedDataset(records, feats, grid, classes, name=PREDICT_SOURCE)
    frames = iter(predict_scores(model, normalizer, dataset, heads, batch_size, device, compile=compile).frame)
    for p in pending:
        parts = [next(frames) for _ in p.features]
        duration = grid.samples_to_seconds(p.num_samples)
        n_out = int(grid.seconds_to_output_frame(duration, rounding="ceil"))
        n_in = grid.num_input_frames(p.num_samples)
        in_step = plan.step_samples // grid.hop_length
        yield FileScores(p.name, p.path, duration, plan.stitch(p.features, in_step)[:n_in],
                         plan.stitch(parts, plan.step_frames)[:n_out])


__all__ = ["PREDICT_SOURCE", "FileScores", "WindowPlan", "score_files", "score_signals"]
