"""Labeler diversity term of tri-training (Park et al. eq. 8).

``R = lambda * | (W_1 / |W_1|)^T (W_2 / |W_2|) |`` on the weights of the
first layer of the two labelers. The paper leaves open what ``|.|`` means;
every choice is an :class:`OrthogonalityConfig` value:

* ``layer``: which matrix of each labeler. ``first`` is its first layer: a
  hidden layer if the head has one, otherwise its strong and attention output
  matrices stacked (``[2K, in]``). ``output`` and ``hidden`` force one of them.
* ``normalization``: ``frobenius`` divides each matrix by its Frobenius norm
  (default); ``row`` divides each unit's weight vector (row of a PyTorch
  ``(out, in)`` weight) by its L2 norm; ``none`` leaves the weights as they
  are (ATDA's reference code).
* ``orientation``: ``in`` computes ``W_1^T W_2`` (``in x in``, as printed and
  as both ATDA references do; default); ``out`` computes ``W_1 W_2^T``
  (``out x out``; with row normalisation its entries are the cosines between
  the two labelers' units).
* ``reduction``: ``sum_abs`` (default), ``mean_abs``, ``mean_column_sum``
  (the sum of each column's absolute entries, averaged over the columns: the
  sum divided by the product's width, as ATDA's reference code) or
  ``frobenius`` of the product.
* ``weight``: lambda (1.0 in the paper).

The term is zero when the two matrices are orthogonal in the chosen
orientation and, with ``frobenius`` or ``row`` normalisation, does not change
when either matrix is rescaled.

Readings (``W`` of a labeler's hidden layer, ``H`` units of ``d`` inputs):

* paper-literal, the defaults: with no hidden layer, the stacked output
  matrices, ``sum |(W_1/|W_1|_F)^T (W_2/|W_2|_F)|``; it grows with the layer's
  size (about 23 at initialisation for 128 input features, 45 for 256) and can
  swamp ``L_y``;
* per-unit cosine: ``orientation: out``, ``normalization: row``,
  ``reduction: mean_abs`` is the mean of ``|cos(w1_i, w2_j)|`` over all pairs
  of units of the two labelers, in ``[0, 1]``: 0 when the two sets of units
  span orthogonal subspaces, 1 when every unit points the same way (about
  ``sqrt(2 / (pi d))`` at random initialisation);
* ATDA (Saito et al., ``ksaito-ut/atda``): ``layer: hidden``,
  ``normalization: none``, ``orientation: in``, ``reduction: mean_column_sum``
  and lambda 0.01 to 0.5 (their ``W_1 W_2^T`` on ``(in, out)`` TensorFlow
  weights, summed over one axis and averaged over the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch


@dataclass(frozen=True)
class OrthogonalityConfig:
    """Settings of eq. 8 (see the module docstring)."""

    weight: float = 1.0
    layer: Literal["first", "output", "hidden"] = "first"
    normalization: Literal["frobenius", "row", "none"] = "frobenius"
    reduction: Literal["sum_abs", "mean_abs", "mean_column_sum", "frobenius"] = "sum_abs"
    orientation: Literal["in", "out"] = "in"
    eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        if self.eps <= 0:
            raise ValueError(f"eps must be positive, got {self.eps}")


class HasLayerWeights(Protocol):
    """A labeler that can hand out the weight matrix ``(out, in)`` of a named layer."""

    def layer_weight(self, which: str) -> torch.Tensor: ...


def _normalize(w: torch.Tensor, how: str, eps: float) -> torch.Tensor:
    if how == "frobenius":
        return w / w.norm().clamp_min(eps)
    if how == "row":
        return w / w.norm(dim=1, keepdim=True).clamp_min(eps)
    if how == "none":
        return w
    raise ValueError(f"unknown normalization {how!r}")


def orthogonality_penalty(w1: torch.Tensor, w2: torch.Tensor, cfg: OrthogonalityConfig) -> torch.Tensor:
    """Eq. 8 on two weight matrices, weighted by ``cfg.weight``.

    Parameters
    ----------
    w1, w2: ``(out, in)`` weight matrices of the two labelers (PyTorch
        ``Linear`` layout). ``in`` orientation needs equal ``out`` sizes,
        ``out`` orientation equal ``in`` sizes.
    cfg: the choices of normalisation, orientation, reduction and weight.

    Returns
    -------
    A scalar tensor, differentiable with respect to both matrices.
    """
    if w1.dim() != 2 or w2.dim() != 2:
        raise ValueError(f"expected two matrices, got shapes {tuple(w1.shape)} and {tuple(w2.shape)}")
    a = _normalize(w1, cfg.normalization, cfg.eps)
    b = _normalize(w2, cfg.normalization, cfg.eps)
    if cfg.orientation == "in":
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"W1^T W2 needs equal output sizes, got {tuple(a.shape)} and {tuple(b.shape)}")
        prod = a.t() @ b
    else:
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"W1 W2^T needs equal input sizes, got {tuple(a.shape)} and {tuple(b.shape)}")
        prod = a @ b.t()
    return cfg.weight * _reduce(prod, cfg.reduction)


def _reduce(prod: torch.Tensor, how: str) -> torch.Tensor:
    if how == "sum_abs":
        return prod.abs().sum()
    if how == "mean_abs":
        return prod.abs().mean()
    if how == "mean_column_sum":
        return prod.abs().sum(dim=0).mean()
    if how == "frobenius":
        return prod.norm()
    raise ValueError(f"unknown reduction {how!r}")


def labeler_orthogonality(
    labeler1: HasLayerWeights, labeler2: HasLayerWeights, cfg: OrthogonalityConfig
) -> torch.Tensor:
    """Eq. 8 between two labelers, on the layer ``cfg.layer`` of each."""
    return orthogonality_penalty(labeler1.layer_weight(cfg.layer), labeler2.layer_weight(cfg.layer), cfg)


__all__ = ["HasLayerWeights", "OrthogonalityConfig", "labeler_orthogonality", "orthogonality_penalty"]
