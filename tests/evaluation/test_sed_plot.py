"""The picture of one file's detections: colour bar, lanes, probability axis, legend, reference events."""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.evaluation.sed_plot import DETECTED_COLOR, REFERENCE_COLOR, detection_figure, plot_detections
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid

CLASSES = ("bark", "hum", "water")


@pytest.fixture(scope="module")
def grid() -> FrameGrid:
    return FrameGrid.from_features(FeatureConfig(), (2, 2))


def _inputs(grid: FrameGrid):
    frames = int(round(10.0 / grid.input_hop_seconds))
    features = np.random.default_rng(0).normal(size=(frames, 16))
    scores = np.full((int(round(10.0 / grid.output_hop_seconds)), len(CLASSES)), 0.25)
    return features, scores


def _boxes(ax, color: str) -> list[tuple[float, float, float, float]]:
    """``(x, width, y, height)`` of the boxes of one colour in the lanes."""
    from matplotlib.colors import to_rgba

    out = []
    for coll in ax.collections:
        if len(coll.get_facecolor()) and np.allclose(coll.get_facecolor()[0][:3], to_rgba(color)[:3]):
            for path in coll.get_paths():
                (x0, y0), (x1, y1) = path.vertices.min(axis=0), path.vertices.max(axis=0)
                out.append((float(x0), float(x1 - x0), float(y0), float(y1 - y0)))
    return out


def test_the_colour_bar_belongs_to_the_spectrogram_and_the_lanes_share_its_time_axis(grid):
    features, scores = _inputs(grid)
    fig = detection_figure(features, [Event(1.0, 2.0, "bark")], CLASSES, grid, 10.0, scores, [0.5] * 3,
                           title="clip.wav")
    fig.canvas.draw()
    spec, lanes = fig.axes[0], fig.axes[1]
    cbar = next(ax for ax in fig.axes if ax.get_ylabel() == "log-mel")
    s, c, d = spec.get_position(), cbar.get_position(), lanes.get_position()
    assert c.y0 >= d.y1 - 1e-6 and abs(c.y0 - s.y0) < 0.02 and abs(c.y1 - s.y1) < 0.02  # beside the spectrogram only
    assert abs(s.x0 - d.x0) < 1e-6 and abs(s.x1 - d.x1) < 1e-6  # same time axis width
    right = next(ax for ax in fig.axes if ax.get_ylabel() == "probability (each lane 0-1)")
    assert right.get_ylim() == (0.0, 3.0)
    ticks = right.get_yticks()
    assert ticks[:3] == pytest.approx([0.1, 0.5, 0.9]) and len(ticks) == 9
    assert [t.get_text() for t in right.get_yticklabels()][:3] == ["0", ".5", "1"]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["detected event", "frame probability (right axis)",
                                                          "decision threshold"]


def test_reference_events_go_under_the_detections_in_their_lane(grid, tmp_path):
    features, scores = _inputs(grid)
    detected = [Event(1.0, 3.0, "bark")]
    reference = [Event(1.5, 2.5, "bark"), Event(6.0, 8.0, "water")]
    fig = detection_figure(features, detected, CLASSES, grid, 10.0, scores, [0.5] * 3, reference=reference)
    lanes = fig.axes[1]
    # lanes top to bottom: bark (2), hum (1), water (0); detections in the upper half, reference in the lower
    assert _boxes(lanes, DETECTED_COLOR) == [pytest.approx((1.0, 2.0, 2.5, 0.4))]
    assert _boxes(lanes, REFERENCE_COLOR) == [pytest.approx((1.5, 1.0, 2.1, 0.4)), pytest.approx((6.0, 2.0, 0.1, 0.4))]
    assert "reference event" in [t.get_text() for t in fig.legends[0].get_texts()]
    without = detection_figure(features, detected, CLASSES, grid, 10.0)
    assert _boxes(without.axes[1], DETECTED_COLOR) == [pytest.approx((1.0, 2.0, 2.1, 0.8))]  # the whole lane
    assert [t.get_text() for t in without.legends[0].get_texts()] == ["detected event"]
    path = plot_detections(tmp_path / "plots" / "clip.png", features, detected, CLASSES, grid, 10.0, scores,
                           reference=reference)
    assert path.read_bytes()[:4] == b"\x89PNG" and sorted(p.name for p in path.parent.iterdir()) == ["clip.png"]
