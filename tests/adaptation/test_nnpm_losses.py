import math
from fractions import Fraction

import pytest
import torch
from torch.nn import functional as F

from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
from audioadapt.adaptation.nnpm_losses import (
    NnpmLossConfig,
    hard_negative_counts,
    hard_negative_mse,
    negative_candidates,
    nnpm_loss,
    source_cross_entropy,
    target_loss,
    target_loss_parts,
    target_mse,
)
from audioadapt.adaptation.pseudo_multilabel import PseudoMultilabelConfig, pseudo_multilabel
from audioadapt.config.load import from_dict
from audioadapt.errors import ConfigError


def test_source_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([1, 2])
    # sample 1: p = 3 / 6; sample 2: p = 1 / 4
    expected = (math.log(2.0) + math.log(4.0)) / 2
    assert source_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_target_mse_over_all_slots_by_hand():
    sim = torch.tensor([[0.5, -0.5, 0.0], [1.0, 0.2, 0.9]])
    pos = torch.tensor([[True, False, False], [False, False, True]])
    # row 1: 0.25 + 0.25 + 0; row 2: 1 + 0.04 + 0.01
    expected = (0.5 + 1.05) / 6
    assert target_mse(sim, pos).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("y_neg", [-1.0, 0.0])
def test_hard_negative_mse_by_hand(y_neg):
    sim = torch.tensor([[0.95, 0.2, 0.6, -0.1, 0.4]])
    pos = torch.tensor([[True, False, False, False, False]])
    # |N| = 4, r = 0.5 -> k = 2 hardest negatives: 0.6 and 0.4
    pos_term = 2.0 * (0.95 - 1.0) ** 2
    neg_term = ((0.6 - y_neg) ** 2 + (0.4 - y_neg) ** 2) / 2
    value = hard_negative_mse(sim, pos, delta=2.0, ratio=0.5, negative_target=y_neg)
    assert value.item() == pytest.approx(pos_term + neg_term, rel=1e-6)


def test_positive_term_is_averaged_over_the_set_and_skipped_when_empty():
    sim = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.3, 0.2, 0.1, 0.0]])
    pos = torch.tensor([[True, True, False, False], [False, False, False, False]])
    value = hard_negative_mse(sim, pos, delta=1.0, ratio=0.01, negative_target=-1.0)
    # row 1: (0.01 + 0.04) / 2 + k = 1 negative (0.1 + 1)^2; row 2: only k = 1 negative (0.3 + 1)^2
    expected = ((0.05 / 2 + 1.1**2) + 1.3**2) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_all_positive_row_has_no_negative_term():
    sim = torch.tensor([[0.95, 0.92]])
    pos = torch.tensor([[True, True]])
    value = hard_negative_mse(sim, pos, delta=1.0, ratio=0.5, negative_target=-1.0)
    assert value.item() == pytest.approx((0.05**2 + 0.08**2) / 2, rel=1e-5)


def test_hard_negative_counts():
    pos = torch.zeros(4, 100, dtype=torch.bool)
    pos[1, :50] = True
    pos[2, :] = True
    pos[3, :99] = True
    neg = ~pos
    assert hard_negative_counts(neg, 0.01).tolist() == [1, 1, 0, 1]  # floor(1.0), guard, none, guard
    assert hard_negative_counts(neg, 0.29).tolist() == [29, 14, 0, 1]  # 0.29 * 100 is 28.999... in floats
    assert hard_negative_counts(neg, 1.0).tolist() == [100, 50, 0, 1]
    # counted over the slots: the positive set's size no longer shrinks k (only the candidates cap it)
    assert hard_negative_counts(neg, 0.29, num_slots=100).tolist() == [29, 29, 0, 1]
    assert hard_negative_counts(neg, 0.001, num_slots=100).tolist() == [1, 1, 0, 1]


def test_other_emotion_negatives_exclude_every_slot_of_the_positive_emotions():
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    pos = torch.tensor([[True, False, False, False, False, False],  # emotion 0: slot 1 is not a negative
                        [False, False, True, False, True, False],  # emotions 1 and 2
                        [False] * 6])  # empty: every slot
    cand = negative_candidates(pos, "other_emotions", labels, 4)
    assert cand.tolist() == [[False, False, True, True, True, True],
                             [True, True, False, False, False, True],
                             [True] * 6]
    assert torch.equal(negative_candidates(pos, "all"), ~pos)
    with pytest.raises(ValueError, match="need the slot labels"):
        negative_candidates(pos, "other_emotions")


