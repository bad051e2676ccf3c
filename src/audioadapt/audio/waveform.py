"""One audio input given either as a file or as samples in memory (a notebook's waveform)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from audioadapt.errors import AudioError, ConfigError

#: What :func:`read_input` accepts: a path, or ``(sample,)`` / ``(channel, sample)`` samples.
AudioInput = Union[str, Path, np.ndarray, Any]

#: The name a waveform goes by in messages and results.
WAVEFORM = "<waveform>"


def read_input(audio: AudioInput, sample_rate: int | None, target_rate: int) -> tuple[np.ndarray, str]:
    """``(signal, name)``: mono float32 samples at ``target_rate`` and the input's name.

    ``audio`` is an audio file (read as :func:`~audioadapt.audio.io.load_audio`
    does; ``sample_rate`` must then be ``None``) or samples, a numpy array or a
    torch tensor of shape ``(sample,)`` or ``(channel, sample)``, recorded at
    ``sample_rate`` (required): channels are averaged and the signal resampled.
    """
    from audioadapt.audio.io import load_audio, resample

    if isinstance(audio, (str, Path)):
        if sample_rate is not None:
            raise ConfigError(f"{audio}: sample_rate is for waveforms; a file's own rate is read from it")
        return load_audio(audio, target_rate), str(audio)
    if hasattr(audio, "detach"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    signal = np.asarray(audio, dtype=np.float32)
    if sample_rate is None:
        raise ConfigError("a waveform needs its sample_rate (e.g. predict(y, sample_rate=16000))")
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
    if signal.ndim == 2 and signal.shape[0] > signal.shape[1]:
        raise AudioError(f"a waveform of shape {signal.shape} has more channels than samples: pass "
                         "(channel, sample), e.g. the transpose of soundfile.read's (sample, channel)", WAVEFORM)
    if signal.ndim == 2:
        signal = signal.mean(axis=0, dtype=np.float32)
    if signal.ndim != 1:
        raise AudioError(f"a waveform must be (sample,) or (channel, sample), got shape {signal.shape}", WAVEFORM)
    if signal.size == 0:
        raise AudioError("the waveform holds no samples", WAVEFORM)
    if not np.isfinite(signal).all():
        raise AudioError(f"the waveform holds {int(np.count_nonzero(~np.isfinite(signal)))} NaN or infinite "
                         "sample(s)", WAVEFORM)
    signal = resample(np.ascontiguousarray(signal), int(sample_rate), int(target_rate))
    return np.ascontiguousarray(signal, dtype=np.float32), WAVEFORM


__all__ = ["WAVEFORM", "AudioInput", "read_input"]
