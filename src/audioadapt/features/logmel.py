"""Log-mel spectrogram front end in torch, built from a :class:`FeatureConfig`.

The pipeline is: analysis window (Hamming or Hann, periodic or symmetric)
-> centred or plain STFT (``torch.stft``, window zero-padded to ``n_fft`` in
the middle) -> magnitude raised to ``power`` (1: amplitude, 2: power) -> mel
filterbank (HTK or Slaney scale, optional Slaney area normalisation) -> either
``multiplier * log10(max(x, amin))`` clamped to ``db_range`` (``log="db"``,
multiplier 20 for an amplitude mel and 10 for a power mel) or
``log(x + log_offset)`` (``log="log"``).

It runs on whatever device the input is on, for a whole batch at once, and
always computes in float32 or float64 (half-precision input is promoted and
autocast is disabled inside), so mixed-precision training does not change the
features.

The filterbank is built here (no torchaudio) with the same formulas as
``librosa.filters.mel``. Agreement with librosa, checked by the tests at the
SED defaults and at the SER settings on noise and on tones:

* filterbank: 1e-9 absolute (float64; weights are of order 1e-3 to 1);
* log-mel, float64 input: 1e-5 dB everywhere;
* log-mel, float32 input: 1e-3 dB on bins within 60 dB of the clip's peak
  and 0.05 dB everywhere (float32 FFT rounding dominates far-down bins).

(For ``log="log"`` a difference in natural-log units is converted to dB by
``10 / ln(10)`` for a power mel and ``20 / ln(10)`` for an amplitude mel.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid

# -- mel scale -------------------------------------------------------------
_SLANEY_F_SP = 200.0 / 3  # Hz per mel below the break frequency
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(freqs: np.ndarray | float, mel_scale: str = "htk") -> np.ndarray:
    """Frequencies in Hz to mels on the ``"htk"`` or ``"slaney"`` scale."""
    f = np.asarray(freqs, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    linear = f / _SLANEY_F_SP
    with np.errstate(divide="ignore"):
        log = min_log_mel + np.log(np.maximum(f, 1e-300) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(f >= _SLANEY_MIN_LOG_HZ, log, linear)


def mel_to_hz(mels: np.ndarray | float, mel_scale: str = "htk") -> np.ndarray:
    """Mels on the ``"htk"`` or ``"slaney"`` scale to frequencies in Hz."""
    m = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    linear = _SLANEY_F_SP * m
    log = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (m - min_log_mel))
    return np.where(m >= min_log_mel, log, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float,
    f_max: float,
    mel_scale: str = "htk",
    norm: str | None = None,
) -> np.ndarray:
    """Triangular mel filters, float64 ``(mel, freq)`` with ``freq = 1 + n_fft // 2``.

    Filter ``m`` rises linearly (in Hz) from mel edge ``m`` to ``m + 1`` and
    falls to edge ``m + 2``, the ``n_mels + 2`` edges being equally spaced in
    mels between ``f_min`` and ``f_max``. ``norm="slaney"`` divides each
    filter by half its bandwidth in Hz so that all filters have equal area.
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    fft_freqs = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    edges_mel = np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale), n_mels + 2)
    edges = mel_to_hz(edges_mel, mel_scale)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


def analysis_window(kind: str, length: int, periodic: bool) -> torch.Tensor:
    """Hamming or Hann window of ``length`` samples (float64).

    ``periodic=True`` gives the DFT-even form (``scipy.signal.get_window``'s
    default, ``fftbins=True``); ``False`` the symmetric one.
    """
    if kind == "hamming":
        return torch.hamming_window(length, periodic=periodic, dtype=torch.float64)
    if kind == "hann":
        return torch.hann_window(length, periodic=periodic, dtype=torch.float64)
    raise ValueError(f"window must be 'hamming' or 'hann', got {kind!r}")


class LogMel(nn.Module):
    """Batched log-mel spectrogram: ``(batch, sample) -> (batch, frame, mel)``.

    Parameters
    ----------
    cfg: every parameter of the front end (see :class:`FeatureConfig`).

    Notes
    -----
    The window ``window (win_length,)`` and the filterbank
    ``mel_fb (freq, mel)`` are non-persistent buffers: they follow
    ``.to(device)`` but are not stored in checkpoints (they are rebuilt from
    the config). A 1-D input ``(sample,)`` gives ``(frame, mel)``.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.grid = FrameGrid.from_features(cfg)
        window = analysis_window(cfg.window, cfg.win_length, cfg.periodic_window)
        fb = mel_filterbank(
            cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.resolved_f_max, cfg.mel_scale, cfg.mel_norm
        )
        self.register_buffer("window", window.to(torch.float32), persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(fb.T.copy()).to(torch.float32), persistent=False)
        self.db_multiplier = 20.0 / cfg.power

    @property
    def n_mels(self) -> int:
        return self.cfg.n_mels

    @property
    def min_num_samples(self) -> int:
        """Shortest input the STFT accepts (reflect padding needs more than ``n_fft // 2``)."""
        if not self.cfg.center:
            return self.cfg.n_fft
        return self.cfg.n_fft // 2 + 1 if self.cfg.pad_mode == "reflect" else 1

    def num_frames(self, num_samples: int) -> int:
        """Output frames for an input of ``num_samples`` samples."""
        return self.grid.num_input_frames(num_samples)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Linear mel spectrogram ``(batch, frame, mel)`` before the log."""
        cfg = self.cfg
        if x.shape[-1] < self.min_num_samples:
            raise ValueError(
                f"input of {x.shape[-1]} samples is too short for the STFT "
                f"(need at least {self.min_num_samples} with n_fft={cfg.n_fft}, "
                f"center={cfg.center}, pad_mode={cfg.pad_mode!r})"
            )
        window = self.window.to(device=x.device, dtype=x.dtype)
        fb = self.mel_fb.to(device=x.device, dtype=x.dtype)
        spec = torch.stft(
            x,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=window,
            center=cfg.center,
            pad_mode=cfg.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (batch, freq, frame)
        if cfg.power == 2.0:
            mag = torch.view_as_real(spec).pow(2).sum(-1)
        else:
            mag = spec.abs()
            if cfg.power != 1.0:
                mag = mag.pow(cfg.power)
        return torch.matmul(mag.transpose(1, 2), fb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel features.

        Parameters
        ----------
        x: waveform ``(batch, sample)`` (or ``(sample,)``).

        Returns
        -------
        torch.Tensor
            ``(batch, frame, mel)`` (or ``(frame, mel)``), in float32 unless
            the input is float64.
        """
        squeeze = x.ndim == 1
        if squeeze:
            x = x.unsqueeze(0)
        if x.ndim != 2:
            raise ValueError(f"expected (batch, sample) audio, got shape {tuple(x.shape)}")
        if x.dtype != torch.float64:
            x = x.float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            mel = self.spectrogram(x)
            cfg = self.cfg
            if cfg.log == "db":
                out = self.db_multiplier * torch.log10(torch.clamp(mel, min=cfg.amin))
                if cfg.db_range is not None:
                    out = torch.clamp(out, min=cfg.db_range[0], max=cfg.db_range[1])
            else:
                out = torch.log(mel + cfg.log_offset)
        return out.squeeze(0) if squeeze else out

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"sample_rate={c.sample_rate}, n_fft={c.n_fft}, win_length={c.win_length}, hop={c.hop_length}, "
            f"n_mels={c.n_mels}, window={c.window}{'(periodic)' if c.periodic_window else ''}, log={c.log}"
        )


__all__ = ["LogMel", "analysis_window", "hz_to_mel", "mel_filterbank", "mel_to_hz"]
