"""A picture of one file's detections: log-mel spectrogram above, event lanes below.

The spectrogram has its colour bar beside it; the lanes below share its time
axis. Each class has a lane: detected events are boxes, the frame
probabilities a line on the lane's own 0-1 scale (read on the right-hand
axis) and the decision threshold a dotted line. With reference events (e.g.
a DCASE strong TSV given as ``sed predict --ref``) each lane is split: the
detections in its upper half, the reference events in its lower half. A
legend under the lanes names each mark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.evaluation.figures import new_figure, save_png
from audioadapt.features.frames import FrameGrid

log = logging.getLogger(__name__)

#: Lane geometry, in lane units: the margin above and below the marks, and the split with reference events.
_MARGIN, _SPLIT = 0.1, 0.5
#: Height of one class lane, in inches.
_LANE_INCHES = 0.42
#: Colours of the detected and of the reference events.
DETECTED_COLOR, REFERENCE_COLOR = "tab:blue", "tab:orange"


@dataclass
class PlotReference:
    """Reference events to draw under the detections, by file name (a DCASE strong TSV: ``--ref``).

    Attributes
    ----------
    path: the file they come from.
    events: file name -> its events (a file listed with the empty-event row -> ``()``).
    """

    path: Path
    events: Mapping[str, Sequence[Event]]
    _missing: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def read(cls, path: str | Path, classes: Sequence[str], classes_from: str) -> PlotReference:
        """Read ``path``; a label outside ``classes`` (which come from ``classes_from``) is an error naming the line."""
        from audioadapt.data.dcase import read_strong_tsv

        return cls(Path(path), read_strong_tsv(path, classes=classes, classes_from=classes_from))

    def of(self, name: str) -> list[Event]:
        """The reference events of file ``name``; a file the reference does not list gets none, with a warning."""
        if name not in self.events and name not in self._missing:
            self._missing.add(name)
            log.warning("%s lists no row for %s: its plot shows no reference event", self.path, name)
        return list(self.events.get(name, ()))


def _boxes(ax, events: Iterable[Event], lane: dict[str, int], low: float, high: float, color: str,
           hatch: str | None = None) -> None:
    """Draw ``events`` as boxes spanning ``low``-``high`` of their class's lane."""
    for ev in events:
        ax.broken_barh([(ev.onset, ev.offset - ev.onset)], (lane[ev.label] + low, high - low), facecolors=color,
                       alpha=0.55, edgecolors=color, hatch=hatch, linewidth=0.8)


