"""Records that describe labelled audio, independent of any corpus layout.

A sound-event clip may carry strong labels (events with times), weak labels
(clip tags) or neither; ``None`` always means *unknown*, never *empty*. A clip
with ``events == ()`` is known to contain no event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SedSource = Literal["synthetic", "weak", "unlabeled", "validation", "test"]

#: Sources whose audio comes from the synthetic domain (domain label 0).
SYNTHETIC_SOURCES: frozenset[str] = frozenset({"synthetic"})


@dataclass(frozen=True, order=True)
class Event:
    """One sound event: ``onset < offset`` in seconds, and its class label."""

    onset: float
    offset: float
    label: str


@dataclass(frozen=True)
class ClipRecord:
    """One audio clip and what is known about its labels.

    Attributes
    ----------
    filename: the name used in metadata files (relative to the audio folder).
    path: where the audio is on disk.
    source: which part of the training data it belongs to.
    events: strong labels, or ``None`` when unknown.
    tags: weak (clip-level) labels, or ``None`` when unknown.
    """

    filename: str
    path: Path
    source: str
    events: tuple[Event, ...] | None = None
    tags: frozenset[str] | None = None

    @property
    def domain(self) -> int:
        """0 for the synthetic domain, 1 for real recordings."""
        return 0 if self.source in SYNTHETIC_SOURCES else 1

    def clip_tags(self) -> frozenset[str] | None:
        """Clip-level labels: the weak tags, or those implied by strong events."""
        if self.tags is not None:
            return self.tags
        if self.events is not None:
            return frozenset(e.label for e in self.events)
        return None


@dataclass
class SkipReport:
    """What an opt-in lenient reader skipped, and why.

    Readers raise :class:`~audioadapt.errors.DataError` on the first bad row by
    default; with ``on_error="skip"`` they record each skipped row here
    instead and log a summary.
    """

    skipped: list[tuple[str, int | None, str]] = field(default_factory=list)

    def add(self, path: str | Path, line: int | None, reason: str) -> None:
        self.skipped.append((str(path), line, reason))

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self, limit: int = 10, heading: str = "skipped {n} row(s)") -> str:
        """Human-readable count (``heading`` with ``{n}``) and the first ``limit`` reasons."""
        if not self.skipped:
            return "no rows skipped"
        lines = [heading.format(n=len(self.skipped)) + ":"]
        for path, line, reason in self.skipped[:limit]:
            where = f"{path}:{line}" if line is not None else path
            lines.append(f"  {where}: {reason}")
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)
