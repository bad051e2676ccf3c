"""Summary statistics of an SED dataset and of its cached features.

Used by ``audioadapt sed demo`` and handy before training: how many clips and
events each split holds, per class, how polyphonic the clips are, and how far
apart the two domains are in feature space.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from audioadapt.data.manifest import ClipRecord, Event


@dataclass(frozen=True)
class SplitStats:
    """Label statistics of one split (strong and weak labels where known)."""

    name: str
    clips: int
    clips_without_events: int | None
    events_per_class: dict[str, int]
    clips_per_class: dict[str, int]
    mean_event_seconds: dict[str, float]
    max_polyphony: int | None

    def to_dict(self) -> dict:
        return dict(vars(self))


def _max_polyphony(events: Sequence[Event]) -> int:
    """Largest number of events active at one instant."""
    points = sorted([(e.onset, 1) for e in events] + [(e.offset, -1) for e in events])
    active = best = 0
    for _, step in points:  # offsets sort before onsets at equal times
        active += step
        best = max(best, active)
    return best


def split_stats(name: str, records: Sequence[ClipRecord], classes: Sequence[str]) -> SplitStats:
    """Counts per class of one split's records."""
    events: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    clips: Counter[str] = Counter()
    empty = 0
    polyphony: int | None = None
    strong_known = any(r.events is not None for r in records)
    for rec in records:
        if rec.events is not None:
            if not rec.events:
                empty += 1
            for ev in rec.events:
                events[ev.label] += 1
                seconds[ev.label] += ev.offset - ev.onset
            polyphony = max(polyphony or 0, _max_polyphony(rec.events))
        for tag in rec.clip_tags() or ():
            clips[tag] += 1
    return SplitStats(
        name=name,
        clips=len(records),
        clips_without_events=empty if strong_known else None,
        events_per_class={c: events[c] for c in classes} if strong_known else {},
        clips_per_class={c: clips[c] for c in classes},
        mean_event_seconds={c: seconds[c] / events[c] for c in classes if events[c]},
        max_polyphony=polyphony,
    )


@dataclass(frozen=True)
class FeatureStats:
    """Log-mel statistics of one split: overall moments and the mean spectrum."""

    name: str
    items: int
    frames: int
    mean: float
    std: float
    mean_spectrum: list[float] = field(repr=False)

    def to_dict(self) -> dict:
        return dict(vars(self))


def feature_stats(name: str, features: Sequence[np.ndarray]) -> FeatureStats:
    """Streaming mean/std over all frames and the per-mel mean (float64 sums)."""
    total = 0
    s1 = s2 = None
    for item in features:
        x = np.asarray(item, dtype=np.float64)
        if s1 is None:
            s1 = np.zeros(x.shape[1])
            s2 = np.zeros(x.shape[1])
        s1 += x.sum(axis=0)
        s2 += np.square(x).sum(axis=0)
        total += x.shape[0]
    if s1 is None or total == 0:
        return FeatureStats(name, 0, 0, float("nan"), float("nan"), [])
    spectrum = s1 / total
    mean = float(spectrum.mean())
    var = float(s2.sum() / (total * s1.size) - mean**2)
    return FeatureStats(name, len(features), total, mean, float(np.sqrt(max(var, 0.0))), spectrum.tolist())


def domain_gap_db(a: FeatureStats, b: FeatureStats) -> float:
    """Root-mean-square difference between two mean log-mel spectra (feature units, dB by default)."""
    x, y = np.asarray(a.mean_spectrum), np.asarray(b.mean_spectrum)
    if x.size == 0 or y.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.square(x - y))))


def stats_markdown(splits: Mapping[str, SplitStats], feats: Mapping[str, FeatureStats], classes: Sequence[str]) -> str:
    """A Markdown summary: one table of clips/events per class, one of feature moments."""
    names = list(splits)
    lines = ["| class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in classes:
        cells = []
        for n in names:
            s = splits[n]
            ev = s.events_per_class.get(c)
            cells.append(f"{s.clips_per_class.get(c, 0)} clips" + (f" / {ev} events" if ev is not None else ""))
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("| **all clips** | " + " | ".join(str(splits[n].clips) for n in names) + " |")
    lines.append(
        "| clips without events | "
        + " | ".join("-" if splits[n].clips_without_events is None else str(splits[n].clips_without_events) for n in names)
        + " |"
    )
    if feats:
        lines += ["", "| split | items | frames | mean | std |", "|---|---|---|---|---|"]
        for n, f in feats.items():
            lines.append(f"| {n} | {f.items} | {f.frames} | {f.mean:.2f} | {f.std:.2f} |")
    return "\n".join(lines) + "\n"
