"""Feature extractor F: the DESED-style 7-block CRNN (JiaKai lineage).

Park et al. describe F only as "seven CNN blocks and two Bi-GRU", after the
CRNN of L. JiaKai (DCASE 2018 winner), whose code is not public. Our working
definition is the only public network of that shape: the DCASE 2020+ baseline
CRNN (``turpaultn/dcase20_task4``, ``DCASE-REPO/DESED_task`` ``desed_task/nnet``):

=======  ==  ==  ==  ===  ===  ===  ===
block    1   2   3   4    5    6    7
filters  16  32  64  128  128  128  128
pool     2,2 2,2 1,2 1,2  1,2  1,2  1,2
=======  ==  ==  ==  ===  ===  ===  ===

Each block is Conv2d 3x3 (stride 1, pad 1) -> BatchNorm2d -> GLU -> Dropout
-> AvgPool2d (pool as ``(time, freq)``); then a 2-layer BiGRU with 128 units
per direction. A ``(batch, 640, 128)`` log-mel becomes ``(batch, 160, 256)``.
It is not claimed to be the paper's exact network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from audioadapt.models.blocks import Activation, ConvBlock, InitScheme, init_weights


@dataclass(frozen=True)
class CRNNConfig:
    """Every size of the CRNN feature extractor.

    Attributes
    ----------
    filters: output channels of each conv block.
    kernel_sizes: odd square kernel of each block (stride 1, "same" padding).
    pooling: ``(time, freq)`` average-pooling factors of each block.
    dropout: dropout after each block's activation.
    activation: ``"glu"`` is DESED's channel-preserving gate
        ``(W_c x + b) * sigmoid(x)``; ``"glu_classic"`` doubles the conv
        channels and gates one half with the other; ``"relu"``.
    bn_eps: BatchNorm epsilon (DESED: 1e-3).
    bn_momentum: BatchNorm momentum in **PyTorch's** convention,
        ``running = (1 - m) * running + m * batch``. DESED passes 0.99 in this
        convention, so the running statistics follow mostly the latest batch
        (with small batches, the statistics used at evaluation are those of
        the last few clips). That is *not* Keras' ``momentum=0.99``
        (``running = m * running + (1 - m) * batch``), which corresponds to
        0.01 here. ``null``: the cumulative average over all training batches
        (PyTorch's ``momentum=None``). The fused CPU kernel updates the
        running statistics with the same momentum.
    rnn_type: ``"gru"`` (default) or ``"lstm"``.
    rnn_hidden: units per direction.
    rnn_layers: stacked recurrent layers.
    rnn_bidirectional: bidirectional recurrence (output ``2 * rnn_hidden``).
    rnn_dropout: dropout between recurrent layers (DESED: 0).
    init: ``"dcase2019"`` (the 2019 baseline's scheme, see
        :func:`audioadapt.models.blocks.init_weights`) or ``"torch_default"``.
        A :class:`~audioadapt.models.sed_model.SedModel` applies the same
        scheme to its heads and domain classifier.
    memory_format: layout of the conv stack's weights and activations.
        ``"channels_last"`` (NHWC) lets oneDNN run the convolutions without
        layout conversions: 1.4-1.5x faster training and inference of the
        paper-size model on CPU (``benchmarks/results/sed_throughput_intel-xeon-amx_channels_last_comparison.md``).
        The numbers are the same up to float rounding; it is not an
        architecture setting.
    fused_cpu_max_channels: in training on CPU, blocks with at most this
        many output channels run BatchNorm, GLU, dropout and pooling through
        the fused kernel of :mod:`audioadapt.models.fused_tail` (built with the
        system C compiler on first use; without one, PyTorch operators). These
        are the first blocks, whose large few-channel activations make the
        operator-by-operator path memory-bound (paper-size model at batch 64:
        training step 3.3 -> 2.6 s, inference 0.76 -> 0.66 s per batch on a 2-core Intel Xeon with
        AVX-512/AMX, ``benchmarks/results/sed_throughput_intel-xeon-amx.md``). On a 2-core AMD EPYC
        with AVX2 and no AVX-512 (shared, load 3-5, one thread, variants interleaved in one process),
        the small CRNN (filters 16/32/64, 320 frames x 64 mels, batch 8) with the kernel took 0.90 of
        the operator path's time per training step and 0.87 per inference batch, the paper-size model
        0.94 and 0.92 (before the kernel's vectors followed the CPU's width: 1.33 and 1.46, 1.28 and
        1.41; :mod:`audioadapt.models.fused_tail`). At 128 channels PyTorch's operators are faster.
        ``0`` turns it off. Not an architecture setting either: same numbers up to float rounding,
        same dropout masks.
    """

    filters: tuple[int, ...] = (16, 32, 64, 128, 128, 128, 128)
    kernel_sizes: tuple[int, ...] = (3, 3, 3, 3, 3, 3, 3)
    pooling: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2))
    dropout: float = 0.5
    activation: Activation = "glu"
    bn_eps: float = 1e-3
    bn_momentum: float | None = 0.99
    rnn_type: Literal["gru", "lstm"] = "gru"
    rnn_hidden: int = 128
    rnn_layers: int = 2
    rnn_bidirectional: bool = True
    rnn_dropout: float = 0.0
    init: InitScheme = "dcase2019"
    memory_format: Literal["channels_last", "contiguous"] = "channels_last"
    fused_cpu_max_channels: int = 64

    def __post_init__(self) -> None:
        n = len(self.filters)
        if n == 0:
            raise ValueError("filters must name at least one conv block")
        if len(self.kernel_sizes) != n or len(self.pooling) != n:
            raise ValueError(
                f"filters, kernel_sizes and pooling need one entry per block, got "
                f"{n}, {len(self.kernel_sizes)} and {len(self.pooling)}"
            )
        if any(f <= 0 for f in self.filters):
            raise ValueError(f"filters must be positive, got {self.filters}")
        if any(k <= 0 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive odd integers, got {self.kernel_sizes}")
        if any(len(p) != 2 or min(p) < 1 for p in self.pooling):
            raise ValueError(f"pooling must hold (time, freq) pairs >= 1, got {self.pooling}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.rnn_dropout < 1.0:
            raise ValueError(f"rnn_dropout must lie in [0, 1), got {self.rnn_dropout}")
        if self.bn_momentum is not None and not 0.0 <= self.bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must lie in [0, 1] or be null, got {self.bn_momentum}")
        if self.bn_eps <= 0:
            raise ValueError(f"bn_eps must be positive, got {self.bn_eps}")
        if self.fused_cpu_max_channels < 0:
            raise ValueError(f"fused_cpu_max_channels must be >= 0, got {self.fused_cpu_max_channels}")
        if self.rnn_hidden <= 0 or self.rnn_layers <= 0:
            raise ValueError(
                f"rnn_hidden and rnn_layers must be positive, got {self.rnn_hidden}, {self.rnn_layers}"
            )

    @property
    def time_pooling(self) -> tuple[int, ...]:
        """Per-block time pooling factors, for :class:`audioadapt.features.frames.FrameGrid`."""
        return tuple(int(p[0]) for p in self.pooling)

    @property
    def freq_pooling(self) -> tuple[int, ...]:
        """Per-block frequency pooling factors."""
        return tuple(int(p[1]) for p in self.pooling)

    @property
    def output_dim(self) -> int:
        """Feature size of F per output frame (256 for the defaults)."""
        return self.rnn_hidden * (2 if self.rnn_bidirectional else 1)

    def freq_bins_out(self, n_mels: int) -> int:
        """Frequency bins left after the conv stack (each pooling floors)."""
        n = n_mels
        for factor in self.freq_pooling:
            n //= factor
        return n


class CRNN(nn.Module):
    """Shared feature extractor F: conv blocks then a recurrent stack.

    Parameters
    ----------
    cfg:
        Architecture.
    n_mels:
        Mel bins of the input (from the feature configuration).

    Notes
    -----
    When the conv stack leaves more than one frequency bin, channels and bins
    are flattened into the recurrent input (``channel * freq``). Padded frames
    pass through the conv stack and the recurrence like real ones (as in
    DESED); they are excluded later, from pooling and losses, through the
    frame mask.
    """

    def __init__(self, cfg: CRNNConfig, n_mels: int):
        super().__init__()
        freq_out = cfg.freq_bins_out(n_mels)
        if freq_out < 1:
            raise ValueError(
                f"the conv stack pools {n_mels} mel bins down to nothing (frequency "
                f"pooling {cfg.freq_pooling}, total {math.prod(cfg.freq_pooling)})"
            )
        self.cfg = cfg
        self.n_mels = n_mels
        blocks = []
        in_ch = 1
        for out_ch, k, pool in zip(cfg.filters, cfg.kernel_sizes, cfg.pooling):
            blocks.append(
                ConvBlock(in_ch, out_ch, k, pool, cfg.dropout, cfg.activation, cfg.bn_eps, cfg.bn_momentum,
                          fused_cpu=out_ch <= cfg.fused_cpu_max_channels)
            )
            in_ch = out_ch
        self.cnn = nn.Sequential(*blocks)
        rnn_cls = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            input_size=cfg.filters[-1] * freq_out,
            hidden_size=cfg.rnn_hidden,
            num_layers=cfg.rnn_layers,
            batch_first=True,
            bidirectional=cfg.rnn_bidirectional,
            dropout=cfg.rnn_dropout if cfg.rnn_layers > 1 else 0.0,
        )
        init_weights(self, cfg.init)
        self.channels_last = cfg.memory_format == "channels_last"
        if self.channels_last:
            self.cnn.to(memory_format=torch.channels_last)

    @property
    def time_pooling(self) -> tuple[int, ...]:
        """Per-block time pooling factors (build a ``FrameGrid`` with them)."""
        return self.cfg.time_pooling

    @property
    def output_dim(self) -> int:
        return self.cfg.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Extract frame features.

        Parameters
        ----------
        x:
            Log-mel features ``(batch, frame, mel)``.

        Returns
        -------
        ``(batch, out_frame, feature)``, ``feature = output_dim``; ``out_frame``
        applies each time pooling factor with a floor (640 -> 160).
        """
        if x.dim() != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"expected features (batch, frame, {self.n_mels}), got {tuple(x.shape)}")
        if x.shape[1] < math.prod(self.time_pooling):
            raise ValueError(
                f"{x.shape[1]} input frames are fewer than the time pooling ({math.prod(self.time_pooling)})"
            )
        x4 = x.unsqueeze(1)  # (batch, 1, frame, mel)
        if self.channels_last:
            x4 = x4.contiguous(memory_format=torch.channels_last)
        h = self.cnn(x4)  # (batch, channel, out_frame, freq)
        b, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, c * f)
        out, _ = self.rnn(h)
        return out


__all__ = ["CRNN", "CRNNConfig"]
