import numpy as np
import pytest
import torch

from audioadapt.adaptation.pseudo_labels import (
    PseudoLabelConfig,
    PseudoLabels,
    agreement,
    clip_pseudo_labels,
    frame_pseudo_labels,
    make_pseudo_labels,
    median_smooth,
    pseudo_label_stats,
)


def test_agreement_rule_by_hand():
    p1 = torch.tensor([0.9, 0.9, 0.2, 0.2, 0.6, 0.5, 0.51])
    p2 = torch.tensor([0.8, 0.3, 0.1, 0.7, 0.51, 0.5, 0.5])
    out = agreement(p1, p2, 0.5, 0.5)
    assert out.dtype == torch.int8
    assert out.tolist() == [1, -1, 0, -1, 1, 0, -1]


def test_separate_negative_threshold():
    p1 = torch.tensor([0.3, 0.1, 0.2, 0.9])
    p2 = torch.tensor([0.3, 0.2, 0.25, 0.95])
    assert agreement(p1, p2, 0.5, 0.2).tolist() == [-1, 0, -1, 1]


def test_weak_label_constraint():
    # 1 clip, 4 frames, 3 classes; both labelers confidently positive everywhere
    p = torch.full((2, 4, 3), 0.9)
    p[:, :, 2] = 0.1  # both negative for class 2
    weak = torch.tensor([[1, 0, 1], [-1, -1, -1]])  # clip 0 weakly labelled, clip 1 unlabelled
    cfg = PseudoLabelConfig()
    labels = frame_pseudo_labels(p, p.clone(), cfg, weak_labels=weak)
    assert (labels[0, :, 1] == 0).all()  # absent class: forced negative, no invented positive
    assert (labels[0, :, 0] == 1).all()  # present class keeps the agreement result
    assert (labels[0, :, 2] == 0).all()  # present class, agreed negative frames stay negative
    assert (labels[1, :, 1] == 1).all()  # unknown weak label: agreement only
    # disagreement on an absent class is still forced to 0
    q = p.clone()
    q[0, :, 1] = 0.1
    assert (frame_pseudo_labels(p, q, cfg, weak)[0, :, 1] == 0).all()
    off = frame_pseudo_labels(p, p.clone(), PseudoLabelConfig(weak_constraint=False), weak)
    assert (off[0, :, 1] == 1).all()


def test_padded_frames_are_unknown():
    p = torch.full((1, 5, 2), 0.9)
    mask = torch.tensor([[True, True, True, False, False]])
    labels = frame_pseudo_labels(p, p, PseudoLabelConfig(), frame_mask=mask)
    assert (labels[0, :3] == 1).all() and (labels[0, 3:] == -1).all()


def test_median_smooth_matches_scipy_reflect():
    ndimage = pytest.importorskip("scipy.ndimage")
    torch.manual_seed(0)
    for frames in (2, 3, 11):
        x = torch.rand(2, frames, 3)
        for window in (3, 5, 7):
            ref = ndimage.median_filter(x.numpy(), size=(1, window, 1), mode="reflect")
            np.testing.assert_allclose(median_smooth(x, window).numpy(), ref)


def test_smoothing_before_agreement_removes_a_one_frame_blip():
    p = torch.full((1, 7, 1), 0.1)
    p[0, 3, 0] = 0.9
    raw = frame_pseudo_labels(p, p, PseudoLabelConfig())
    smooth = frame_pseudo_labels(p, p, PseudoLabelConfig(median_filter=3))
    assert raw[0, 3, 0] == 1 and (smooth == 0).all()


def test_clip_pseudo_labels():
    c1 = torch.tensor([[0.9, 0.1, 0.9], [0.9, 0.6, 0.1]])
    c2 = torch.tensor([[0.8, 0.1, 0.2], [0.7, 0.3, 0.2]])
    weak = torch.tensor([[0, 1, -1], [-1, -1, -1]])
    cfg = PseudoLabelConfig()
    assert clip_pseudo_labels(c1, c2, cfg, weak).tolist() == [[0, 1, -1], [1, -1, 0]]
    no_clip = clip_pseudo_labels(c1, c2, PseudoLabelConfig(clip_labels=False), weak)
    assert no_clip.tolist() == [[0, 1, -1], [-1, -1, -1]]