def test_the_hardest_negative_of_another_emotion_is_mined_by_hand():
    # slot 1 shares the positive slot's emotion and is the most similar negative; it is not pushed away
    sim = torch.tensor([[0.95, 0.9, 0.3, 0.5, -0.2]])
    pos = torch.tensor([[True, False, False, False, False]])
    labels = torch.tensor([0, 0, 1, 2, 3])
    cfg = NnpmLossConfig(hard_negative_ratio=0.2)  # k = floor(0.2 * 5 slots) = 1
    parts = target_loss_parts(sim, pos, cfg, labels, 4)
    assert parts.hard[0, :1].tolist() == [3] and parts.hard_valid.tolist() == [[True]]
    assert parts.positive.item() == pytest.approx(0.05**2) and parts.negative.item() == pytest.approx(1.5**2)
    literal = NnpmLossConfig(hard_negative_ratio=0.25, negatives="all", hard_negative_count="negatives")
    assert target_loss_parts(sim, pos, literal).hard[0, 0].item() == 1  # the paper-literal mining takes slot 1
    every = target_loss_parts(sim, pos, NnpmLossConfig(target_loss="all_negatives"), labels, 4)
    assert every.hard_valid.sum().item() == 3  # SNSA-wo-HL: slots 2, 3, 4 (not 1), no top-k
    assert every.negative.item() == pytest.approx((1.3**2 + 1.5**2 + 0.8**2) / 3)
    assert every.positive.item() == parts.positive.item()


def _reference(f_hat, memory, positives, delta, ratio, y_neg, labels=None, slots_base=False, every=False):
    """Eqs. 7-8 one utterance and one slot at a time."""
    total = 0.0
    batch, slots = positives.shape
    for b in range(batch):
        sims = [torch.dot(f_hat[b], memory[i]) for i in range(slots)]
        pos = [i for i in range(slots) if positives[b, i]]
        held = {int(labels[i]) for i in pos} if labels is not None else set()
        neg = [i for i in range(slots) if not positives[b, i] and (labels is None or int(labels[i]) not in held)]
        term = 0.0
        if pos:
            term = term + delta / len(pos) * sum((sims[i] - 1.0) ** 2 for i in pos)
        if neg:
            k = max(1, math.floor(Fraction(str(ratio)) * (slots if slots_base else len(neg))))
            k = len(neg) if every else min(k, len(neg))
            hard = sorted(neg, key=lambda i: float(sims[i].detach()), reverse=True)[:k]
            term = term + sum((sims[i] - y_neg) ** 2 for i in hard) / k
        total = total + term
    return total / batch


