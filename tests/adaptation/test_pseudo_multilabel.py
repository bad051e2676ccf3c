import math

import pytest
import torch

from audioadapt.adaptation.pseudo_multilabel import (
    PseudoMultilabel,
    PseudoMultilabelConfig,
    PseudoMultilabelStats,
    emotion_counts,
    oracle_multilabel,
    pseudo_multilabel,
    pseudo_multilabel_stats,
    vote_labels,
)
from audioadapt.config.load import from_dict
from audioadapt.errors import ConfigError

#: slot -> emotion for the hand-made cases below
SLOT_LABELS = torch.tensor([0, 0, 1, 2, 3, 1])


def test_threshold_is_strict():
    cfg = PseudoMultilabelConfig(threshold=0.75)  # exactly representable
    sim = torch.tensor([[0.75, 0.7500001, 0.2, 0.9, -1.0, 0.75]])
    out = pseudo_multilabel(sim, cfg)
    assert out.positives.tolist() == [[False, True, False, True, False, False]]
    assert out.empty.tolist() == [False]


def test_default_threshold_is_0_9():
    out = pseudo_multilabel(torch.tensor([[0.95, 0.85, 0.91]], dtype=torch.float64), PseudoMultilabelConfig())
    assert out.positives.tolist() == [[True, False, True]]


def test_empty_sets_under_both_policies():
    sim = torch.tensor([[0.95, 0.1, 0.3], [0.2, 0.8, 0.5], [0.1, 0.0, 0.99]])
    kept = pseudo_multilabel(sim, PseudoMultilabelConfig(empty_policy="negatives_only"))
    assert kept.positives.tolist() == [[True, False, False], [False, False, False], [False, False, True]]
    assert kept.empty.tolist() == [False, True, False]
    top = pseudo_multilabel(sim, PseudoMultilabelConfig(empty_policy="top1"))
    assert top.positives.tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    assert top.empty.tolist() == [False, True, False]  # the rule itself found nothing
    skip = pseudo_multilabel(sim, PseudoMultilabelConfig(empty_policy="skip"))  # the loss drops the empty ones
    assert skip.positives.tolist() == kept.positives.tolist() and skip.empty.tolist() == [False, True, False]


def test_no_gradient_leaves_through_the_labels():
    sim = torch.rand(2, 4, requires_grad=True)
    out = pseudo_multilabel(sim, PseudoMultilabelConfig(threshold=0.5, empty_policy="top1"))
    assert not out.positives.requires_grad and out.positives.dtype == torch.bool


def test_matches_a_per_element_reference_on_random_cases():
    gen = torch.Generator().manual_seed(0)
    for policy in ("negatives_only", "top1"):
        for theta in (0.4, 0.7, 0.9):
            sim = torch.rand(7, 30, generator=gen) * 2 - 1
            sim[0] = sim[0].clamp(max=theta)  # at least one empty row
            out = pseudo_multilabel(sim, PseudoMultilabelConfig(threshold=theta, empty_policy=policy))
            theta32 = float(torch.tensor(theta))  # the comparison runs in the similarity's dtype
            for b in range(7):
                row = [float(v) for v in sim[b]]
                expected = [v > theta32 for v in row]
                if policy == "top1" and not any(expected):
                    expected[row.index(max(row))] = True
                assert out.positives[b].tolist() == expected
                assert bool(out.empty[b]) == (not any(v > theta32 for v in row))


def test_stats_on_a_hand_made_batch():
    positives = torch.tensor(
        [
            [True, True, False, False, False, False],  # 2 slots, 1 emotion (0)
            [False, False, False, False, False, False],  # empty
            [True, False, True, True, False, True],  # 4 slots, emotions {0, 1, 2}
            [False, False, False, False, False, False],  # empty
        ]
    )
    labels = PseudoMultilabel(positives, ~positives.any(dim=1))
    stats = pseudo_multilabel_stats(labels, SLOT_LABELS, 4)
    assert stats == PseudoMultilabelStats(count=4, empty=2, size_total=6, nonempty=2, distinct_total=4)
    assert stats.empty_fraction == 0.5
    assert stats.mean_size == 1.5
    assert stats.mean_distinct_emotions == 2.0
    assert stats.as_dict() == {"pml_empty_fraction": 0.5, "pml_mean_size": 1.5, "pml_mean_distinct_emotions": 2.0}


def test_stats_accumulate_over_batches_and_handle_no_data():
    none = PseudoMultilabelStats()
    assert math.isnan(none.empty_fraction) and math.isnan(none.mean_size)
    a = PseudoMultilabelStats(count=2, empty=2, size_total=0, nonempty=0, distinct_total=0)
    assert math.isnan(a.mean_distinct_emotions) and a.empty_fraction == 1.0
    b = PseudoMultilabelStats(count=3, empty=0, size_total=9, nonempty=3, distinct_total=5)
    total = none + a + b
    assert total.empty_fraction == pytest.approx(2 / 5)
    assert total.mean_size == pytest.approx(9 / 5)
    assert total.mean_distinct_emotions == pytest.approx(5 / 3)


def test_top1_sets_count_as_empty_in_the_stats_but_not_in_the_sizes():
    sim = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.0, 0.0]])
    out = pseudo_multilabel(sim, PseudoMultilabelConfig(empty_policy="top1"))
    stats = pseudo_multilabel_stats(out, SLOT_LABELS, 4)
    assert (stats.empty, stats.size_total, stats.distinct_total) == (1, 1, 1)


def test_emotion_counts_and_votes():
    positives = torch.tensor(
        [
            [True, True, True, False, False, False],  # angry x2, happy x1
            [False, False, True, False, False, True],  # happy x2
            [False, False, False, True, True, False],  # sad, neutral tie -> lower index
            [False] * 6,
        ]
    )
    counts = emotion_counts(positives, SLOT_LABELS, 4)
    assert counts.tolist() == [[2, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]
    assert vote_labels(positives, SLOT_LABELS, 4).tolist() == [0, 1, 2, -1]
    with pytest.raises(ValueError, match="disagree"):
        emotion_counts(positives, SLOT_LABELS[:5], 4)


def test_config_validation_and_loading():
    with pytest.raises(ConfigError, match="threshold"):
        PseudoMultilabelConfig(threshold=1.0)
    with pytest.raises(ConfigError, match="empty_policy"):
        PseudoMultilabelConfig(empty_policy="random")
    assert from_dict(PseudoMultilabelConfig, {"threshold": 0.6}).threshold == 0.6
    with pytest.raises(ConfigError, match="empty_policy"):
        from_dict(PseudoMultilabelConfig, {"empty_policy": "top2"})
    with pytest.raises(ValueError, match="at least one slot"):
        pseudo_multilabel(torch.zeros(2, 0), PseudoMultilabelConfig())


def test_the_oracle_set_is_every_slot_of_the_true_emotion():
    out = oracle_multilabel(torch.tensor([1, 3, -1]), SLOT_LABELS)
    assert out.positives.tolist() == [[False, False, True, False, False, True],
                                      [False, False, False, False, True, False],
                                      [False] * 6]
    assert out.empty.tolist() == [False, False, True]  # an unknown truth gives an empty set
    with pytest.raises(ConfigError, match="rule must be 'threshold' or 'oracle'"):
        PseudoMultilabelConfig(rule="truth")
    with pytest.raises(ValueError, match="truth \\(batch,\\)"):
        oracle_multilabel(torch.tensor([[1]]), SLOT_LABELS)
