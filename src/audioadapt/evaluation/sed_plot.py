"""A picture of one file's detections: log-mel spectrogram above, event lanes below."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.features.frames import FrameGrid


def plot_detections(path: str | Path, features: np.ndarray, events: Iterable[Event], classes: Sequence[str],
                    grid: FrameGrid, duration: float, scores: np.ndarray | None = None,
                    thresholds: Sequence[float] | None = None, title: str | None = None) -> Path:
    """Write a PNG of a file's log-mel spectrogram with its detected events under it; returns the path.

    Parameters
    ----------
    path: the PNG to write (atomically: a temporary file renamed into place).
    features: ``(frame, mel)`` log-mel on the grid's input frames.
    events: detected events, drawn as boxes from onset to offset, one lane per class.
    classes: lane order, top to bottom.
    grid: frame geometry (input hop for the spectrogram, output hop for ``scores``).
    duration: the file's length in seconds (the time axis).
    scores: optional ``(out_frame, class)`` probabilities, drawn as a thin line in each lane.
    thresholds: optional per-class decision thresholds, drawn as a dotted line in each lane.
    title: figure title.

    Uses matplotlib's Agg canvas, leaving the global backend untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(classes)
    lane = {c: n - 1 - i for i, c in enumerate(classes)}  # first class on top
    fig = Figure(figsize=(10, 3.0 + 0.3 * n))
    FigureCanvasAgg(fig)
    spec, det = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.5, max(1.0, 0.3 * n)]})
    end = features.shape[0] * grid.input_hop_seconds
    image = spec.imshow(np.asarray(features).T, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, end, 0.0, features.shape[1]), interpolation="nearest")
    fig.colorbar(image, ax=[spec, det], label="log-mel", fraction=0.03, pad=0.01)
    spec.set_ylabel("mel bin")
    if title:
        spec.set_title(title, fontsize=10)
    for ev in events:
        det.broken_barh([(ev.onset, ev.offset - ev.onset)], (lane[ev.label] + 0.1, 0.8),
                        facecolors="tab:blue", alpha=0.6, edgecolors="tab:blue")
    if scores is not None:
        times = (np.arange(len(scores)) + 0.5) * grid.output_hop_seconds
        for k, c in enumerate(classes):
            det.plot(times, lane[c] + 0.1 + 0.8 * np.asarray(scores)[:, k], color="black", linewidth=0.6)
            if thresholds is not None:
                det.axhline(lane[c] + 0.1 + 0.8 * thresholds[k], color="grey", linewidth=0.6, linestyle=":")
    for boundary in range(1, n):
        det.axhline(boundary, color="lightgrey", linewidth=0.5)
    det.set_yticks([lane[c] + 0.5 for c in classes], list(classes), fontsize=8)
    det.set_ylim(0, n)
    det.set_xlim(0, duration)
    det.set_xlabel("time (s)")
    det.grid(axis="x", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


__all__ = ["plot_detections"]
