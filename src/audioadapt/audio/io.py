"""Reading, resampling, fitting to length and writing audio files.

All decoding goes through ``soundfile`` and all resampling through ``soxr``
(quality ``"HQ"``). Signals are float32 numpy arrays with the axes
``(sample,)`` for mono and ``(channel, sample)`` otherwise.

Every file that cannot be used (missing, a directory, not audio, no samples,
NaN or infinite samples) raises :class:`~audioadapt.errors.AudioError` whose
message starts with the file path.

Padding always appends zeros at the end, so event times measured from the
start of a file stay valid; cropping keeps the start, the centre or a random
window (see :func:`choose_crop_start`).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from audioadapt.errors import AudioError

logger = logging.getLogger(__name__)

CropMode = Literal["start", "random", "center"]

#: Crop position used when none is given.
DEFAULT_CROP: CropMode = "start"

#: soxr quality used for every resampling.
RESAMPLE_QUALITY = "HQ"

_CROP_MODES = ("start", "random", "center")


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says.

    Attributes
    ----------
    sample_rate: samples per second per channel.
    channels: number of channels.
    frames: samples per channel.
    duration: ``frames / sample_rate`` in seconds.
    """

    sample_rate: int
    channels: int
    frames: int
    duration: float


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError("audio file not found", path)
    if path.is_dir():
        raise AudioError("expected an audio file, found a directory", path)


def audio_info(path: str | Path) -> AudioInfo:
    """Read an audio file's header without decoding it.

    Raises
    ------
    AudioError
        If the file is missing, a directory or not a readable audio file.
    """
    path = Path(path)
    _check_path(path)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read audio header: {exc}", path) from exc
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), float(info.frames / info.samplerate))


def resample(signal: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample ``(sample,)`` or ``(channel, sample)`` float32 audio with soxr."""
    if orig_rate == target_rate:
        return signal
    import soxr

    if signal.ndim == 1:
        out = soxr.resample(signal, orig_rate, target_rate, quality=RESAMPLE_QUALITY)
    else:
        out = soxr.resample(signal.T, orig_rate, target_rate, quality=RESAMPLE_QUALITY).T
    return np.ascontiguousarray(out, dtype=np.float32)


def choose_crop_start(
    length: int,
    num_samples: int,
    mode: CropMode = DEFAULT_CROP,
    rng: np.random.Generator | None = None,
) -> int:
    """Index of the first kept sample when cropping ``length`` samples to ``num_samples``.

    Returns 0 when nothing needs cropping. ``"random"`` draws uniformly from
    all valid starts with ``rng`` (a fresh generator when ``None``);
    ``"center"`` keeps the middle (rounding the start down).
    """
    if mode not in _CROP_MODES:
        raise ValueError(f"crop mode must be one of {_CROP_MODES}, got {mode!r}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    excess = length - num_samples
    if excess <= 0 or mode == "start":
        return 0
    if mode == "center":
        return excess // 2
    rng = np.random.default_rng() if rng is None else rng
    return int(rng.integers(0, excess + 1))


def pad_or_crop(
    signal: np.ndarray,
    num_samples: int,
    mode: CropMode = DEFAULT_CROP,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Fit the last (sample) axis of ``signal`` to exactly ``num_samples``.

    Shorter signals get zeros appended at the end; longer ones are cropped at
    the position that ``mode`` picks (see :func:`choose_crop_start`).

    Parameters
    ----------
    signal: ``(sample,)`` or ``(channel, sample)`` array.
    num_samples: the wanted length.
    mode: ``"start"``, ``"random"`` or ``"center"``.
    rng: random generator for ``mode="random"``.
    """
    length = signal.shape[-1]
    start = choose_crop_start(length, num_samples, mode, rng)
    if length >= num_samples:
        return signal[..., start : start + num_samples]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, num_samples - length)]
    return np.pad(signal, pad)


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    mono: bool = True,
    num_samples: int | None = None,
    crop: CropMode = DEFAULT_CROP,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Decode an audio file, resampled to ``sample_rate``.

    Parameters
    ----------
    path: the audio file.
    sample_rate: target rate in Hz (soxr ``"HQ"`` resampling when it differs).
    mono: average the channels into one.
    num_samples: if given, pad or crop the result to this length (after
        resampling) with :func:`pad_or_crop`.
    crop: crop position, see :func:`pad_or_crop`.
    rng: random generator for ``crop="random"``.

    Returns
    -------
    np.ndarray
        float32 ``(sample,)`` when ``mono``, else ``(channel, sample)``.

    Raises
    ------
    AudioError
        If the file is missing, a directory, not audio, holds no samples or
        holds NaN/infinite samples.
    """
    path = Path(path)
    _check_path(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    try:
        data, orig_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode audio: {exc}", path) from exc
    if data.shape[0] == 0:
        raise AudioError("audio file holds no samples", path)
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(f"audio holds {bad} NaN or infinite sample(s)", path)
    signal = data.T  # (channel, sample)
    if mono:
        signal = signal.mean(axis=0, dtype=np.float32) if signal.shape[0] > 1 else signal[0]
    signal = resample(np.ascontiguousarray(signal, dtype=np.float32), int(orig_rate), int(sample_rate))
    if num_samples is not None:
        signal = pad_or_crop(signal, num_samples, crop, rng)
    return np.ascontiguousarray(signal, dtype=np.float32)


def write_audio(
    path: str | Path,
    signal: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
) -> Path:
    """Write ``(sample,)`` or ``(channel, sample)`` audio atomically.

    The file is written to a temporary file in the same folder and renamed
    into place, so a reader never sees a half-written file. The container
    comes from the file extension (``.wav``, ``.flac``, ...); integer subtypes
    clip the signal to ``[-1, 1]`` (with a warning) instead of wrapping.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    signal = np.asarray(signal)
    if signal.ndim not in (1, 2):
        raise ValueError(f"signal must be (sample,) or (channel, sample), got shape {signal.shape}")
    if not np.isfinite(signal).all():
        raise ValueError(f"{path}: refusing to write NaN or infinite samples")
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: unknown audio format '{path.suffix}'")
    data = signal.T if signal.ndim == 2 else signal
    if subtype.startswith("PCM") and data.size and np.abs(data).max() > 1.0:
        logger.warning("%s: clipping %d sample(s) outside [-1, 1]", path, int(np.count_nonzero(np.abs(data) > 1.0)))
        data = np.clip(data, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        sf.write(tmp, data, int(sample_rate), subtype=subtype, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = [
    "AudioInfo",
    "CropMode",
    "DEFAULT_CROP",
    "audio_info",
    "choose_crop_start",
    "load_audio",
    "pad_or_crop",
    "resample",
    "write_audio",
]
