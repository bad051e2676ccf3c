"""Frame scores -> sound events: median filter, threshold, contiguous regions.

Defaults follow the DCASE task 4 baselines (see ``DecodeConfig``). All time
conversions go through :class:`~audioadapt.features.frames.FrameGrid`.

Threshold semantics: a frame is active when its (filtered) score is strictly
greater than the threshold, ``score > threshold``. This is what
``sed_scores_eval`` (``scores_to_event_list`` and its threshold curves) and the
DESED 2023+ decoder (``c_scores > c_th``) do, so events decoded here at a
threshold are exactly those that ``sed_scores_eval`` evaluates at the same
threshold. (``dcase_util``'s binarisation in the 2019 baseline used ``>=``;
the two differ only for scores exactly equal to the threshold.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.features.frames import FrameGrid

FilterOrder = Literal["scores_then_threshold", "threshold_then_scores"]

#: Boundary handling of the median filter (``scipy.ndimage`` mode). ``reflect``
#: is scipy's default and what every DCASE baseline used implicitly
#: (``scipy.ndimage.median_filter(x, (n, 1))``): the signal is mirrored about
#: its edge (``d c b a | a b c d | d c b a``).
MEDIAN_MODE = "reflect"


@dataclass(frozen=True)
class DecodeConfig:
    """Post-processing of frame scores into events.

    Attributes
    ----------
    threshold:
        Activity threshold applied to every class (``score > threshold``).
        0.5 as in the DCASE 2019 and 2021+ baselines.
    class_thresholds:
        Optional per-class thresholds; classes not listed use ``threshold``.
    median_filter_seconds:
        Length of the per-class median filter. 0.45 s is the DCASE span
        (2019: 5 x 92.7 ms, 2021+: 7 x 64 ms); on the SED grid (62.585 ms
        output frames) it is 7 frames. It is converted once to an odd frame
        count by :meth:`median_filter_frames`; 0 disables the filter.
    filter_order:
        ``"scores_then_threshold"`` (DESED 2023+; default) filters the scores
        and then thresholds them, so the filtered scores are also valid input
        for threshold-free metrics (PSDS, sed_scores_eval).
        ``"threshold_then_scores"`` (DCASE 2019/2021) filters the binary
        activity. For an odd window both give the same events except for
        scores tied with the threshold.
    min_duration_seconds:
        Events shorter than this are dropped (after merging). 0 keeps all.
    merge_gap_seconds:
        Same-class events separated by a gap strictly shorter than this are
        merged into one. 0 merges nothing (adjacent frames are already one
        event).
    """

    threshold: float = 0.5
    class_thresholds: dict[str, float] | None = None
    median_filter_seconds: float = 0.45
    filter_order: FilterOrder = "scores_then_threshold"
    min_duration_seconds: float = 0.0
    merge_gap_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if self.class_thresholds is not None:
            for name, value in self.class_thresholds.items():
                if not math.isfinite(value):
                    raise ValueError(f"class_thresholds[{name!r}] must be finite, got {value}")
            object.__setattr__(self, "class_thresholds", dict(self.class_thresholds))
        if not self.median_filter_seconds >= 0:
            raise ValueError(f"median_filter_seconds must be >= 0, got {self.median_filter_seconds}")
        if self.filter_order not in ("scores_then_threshold", "threshold_then_scores"):
            raise ValueError(
                "filter_order must be 'scores_then_threshold' or 'threshold_then_scores', "
                f"got {self.filter_order!r}"
            )
        if not self.min_duration_seconds >= 0:
            raise ValueError(f"min_duration_seconds must be >= 0, got {self.min_duration_seconds}")
        if not self.merge_gap_seconds >= 0:
            raise ValueError(f"merge_gap_seconds must be >= 0, got {self.merge_gap_seconds}")

    def median_filter_frames(self, grid: FrameGrid) -> int:
        """The median window in output frames: odd, at least 1 (1 = no filter).

        The span is rounded to whole frames by the grid; an even result moves
        to the odd neighbour nearer to the exact span so the window is centred.
        """
        return self.median_filter_frames_for_hop(grid.output_hop_seconds)

    def median_filter_frames_for_hop(self, hop_seconds: float) -> int:
        """:meth:`median_filter_frames` for frames of ``hop_seconds`` (e.g. those of a score file)."""
        if self.median_filter_seconds == 0:
            return 1
        exact = self.median_filter_seconds / hop_seconds
        n = max(1, int(round(exact)))
        if n % 2 == 0:
            n = n + 1 if exact >= n else n - 1
        return max(1, n)

    def thresholds_for(self, classes: Sequence[str]) -> np.ndarray:
        """Per-class thresholds, shape ``(class,)``, in the order of ``classes``."""
        extra = self.class_thresholds or {}
        unknown = sorted(set(extra) - set(classes))
        if unknown:
            raise ValueError(f"class_thresholds name unknown classes {unknown}; classes are {list(classes)}")
        return np.array([extra.get(c, self.threshold) for c in classes], dtype=np.float64)


def median_filter_scores(scores: np.ndarray, n_frames: int) -> np.ndarray:
    """Median-filter each class along time.

    Parameters
    ----------
    scores:
        ``(frame, class)`` array.
    n_frames:
        Window length in frames (odd; 1 returns a copy unchanged).

    Returns
    -------
    ``(frame, class)`` array of the same dtype; edges use :data:`MEDIAN_MODE`.
    """
    from scipy.ndimage import median_filter

    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (frame, class), got shape {scores.shape}")
    if n_frames < 1 or n_frames % 2 == 0:
        raise ValueError(f"n_frames must be a positive odd number, got {n_frames}")
    if n_frames == 1 or scores.shape[0] == 0:
        return scores.copy()
    return median_filter(scores, size=(n_frames, 1), mode=MEDIAN_MODE)


def _crop_to_clip(scores: np.ndarray, grid: FrameGrid, clip_seconds: float | None) -> np.ndarray:
    """Drop trailing frames that start at or after the clip end (pure padding)."""
    if clip_seconds is None:
        return scores
    n_valid = int(grid.seconds_to_output_frame(clip_seconds, rounding="ceil"))
    return scores[: max(n_valid, 0)]


def postprocess_scores(
    scores: np.ndarray, grid: FrameGrid, cfg: DecodeConfig, clip_seconds: float | None = None
) -> np.ndarray:
    """Scores for threshold-free metrics: cropped to the clip, then median-filtered.

    These are the scores to hand to PSDS or sed_scores_eval (with
    :func:`frame_boundaries` as timestamps): at the decoder's threshold they
    yield exactly the events of :func:`decode_scores`. That also holds for
    ``filter_order="threshold_then_scores"``, because an odd median window
    commutes with a strict threshold (a filtered frame is active exactly when
    most frames of its window are).

    Returns a ``(frame, class)`` array.
    """
    scores = _crop_to_clip(np.asarray(scores, dtype=np.float64), grid, clip_seconds)
    return median_filter_scores(scores, cfg.median_filter_frames(grid))


def frame_boundaries(num_frames: int, grid: FrameGrid, clip_seconds: float | None = None) -> np.ndarray:
    """The ``num_frames + 1`` frame boundaries in seconds, last one clipped to the clip.

    This is the ``timestamps`` argument of ``sed_scores_eval``'s
    ``create_score_dataframe`` matching the event times of :func:`decode_scores`.
    """
    bounds = grid.output_timestamps(num_frames)
    if clip_seconds is not None:
        bounds = np.minimum(bounds, clip_seconds)
    return bounds


def activity_to_regions(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous active regions of a boolean ``(frame, class)`` matrix.

    Returns ``(class_index, start_frame, end_frame)`` arrays, end exclusive,
    sorted by class then time.
    """
    active = np.asarray(active, dtype=bool)
    n_classes = active.shape[1]
    padded = np.zeros((n_classes, active.shape[0] + 2), dtype=np.int8)
    padded[:, 1:-1] = active.T
    change = np.diff(padded, axis=1)
    cls_on, start = np.nonzero(change == 1)
    cls_off, end = np.nonzero(change == -1)
    assert np.array_equal(cls_on, cls_off)
    return cls_on, start, end