@pytest.mark.parametrize("variant", ["literal", "other_emotions", "slots", "default", "all_negatives"])
@pytest.mark.parametrize("seed", range(6))
def test_vectorised_mining_matches_the_per_sample_reference(seed, variant):
    gen = torch.Generator().manual_seed(seed)
    batch, slots, dim = 5, 60 + 17 * seed, 6
    memory = F.normalize(torch.randn(slots, dim, generator=gen, dtype=torch.float64), dim=1)
    labels = torch.randint(0, 4, (slots,), generator=gen)
    raw = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    ratio = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)[seed]
    delta = (1.0, 5.0)[seed % 2]
    y_neg = (-1.0, 0.0)[(seed // 2) % 2]
    theta = 0.3 + 0.1 * (seed % 3)
    exclude = variant in ("other_emotions", "default", "all_negatives")
    slots_base = variant in ("slots", "default")
    cfg = NnpmLossConfig(delta=delta, hard_negative_ratio=ratio, negative_target=y_neg,
                         negatives="other_emotions" if exclude else "all",
                         hard_negative_count="slots" if slots_base else "negatives",
                         target_loss="all_negatives" if variant == "all_negatives" else "hard_negative")

    f_hat = F.normalize(raw, dim=1).requires_grad_(True)
    sim = f_hat @ memory.T
    positives = pseudo_multilabel(sim, PseudoMultilabelConfig(threshold=theta)).positives
    positives[0] = False  # an empty set
    positives[1, :] = True  # no negatives at all
    positives[1, 0] = seed % 2 == 0  # ... or exactly one
    fast = target_loss(sim, positives, cfg, labels, 4)
    (grad_fast,) = torch.autograd.grad(fast, f_hat)
    if variant == "literal":
        torch.testing.assert_close(fast, hard_negative_mse(sim, positives, delta, ratio, y_neg))

    f_ref = F.normalize(raw, dim=1).requires_grad_(True)
    slow = _reference(f_ref, memory, positives, delta, ratio, y_neg, labels if exclude else None, slots_base,
                      variant == "all_negatives")
    (grad_slow,) = torch.autograd.grad(slow, f_ref)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_fast, grad_slow, rtol=1e-10, atol=1e-12)
    assert grad_fast.abs().sum() > 0


def test_gradient_reaches_the_encoder_side_and_not_the_memory():
    torch.manual_seed(0)
    bank = MemoryBank(40, 4, 4, MemoryConfig())
    bank.initialize(torch.randn(40, 4), torch.arange(40) % 4)
    before = bank.features.clone()
    w = torch.randn(4, 4, requires_grad=True)
    f_hat = F.normalize(torch.randn(3, 4) @ w, dim=1)
    sim = bank.similarity(f_hat)
    pos = pseudo_multilabel(sim, PseudoMultilabelConfig(threshold=0.5)).positives
    hard_negative_mse(sim, pos, 1.0, 0.1, -1.0).backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert torch.equal(bank.features, before) and bank.features.grad is None


def test_total_loss_and_ablation_variants():
    torch.manual_seed(1)
    logits = torch.randn(4, 4)
    labels = torch.tensor([0, 1, 2, 3])
    sim = torch.rand(3, 50) * 2 - 1
    pos = sim > 0.8
    ce = F.cross_entropy(logits, labels)

    slot_labels = torch.arange(50) % 4

    nnpm = nnpm_loss(logits, labels, sim, pos, NnpmLossConfig(target_weight=0.5), slot_labels, 4)
    cand = negative_candidates(pos, "other_emotions", slot_labels, 4)
    l_t = hard_negative_mse(sim, pos, 1.0, 0.01, -1.0, candidates=cand, num_slots=50)
    torch.testing.assert_close(nnpm.source, ce)
    torch.testing.assert_close(nnpm.target, l_t)
    torch.testing.assert_close(nnpm.total, ce + 0.5 * l_t)
    torch.testing.assert_close((nnpm.target_parts.positive + nnpm.target_parts.negative).mean(), l_t)

    wo_sl = nnpm_loss(None, None, sim, pos, NnpmLossConfig(source_loss=False), slot_labels, 4)
    assert wo_sl.source is None
    torch.testing.assert_close(wo_sl.total, l_t)

    wo_hl = nnpm_loss(logits, labels, sim, pos, NnpmLossConfig(target_loss="mse_all"))
    torch.testing.assert_close(wo_hl.total, ce + ((sim - pos.float()) ** 2).mean())
    torch.testing.assert_close(target_loss(sim, pos, NnpmLossConfig(target_loss="mse_all")), wo_hl.target)
    parts = wo_hl.target_parts
    torch.testing.assert_close(parts.positive.mean(), ((sim - 1) ** 2 * pos).sum(1).mean() / 50)
    torch.testing.assert_close(parts.negative.mean(), (sim**2 * ~pos).sum(1).mean() / 50)

    with pytest.raises(ValueError, match="no source logits"):
        nnpm_loss(None, None, sim, pos, NnpmLossConfig(), slot_labels, 4)
    with pytest.raises(ValueError, match="need the slot labels"):
        nnpm_loss(logits, labels, sim, pos, NnpmLossConfig())


def test_shape_checks():
    with pytest.raises(ValueError, match="boolean"):
        hard_negative_mse(torch.zeros(2, 3), torch.zeros(2, 3), 1.0, 0.1, -1.0)
    with pytest.raises(ValueError, match="boolean"):
        target_mse(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.bool))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"negative_target": 0.5}, "negative_target"),
        ({"hard_negative_ratio": 0.0}, "hard_negative_ratio"),
        ({"hard_negative_ratio": 1.5}, "hard_negative_ratio"),
        ({"delta": -1.0}, "delta"),
        ({"target_weight": math.inf}, "target_weight"),
        ({"target_loss": "mse"}, "target_loss"),
        ({"negatives": "others"}, "negatives must be 'other_emotions' or 'all'"),
        ({"hard_negative_count": "batch"}, "hard_negative_count must be 'slots' or 'negatives'"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NnpmLossConfig(**kwargs)


def test_config_defaults_and_loading():
    cfg = NnpmLossConfig()
    assert (cfg.delta, cfg.hard_negative_ratio, cfg.negative_target, cfg.target_weight) == (1.0, 0.01, -1.0, 1.0)
    assert (cfg.negatives, cfg.hard_negative_count) == ("other_emotions", "slots")
    assert from_dict(NnpmLossConfig, {"negative_target": 0, "delta": 5}).negative_target == 0.0


def test_inactive_utterances_contribute_nothing_and_mine_nothing():
    gen = torch.Generator().manual_seed(3)
    sim = (torch.rand(4, 12, generator=gen) * 2 - 1).requires_grad_()
    pos = sim.detach() > 0.8
    pos[1] = False  # an empty set
    labels = torch.arange(12) % 4
    cfg = NnpmLossConfig(hard_negative_ratio=0.2)
    full = target_loss_parts(sim, pos, cfg, labels, 4)
    active = torch.tensor([True, False, True, False])
    part = target_loss_parts(sim, pos, cfg, labels, 4, active)
    assert torch.equal(part.positive[active], full.positive[active])
    assert torch.equal(part.negative[active], full.negative[active])
    assert (part.positive[~active] == 0).all() and (part.negative[~active] == 0).all()
    assert not part.hard_valid[~active].any() and torch.equal(part.hard_valid[active], full.hard_valid[active])
    assert part.value.item() == pytest.approx(float((full.positive + full.negative)[active].sum().detach()) / 4)
    part.value.backward()
    assert (sim.grad[~active] == 0).all() and sim.grad[active].abs().sum() > 0
    with pytest.raises(ValueError, match="active"):
        target_loss_parts(sim, pos, cfg, labels, 4, torch.ones(3, dtype=torch.bool))
    total = nnpm_loss(None, None, sim, pos, NnpmLossConfig(hard_negative_ratio=0.2, source_loss=False), labels, 4,
                      active)
    assert total.target.item() == pytest.approx(part.value.item())
