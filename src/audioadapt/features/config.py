"""Feature configuration: the one home of every feature default.

Defaults follow the SED paper (Park et al. 2019): 22.05 kHz audio, a 2048
sample window with hop 345 and 128 mel bins, giving 640 frames for a 10 s
clip with a centred STFT. The rest (window shape, amplitude mel, dB with
``amin`` and clamp) follows the DCASE 2021+ baselines. The SER presets
override these values in YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end and clip geometry.

    Attributes
    ----------
    sample_rate: audio is resampled to this rate (Hz) on load.
    clip_seconds: every clip is padded or cropped to this length; ``None``
        keeps each file's own length (variable-length features).
    n_fft, win_length, hop_length: STFT geometry in samples.
    window: analysis window; ``periodic_window`` picks the DFT-even form.
    center, pad_mode: centred STFT with this padding (as librosa/torch).
    n_mels, f_min, f_max: mel filterbank; ``f_max=None`` means Nyquist.
    mel_scale, mel_norm: mel formula and filter normalisation (``None`` or
        ``"slaney"`` area normalisation).
    power: 1 for an amplitude mel, 2 for a power mel.
    log: ``"db"`` applies ``multiplier*log10(max(x, amin))`` (multiplier 20 for
        amplitude, 10 for power) then clamps to ``db_range``; ``"log"``
        applies ``log(x + log_offset)``.
    """

    sample_rate: int = 22050
    clip_seconds: float | None = 10.0
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 345
    window: Literal["hamming", "hann"] = "hamming"
    periodic_window: bool = False
    center: bool = True
    pad_mode: Literal["reflect", "constant"] = "reflect"
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: Literal["htk", "slaney"] = "htk"
    mel_norm: Literal["slaney"] | None = None
    power: float = 1.0
    log: Literal["db", "log"] = "db"
    amin: float = 1e-5
    db_range: tuple[float, float] | None = (-50.0, 80.0)
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")
        if self.n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {self.n_mels}")
        if self.hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {self.hop_length}")
        if self.clip_seconds is not None and self.clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds}")
        for name in ("power", "amin", "log_offset"):  # 0 or less: a constant or non-finite log-mel
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0 <= self.f_min < f_max <= nyquist:
            raise ValueError(f"need 0 <= f_min < f_max <= {nyquist} Hz, got f_min={self.f_min}, f_max={f_max}")

    @property
    def resolved_f_max(self) -> float:
        """Upper mel edge in Hz (Nyquist when ``f_max`` is unset)."""
        return self.sample_rate / 2 if self.f_max is None else self.f_max
