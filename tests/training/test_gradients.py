"""Per-term gradient norms and cosines (:mod:`audioadapt.training.gradients`), shared by the SED and SER paths."""

from __future__ import annotations

import math

import pytest
import torch

from audioadapt.adaptation.grl import grad_reverse
from audioadapt.training.gradients import gradient_summary, term_gradients


class TwoRanks:
    """A stand-in for ``DistInfo`` of two ranks that hold the same values."""

    enabled, world_size = True, 2

    @staticmethod
    def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.clone()


def test_gradient_norms_at_f_include_the_reversal_and_alpha():
    h = torch.randn(2, 3, 4, requires_grad=True)
    c = torch.randn(4)
    terms = {"ft": (h * c).sum(),  # gradient c everywhere: norm |c| sqrt(6)
             "domain": (grad_reverse(h, 0.25) * c).sum() * 2,  # gradient -0.5 c
             "unused": torch.zeros((), requires_grad=True) * 1.0}
    grads = term_gradients(terms, [h])
    out = gradient_summary(grads, classification=("ft",))
    norm_c = float(c.norm()) * math.sqrt(6)
    assert out["grad_ft"] == pytest.approx(norm_c)
    assert out["grad_domain"] == pytest.approx(0.5 * norm_c)
    assert out["grad_unused"] == 0.0
    assert out["grad_total"] == pytest.approx(0.5 * norm_c)
    assert out["grad_cos_domain_y"] == pytest.approx(-1.0)  # the reversed domain gradient opposes L_y
    assert "grad_y" not in out  # one classification term only
    two = gradient_summary(term_gradients({"f1": (h * c).sum(), "f2": (h * c).sum()}, [h]), ("f1", "f2"))
    assert two["grad_y"] == pytest.approx(2 * norm_c)


def test_gradient_norms_are_those_of_the_global_batch_under_ddp():
    """Each rank's loss is W x its share of the global mean, so its gradient at F's output is W x its rows' slice."""
    c = torch.tensor([3.0, 4.0])
    h_all = torch.ones(2, 2, requires_grad=True)  # one process: two identical rows, mean over rows
    single = gradient_summary(term_gradients({"ft": (h_all @ c).mean()}, [h_all]))
    h_rank = torch.ones(1, 2, requires_grad=True)  # each of two ranks: one row, divided by the mean count 1
    ranked = gradient_summary(term_gradients({"ft": (h_rank @ c).sum()}, [h_rank]), dist=TwoRanks(),
                              per_rank_rows=True)
    assert ranked["grad_ft"] == pytest.approx(single["grad_ft"]) == pytest.approx(5 / math.sqrt(2))
    w = torch.ones(2, requires_grad=True)  # a shared parameter: the ranks' gradients are averaged
    shared = gradient_summary(term_gradients({"ft": (w @ c)}, [w]), dist=TwoRanks())
    assert shared["grad_ft"] == pytest.approx(5.0)


def test_parts_stay_out_of_the_total_and_a_named_cosine():
    w = torch.tensor([1.0, 2.0, 2.0], requires_grad=True)
    positive, negative = (w * torch.tensor([1.0, 0.0, 0.0])).sum(), (w * torch.tensor([0.0, -1.0, 0.0])).sum()
    terms = {"source": (w * torch.tensor([0.0, 1.0, 0.0])).sum(), "target": positive + negative,
             "target_positive": positive, "target_negative": negative}
    out = gradient_summary(term_gradients(terms, [w]), cosine=("target", "source"),
                           outside_total=("target_positive", "target_negative"))
    # target's gradient (1, -1, 0), source's (0, 1, 0): total (1, 0, 0), cosine -1/sqrt(2)
    assert out["grad_target"] == pytest.approx(math.sqrt(2)) and out["grad_source"] == pytest.approx(1.0)
    assert (out["grad_target_positive"], out["grad_target_negative"]) == (pytest.approx(1.0), pytest.approx(1.0))
    assert out["grad_total"] == pytest.approx(1.0)
    assert out["grad_cos_target_source"] == pytest.approx(-1 / math.sqrt(2))
    assert "grad_cos_domain_y" not in out and "grad_y" not in out
    alone = gradient_summary(term_gradients({"target": positive}, [w]), cosine=("target", "source"))
    assert "grad_cos_target_source" not in alone  # no source term: no cosine