def _legend(fig, reference: bool, scores: bool, thresholds: bool) -> None:
    """Name the marks of the lanes, under the figure."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=DETECTED_COLOR, edgecolor=DETECTED_COLOR, alpha=0.55, label="detected event")]
    if reference:
        handles.append(Patch(facecolor=REFERENCE_COLOR, edgecolor=REFERENCE_COLOR, alpha=0.55, hatch="//",
                             label="reference event"))
    if scores:
        handles.append(Line2D([], [], color="black", linewidth=0.8, label="frame probability (right axis)"))
    if thresholds:
        handles.append(Line2D([], [], color="dimgrey", linewidth=0.8, linestyle=":", label="decision threshold"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def _probability_axis(ax, n: int) -> None:
    """A right-hand axis reading each lane's probability: 0 at the lane's lower mark, 1 at its upper one.

    Every lane gets tick marks at 0, 0.5 and 1; the bottom lane also their values.
    """
    right = ax.twinx()
    right.set_ylim(0, n)
    ticks = [lane + _MARGIN + (1 - 2 * _MARGIN) * p for lane in range(n) for p in (0.0, 0.5, 1.0)]
    right.set_yticks(ticks, ["0", ".5", "1"] + [""] * (len(ticks) - 3), fontsize=7)
    right.tick_params(axis="y", length=2.5, pad=1.5)
    right.set_ylabel("probability (each lane 0-1)", fontsize=8)


def plot_detections(path: str | Path, features: np.ndarray, events: Iterable[Event], classes: Sequence[str],
                    grid: FrameGrid, duration: float, scores: np.ndarray | None = None,
                    thresholds: Sequence[float] | None = None, title: str | None = None,
                    reference: Iterable[Event] | None = None) -> Path:
    """Write a PNG of a file's log-mel spectrogram with its detected events under it; returns the path.

    ``path`` is written atomically (a temporary file renamed into place); the
    other parameters are those of :func:`detection_figure`.
    """
    fig = detection_figure(features, events, classes, grid, duration, scores, thresholds, title, reference)
    return save_png(fig, path)


def detection_figure(features: np.ndarray, events: Iterable[Event], classes: Sequence[str], grid: FrameGrid,
                     duration: float, scores: np.ndarray | None = None, thresholds: Sequence[float] | None = None,
                     title: str | None = None, reference: Iterable[Event] | None = None) -> Any:
    """The figure :func:`plot_detections` writes (a matplotlib ``Figure``).

    Parameters
    ----------
    features: ``(frame, mel)`` log-mel on the grid's input frames.
    events: detected events, drawn as boxes from onset to offset, one lane per class.
    classes: lane order, top to bottom.
    grid: frame geometry (input hop for the spectrogram, output hop for ``scores``).
    duration: the file's length in seconds (the time axis).
    scores: optional ``(out_frame, class)`` probabilities, drawn as a line in each lane.
    thresholds: optional per-class decision thresholds, drawn as a dotted line in each lane.
    title: figure title.
    reference: optional reference events of the file, drawn under the detections
        in each lane (``None``: no reference; an empty list: a file without events).

    Uses matplotlib's Agg canvas, leaving the global backend untouched.
    """
    n = len(classes)
    lane = {c: n - 1 - i for i, c in enumerate(classes)}  # first class on top
    reference = None if reference is None else list(reference)
    fig = new_figure(10, 3.6 + _LANE_INCHES * n, layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=[1.0, 0.018], height_ratios=[2.5, max(1.2, _LANE_INCHES * n)])
    spec = fig.add_subplot(gs[0, 0])
    det = fig.add_subplot(gs[1, 0], sharex=spec)
    end = features.shape[0] * grid.input_hop_seconds
    image = spec.imshow(np.asarray(features).T, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, end, 0.0, features.shape[1]), interpolation="nearest")
    fig.colorbar(image, cax=fig.add_subplot(gs[0, 1]), label="log-mel")
    spec.set_ylabel("mel bin")
    spec.tick_params(axis="x", labelbottom=False)
    if title:
        spec.set_title(title, fontsize=10)
    top = (_SPLIT if reference is not None else _MARGIN, 1 - _MARGIN)
    _boxes(det, events, lane, *top, DETECTED_COLOR)
    if reference is not None:
        _boxes(det, reference, lane, _MARGIN, _SPLIT, REFERENCE_COLOR, hatch="//")
    if scores is not None:
        times = (np.arange(len(scores)) + 0.5) * grid.output_hop_seconds
        span = 1 - 2 * _MARGIN
        for k, c in enumerate(classes):
            det.plot(times, lane[c] + _MARGIN + span * np.asarray(scores)[:, k], color="black", linewidth=0.6)
            if thresholds is not None:
                det.axhline(lane[c] + _MARGIN + span * thresholds[k], color="dimgrey", linewidth=0.6, linestyle=":")
    for boundary in range(1, n):
        det.axhline(boundary, color="lightgrey", linewidth=0.5)
    det.set_yticks([lane[c] + 0.5 for c in classes], list(classes), fontsize=8)
    det.set_ylim(0, n)
    det.set_xlim(0, duration)
    det.set_xlabel("time (s)")
    det.grid(axis="x", alpha=0.3)
    if scores is not None:
        _probability_axis(det, n)
    _legend(fig, reference is not None, scores is not None, scores is not None and thresholds is not None)
    return fig


__all__ = ["DETECTED_COLOR", "REFERENCE_COLOR", "PlotReference", "detection_figure", "plot_detections"]
