"""BatchNorm over the global batch of a data-parallel run, on CPU as well as on GPUs.

Under DDP each rank's BatchNorm normalises with the statistics of its own
share of the global batch, so losses, gradients and running statistics differ
from a one-process run on the same global batch. :func:`convert_sync_batchnorm`
swaps the BatchNorm layers of networks for layers that normalise with the mean
and (biased) variance of the rows of every rank:

* on CUDA, ``torch.nn.SyncBatchNorm``;
* elsewhere, :class:`AllReduceBatchNorm`. PyTorch's ``SyncBatchNorm`` raises on
  CPU tensors (PyTorch 2.13 included) and DDP refuses CPU modules holding one;
  this layer gets the statistics from two differentiable all-reduces of the
  default process group (a sum, then a sum of squared deviations), which any
  backend, gloo included, can run. The all-reduce is a small autograd function
  of its own (:func:`all_reduce_sum`): ``torch.distributed.nn``'s is deprecated
  and warns on every call.

In eval mode or outside a process group both are ordinary BatchNorm layers,
with a BatchNorm's state dict. Every rank must run the same sequence of
training-mode forwards through them: each call is a collective.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _world_size() -> int:
    """Processes of the default group; 1 without one."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    return torch.distributed.get_world_size()


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks of the default group; its gradient is the sum of the ranks' output gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach().clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        torch.distributed.all_reduce(out)
        return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over the ranks of the default process group (a new tensor)."""
    return _AllReduceSum.apply(tensor)


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm of inputs ``(batch, channel, *)`` whose training statistics cover every rank's rows."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or _world_size() == 1:
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = (1, -1) + (1,) * (input.dim() - 2)
        local_count = input.new_tensor([input.numel() // input.shape[1]])
        total = all_reduce_sum(torch.cat([input.sum(dims), local_count]))
        count, mean = total[-1].detach(), total[:-1] / total[-1].detach()  # the row count is no variable
        centered = input - mean.view(shape)
        var = all_reduce_sum(centered.square().sum(dims)) / count
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            out = out * self.weight.view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """``F.batch_norm``'s update: momentum (or a cumulative average), unbiased variance."""
        if count < 2:
            raise ValueError(f"expected more than 1 value per channel when training, got {count:.0f} in all")
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * (count / (count - 1)), factor)


def _synced(bn: _BatchNorm, cls: type[_BatchNorm]) -> _BatchNorm:
    """A ``cls`` layer sharing ``bn``'s parameters and buffers (and its train/eval mode)."""
    sync = cls(num_features=bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
               track_running_stats=bn.track_running_stats)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        setattr(sync, name, getattr(bn, name))
    return sync.train(bn.training)


def convert_sync_batchnorm(modules: Iterable[nn.Module], device: torch.device) -> int:
    """Replace the BatchNorm layers inside ``modules`` (on ``device``) by synchronised ones, in place.

    A layer reached from several modules is replaced by the same new layer
    everywhere; the modules themselves are never replaced. Returns the number
    of layers replaced.
    """
    cls: type[_BatchNorm] = nn.SyncBatchNorm if device.type == "cuda" else AllReduceBatchNorm
    done: dict[int, tuple[_BatchNorm, _BatchNorm]] = {}  # id -> (old layer, kept alive; new layer)

    def visit(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, _BatchNorm) and type(child) is not cls:
                if id(child) not in done:
                    done[id(child)] = (child, _synced(child, cls))
                module.add_module(name, done[id(child)][1])
            else:
                visit(child)

    for module in modules:
        visit(module)
    return len(done)


__all__ = ["AllReduceBatchNorm", "all_reduce_sum", "convert_sync_batchnorm"]
