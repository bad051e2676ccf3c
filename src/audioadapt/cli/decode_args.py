"""Command-line pieces of the commands that decode with a run: ``decode.*`` overrides and tuned thresholds.

``sed evaluate`` and ``sed predict`` accept ``key.path=value`` overrides among
their positional arguments (after or between the options). An argument is an
override when it looks like ``name.path=value`` and no file or folder of
that name exists; the overrides are then checked by
:func:`audioadapt.evaluation.decode_settings.apply_decode_overrides`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from pathlib import Path

#: ``key`` or ``key.path`` followed by ``=``.
_OVERRIDE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[^=\s]+)*=")


def is_override(text: str) -> bool:
    """True for ``decode.threshold=0.3`` and the like, unless a path of that name exists."""
    return bool(_OVERRIDE.match(text)) and not Path(text).exists()


def split_overrides(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(other arguments, overrides)`` of positional arguments, each in order."""
    others, overrides = [], []
    for item in items:
        (overrides if is_override(str(item)) else others).append(str(item))
    return others, overrides


def add_tuned_threshold_arguments(p: argparse.ArgumentParser) -> None:
    """``--no-tuned-thresholds``: decode with the run's configured thresholds even where tuned ones exist."""
    p.add_argument("--no-tuned-thresholds", action="store_true",
                   help="ignore the class thresholds tuned for the checkpoint by 'sed tune-thresholds' "
                   "(<checkpoint>.thresholds.json); they are used by default, unless a decode.threshold or "
                   "decode.class_thresholds override is given")


OVERRIDES_HELP = ("decode overrides, checked like config overrides, e.g. decode.threshold=0.3, "
                  "decode.class_thresholds.Speech=0.4, decode.median_filter_seconds=0.2; recorded in the outputs")


__all__ = ["OVERRIDES_HELP", "add_tuned_threshold_arguments", "is_override", "split_overrides"]
