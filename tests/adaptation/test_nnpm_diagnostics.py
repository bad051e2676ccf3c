"""NNPM step diagnostics by hand: set sizes, agreement with the head, loss parts, mining, truth measures."""

from __future__ import annotations

import pytest
import torch

from audioadapt.adaptation.nnpm_diagnostics import nnpm_step_diagnostics
from audioadapt.adaptation.nnpm_losses import NnpmLossConfig, target_loss_parts
from audioadapt.adaptation.pseudo_multilabel import PseudoMultilabelConfig, pseudo_multilabel

#: slot -> emotion
SLOTS = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
SIM = torch.tensor([
    [0.95, 0.92, 0.91, 0.93, 0.20, 0.10, 0.40, 0.30],  # set {0, 1, 2, 3}: angry x3, happy x1; vote angry
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80],  # empty
    [0.10, 0.10, 0.10, 0.10, 0.10, 0.95, 0.10, 0.91],  # set {5, 7}: sad, neutral tie -> sad (lower index)
])


def _diagnose(truth=None, cfg=NnpmLossConfig(hard_negative_ratio=0.25)):
    labels = pseudo_multilabel(SIM, PseudoMultilabelConfig(threshold=0.9))
    parts = target_loss_parts(SIM, labels.positives, cfg, SLOTS, 4)
    head = torch.tensor([0, 3, 3])
    return nnpm_step_diagnostics(labels, SLOTS, 4, SIM, head, parts, truth), parts


def test_sets_agreement_and_loss_parts_by_hand():
    d, parts = _diagnose()
    assert d["pml_empty_fraction"].item() == pytest.approx(1 / 3)
    assert d["pml_mean_size"].item() == pytest.approx(6 / 3) and d["pml_mean_size_nonempty"].item() == 3.0
    assert d["pml_mean_distinct_emotions"].item() == 2.0
    assert d["pml_head_vote_agreement"].item() == 0.5  # row 0 votes angry = head; row 2 votes sad, head neutral
    assert d["memory_head_agreement"].item() == pytest.approx(2 / 3)  # nearest slots: angry, neutral, sad
    assert d["target_loss_positive"].item() == pytest.approx(parts.positive.mean().item())
    assert (d["target_loss_positive"] + d["target_loss_negative"]).item() == pytest.approx(parts.value.item())
    # k = floor(0.25 * 8) = 2: row 0 mines slots 6, 7 (of other emotions than angry and happy), row 1 slots 7, 6,
    # row 2 only slots 0..4 are of other emotions: 3 and 0 are the most similar (0.10 each, the order by index)
    assert d["hard_negative_count"].item() == 2.0
    assert d["hard_negative_similarity"].item() == pytest.approx((0.4 + 0.3 + 0.8 + 0.7 + 0.1 + 0.1) / 6)
    assert d["hard_negative_vote_share"].item() == 0.0  # never the set's own emotion
    assert not {"pml_purity", "pml_vote_accuracy", "head_target_accuracy"} & set(d)


def test_the_literal_mining_pushes_away_the_sets_own_emotion():
    literal = NnpmLossConfig(hard_negative_ratio=0.25, negatives="all", hard_negative_count="negatives")
    row = torch.tensor([[0.95, 0.90, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10]])  # set {0}; slot 1 (angry) is hardest
    labels = pseudo_multilabel(row, PseudoMultilabelConfig(threshold=0.92))
    parts = target_loss_parts(row, labels.positives, literal, SLOTS, 4)
    d = nnpm_step_diagnostics(labels, SLOTS, 4, row, torch.tensor([0]), parts)
    assert d["hard_negative_vote_share"].item() == 1.0 and d["hard_negative_count"].item() == 1.0
    default = target_loss_parts(row, labels.positives, NnpmLossConfig(hard_negative_ratio=0.25), SLOTS, 4)
    d = nnpm_step_diagnostics(labels, SLOTS, 4, row, torch.tensor([0]), default)
    assert d["hard_negative_vote_share"].item() == 0.0 and d["hard_negative_count"].item() == 2.0


def test_truth_measures_by_hand():
    d, _ = _diagnose(truth=torch.tensor([1, 0, 2]))
    # row 0: 1 of its 4 slots is happy; row 2: 1 of 2 is sad (row 1 is empty: left out)
    assert d["pml_purity"].item() == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert d["pml_vote_accuracy"].item() == 0.5  # row 0 votes angry (truth happy), row 2 votes sad (truth sad)
    assert d["head_target_accuracy"].item() == 0.0  # head says angry, neutral, neutral
    unknown, _ = _diagnose(truth=torch.tensor([-1, -1, 2]))
    assert unknown["pml_purity"].item() == 0.5 and unknown["head_target_accuracy"].item() == 0.0
