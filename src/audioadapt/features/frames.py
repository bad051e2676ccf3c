"""The one place where seconds, samples, input frames and output frames meet.

Every conversion between time units in audioadapt goes through a
:class:`FrameGrid`. Two frame rates exist:

* *input frames*: STFT frames of the feature extractor (hop ``hop_length``);
* *output frames*: frames of a model after its time pooling, e.g. the CRNN
  pools time by 2 twice, so 640 input frames become 160 output frames of
  ``4 * 345 / 22050 = 62.585 ms``.

Pooling is given as the per-layer time factors (``(2, 2, 1, ...)``), the
way the model applies them; the output length applies each layer's floor in
turn (for whole-number factors this equals one floor division by their
product).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from audioadapt.features.config import FeatureConfig

Seconds = float


@dataclass(frozen=True)
class FrameGrid:
    """Time geometry of features and model outputs.

    Parameters
    ----------
    sample_rate: samples per second.
    hop_length: STFT hop in samples.
    n_fft: STFT size (only matters when ``center`` is false).
    center: whether the STFT is centred (frames = 1 + samples // hop).
    time_pooling: per-layer time pooling factors of the model.
    """

    sample_rate: int
    hop_length: int
    n_fft: int
    center: bool = True
    time_pooling: tuple[int, ...] = field(default_factory=tuple)

    @classmethod
    def from_features(cls, cfg: FeatureConfig, time_pooling: tuple[int, ...] = ()) -> "FrameGrid":
        """Grid of a feature configuration and a model's time pooling."""
        return cls(cfg.sample_rate, cfg.hop_length, cfg.n_fft, cfg.center, tuple(time_pooling))

    def with_pooling(self, time_pooling: tuple[int, ...]) -> "FrameGrid":
        """The same input grid with another model pooling."""
        return FrameGrid(self.sample_rate, self.hop_length, self.n_fft, self.center, tuple(time_pooling))

    # -- rates -------------------------------------------------------------
    @property
    def pooling_factor(self) -> int:
        """Total time pooling (product of the per-layer factors)."""
        return math.prod(self.time_pooling) if self.time_pooling else 1

    @property
    def input_hop_seconds(self) -> Seconds:
        """Duration of one input (STFT) frame step."""
        return self.hop_length / self.sample_rate

    @property
    def output_hop_seconds(self) -> Seconds:
        """Duration of one model output frame (62.585 ms for the SED defaults)."""
        return self.hop_length * self.pooling_factor / self.sample_rate

    # -- seconds <-> samples -----------------------------------------------
    def seconds_to_samples(self, seconds: Seconds) -> int:
        """Nearest whole number of samples."""
        return int(round(seconds * self.sample_rate))

    def samples_to_seconds(self, samples: int) -> Seconds:
        return samples / self.sample_rate

    # -- samples -> frames -------------------------------------------------
    def num_input_frames(self, num_samples: int) -> int:
        """STFT frames for a signal of ``num_samples`` samples."""
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        if self.center:
            # A centred STFT pads n_fft // 2 samples on each side.
            padded = num_samples + 2 * (self.n_fft // 2)
            return 1 + (padded - self.n_fft) // self.hop_length
        if num_samples < self.n_fft:
            return 0
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def num_output_frames(self, num_input_frames: int) -> int:
        """Model output frames: each pooling layer floors in turn."""
        n = num_input_frames
        for factor in self.time_pooling:
            n //= factor
        return n

    def num_output_frames_for_seconds(self, seconds: Seconds) -> int:
        """Output frames of a clip of the given length."""
        return self.num_output_frames(self.num_input_frames(self.seconds_to_samples(seconds)))

    # -- seconds <-> output frames -------------------------------------------
    def seconds_to_output_frame(self, seconds: Seconds | np.ndarray, rounding: str = "floor"):
        """Output-frame index of a time; ``rounding`` is ``floor``, ``ceil`` or ``round``.

        A small tolerance keeps exact frame boundaries from flipping because
        of float error (``3 * hop`` must map to frame 3 under ``ceil``).
        """
        x = np.asarray(seconds, dtype=np.float64) / self.output_hop_seconds
        if rounding == "floor":
            out = np.floor(x + 1e-9)
        elif rounding == "ceil":
            out = np.ceil(x - 1e-9)
        elif rounding == "round":
            out = np.round(x)
        else:
            raise ValueError(f"rounding must be floor, ceil or round, got {rounding!r}")
        out = out.astype(np.int64)
        return int(out) if out.ndim == 0 else out

    def output_frame_to_seconds(self, frames: int | np.ndarray):
        """Start time of output frame(s) ``frames`` (frame ``n`` ends at ``n + 1``)."""
        out = np.asarray(frames, dtype=np.float64) * self.output_hop_seconds
        return float(out) if out.ndim == 0 else out

    def seconds_to_output_frames(self, seconds: Seconds) -> int:
        """A duration in output frames, rounded to the nearest whole frame (at least 1)."""
        return max(1, int(round(seconds / self.output_hop_seconds)))

    def output_timestamps(self, num_frames: int) -> np.ndarray:
        """The ``num_frames + 1`` frame boundaries in seconds (sed_scores_eval convention)."""
        return np.arange(num_frames + 1, dtype=np.float64) * self.output_hop_seconds
