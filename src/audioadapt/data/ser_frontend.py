"""Utterance-level front end of the SER data: trimming of leading/trailing silence and loudness normalisation.

Both act on an utterance's cached log-mel ``(frame, mel)`` (``features.log:
log``, i.e. ``y = log(x + log_offset)`` of a mel spectrogram ``x``), before
it is cropped, so training, evaluation and prediction (which wrap features in
a :class:`~audioadapt.data.ser_dataset.SerDataset`) all see the same input:

* **frame energy**: ``e_t = sum_m x_tm^(2 / power)`` with ``x = exp(y) -
  log_offset`` (exact: the log is inverted in float64), in dB relative to
  the energy of unit-RMS white noise under the same features, so a level
  reads as the RMS of the waveform in dBFS (within about 0.1 dB on speech);
* **trimming** (``trim_db``): frames more than ``trim_db`` below the loudest
  frame are silence; the leading and trailing runs of silence are dropped,
  ``trim_margin_seconds`` of them kept on each side. Silence inside the
  utterance stays;
* **loudness** (``loudness_dbfs``): the mean energy of the frames kept is
  brought to ``loudness_dbfs`` by one gain, applied to ``x`` (a waveform
  gain ``g`` multiplies a power mel by ``g^2``), and the log taken again.

Why: the per-utterance mean/variance normaliser already removes a constant
offset of the log-mel, but not what the ``log_offset`` floor does to quiet
recordings (their weak bins sink into it) nor the weight of digital silence
in the statistics. On the shared 16 kHz copies, with the defaults: RAVDESS
(672 files of 3.7 s on average) loses 1.5 s to trimming and its trimmed
levels span -63 to -14 dBFS (median -37), following the emotion; URDU loses
nothing (levels -42 to -8 dBFS) and EMO-DB 0.07 s (-31 to -11 dBFS).
``trim_db: null`` and ``loudness_dbfs: null`` give the untouched features.

An input longer than the crop that is scored in windows (``ser predict``)
gets the front end once, whole, before it is cut into windows
(:func:`frontend_with_offset` gives the frames trimmed from its start).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid

#: Energies are floored here before taking dB (an all-zero frame).
_ENERGY_FLOOR = 1e-30


@dataclass(frozen=True)
class SerFrontEndConfig:
    """Silence trimming and loudness normalisation of every utterance (see the module docstring).

    Attributes
    ----------
    trim_db: frames more than this many dB below the loudest frame count as
        silence at the ends; ``None`` trims nothing.
    trim_margin_seconds: silence kept before the first and after the last
        frame of sound.
    loudness_dbfs: level (dBFS of RMS) the frames kept are brought to;
        ``None`` leaves the level.
    """

    trim_db: float | None = 40.0
    trim_margin_seconds: float = 0.1
    loudness_dbfs: float | None = -23.0

    def __post_init__(self) -> None:
        if self.trim_db is not None and not self.trim_db > 0:
            raise ConfigError(f"frontend.trim_db must be positive or null, got {self.trim_db}")
        if not self.trim_margin_seconds >= 0:
            raise ConfigError(f"frontend.trim_margin_seconds must be >= 0, got {self.trim_margin_seconds}")
        if self.loudness_dbfs is not None and not self.loudness_dbfs <= 0:
            raise ConfigError(f"frontend.loudness_dbfs must be <= 0 (dBFS) or null, got {self.loudness_dbfs}")

    @property
    def active(self) -> bool:
        """True when the front end changes anything."""
        return self.trim_db is not None or self.loudness_dbfs is not None


#: No front end: the untouched features (and how runs saved before ``dataset.frontend`` existed were trained).
NO_FRONTEND = SerFrontEndConfig(trim_db=None, loudness_dbfs=None)


def check_frontend_features(cfg: SerFrontEndConfig, features: FeatureConfig) -> None:
    """Refuse a front end on features it cannot invert (``log: db`` clamps the spectrum)."""
    if cfg.active and features.log != "log":
        raise ConfigError(f"the SER front end (dataset.frontend: trimming, loudness) needs features.log: log, got "
                          f"{features.log!r}; set dataset.frontend.trim_db and dataset.frontend.loudness_dbfs to "
                          "null for these features")


def mel_power(features: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``x`` of a ``log(x + log_offset)`` log-mel ``(frame, mel)``, in float64 and at least 0."""
    return np.maximum(np.exp(np.asarray(features, dtype=np.float64)) - config.log_offset, 0.0)


