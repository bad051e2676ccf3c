"""The decode settings a command uses with a run's checkpoint, and where they came from.

In order: the run's ``decode`` config; then the class thresholds tuned for
the checkpoint (``<checkpoint stem>.thresholds.json``, written by
``audioadapt sed tune-thresholds``), unless the command is told to ignore
them or an override sets the thresholds itself; then the command's
``decode.*`` overrides. Thresholds tuned for an earlier version of the
checkpoint file (its SHA-256 differs) are not applied, with a warning.

An evaluation must not report scores on the split its thresholds were tuned
on without saying so: :func:`check_tuned_split` refuses it unless allowed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioadapt.config.load import to_dict
from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.decode_settings import (
    apply_decode_overrides,
    check_decode_overrides,
    decode_record,
    sets_thresholds,
)
from audioadapt.evaluation.decoding import DecodeConfig
from audioadapt.evaluation.tuned_thresholds import TunedThresholds, file_sha256, thresholds_path

log = logging.getLogger(__name__)

#: Decode settings besides the thresholds that change what tuned thresholds mean.
_TUNED_WITH = ("median_filter_seconds", "filter_order", "min_duration_seconds", "merge_gap_seconds")


@dataclass(frozen=True)
class RunDecode:
    """Decode settings resolved for one command.

    Attributes
    ----------
    decode: the settings to decode with.
    overrides: the ``decode.*`` overrides applied last.
    thresholds: where the thresholds came from (``source``: ``run config``,
        ``tuned`` with the file, split and objective, or ``override``), and
        ``not_used`` naming a thresholds file that exists but was not applied.
    tuned: the tuned thresholds applied, if any.
    """

    decode: DecodeConfig
    overrides: tuple[str, ...] = ()
    thresholds: dict[str, Any] = dataclasses.field(default_factory=lambda: {"source": "run config"})
    tuned: TunedThresholds | None = None

    def inputs(self, hop_seconds: float | None) -> dict[str, Any]:
        """What a report records: ``decode``, ``decode_overrides`` and ``thresholds``."""
        return {"decode": decode_record(self.decode, hop_seconds), "decode_overrides": list(self.overrides),
                "thresholds": dict(self.thresholds)}


def resolve_run_decode(decode: DecodeConfig, classes: Sequence[str], checkpoint: str | Path,
                       overrides: Iterable[str] = (), use_tuned: bool = True) -> RunDecode:
    """The decode settings of a run's checkpoint after tuned thresholds and overrides (see the module docstring)."""
    overrides = tuple(check_decode_overrides(overrides))
    path = thresholds_path(checkpoint)
    thresholds: dict[str, Any] = {"source": "override" if sets_thresholds(overrides) else "run config"}
    tuned = None
    if path.is_file():
        tuned, why = _usable_tuned(path, checkpoint, classes, overrides, use_tuned)
        if tuned is not None:
            decode = dataclasses.replace(decode, class_thresholds=dict(tuned.thresholds))
            thresholds = tuned.describe(path)
        else:
            thresholds["not_used"] = f"{path} ({why})"
    out = apply_decode_overrides(decode, overrides, classes)
    if tuned is not None:
        _warn_if_tuned_otherwise(tuned, out, path)
    return RunDecode(out, overrides, thresholds, tuned)


def _usable_tuned(path: Path, checkpoint: str | Path, classes: Sequence[str], overrides: Sequence[str],
                  use_tuned: bool) -> tuple[TunedThresholds | None, str]:
    """The thresholds of the file ``path`` if they apply, else ``None`` and why not."""
    if not use_tuned:
        log.info("%s: not used (told to ignore tuned thresholds)", path)
        return None, "ignored on request"
    if sets_thresholds(overrides):
        log.info("%s: not used, the decode overrides set the thresholds", path)
        return None, "the overrides set the thresholds"
    tuned = TunedThresholds.load(path)
    if set(tuned.thresholds) != set(classes):
        raise DataError(f"the tuned thresholds are for the classes {', '.join(sorted(tuned.thresholds))}, not the "
                        f"checkpoint's ({', '.join(sorted(classes))}); tune them again or delete the file", path)
    if tuned.checkpoint_sha256 != file_sha256(checkpoint):
        log.warning("%s: not used, it was tuned for an earlier version of %s (the file has changed since); run "
                    "'audioadapt sed tune-thresholds' again", path, checkpoint)
        return None, "tuned for an earlier version of the checkpoint"
    return tuned, ""


def _warn_if_tuned_otherwise(tuned: TunedThresholds, decode: DecodeConfig, path: Path) -> None:
    now = to_dict(decode)
    changed = [f"{k} {tuned.decode[k]} -> {now[k]}" for k in _TUNED_WITH
               if k in tuned.decode and tuned.decode[k] != now[k]]
    if changed:
        log.warning("%s: the thresholds were tuned with other decode settings (%s)", path, ", ".join(changed))


def check_tuned_split(run_decode: RunDecode, split: str, data_root: str | Path, allow: bool) -> RunDecode:
    """Refuse to report scores on the split the applied thresholds were tuned on, unless ``allow``.

    Returns ``run_decode``, with ``tuned_on_evaluated_split`` in its
    ``thresholds`` record when the evaluated split is the tuning split.
    """
    tuned = run_decode.tuned
    if tuned is None or tuned.split != split or Path(tuned.data_root) != Path(data_root).resolve():
        return run_decode
    if not allow:
        raise ConfigError(
            f"the class thresholds in {run_decode.thresholds.get('file')} were tuned on the '{split}' split of "
            f"{tuned.data_root}, which this evaluation would report; tune them on another split, ignore them "
            "(--no-tuned-thresholds), or pass --allow-tuned-split to report it anyway (the report then says so)")
    log.warning("reporting the '%s' split with class thresholds tuned on it: its threshold-dependent scores are "
                "optimistic", split)
    return dataclasses.replace(run_decode, thresholds={**run_decode.thresholds, "tuned_on_evaluated_split": True})


__all__ = ["RunDecode", "check_tuned_split", "resolve_run_decode"]
