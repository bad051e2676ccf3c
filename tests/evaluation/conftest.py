"""Shared fixtures for the evaluation tests: the SED frame grid and random SED cases."""

from __future__ import annotations

import numpy as np
import pytest

from audioadapt.data.manifest import Event
from audioadapt.features.frames import FrameGrid


@pytest.fixture
def sed_grid() -> FrameGrid:
    """The paper's grid: 22.05 kHz, hop 345, time pooling 2 x 2 -> 62.585 ms output frames."""
    return FrameGrid(sample_rate=22050, hop_length=345, n_fft=2048, center=True, time_pooling=(2, 2))


@pytest.fixture
def writable_sed_scores_eval(monkeypatch):
    """Work around sed_scores_eval 0.0.4 failing on read-only arrays.

    With pandas copy-on-write (pandas >= 3) ``DataFrame.to_numpy()`` returns a
    read-only view, which sed_scores_eval's compiled ``onset_offset_curves``
    rejects ("buffer source array is read-only"). Handing it copies changes no
    value.
    """
    stats = pytest.importorskip("sed_scores_eval.base_modules.statistics")
    original = stats.onset_offset_curves

    def with_copies(scores, timestamps, change_point_candidates=None):
        cands = None if change_point_candidates is None else np.array(change_point_candidates)
        return original(np.array(scores), np.array(timestamps), cands)

    monkeypatch.setattr(stats, "onset_offset_curves", with_copies)


def _time(rng: np.random.Generator, low: float, high: float, grid_step: float | None) -> float:
    t = float(rng.uniform(low, high))
    if grid_step is not None:
        t = round(t / grid_step) * grid_step
    return min(max(t, low), high)


def random_events(
    rng: np.random.Generator,
    n: int,
    labels: list[str],
    clip: float = 10.0,
    grid_step: float | None = None,
    overlap: bool = True,
) -> list[Event]:
    """``n`` random events: tiny to long, some at 0 s and some ending at the clip end.

    ``grid_step`` snaps times to a grid (collar boundary ties); ``overlap=False``
    keeps same-class events apart.
    """
    events: list[Event] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.15:
            length = float(rng.uniform(0.005, 0.05))  # tiny
        elif kind < 0.6:
            length = float(rng.uniform(0.1, 1.5))
        else:
            length = float(rng.uniform(1.0, 6.0))
        place = rng.random()
        if place < 0.1:
            on = 0.0
        elif place < 0.2:
            on = max(0.0, clip - length)
        else:
            on = _time(rng, 0.0, clip - 0.01, grid_step)
        off = min(clip, on + length)
        if grid_step is not None:
            off = min(clip, max(on + grid_step, round(off / grid_step) * grid_step))
        if off <= on:
            continue
        label = str(rng.choice(labels))
        if not overlap and any(e.label == label and e.onset <= off and on <= e.offset for e in events):
            continue
        events.append(Event(on, off, label))
    return events


def perturb(
    rng: np.random.Generator, events: list[Event], labels: list[str], clip: float = 10.0,
    grid_step: float | None = None,
) -> list[Event]:
    """A plausible system output: drop, shift, relabel and add events."""
    out = []
    for ev in events:
        if rng.random() < 0.25:
            continue
        on = min(max(0.0, ev.onset + float(rng.normal(0, 0.15))), clip - 0.01)
        off = min(clip, max(on + 0.01, ev.offset + float(rng.normal(0, 0.3))))
        if grid_step is not None:
            on = min(round(on / grid_step) * grid_step, clip - grid_step)
            off = min(clip, max(on + grid_step, round(off / grid_step) * grid_step))
        label = ev.label if rng.random() < 0.85 else str(rng.choice(labels))
        out.append(Event(on, off, label))
        if rng.random() < 0.1:  # duplicate detection of the same event
            out.append(Event(on, off, label))
    out += random_events(rng, int(rng.integers(0, 3)), labels, clip, grid_step)
    return out


@pytest.fixture
def sed_case():
    """Factory ``sed_case(rng, ...) -> (reference, estimated)`` of random multi-file cases.

    Covers files without reference events, files without estimates, classes
    never predicted (``ref_only``) and classes never in the reference
    (``est_only``).
    """

    def make(
        rng: np.random.Generator,
        classes: list[str],
        ref_only: str | None = None,
        est_only: str | None = None,
        max_files: int = 6,
        max_events: int = 10,
        grid_step: float | None = None,
        overlap: bool = True,
    ) -> tuple[dict[str, list[Event]], dict[str, list[Event]]]:
        ref_labels = [c for c in classes if c != est_only]
        est_labels = [c for c in classes if c != ref_only]
        reference: dict[str, list[Event]] = {}
        estimated: dict[str, list[Event]] = {}
        no_output = rng.random() < 0.05
        for i in range(int(rng.integers(1, max_files + 1))):
            name = f"clip_{i:02d}.wav"
            n = 0 if rng.random() < 0.2 else int(rng.integers(1, max_events + 1))
            reference[name] = random_events(rng, n, ref_labels, grid_step=grid_step, overlap=overlap)
            if no_output or rng.random() < 0.15:
                continue
            est = perturb(rng, reference[name], est_labels, grid_step=grid_step)
            estimated[name] = [e for e in est if e.label != ref_only]
        return reference, estimated

    return make