def frame_energy(features: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``(frame,)`` energy ``sum_m x^(2 / power)`` of a log-mel."""
    return np.power(mel_power(features, config), 2.0 / config.power).sum(axis=1)


@functools.lru_cache(maxsize=16)
def reference_energy_db(config: FeatureConfig) -> float:
    """Mean frame energy (dB) of 1 s of unit-RMS white noise: the 0 dBFS of :func:`frame_energy`."""
    import torch

    from audioadapt.features.logmel import LogMel

    noise = np.random.default_rng(0).standard_normal(config.sample_rate)
    noise = (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
    with torch.inference_mode():
        y = LogMel(config)(torch.from_numpy(noise).unsqueeze(0))[0].numpy()
    return float(10.0 * np.log10(frame_energy(y, config).mean()))


def level_dbfs(energy: np.ndarray, config: FeatureConfig) -> float:
    """Level of frames of ``energy`` (their mean) in dBFS of RMS; ``-inf`` for silence."""
    mean = float(np.mean(energy)) if len(energy) else 0.0
    return -math.inf if mean <= 0 else 10.0 * math.log10(mean) - reference_energy_db(config)


def trim_bounds(energy: np.ndarray, trim_db: float, margin_frames: int) -> tuple[int, int]:
    """``(start, stop)`` frames left when the leading and trailing silence of ``energy`` is cut."""
    db = 10.0 * np.log10(np.maximum(energy, _ENERGY_FLOOR))
    loud = np.flatnonzero(db >= db.max() - trim_db)
    start = max(int(loud[0]) - margin_frames, 0)
    stop = min(int(loud[-1]) + 1 + margin_frames, len(energy))
    return start, stop


def apply_frontend(features: np.ndarray, cfg: SerFrontEndConfig, config: FeatureConfig) -> np.ndarray:
    """The front end of one utterance's log-mel ``(frame, mel)``; float32 out.

    The input comes back unchanged when the front end is inactive or it is
    not a non-empty ``(frame, mel)`` array (the dataset reports that).
    """
    return frontend_with_offset(features, cfg, config)[0]


def frontend_with_offset(features: np.ndarray, cfg: SerFrontEndConfig,
                         config: FeatureConfig) -> tuple[np.ndarray, int]:
    """:func:`apply_frontend` of ``features`` and the index of the first input frame it kept.

    The offset is the number of leading frames trimmed (0 without trimming):
    frame ``t`` of the output is frame ``t + offset`` of the input.
    """
    if not cfg.active or features.ndim != 2 or len(features) == 0:
        return features, 0
    energy = frame_energy(features, config)
    start = 0
    if cfg.trim_db is not None:
        margin = round(cfg.trim_margin_seconds / FrameGrid.from_features(config).input_hop_seconds)
        start, stop = trim_bounds(energy, cfg.trim_db, margin)
        features, energy = features[start:stop], energy[start:stop]
    if cfg.loudness_dbfs is None:
        return np.asarray(features, dtype=np.float32), start
    level = level_dbfs(energy, config)
    if not math.isfinite(level):  # digital silence: no gain brings it anywhere
        return np.asarray(features, dtype=np.float32), start
    gain = 10.0 ** ((cfg.loudness_dbfs - level) / 10.0 * config.power / 2.0)  # power gain^(power/2)
    x = mel_power(features, config) * gain
    return np.log(x + config.log_offset).astype(np.float32), start


class FrontEndFeatures:
    """A feature store whose item ``i`` is ``store[i]`` after :func:`apply_frontend`.

    ``paths`` and ``feature_config`` of the store are passed through.
    """

    def __init__(self, store: Any, cfg: SerFrontEndConfig, config: FeatureConfig):
        check_frontend_features(cfg, config)
        self.store = store
        self.cfg = cfg
        self.config = config

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> np.ndarray:
        return apply_frontend(np.asarray(self.store[i]), self.cfg, self.config)

    def __getattr__(self, name: str) -> Any:  # paths, feature_config, ... of the store
        if name in ("store", "cfg", "config"):
            raise AttributeError(name)
        return getattr(self.store, name)


__all__ = [
    "NO_FRONTEND",
    "FrontEndFeatures",
    "SerFrontEndConfig",
    "apply_frontend",
    "check_frontend_features",
    "frame_energy",
    "frontend_with_offset",
    "level_dbfs",
    "mel_power",
    "reference_energy_db",
    "trim_bounds",
]