def test_batch_result_equals_clip_by_clip():
    torch.manual_seed(3)
    p1, p2 = torch.rand(4, 9, 3), torch.rand(4, 9, 3)
    c1, c2 = torch.rand(4, 3), torch.rand(4, 3)
    weak = torch.tensor([[1, 0, 1], [-1, -1, -1], [0, 0, 1], [-1, -1, -1]])
    cfg = PseudoLabelConfig(median_filter=3, negative_threshold=0.3)
    batch = make_pseudo_labels(p1, p2, c1, c2, cfg, weak)
    for i in range(4):
        one = make_pseudo_labels(p1[i : i + 1], p2[i : i + 1], c1[i : i + 1], c2[i : i + 1], cfg, weak[i : i + 1])
        assert torch.equal(batch.frame[i], one.frame[0]) and torch.equal(batch.clip[i], one.clip[0])


def test_stats_by_hand():
    frame = torch.tensor(
        [
            [[1, 0], [1, 0], [0, -1], [1, -1], [-1, -1]],
            [[-1, -1], [-1, -1], [-1, -1], [-1, -1], [-1, -1]],
        ],
        dtype=torch.int8,
    )
    clip = torch.tensor([[1, 0], [-1, 1]], dtype=torch.int8)
    stats = pseudo_label_stats(PseudoLabels(frame, clip))
    assert stats.clips == 2 and stats.clips_labelled == 1
    assert stats.frames_positive == [3, 0]
    assert stats.frames_negative == [1, 2]
    assert stats.frames_unknown == [6, 8]
    assert stats.events == [2, 0]
    assert stats.clips_with_events == [1, 0]
    assert stats.clip_positive == [1, 1] and stats.clip_negative == [0, 1]
    assert stats.coverage == pytest.approx(6 / 20)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    masked = pseudo_label_stats(PseudoLabels(frame, clip), mask)
    assert masked.events == [1, 0] and masked.frames_positive == [2, 0]
    flat = stats.as_dict(["Dog", "Cat"])
    assert flat["events/Dog"] == 2 and flat["coverage"] == stats.coverage


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.0},
        {"negative_threshold": 0.6},
        {"median_filter": 4},
        {"median_filter": 0},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        PseudoLabelConfig(**kwargs)


#: The working rule: confident negatives only, none for a class the weak label marks present.
WORKING = PseudoLabelConfig(threshold=0.5, negative_threshold=0.1, present_negatives="unknown")


def _votes(values: list[float]) -> torch.Tensor:
    """One clip, one frame per value, one class: ``(1, frame, 1)`` probabilities."""
    return torch.tensor(values).view(1, -1, 1)


def test_working_rule_positive_confident_negative_or_unknown():
    # unlabelled clip: both > 0.5 -> 1, both <= 0.1 -> 0, an unsure or disagreeing frame -> unknown
    p1 = _votes([0.9, 0.05, 0.3, 0.05, 0.9, 0.1, 0.45])
    p2 = _votes([0.7, 0.08, 0.2, 0.3, 0.2, 0.1, 0.45])
    labels = frame_pseudo_labels(p1, p2, WORKING, weak_labels=torch.tensor([[-1]]))
    assert labels.view(-1).tolist() == [1, 0, -1, -1, -1, 0, -1]
    # the paper's rule makes every frame where both are <= 0.5 a negative
    paper = frame_pseudo_labels(p1, p2, PseudoLabelConfig(), weak_labels=torch.tensor([[-1]]))
    assert paper.view(-1).tolist() == [1, 0, 0, 0, -1, 0, 0]


