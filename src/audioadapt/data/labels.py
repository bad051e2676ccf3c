"""Label encoding: events and clip tags -> arrays at the model's output rate.

``UNKNOWN`` (-1) marks a label that is not known; losses mask it out, so one
array format serves strongly labelled, weakly labelled and unlabelled clips.
Frame times come from :class:`~audioadapt.features.frames.FrameGrid`; this
module never converts seconds to frames itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.frames import FrameGrid

#: Value of an unknown label entry (masked out of losses).
UNKNOWN = -1

Rounding = Literal["floor", "ceil", "round"]


@dataclass(frozen=True)
class LabelConfig:
    """How event times become output frames.

    An event covers output frames ``start <= f < end`` with
    ``start = rounding(onset / hop)`` and ``end = rounding(offset / hop)``,
    clipped to the model's output length. The default floor/ceil marks every
    frame the event touches (DESED); the 2019 baseline floors both, which can
    leave an event shorter than a frame with no frame at all.
    """

    onset_rounding: Rounding = "floor"
    offset_rounding: Rounding = "ceil"

    def __post_init__(self) -> None:
        for name in ("onset_rounding", "offset_rounding"):
            value = getattr(self, name)
            if value not in ("floor", "ceil", "round"):
                raise ConfigError(f"{name} must be floor, ceil or round, got {value!r}")


def class_index(classes: Sequence[str]) -> dict[str, int]:
    """Map each class name to its column; duplicate names are an error."""
    index = {name: i for i, name in enumerate(classes)}
    if len(index) != len(classes):
        dupes = sorted({c for c in classes if list(classes).count(c) > 1})
        raise ConfigError(f"class list repeats {dupes}")
    return index


def _column(index: dict[str, int], label: str) -> int:
    try:
        return index[label]
    except KeyError:
        raise DataError(f"unknown class '{label}' (known: {', '.join(index)})") from None


def encode_strong(
    events: Iterable[Event] | None,
    classes: Sequence[str],
    grid: FrameGrid,
    num_frames: int,
    config: LabelConfig | None = None,
) -> np.ndarray:
    """Frame labels of one clip.

    Parameters
    ----------
    events: the clip's events, ``()`` for a clip known to be empty, or
        ``None`` when unknown.
    classes: the class list (column order).
    grid: frame geometry including the model's time pooling.
    num_frames: the model's actual output length for this clip (from the
        caller, e.g. ``grid.num_output_frames(n_input_frames)``).
    config: rounding of onsets and offsets.

    Returns
    -------
    ``(frame, class)`` float32 array of 0/1, or all ``UNKNOWN`` when
    ``events`` is ``None``.
    """
    config = config or LabelConfig()
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 0:
        raise ValueError(f"num_frames must be a non-negative integer, got {num_frames!r}")
    num_frames = int(num_frames)
    index = class_index(classes)
    if events is None:
        return np.full((num_frames, len(index)), UNKNOWN, dtype=np.float32)
    out = np.zeros((num_frames, len(index)), dtype=np.float32)
    for ev in events:
        col = _column(index, ev.label)
        start = grid.seconds_to_output_frame(ev.onset, config.onset_rounding)
        end = grid.seconds_to_output_frame(ev.offset, config.offset_rounding)
        start, end = max(start, 0), min(end, num_frames)
        if end > start:
            out[start:end, col] = 1.0
    return out


def encode_weak(tags: Iterable[str] | None, classes: Sequence[str]) -> np.ndarray:
    """Clip labels: ``(class,)`` float32 of 0/1, or all ``UNKNOWN`` for ``None``."""
    index = class_index(classes)
    if tags is None:
        return np.full(len(index), UNKNOWN, dtype=np.float32)
    out = np.zeros(len(index), dtype=np.float32)
    for tag in tags:
        out[_column(index, tag)] = 1.0
    return out


__all__ = ["UNKNOWN", "LabelConfig", "class_index", "encode_strong", "encode_weak"]
