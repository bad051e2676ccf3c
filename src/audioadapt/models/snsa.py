"""SNSA encoder of NNPM: conv front end, 2-layer BLSTM, self-attention pooling.

One self-attention module of the paper's Siamese network ("Siamese" only
means that source and target utterances go through the **same** weights):

1. conv front end, each layer ``conv -> [BatchNorm] -> temporal MaxPool -> ReLU``
   (the paper puts the ReLU after the max-pooling):

   * ``conv1d`` (default): ``Conv1d`` over time with the mel bins as input
     channels, ``mels -> 128 -> 128``, kernel 3, time pooling ``(2, 2)``;
   * ``conv2d``: ``Conv2d`` ``1 -> 32 -> 64`` (3x3) pooled over time and
     frequency, channels x remaining bins flattened into the BLSTM input
     (see :data:`SNSA_CONV2D`);

2. a BLSTM stack (88 units per direction, 2 layers) with dropout 0.5 after
   **every** layer, so ``H`` is ``(batch, frame, 2u)``;
3. self-attention pooling (eqs. 1-2, Lin et al. 2017)::

       alpha = softmax_t(w2^T tanh(W1 H^T))     (batch, frame)
       f     = alpha H                          (batch, 2u)

   with ``W1 (d_a, 2u)``, ``w2 (d_a,)``, ``d_a = 64``; padded frames get
   ``alpha = 0``. ``attention_bias`` adds a bias inside the ``tanh``, which is
   the hierarchical-attention form of Yang et al. (2016).

Padding: with a frame mask, padded positions are zeroed before every conv
layer, the BLSTM runs on packed sequences and the attention gives them zero
weight, so a padded utterance is encoded exactly as the unpadded one.
Without a mask (the paper's fixed 7.5 s zero-padded input) every frame counts.

With 80 mel bins the defaults hold about 0.433 M parameters, close to the
paper's 0.46 M (the FC(4) classifier of
:class:`~audioadapt.models.ser_model.SerModel` adds 708).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from audioadapt.errors import ConfigError
from audioadapt.models.blocks import InitScheme, init_weights, pool_frame_mask

ConvType = Literal["conv1d", "conv2d"]


@dataclass(frozen=True)
class SnsaConfig:
    """Every size of the SNSA encoder.

    Attributes
    ----------
    conv_type: ``conv1d`` (mel bins as channels, pooling purely temporal) or
        ``conv2d`` (one input channel, pooling over time and frequency).
    conv_channels: output channels of each conv layer.
    kernel_size: odd kernel (square for ``conv2d``), stride 1, "same" padding.
    time_pooling: temporal max-pooling factor of each conv layer (floored).
    freq_pooling: frequency max-pooling factor of each conv layer; only used
        by ``conv2d``.
    batch_norm: BatchNorm after each conv (the paper mentions none).
    lstm_hidden: BLSTM units per direction (``u``); the feature is ``2u``.
    lstm_layers: stacked BLSTM layers.
    dropout: dropout after every BLSTM layer (paper: 0.5).
    attention_dim: ``d_a``, rows of ``W1``.
    attention_bias: bias inside the ``tanh`` of eq. 1 (Yang et al.'s form).
    pack_padded: with a frame mask, run the BLSTM on packed sequences so that
        padded frames never enter the recurrence (the backward direction then
        starts at each utterance's last real frame). Needs prefix masks.
    init: weight initialisation (see :func:`audioadapt.models.blocks.init_weights`;
        its ``dcase2019`` scheme leaves ``Conv1d`` layers at PyTorch's default).
    """

    conv_type: ConvType = "conv1d"
    conv_channels: tuple[int, ...] = (128, 128)
    kernel_size: int = 3
    time_pooling: tuple[int, ...] = (2, 2)
    freq_pooling: tuple[int, ...] = (4, 8)
    batch_norm: bool = False
    lstm_hidden: int = 88
    lstm_layers: int = 2
    dropout: float = 0.5
    attention_dim: int = 64
    attention_bias: bool = False
    pack_padded: bool = True
    init: InitScheme = "torch_default"

    def __post_init__(self) -> None:
        if self.conv_type not in ("conv1d", "conv2d"):
            raise ConfigError(f"conv_type must be 'conv1d' or 'conv2d', got {self.conv_type!r}")
        n = len(self.conv_channels)
        if n == 0:
            raise ConfigError("conv_channels must name at least one conv layer")
        if any(c <= 0 for c in self.conv_channels):
            raise ConfigError(f"conv_channels must be positive, got {self.conv_channels}")
        if len(self.time_pooling) != n:
            raise ConfigError(f"time_pooling needs one factor per conv layer ({n}), got {self.time_pooling}")
        if self.conv_type == "conv2d" and len(self.freq_pooling) != n:
            raise ConfigError(f"freq_pooling needs one factor per conv layer ({n}), got {self.freq_pooling}")
        if any(p < 1 for p in self.time_pooling + self.freq_pooling):
            raise ConfigError("pooling factors must be >= 1")
        if self.kernel_size <= 0 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd integer, got {self.kernel_size}")
        if self.lstm_hidden <= 0 or self.lstm_layers <= 0:
            raise ConfigError(
                f"lstm_hidden and lstm_layers must be positive, got {self.lstm_hidden}, {self.lstm_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.attention_dim <= 0:
            raise ConfigError(f"attention_dim must be positive, got {self.attention_dim}")
        if self.init not in ("dcase2019", "torch_default"):
            raise ConfigError(f"init must be 'dcase2019' or 'torch_default', got {self.init!r}")

    @property
    def output_dim(self) -> int:
        """Size ``2u`` of the utterance feature."""
        return 2 * self.lstm_hidden

    def freq_bins_out(self, n_mels: int) -> int:
        """Frequency bins left after the ``conv2d`` front end (each pooling floors)."""
        n = n_mels
        for factor in self.freq_pooling:
            n //= factor
        return n

    def lstm_input_dim(self, n_mels: int) -> int:
        """Feature size per frame entering the BLSTM."""
        if self.conv_type == "conv1d":
            return self.conv_channels[-1]
        return self.conv_channels[-1] * self.freq_bins_out(n_mels)


#: The notes' Conv2d alternative: 1 -> 32 -> 64 (3x3), frequency pooled x32
#: in all; with 128 mel bins the BLSTM input is 256 and the encoder holds
#: about 0.46 M parameters.
SNSA_CONV2D = SnsaConfig(conv_type="conv2d", conv_channels=(32, 64))


class SnsaConvLayer(nn.Module):
    """``conv -> [BatchNorm] -> MaxPool -> ReLU`` in 1-D or 2-D.

    Shapes: ``(batch, channel, frame)`` (1-D) or ``(batch, channel, frame, freq)`` (2-D).
    """

    def __init__(
        self, conv_type: ConvType, in_ch: int, out_ch: int, kernel: int, pool: tuple[int, ...], batch_norm: bool
    ):
        super().__init__()
        if conv_type == "conv1d":
            self.conv: nn.Module = nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2)
            self.norm: nn.Module = nn.BatchNorm1d(out_ch) if batch_norm else nn.Identity()
            self.pool: nn.Module = nn.MaxPool1d(pool[0])
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)
            self.norm = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
            self.pool = nn.MaxPool2d(tuple(pool))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pool(self.norm(self.conv(x))))


class SelfAttentionPooling(nn.Module):
    """Eqs. 1-2: ``alpha = softmax_t(w2^T tanh(W1 h_t [+ b]))``, ``f = sum_t alpha_t h_t``.

    Parameters
    ----------
    in_dim: size ``2u`` of each ``h_t``.
    attention_dim: ``d_a``.
    bias: bias inside the ``tanh``.
    """

    def __init__(self, in_dim: int, attention_dim: int, bias: bool):
        super().__init__()
        self.w1 = nn.Linear(in_dim, attention_dim, bias=bias)
        self.w2 = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``h (batch, frame, feature)``.

        Parameters
        ----------
        h: BLSTM outputs.
        mask: ``(batch, frame)`` boolean, ``True`` on real frames; every row
            needs one real frame.

        Returns
        -------
        ``(f, alpha)``: ``(batch, feature)`` and ``(batch, frame)``, with
        ``alpha = 0`` on padded frames.
        """
        scores = self.w2(torch.tanh(self.w1(h))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(scores, dim=1)
        return torch.bmm(alpha.unsqueeze(1), h).squeeze(1), alpha


@dataclass
class SnsaOutput:
    """Everything one SNSA pass computes.

    Attributes
    ----------
    feature: utterance feature ``f`` ``(batch, 2u)``, not normalised.
    attention: ``alpha`` ``(batch, frame)`` at the output frame rate.
    frames: BLSTM outputs ``H`` ``(batch, frame, 2u)`` (after dropout).
    frame_mask: ``(batch, frame)`` boolean at the output rate, or ``None``.
    """

    feature: torch.Tensor
    attention: torch.Tensor
    frames: torch.Tensor
    frame_mask: torch.Tensor | None


class SnsaEncoder(nn.Module):
    """One SNSA module; the same instance encodes source and target utterances.

    Parameters
    ----------
    cfg: architecture.
    n_mels: mel bins of the input features.
    """

    def __init__(self, cfg: SnsaConfig, n_mels: int):
        super().__init__()
        if n_mels <= 0:
            raise ConfigError(f"n_mels must be positive, got {n_mels}")
        if cfg.conv_type == "conv2d" and cfg.freq_bins_out(n_mels) < 1:
            raise ConfigError(
                f"the conv2d front end pools {n_mels} mel bins down to nothing "
                f"(frequency pooling {cfg.freq_pooling}, total {math.prod(cfg.freq_pooling)})"
            )
        self.cfg = cfg
        self.n_mels = n_mels
        layers = []
        in_ch = n_mels if cfg.conv_type == "conv1d" else 1
        for i, out_ch in enumerate(cfg.conv_channels):
            pool = (cfg.time_pooling[i],) if cfg.conv_type == "conv1d" else (cfg.time_pooling[i], cfg.freq_pooling[i])
            layers.append(SnsaConvLayer(cfg.conv_type, in_ch, out_ch, cfg.kernel_size, pool, cfg.batch_norm))
            in_ch = out_ch
        self.conv = nn.ModuleList(layers)
        size = cfg.lstm_input_dim(n_mels)
        self.lstm = nn.ModuleList()
        for _ in range(cfg.lstm_layers):
            self.lstm.append(nn.LSTM(size, cfg.lstm_hidden, batch_first=True, bidirectional=True))
            size = 2 * cfg.lstm_hidden
        self.dropout = nn.Dropout(cfg.dropout)
        self.attention = SelfAttentionPooling(size, cfg.attention_dim, cfg.attention_bias)
        init_weights(self, cfg.init)
        self._frozen_conv = 0

    # -- geometry ----------------------------------------------------------
    @property
    def output_dim(self) -> int:
        return self.cfg.output_dim

    @property
    def time_pooling(self) -> tuple[int, ...]:
        """Per-layer time pooling (build a ``FrameGrid`` with it)."""
        return self.cfg.time_pooling

    # -- freezing ------------------------------------------------------------
    @property
    def frozen_conv(self) -> int:
        """How many leading conv layers are frozen."""
        return self._frozen_conv

    def freeze_conv(self, n: int) -> None:
        """Freeze the first ``n`` conv layers and unfreeze the others.

        Frozen layers get ``requires_grad = False`` and, when they have
        BatchNorm, keep it in eval mode (running statistics fixed) whatever
        :meth:`train` is called with. ``n = 0`` unfreezes everything; the
        paper freezes 2 (the whole front end). The setting is not part of
        the state dict: call it again after building a model to resume.
        """
        if not 0 <= n <= len(self.conv):
            raise ConfigError(f"can freeze 0 to {len(self.conv)} conv layers, got {n}")
        self._frozen_conv = n
        for i, layer in enumerate(self.conv):
            for p in layer.parameters():
                p.requires_grad_(i >= n)
        self.train(self.training)

    def train(self, mode: bool = True) -> "SnsaEncoder":
        super().train(mode)
        for layer in self.conv[: self._frozen_conv]:
            layer.eval()
        return self

    # -- forward -------------------------------------------------------------
    def _conv_front_end(self, x: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """``(batch, frame, mel) -> (batch, out_frame, feature)``.

        With a mask, padded positions are zeroed before every conv layer, so a
        padded utterance gives exactly what the unpadded one gives.
        """
        masks = []
        if frame_mask is not None:
            for i in range(len(self.conv)):
                masks.append(pool_frame_mask(frame_mask, self.time_pooling[:i]))
        if self.cfg.conv_type == "conv1d":
            h = x.transpose(1, 2)  # (batch, mel, frame)
            for i, layer in enumerate(self.conv):
                if masks:
                    h = h * masks[i][:, : h.shape[2]].unsqueeze(1).to(h.dtype)
                h = layer(h)
            return h.transpose(1, 2)  # (batch, frame, channel)
        h = x.unsqueeze(1)  # (batch, 1, frame, mel)
        for i, layer in enumerate(self.conv):
            if masks:
                h = h * masks[i][:, : h.shape[2]].unsqueeze(1).unsqueeze(-1).to(h.dtype)
            h = layer(h)
        b, c, t, f = h.shape
        return h.permute(0, 2, 1, 3).reshape(b, t, c * f)

    def _blstm(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        lengths = None
        if mask is not None and self.cfg.pack_padded and not bool(mask.all()):
            lengths = mask.sum(dim=1)
            prefix = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
            if not torch.equal(prefix, mask):
                raise ValueError("pack_padded needs prefix frame masks (real frames first, then padding)")
            lengths = lengths.cpu()
        total = h.shape[1]
        for lstm in self.lstm:
            if lengths is None:
                h, _ = lstm(h)
            else:
                packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
                out, _ = lstm(packed)
                h, _ = pad_packed_sequence(out, batch_first=True, total_length=total)
            h = self.dropout(h)
        return h

    def encode(self, features: torch.Tensor, frame_mask: torch.Tensor | None = None) -> SnsaOutput:
        """Run the whole encoder and keep the intermediate outputs.

        Parameters
        ----------
        features: log-mel ``(batch, frame, mel)``.
        frame_mask: ``(batch, frame)`` boolean at the **input** rate, ``True``
            on real frames; pooled like the conv layers (an output frame is
            real when its whole window is).
        """
        if features.dim() != 3 or features.shape[-1] != self.n_mels:
            raise ValueError(f"expected features (batch, frame, {self.n_mels}), got {tuple(features.shape)}")
        if features.shape[1] < math.prod(self.time_pooling):
            raise ValueError(
                f"{features.shape[1]} input frames are fewer than the time pooling ({math.prod(self.time_pooling)})"
            )
        mask = None
        if frame_mask is not None:
            if frame_mask.shape != features.shape[:2]:
                raise ValueError(
                    f"frame mask must be (batch, frame) = {tuple(features.shape[:2])}, got {tuple(frame_mask.shape)}"
                )
            mask = pool_frame_mask(frame_mask, self.time_pooling)
            if not bool(mask.any(dim=1).all()):
                raise ValueError(
                    f"every utterance needs at least {math.prod(self.time_pooling)} real input frames"
                )
        h = self._conv_front_end(features, frame_mask)
        h = self._blstm(h, mask)
        f, alpha = self.attention(h, mask)
        return SnsaOutput(f, alpha, h, mask)

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Utterance feature ``f`` ``(batch, 2u)`` of log-mel ``(batch, frame, mel)``."""
        return self.encode(features, frame_mask).feature


__all__ = [
    "ConvType",
    "SNSA_CONV2D",
    "SelfAttentionPooling",
    "SnsaConfig",
    "SnsaConvLayer",
    "SnsaEncoder",
    "SnsaOutput",
]
