"""Building blocks of the SED networks: gated activations, the conv block,
frame-mask pooling and weight initialisation.

Tensor axes are named as in the rest of the package: a conv feature map is
``(batch, channel, frame, freq)``; a frame mask is ``(batch, frame)`` with
``True`` on real frames and ``False`` on padding.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Activation = Literal["glu", "glu_classic", "relu"]
InitScheme = Literal["dcase2019", "torch_default"]


class ChannelGLU(nn.Module):
    """Channel-preserving gated linear unit of the DESED baselines.

    ``y = (W_c x + b) * sigmoid(x)``: a per-position linear map over the
    channel axis, gated by the sigmoid of the *input*. Unlike the classic GLU
    it keeps the channel count and adds ``C * C + C`` parameters.

    Shapes: ``(batch, channel, frame, freq) -> (batch, channel, frame, freq)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The channel map as a 1x1 convolution: the same numbers as applying ``self.linear``
        # to the channel-last view, without the two layout copies that view costs.
        lin = F.conv2d(x, self.linear.weight[:, :, None, None], self.linear.bias)
        return lin * torch.sigmoid(x)


class MaskDropout(nn.Module):
    """Inverted dropout (as :class:`torch.nn.Dropout`) with a cheaper random draw on CPU.

    Each element is kept with probability ``q`` and scaled by ``1 / q``, so the
    expectation is unchanged. On CPU the mask comes from small random integers,
    eight 8-bit or four 16-bit ones per 64-bit draw of the generator:
    ``F.dropout``'s ``bernoulli_`` and a float ``uniform_`` both draw once per
    element, serially, and on the large early-block activations of the CRNN
    that draw was the most expensive operator of a training step
    (``benchmarks/sed_profile.py``). 8-bit integers are used when ``p`` is a
    multiple of ``2**-8`` (0.5, 0.25, ...), which is then exact; otherwise
    ``q = 1 - p`` is rounded to a multiple of ``2**-16`` (off by less than
    ``2**-17``) and the scale uses the rounded ``q``. The random stream is not
    ``nn.Dropout``'s. On other devices it is ``F.dropout``.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = p
        self.bits = 8 if float(p * 256).is_integer() else 16
        levels = 1 << self.bits
        #: an element is kept where its signed draw (uniform over [-levels/2, levels/2)) is >= threshold
        self.threshold = round(p * levels) - levels // 2
        kept_levels = levels // 2 - self.threshold
        if kept_levels <= 0:
            raise ValueError(f"dropout probability {p} rounds to 1 at a resolution of 2**-16")
        #: the factor kept elements are multiplied by (1 / the rounded keep probability)
        self.scale = levels / kept_levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * self._keep_scale(x)

    def draws(self, x: torch.Tensor) -> torch.Tensor:
        """One signed ``bits``-bit random integer per element of ``x``, flat, in ``x``'s memory order."""
        n = x.numel()
        per_word = 64 // self.bits
        words = torch.empty((n + per_word - 1) // per_word, dtype=torch.int64, device=x.device)
        small = torch.int8 if self.bits == 8 else torch.int16
        return words.random_(-(2**63), 2**63 - 1).view(small)[:n]

    def _keep_scale(self, x: torch.Tensor) -> torch.Tensor:
        """``1 / q`` where an element is kept and 0 elsewhere, in ``x``'s layout."""
        draws = self.draws(x)
        dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
        draws = draws.as_strided(x.shape, x.stride()) if dense else draws.view(x.shape)
        exact = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32  # holds every int16
        return draws.to(exact).ge_(self.threshold).mul_(self.scale).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ClassicGLU(nn.Module):
    """Classic GLU (Dauphin et al.): split the channels into ``a, b`` and return ``a * sigmoid(b)``.

    Shapes: ``(batch, 2 * channel, frame, freq) -> (batch, channel, frame, freq)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(x, dim=1)


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm2d -> activation -> Dropout -> AvgPool2d.

    Parameters
    ----------
    in_channels, out_channels:
        Channels before and after the block.
    kernel_size:
        Odd square kernel; stride 1 and padding ``kernel_size // 2`` keep the
        frame and frequency sizes before pooling.
    pooling:
        ``(time, freq)`` average-pooling factors; each axis is floored.
    dropout:
        Dropout probability after the activation.
    activation:
        ``"glu"`` (DESED channel-preserving form), ``"glu_classic"`` (the conv
        outputs ``2 * out_channels`` that the GLU halves) or ``"relu"``.
    bn_eps, bn_momentum:
        BatchNorm settings; ``bn_momentum`` uses PyTorch's convention
        ``running = (1 - m) * running + m * batch`` (``None``: cumulative average).
    fused_cpu:
        On CPU, run BatchNorm, GLU, dropout and pooling through the fused kernel of
        :mod:`audioadapt.models.fused_tail` where it applies (see :meth:`fusable`): in training, and in
        eval mode without autograd (``no_grad`` / ``inference_mode``). The numbers are those of the
        operator-by-operator path up to float rounding, and the dropout masks are the same.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        pooling: tuple[int, int],
        dropout: float,
        activation: Activation,
        bn_eps: float,
        bn_momentum: float | None,
        fused_cpu: bool = False,
    ):
        super().__init__()
        self.fused_cpu = fused_cpu and activation == "glu"
        conv_out = 2 * out_channels if activation == "glu_classic" else out_channels
        self.conv = nn.Conv2d(in_channels, conv_out, kernel_size, stride=1, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(conv_out, eps=bn_eps, momentum=bn_momentum)
        if activation == "glu":
            self.act: nn.Module = ChannelGLU(out_channels)
        elif activation == "glu_classic":
            self.act = ClassicGLU()
        elif activation == "relu":
            self.act = nn.ReLU()
        else:
            raise ValueError(f"unknown activation {activation!r}")
        self.dropout = MaskDropout(dropout)
        self.pool = nn.AvgPool2d(tuple(pooling))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channel, frame, freq) -> (batch, out_channel, frame', freq')``.

        In eval mode the BatchNorm, an affine map with its running statistics,
        is folded into the convolution's weight and bias: the same numbers up to
        float rounding, one pass over the largest activation less. Where
        :meth:`fusable` allows, the fused CPU kernel runs the tail instead.
        """
        if self.fusable(x) and (self.training or (self.norm.track_running_stats and not torch.is_grad_enabled())):
            return self._fused_forward(x)
        if self.training or not self.norm.track_running_stats:
            y = self.norm(self.conv(x))
        else:
            weight, bias = self.folded_conv()
            y = self.conv._conv_forward(x, weight, bias)
        return self.pool(self.dropout(self.act(y)))

    def fusable(self, x: torch.Tensor) -> bool:
        """Whether this forward can take the fused CPU kernel (eval mode also needs no autograd).

        It needs: ``fused_cpu``; float32 channels-last input on CPU, outside autocast; a plain affine
        ``BatchNorm2d`` (a synchronised one, under DDP, keeps the operator path); the channel GLU; 8-bit
        dropout draws (``p`` a multiple of 1/256); and a kernel that builds here. The kernel is a
        ``torch.library`` operator, so ``torch.compile``, ``torch.export`` and ``torch.jit.trace`` record it
        as one node; an exporter for another runtime turns ``fused_cpu`` off to get standard operators.
        """
        from audioadapt.models.fused_tail import fused_tail_available

        return (self.fused_cpu and x.device.type == "cpu" and x.dtype == torch.float32
                and x.is_contiguous(memory_format=torch.channels_last)
                and type(self.norm) is nn.BatchNorm2d and self.norm.affine
                and (self.dropout.p == 0.0 or self.dropout.bits == 8)
                and not torch.is_autocast_enabled("cpu") and fused_tail_available())

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        from audioadapt.models.fused_tail import fused_block_tail, fused_block_tail_eval

        y = self.conv(x)
        pool = self.pool.kernel_size
        pool = (pool, pool) if isinstance(pool, int) else tuple(pool)
        assert isinstance(self.act, ChannelGLU)
        if not self.training:
            scale, shift = self.running_affine()
            return fused_block_tail_eval(y, scale, shift, self.act.linear.weight, self.act.linear.bias, pool)
        if self.dropout.p > 0.0:
            draws, threshold, scale = self.dropout.draws(y), self.dropout.threshold, self.dropout.scale
        else:
            draws, threshold, scale = None, -(2**15), 1.0
        return fused_block_tail(y, self.norm, self.act.linear.weight, self.act.linear.bias, draws, threshold,
                                scale, pool)

    def running_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, shift)`` with ``norm(y) = scale * y + shift`` per channel (running statistics; eval mode)."""
        norm = self.norm
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        return scale, shift

    def folded_conv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias of ``norm(conv(x))`` as one convolution (running statistics; eval mode)."""
        scale, shift = self.running_affine()
        conv = self.conv
        bias = shift if conv.bias is None else conv.bias * scale + shift
        return conv.weight * scale.view(-1, 1, 1, 1), bias


