"""How much each loss term pulls on the shared network: per-term gradient norms and their cosines.

Both paths use it: the SED diagnostics (:mod:`audioadapt.training.sed_diagnostics`,
``diag/grad_<term>`` at F's output or on F's parameters) and SER stage 2
(:mod:`audioadapt.training.ser_nnpm`, ``grad_<term>`` on the encoder's
trainable parameters). Measuring leaves no gradient behind and draws no random
number, so a run measures the same training it would run without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.training.distributed import DistInfo


def term_gradients(terms: Mapping[str, torch.Tensor], inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each term's gradient with respect to ``inputs``, flattened into one float64 vector per term.

    The graph is kept for the training step's own backward; a term that does
    not reach an input contributes zeros there.
    """
    inputs = list(inputs)
    out = {}
    for name, term in terms.items():
        if term.requires_grad:
            grads = torch.autograd.grad(term, inputs, retain_graph=True, allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        out[name] = torch.cat([(torch.zeros_like(x) if g is None else g).reshape(-1).to(torch.float64)
                               for g, x in zip(grads, inputs)])
    return out


def gradient_summary(grads: Mapping[str, torch.Tensor], classification: Sequence[str] = (),
                     dist: "DistInfo | None" = None, per_rank_rows: bool = False, *,
                     cosine: tuple[str, str] | None = None, outside_total: Sequence[str] = ()) -> dict[str, float]:
    """Norms of the gradient vectors of ``grads``, of their sums, and one cosine.

    Returns ``grad_<name>`` per term, ``grad_y`` (sum of the ``classification``
    terms, when two or more), ``grad_total`` (sum of all terms except those in
    ``outside_total``, which are parts of another term) and a cosine: with
    ``cosine = (a, b)`` ``grad_cos_<a>_<b>``, else ``grad_cos_domain_y`` between
    a ``domain`` term and the classification gradient (when both exist).

    Under DDP (``dist.enabled``) the values are the global batch's: with
    ``per_rank_rows`` each rank's vectors are its own rows' slice of the
    gradient at F's output, W times the global gradient's slice (DDP averages
    the ranks' gradients), so the squared norms and dot products are averaged
    over the ranks and divided by W; otherwise they are gradients on shared
    parameters and the vectors are averaged over the ranks first.
    """
    vectors = dict(grads)
    cls = [n for n in classification if n in grads and n not in outside_total]
    if len(cls) > 1:
        vectors["y"] = torch.stack([grads[n] for n in cls]).sum(0)
    vectors["total"] = torch.stack([g for n, g in grads.items() if n not in outside_total]).sum(0)
    names = list(vectors)
    stacked = torch.stack([vectors[n] for n in names])
    distributed = dist is not None and dist.enabled
    if distributed and not per_rank_rows:
        stacked = dist.all_reduce_mean(stacked)
    if cosine is not None:
        pair, key = (cosine if all(n in vectors for n in cosine) else None), f"grad_cos_{cosine[0]}_{cosine[1]}"
    else:
        y_name = "y" if "y" in vectors else (cls[0] if cls else None)
        pair = ("domain", y_name) if "domain" in vectors and y_name is not None else None
        key = "grad_cos_domain_y"
    products = [stacked[i] @ stacked[i] for i in range(len(names))]
    if pair is not None:
        products.append(stacked[names.index(pair[0])] @ stacked[names.index(pair[1])])
    q = torch.stack(products)
    if distributed and per_rank_rows:
        q = dist.all_reduce_mean(q) / dist.world_size
    values = [float(v) for v in q.cpu()]
    out = {f"grad_{n}": math.sqrt(max(values[i], 0.0)) for i, n in enumerate(names)}
    if pair is not None:
        a, b = out[f"grad_{pair[0]}"], out[f"grad_{pair[1]}"]
        if a > 0 and b > 0:
            out[key] = values[-1] / (a * b)
    return out


__all__ = ["gradient_summary", "term_gradients"]