def _merge_and_filter(
    cls: np.ndarray, on: np.ndarray, off: np.ndarray, merge_gap: float, min_duration: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge same-class gaps shorter than ``merge_gap``; drop short events."""
    if merge_gap > 0 and len(cls) > 1:
        same = cls[1:] == cls[:-1]
        joined = same & ((on[1:] - off[:-1]) < merge_gap)
        # An event starts a new run unless it is joined to its predecessor.
        first = np.concatenate(([True], ~joined))
        last = np.concatenate((first[1:], [True]))
        cls, on, off = cls[first], on[first], off[last]
    if min_duration > 0:
        keep = (off - on) >= min_duration
        cls, on, off = cls[keep], on[keep], off[keep]
    return cls, on, off


def decode_scores(
    scores: np.ndarray,
    classes: Sequence[str],
    grid: FrameGrid,
    cfg: DecodeConfig | None = None,
    clip_seconds: float | None = None,
) -> list[Event]:
    """Decode one clip's frame scores into events.

    Parameters
    ----------
    scores:
        ``(frame, class)`` scores on the grid's output frames.
    classes:
        Class names, one per score column.
    grid:
        Time geometry; frame ``n`` starts at ``grid.output_frame_to_seconds(n)``.
    cfg:
        Post-processing settings (``DecodeConfig()`` when omitted).
    clip_seconds:
        Clip length. Frames starting at or after it are cropped before
        filtering and event offsets are clipped to it.

    Returns
    -------
    Events sorted by onset, offset and label. An event spans frames
    ``[start, end)``: onset ``start * hop``, offset ``end * hop``.
    """
    cfg = DecodeConfig() if cfg is None else cfg
    scores = _checked_scores(scores, classes)
    scores = _crop_to_clip(scores, grid, clip_seconds)
    active = _activity(scores, cfg.thresholds_for(classes), cfg.median_filter_frames(grid), cfg.filter_order)
    return _events(active, frame_boundaries(len(scores), grid, clip_seconds), classes, cfg)


def decode_timed_scores(
    scores: np.ndarray, timestamps: np.ndarray, classes: Sequence[str], cfg: DecodeConfig | None = None
) -> list[Event]:
    """Decode scores given with their own frame boundaries (e.g. read from a score file).

    Parameters
    ----------
    scores:
        ``(frame, class)`` scores.
    timestamps:
        The ``frame + 1`` frame boundaries in seconds; an event over frames
        ``[start, end)`` spans ``timestamps[start]`` to ``timestamps[end]``.
    classes, cfg:
        As in :func:`decode_scores`. A median filter needs equally long
        frames (the last one may be shorter, cut at the clip's end); its
        window is :meth:`DecodeConfig.median_filter_frames_for_hop` of their
        length.

    On the scores and boundaries of :func:`postprocess_scores` and
    :func:`frame_boundaries`, with ``median_filter_seconds=0``, this gives
    the events of :func:`decode_scores`.
    """
    cfg = DecodeConfig() if cfg is None else cfg
    scores = _checked_scores(scores, classes)
    timestamps = _checked_timestamps(timestamps, len(scores))
    n_filter = 1 if cfg.median_filter_seconds == 0 else cfg.median_filter_frames_for_hop(frame_hop(timestamps))
    active = _activity(scores, cfg.thresholds_for(classes), n_filter, cfg.filter_order)
    return _events(active, timestamps, classes, cfg)


def postprocess_timed_scores(scores: np.ndarray, timestamps: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """:func:`postprocess_scores` for scores with their own frame boundaries: the median filter only."""
    scores = np.asarray(scores, dtype=np.float64)
    if cfg.median_filter_seconds == 0:
        return scores.copy()
    timestamps = _checked_timestamps(timestamps, len(scores))
    return median_filter_scores(scores, cfg.median_filter_frames_for_hop(frame_hop(timestamps)))


def frame_hop(timestamps: np.ndarray, rtol: float = 1e-6) -> float:
    """The frame length of equally spaced frame boundaries (the last frame may be shorter).

    Raises ``ValueError`` when the frames are not equally long.
    """
    steps = np.diff(np.asarray(timestamps, dtype=np.float64))
    if len(steps) == 0:
        raise ValueError("no frames")
    hop = float(steps[0])
    inner_ok = np.allclose(steps[:-1], hop, rtol=rtol, atol=0.0)
    if not (hop > 0 and inner_ok and steps[-1] <= hop * (1 + rtol)):
        raise ValueError(f"frames are not equally long (from {steps.min():.6g} s to {steps.max():.6g} s); "
                         "a median filter needs a fixed frame length")
    return hop


def _checked_scores(scores: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise ValueError(f"scores must be (frame, {len(classes)}) for classes {list(classes)}, got {scores.shape}")
    return scores


def _checked_timestamps(timestamps: np.ndarray, n_frames: int) -> np.ndarray:
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.shape != (n_frames + 1,):
        raise ValueError(f"timestamps must hold frame + 1 = {n_frames + 1} boundaries, got shape {timestamps.shape}")
    return timestamps


def _activity(scores: np.ndarray, thresholds: np.ndarray, n_filter: int, order: FilterOrder) -> np.ndarray:
    """Boolean ``(frame, class)`` activity: median filter and strict threshold in ``order``."""
    if order == "scores_then_threshold":
        return median_filter_scores(scores, n_filter) > thresholds
    binary = (scores > thresholds).astype(np.uint8)
    return median_filter_scores(binary, n_filter) > 0


def _events(active: np.ndarray, bounds: np.ndarray, classes: Sequence[str], cfg: DecodeConfig) -> list[Event]:
    """Events of an activity matrix on the frame boundaries ``bounds`` (empty ones dropped), merged and filtered."""
    cls, start, end = activity_to_regions(active)
    on, off = bounds[start], bounds[end]
    keep = on < off
    cls, on, off = _merge_and_filter(cls[keep], on[keep], off[keep], cfg.merge_gap_seconds,
                                     cfg.min_duration_seconds)
    events = [Event(float(a), float(b), classes[int(k)]) for k, a, b in zip(cls, on, off)]
    return sorted(events)


def decode_batch(
    scores: Mapping[str, np.ndarray],
    classes: Sequence[str],
    grid: FrameGrid,
    cfg: DecodeConfig | None = None,
    clip_seconds: float | Mapping[str, float] | None = None,
) -> dict[str, list[Event]]:
    """Decode many clips: ``{filename: (frame, class) scores}`` -> ``{filename: events}``.

    ``clip_seconds`` is one length for all clips or a per-filename mapping
    (every filename must be present).
    """
    out = {}
    for name, clip_scores in scores.items():
        if isinstance(clip_seconds, Mapping):
            if name not in clip_seconds:
                raise KeyError(f"no clip length for {name!r}")
            length = clip_seconds[name]
        else:
            length = clip_seconds
        out[name] = decode_scores(clip_scores, classes, grid, cfg, length)
    return out


__all__ = [
    "DecodeConfig",
    "FilterOrder",
    "MEDIAN_MODE",
    "activity_to_regions",
    "decode_batch",
    "decode_scores",
    "decode_timed_scores",
    "frame_boundaries",
    "frame_hop",
    "median_filter_scores",
    "postprocess_scores",
    "postprocess_timed_scores",
]