def test_absent_classes_are_negative_on_every_frame_whatever_the_vote():
    p1 = _votes([0.9, 0.05, 0.3, 0.9])
    p2 = _votes([0.7, 0.08, 0.2, 0.1])
    for cfg in (WORKING, PseudoLabelConfig()):
        labels = frame_pseudo_labels(p1, p2, cfg, weak_labels=torch.tensor([[0]]))
        assert labels.view(-1).tolist() == [0, 0, 0, 0]


def test_a_present_class_never_gets_negative_frames_in_the_working_rule():
    p1 = _votes([0.9, 0.05, 0.3, 0.02])
    p2 = _votes([0.7, 0.08, 0.2, 0.01])
    present = torch.tensor([[1]])
    assert frame_pseudo_labels(p1, p2, WORKING, present).view(-1).tolist() == [1, -1, -1, -1]
    # the paper's rule keeps the vote: a present class can be negative on every frame
    low = _votes([0.2, 0.05, 0.3, 0.02])
    assert frame_pseudo_labels(low, low, PseudoLabelConfig(), present).view(-1).tolist() == [0, 0, 0, 0]
    assert frame_pseudo_labels(low, low, WORKING, present).view(-1).tolist() == [-1, -1, -1, -1]


def test_with_positive_keeps_negatives_only_beside_a_positive_frame():
    cfg = PseudoLabelConfig(negative_threshold=0.1, present_negatives="with_positive")
    present = torch.tensor([[1]])
    detected = _votes([0.9, 0.05, 0.3, 0.02])
    assert frame_pseudo_labels(detected, detected, cfg, present).view(-1).tolist() == [1, 0, -1, 0]
    missed = _votes([0.2, 0.05, 0.3, 0.02])
    assert frame_pseudo_labels(missed, missed, cfg, present).view(-1).tolist() == [-1, -1, -1, -1]
    # a positive vote on a padded frame does not count
    padded = _votes([0.05, 0.05, 0.9, 0.9])
    mask = torch.tensor([[True, True, False, False]])
    assert frame_pseudo_labels(padded, padded, cfg, present, mask).view(-1).tolist() == [-1, -1, -1, -1]


@pytest.mark.parametrize("rule", ["unknown", "with_positive"])
def test_no_present_class_is_all_negative_and_no_weak_label_is_contradicted(rule):
    torch.manual_seed(0)
    cfg = PseudoLabelConfig(negative_threshold=0.1, present_negatives=rule)
    p1, p2 = torch.rand(16, 20, 5) ** 3, torch.rand(16, 20, 5) ** 3  # mostly low probabilities
    weak = torch.randint(-1, 2, (16, 5))
    weak[0, 0], p1[0, :, 0], p2[0, :, 0] = 1, 0.3, 0.05  # a present class both labelers call absent
    mask = torch.arange(20)[None, :] < torch.randint(5, 21, (16, 1))
    labels = frame_pseudo_labels(p1, p2, cfg, weak, mask)
    valid = mask.unsqueeze(-1).expand_as(labels)
    present = (weak == 1).unsqueeze(1).expand_as(labels)
    absent = (weak == 0).unsqueeze(1).expand_as(labels)
    assert (labels[~valid] == -1).all()
    assert (labels[absent & valid] == 0).all()
    negative_only = ((labels == 0) | ~valid).all(dim=1) & (labels == 0).any(dim=1)
    assert not (negative_only & (weak == 1)).any()
    if rule == "unknown":
        assert not (labels[present] == 0).any()
    paper = frame_pseudo_labels(p1, p2, PseudoLabelConfig(), weak, mask)
    assert ((((paper == 0) | ~valid).all(dim=1)) & (weak == 1)).any()  # what the rule is there to prevent


def test_present_negatives_must_be_a_known_rule():
    from audioadapt.config.load import from_dict
    from audioadapt.errors import ConfigError

    assert from_dict(PseudoLabelConfig, {"present_negatives": "unknown"}).present_negatives == "unknown"
    with pytest.raises(ConfigError, match="present_negatives"):
        from_dict(PseudoLabelConfig, {"present_negatives": "drop"})
