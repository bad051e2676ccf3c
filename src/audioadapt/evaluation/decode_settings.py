"""Decode settings chosen at evaluation or prediction time, and how reports show them.

``sed evaluate`` and ``sed predict`` take ``decode.*`` overrides
(``decode.threshold=0.3``, ``decode.class_thresholds.Dog=0.4``,
``decode.median_filter_seconds=0.2``, ...). They are checked like every config
override: an unknown key names the nearest valid one, a bad value says what is
expected, and a per-class threshold must name one of the run's classes. Other
sections are fixed by the run's training and refused here.

A report records the settings used (:func:`decode_record`), where the class
thresholds came from and the overrides, in its JSON inputs and as a
"Decoding" table in its Markdown (:func:`decode_table`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audioadapt.config.load import apply_overrides, override_items, to_dict
from audioadapt.errors import ConfigError
from audioadapt.evaluation.decoding import DecodeConfig
from audioadapt.evaluation.report import Table

#: The config section these overrides may change.
SECTION = "decode"
#: Override keys that set the thresholds (and so replace tuned class thresholds).
THRESHOLD_KEYS = ("decode.threshold", "decode.class_thresholds")


@dataclass(frozen=True)
class _DecodeOnly:
    """The ``decode`` section alone, so that override keys and messages keep their ``decode.`` prefix."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)


def check_decode_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides, each of the form ``decode.key=value``; anything else is a :class:`ConfigError`."""
    overrides = list(overrides)
    for text in overrides:
        key = next(iter(override_items([text])))
        if key.split(".", 1)[0] != SECTION:
            raise ConfigError(f"override '{text}': only {SECTION}.* settings can be changed here "
                              f"(e.g. {SECTION}.threshold=0.3); the run's other settings come from its training")
    return overrides


def apply_decode_overrides(decode: DecodeConfig, overrides: Iterable[str],
                           classes: Sequence[str] | None = None) -> DecodeConfig:
    """``decode`` with ``decode.key=value`` overrides applied and checked.

    With ``classes``, ``decode.class_thresholds`` may only name those classes.
    """
    overrides = check_decode_overrides(overrides)
    out = apply_overrides(_DecodeOnly(decode), overrides).decode
    if classes is not None:
        check_class_thresholds(out, classes)
    return out


def check_class_thresholds(decode: DecodeConfig, classes: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when ``decode.class_thresholds`` names a class outside ``classes``."""
    unknown = sorted(set(decode.class_thresholds or {}) - set(classes))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(classes), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"decode.class_thresholds names unknown class(es) {', '.join(unknown)}.{hint} "
                          f"The classes are {', '.join(classes)}.")


def sets_thresholds(overrides: Iterable[str]) -> bool:
    """True when an override sets ``decode.threshold`` or ``decode.class_thresholds`` (or the whole section)."""
    for key in override_items(overrides):
        if key == SECTION or any(key == k or key.startswith(k + ".") for k in THRESHOLD_KEYS):
            return True
    return False


def decode_record(decode: DecodeConfig, hop_seconds: float | None) -> dict[str, Any]:
    """The settings of ``decode`` for a report, with the median window in frames of ``hop_seconds``."""
    record = to_dict(decode)
    if hop_seconds is not None:
        record["median_filter_frames"] = decode.median_filter_frames_for_hop(hop_seconds)
        record["frame_seconds"] = hop_seconds
    return record


def decode_table(inputs: Mapping[str, Any]) -> Table | None:
    """The "Decoding" table of a report's Markdown from its inputs (``None`` without ``decode``).

    Reads ``decode`` (:func:`decode_record`), ``decode_overrides`` and
    ``thresholds`` (where the class thresholds came from).
    """
    decode = inputs.get("decode")
    if not decode:
        return None
    rows: list[list[Any]] = [["threshold", _number(decode["threshold"])]]
    if decode.get("class_thresholds"):
        shown = ", ".join(f"{c} {_number(t)}" for c, t in decode["class_thresholds"].items())
        rows.append(["class thresholds", shown])
    median = f"{_number(decode['median_filter_seconds'])} s"
    if "median_filter_frames" in decode:
        median += f" ({decode['median_filter_frames']} frames)"
    rows += [["median filter", median], ["filter order", decode["filter_order"]],
             ["minimum duration", f"{_number(decode['min_duration_seconds'])} s"],
             ["merge gap", f"{_number(decode['merge_gap_seconds'])} s"]]
    thresholds = inputs.get("thresholds") or {}
    if thresholds:
        rows.append(["thresholds from", thresholds_source_text(thresholds)])
    overrides = inputs.get("decode_overrides") or []
    rows.append(["overrides", ", ".join(f"`{o}`" for o in overrides) if overrides else "none"])
    note = ""
    if thresholds.get("tuned_on_evaluated_split"):
        note = (f"**The class thresholds were tuned on this very split ({thresholds.get('split')}), so these "
                "threshold-dependent scores are optimistic** (PSDS does not depend on them).")
    return Table("Decoding", ["setting", "value"], rows, note=note)


def thresholds_source_text(thresholds: Mapping[str, Any]) -> str:
    """One line on where the thresholds came from (a run's config, a tuned file, an override)."""
    source = thresholds.get("source")
    if source == "tuned":
        return (f"tuned on the {thresholds.get('split')} split for {thresholds.get('objective')} F1 "
                f"(`{thresholds.get('file')}`)")
    return str(source)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


__all__ = [
    "SECTION",
    "THRESHOLD_KEYS",
    "apply_decode_overrides",
    "check_class_thresholds",
    "check_decode_overrides",
    "decode_record",
    "decode_table",
    "sets_thresholds",
    "thresholds_source_text",
]
