import math

import pytest
import torch

from audioadapt.adaptation.losses import clip_bce, domain_bce, frame_bce, masked_bce_with_logits

LN2 = math.log(2.0)


def _bce(z, y):
    """BCE of a logit by hand: -(y log s + (1 - y) log(1 - s))."""
    s = 1.0 / (1.0 + math.exp(-z))
    return -(y * math.log(s) + (1 - y) * math.log(1 - s))


def test_masked_bce_hand_values():
    logits = torch.tensor([0.0, 2.0, -1.0])
    targets = torch.tensor([1.0, -1.0, 0.0])
    expected = (LN2 + math.log(1 + math.exp(-1.0))) / 2
    assert masked_bce_with_logits(logits, targets).item() == pytest.approx(expected)
    # soft targets
    soft = masked_bce_with_logits(torch.tensor([1.5]), torch.tensor([0.25])).item()
    assert soft == pytest.approx(_bce(1.5, 0.25))


def test_nothing_known_gives_zero_with_a_graph():
    logits = torch.randn(2, 3, requires_grad=True)
    loss = masked_bce_with_logits(logits, torch.full((2, 3), -1.0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(2, 3))


def test_unknown_entries_get_no_gradient():
    logits = torch.zeros(1, 4, requires_grad=True)
    clip_bce(logits, torch.tensor([[1.0, -1.0, 0.0, -1.0]])).backward()
    assert logits.grad[0, 1] == 0 and logits.grad[0, 3] == 0
    assert logits.grad[0, 0] < 0 < logits.grad[0, 2]


def test_frame_bce_excludes_padded_frames_and_unknown_labels():
    logits = torch.tensor([[[0.0], [2.0], [-3.0]]])  # (batch 1, frame 3, class 1)
    targets = torch.tensor([[[1.0], [0.0], [-1.0]]])
    mask = torch.tensor([[True, False, True]])
    assert frame_bce(logits, targets, mask).item() == pytest.approx(LN2)
    assert frame_bce(logits, targets).item() == pytest.approx((LN2 + _bce(2.0, 0)) / 2)


def test_int8_pseudo_labels_are_accepted_as_targets():
    logits = torch.tensor([[[0.0, 1.0]]])
    targets = torch.tensor([[[1, -1]]], dtype=torch.int8)
    assert frame_bce(logits, targets).item() == pytest.approx(LN2)


def test_domain_bce_per_clip_balanced_and_plain():
    logits = torch.tensor([0.0, 0.0, 0.0, 2.0])
    labels = torch.tensor([1, 1, 1, 0])
    synth = math.log(1 + math.exp(2.0))
    assert domain_bce(logits, labels, balance=False).item() == pytest.approx((3 * LN2 + synth) / 4)
    assert domain_bce(logits, labels, balance=True).item() == pytest.approx((LN2 + synth) / 2)
    # -1 leaves a clip out
    labels2 = torch.tensor([1, 1, -1, 0])
    assert domain_bce(logits, labels2, balance=False).item() == pytest.approx((2 * LN2 + synth) / 3)


def test_domain_bce_per_frame_with_mask():
    logits = torch.tensor([[0.0, 1.0, 9.0], [-1.0, 0.0, 0.0]])
    labels = torch.tensor([1, 0])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    real = (_bce(0.0, 1) + _bce(1.0, 1)) / 2
    synth = (_bce(-1.0, 0) + 2 * _bce(0.0, 0)) / 3
    assert domain_bce(logits, labels, True, mask).item() == pytest.approx((real + synth) / 2)
    plain = (_bce(0.0, 1) + _bce(1.0, 1) + _bce(-1.0, 0) + 2 * _bce(0.0, 0)) / 5
    assert domain_bce(logits, labels, False, mask).item() == pytest.approx(plain)


def test_domain_bce_single_domain_and_empty():
    logits = torch.tensor([1.0, -1.0], requires_grad=True)
    one = domain_bce(logits, torch.tensor([1, 1]), balance=True)
    assert one.item() == pytest.approx((_bce(1.0, 1) + _bce(-1.0, 1)) / 2)
    empty = domain_bce(logits, torch.tensor([-1, -1]), balance=True)
    assert empty.item() == 0.0
    empty.backward()


def test_shape_and_label_errors():
    with pytest.raises(ValueError):
        masked_bce_with_logits(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError):
        domain_bce(torch.zeros(2), torch.tensor([0, 2]), balance=True)
    with pytest.raises(ValueError):
        domain_bce(torch.zeros(2), torch.tensor([0, 1, 1]), balance=True)
    with pytest.raises(ValueError):
        domain_bce(torch.zeros(2), torch.tensor([0, 1]), True, torch.ones(2, 1, dtype=torch.bool))


def test_divisor_makes_the_rank_average_the_global_mean():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 3, requires_grad=True)
    targets = torch.randint(0, 2, (4, 6, 3)).float()
    targets[0, :4] = -1  # pseudo-label gaps: the halves (ranks) know 24 and 36 entries
    halves = (slice(0, 2), slice(2, 4))
    assert [int((targets[h] >= 0).sum()) for h in halves] == [24, 36]
    divisor = lambda count: torch.tensor(30.0)  # noqa: E731  what DDP's mean count over ranks gives: (24 + 36) / 2
    whole = frame_bce(logits, targets)
    ranks = [frame_bce(logits[h], targets[h], divisor=divisor) for h in halves]
    torch.testing.assert_close((ranks[0] + ranks[1]) / 2, whole)
    plain = sum(frame_bce(logits[h], targets[h]) for h in halves) / 2
    assert abs(plain.item() - whole.item()) > 1e-3  # the mean of per-rank means is not the global mean
    (grad_whole,) = torch.autograd.grad(whole, logits)
    (grad_ranks,) = torch.autograd.grad((ranks[0] + ranks[1]) / 2, logits)
    torch.testing.assert_close(grad_ranks, grad_whole)
    seen = []
    clip_bce(logits[:2, 0], targets[:2, 0], divisor=lambda n: seen.append(int(n)) or torch.tensor(1.0))
    assert seen == [int((targets[:2, 0] >= 0).sum())]  # the divisor gets this rank's count


def test_divisor_with_balanced_domains_counts_a_domain_absent_from_one_rank():
    torch.manual_seed(1)
    logits = torch.randn(8, 5, requires_grad=True)
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 1, -1])  # rank 0 holds no synthetic (0) clip
    mask = torch.ones(8, 5, dtype=torch.bool)
    mask[5, 3:] = False
    halves = (slice(0, 4), slice(4, 8))
    valid = [(labels[h] >= 0).unsqueeze(1) & mask[h] for h in halves]
    for balance in (True, False):
        groups = [[v & (labels[h] == d).unsqueeze(1) for d in (0, 1)] if balance else [v]
                  for h, v in zip(halves, valid)]
        means = [torch.tensor(sum(int(g[i].sum()) for g in groups) / 2) for i in range(len(groups[0]))]

        def divisor_of_rank():
            queue = iter(means)  # one call per domain, in domain order, on every rank
            return lambda count: next(queue)

        whole = domain_bce(logits, labels, balance, mask)
        ranks = [domain_bce(logits[h], labels[h], balance, mask[h], divisor_of_rank()) for h in halves]
        torch.testing.assert_close((ranks[0] + ranks[1]) / 2, whole)
    nothing = domain_bce(logits[:2], torch.tensor([-1, -1]), True, divisor=lambda count: torch.tensor(0.0))
    assert nothing.item() == 0.0 and nothing.requires_grad
