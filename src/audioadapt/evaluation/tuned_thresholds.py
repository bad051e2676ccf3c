"""Tuned class thresholds stored beside a run's checkpoint.

``audioadapt sed tune-thresholds`` writes ``<checkpoint stem>.thresholds.json``
next to the checkpoint it tuned (``best.pt`` -> ``best.thresholds.json``):
the thresholds per class, the split and dataset they were tuned on, the
objective, the F1 they reach there, the decode settings they were tuned
with and the SHA-256 of the checkpoint file, so that thresholds of a
checkpoint that has since been replaced (a resumed training) are not applied
to the new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioadapt.errors import DataError

#: Suffix that replaces the checkpoint's ``.pt``.
THRESHOLDS_SUFFIX = ".thresholds.json"
#: Format version written into every file.
FORMAT_VERSION = 1


def thresholds_path(checkpoint: str | Path) -> Path:
    """The thresholds file of a checkpoint: ``DIR/best.pt`` -> ``DIR/best.thresholds.json``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + THRESHOLDS_SUFFIX)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TunedThresholds:
    """Class thresholds tuned for one checkpoint on one split.

    Attributes
    ----------
    thresholds: class -> threshold (``score > threshold`` is active).
    split: the split tuned on (``synthetic_valid``, ``validation``).
    data_root: the dataset root of that split (resolved).
    objective: ``event`` or ``segment`` F1.
    checkpoint: the checkpoint file tuned for.
    checkpoint_sha256: its SHA-256 when tuned.
    decode: the decode settings tuned with (thresholds aside).
    tuning: what :meth:`~audioadapt.evaluation.threshold_tuning.TuningResult.to_dict`
        reports: per-class thresholds and F1 before and after, macro F1.
    """

    thresholds: dict[str, float]
    split: str
    data_root: str
    objective: str
    checkpoint: str
    checkpoint_sha256: str
    decode: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "thresholds": dict(self.thresholds), "split": self.split,
                "data_root": self.data_root, "objective": self.objective, "checkpoint": self.checkpoint,
                "checkpoint_sha256": self.checkpoint_sha256, "decode": self.decode, "tuning": self.tuning}

    def save(self, path: str | Path) -> Path:
        """Write the file atomically; returns its path."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TunedThresholds":
        """Read and check a thresholds file; a bad one is a :class:`DataError` naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read the tuned thresholds: {exc}; tune them again or delete the file",
                            path) from exc
        required = ("thresholds", "split", "data_root", "objective", "checkpoint", "checkpoint_sha256")
        missing = [k for k in required if not isinstance(data, dict) or k not in data]
        if missing:
            raise DataError(f"not a tuned thresholds file (it lacks {', '.join(missing)}); tune them again or "
                            "delete the file", path)
        thresholds = data["thresholds"]
        if not isinstance(thresholds, dict) or not thresholds or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in thresholds.values()):
            raise DataError("'thresholds' must map each class to a finite number", path)
        return cls({str(k): float(v) for k, v in thresholds.items()}, str(data["split"]), str(data["data_root"]),
                   str(data["objective"]), str(data["checkpoint"]), str(data["checkpoint_sha256"]),
                   dict(data.get("decode") or {}), dict(data.get("tuning") or {}))

    def describe(self, path: str | Path | None = None) -> dict[str, Any]:
        """Where these thresholds come from, for a report's inputs."""
        out: dict[str, Any] = {"source": "tuned", "split": self.split, "objective": self.objective,
                               "data_root": self.data_root}
        if path is not None:
            out["file"] = str(path)
        return out


__all__ = ["FORMAT_VERSION", "THRESHOLDS_SUFFIX", "TunedThresholds", "file_sha256", "thresholds_path"]
