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