def pool_frame_mask(mask: torch.Tensor, time_pooling: tuple[int, ...]) -> torch.Tensor:
    """Frame mask at the output rate of a network with the given time pooling.

    Each pooling layer floors, like ``AvgPool2d``: trailing frames that do not
    fill a window are dropped, and an output frame is valid only when every
    input frame of its window is valid. For a prefix mask of ``L`` valid frames
    this gives :meth:`audioadapt.features.frames.FrameGrid.num_output_frames`
    valid output frames.

    Parameters
    ----------
    mask:
        ``(batch, frame)`` boolean, ``True`` on real frames.
    time_pooling:
        Per-layer time factors, applied in order.

    Returns
    -------
    ``(batch, out_frame)`` boolean.
    """
    out = mask.bool()
    for factor in time_pooling:
        if factor == 1:
            continue
        n = out.shape[1] // factor
        out = out[:, : n * factor].reshape(out.shape[0], n, factor).all(dim=-1)
    return out


def init_weights(module: nn.Module, scheme: InitScheme) -> None:
    """Initialise every layer of ``module`` in place.

    ``"dcase2019"`` follows the DCASE 2019 task 4 baseline
    (``baseline/utils/utils.py``, ``weights_init``):

    * ``Conv2d``: Xavier-uniform with gain ``sqrt(2)``, bias 0;
    * ``BatchNorm``: weight ``N(1, 0.02)``, bias 0;
    * ``GRU``/``LSTM``: orthogonal weight matrices (biases keep PyTorch's default);
    * ``Linear`` (including the one inside :class:`ChannelGLU`): weight ``N(0, 0.01)``, bias 0.

    ``"torch_default"`` keeps PyTorch's own initialisation.
    """
    if scheme == "torch_default":
        return
    if scheme != "dcase2019":
        raise ValueError(f"unknown init scheme {scheme!r}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2.0))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.GRU, nn.LSTM)):
            for name, p in m.named_parameters():
                if name.startswith("weight"):
                    nn.init.orthogonal_(p)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


__all__ = [
    "Activation",
    "ChannelGLU",
    "ClassicGLU",
    "ConvBlock",
    "InitScheme",
    "init_weights",
    "pool_frame_mask",
]
