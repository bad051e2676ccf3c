"""DCASE task 4 metadata: tab-separated strong, weak and unlabeled files.

Formats (DCASE 2019 / DESED, with a header row):

* strong: ``filename onset offset event_label``; a row with empty onset,
  offset and label marks a clip that contains no event;
* weak: ``filename event_labels`` with comma-separated labels;
* unlabeled: ``filename``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from audioadapt.data.manifest import Event


def _fmt_time(t: float) -> str:
    return f"{t:.3f}"


def _write_lines(path: str | Path, lines: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_strong_tsv(path: str | Path, clips: Mapping[str, Iterable[Event]]) -> Path:
    """Write strong labels; a clip without events gets one empty-event row."""
    lines = ["filename\tonset\toffset\tevent_label"]
    for filename, events in clips.items():
        events = sorted(events)
        if not events:
            lines.append(f"{filename}\t\t\t")
        for ev in events:
            lines.append(f"{filename}\t{_fmt_time(ev.onset)}\t{_fmt_time(ev.offset)}\t{ev.label}")
    return _write_lines(path, lines)


def write_weak_tsv(path: str | Path, clips: Mapping[str, Iterable[str]]) -> Path:
    """Write weak labels (sorted, comma-separated)."""
    lines = ["filename\tevent_labels"]
    for filename, tags in clips.items():
        lines.append(f"{filename}\t{','.join(sorted(tags))}")
    return _write_lines(path, lines)


def write_unlabeled_tsv(path: str | Path, filenames: Iterable[str]) -> Path:
    """Write an unlabeled list."""
    return _write_lines(path, ["filename", *filenames])


def write_durations_tsv(path: str | Path, durations: Mapping[str, float]) -> Path:
    """Write a ``filename duration`` file (needed by PSDS and segment metrics)."""
    lines = ["filename\tduration"] + [f"{f}\t{d:.3f}" for f, d in durations.items()]
    return _write_lines(path, lines)
