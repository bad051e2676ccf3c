"""SED evaluation in one call: event, segment and clip-level F1 of predicted events.

``evaluate_sed`` works on in-memory event lists; ``evaluate_sed_files`` reads
DCASE strong-label TSV files (reference and predictions) first. Both return a
:class:`SedEvaluation`, which turns into a :class:`~audioadapt.evaluation.report.Report`
(JSON + Markdown). Threshold-free scores computed elsewhere (PSDS) are added
to ``SedEvaluation.extra`` and appear in the report's entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from audioadapt.data.manifest import Event
from audioadapt.errors import DataError
from audioadapt.evaluation.report import Report, Table, fscore_table
from audioadapt.evaluation.sed_metrics import (
    FScoreResult,
    SedMetricConfig,
    resolve_classes,
    clip_metrics,
    event_based_metrics,
    events_to_tags,
    segment_based_metrics,
)

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.evaluation.psds import PsdsConfig, PsdsResult


@dataclass
class SedEvaluation:
    """Event-, segment- and clip-level results of one set of predictions.

    Attributes
    ----------
    event: collar-based event F1 (DCASE: 200 ms, 20 %, zero_score).
    segment: 1 s segment F1 with sed_eval's NaN-drop macro average (as DCASE).
    segment_zero_score: the same counts with never-detected classes scored 0.
    clip: clip-level (tagging) F1 of the tags implied by the events.
    config: the metric settings.
    inputs: where the data came from and how many files each side had.
    extra: further headline numbers (e.g. ``{"psds1": 0.35}``) for the report.
    psds: PSDS scenarios added with :meth:`add_psds`: name -> (parameters,
        result or ``None`` when it could not be computed).
    """

    event: FScoreResult
    segment: FScoreResult
    segment_zero_score: FScoreResult
    clip: FScoreResult
    config: SedMetricConfig
    inputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    psds: dict[str, tuple["PsdsConfig", "PsdsResult | None"]] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.event.classes

    def add_psds(self, scenarios: Mapping[str, "PsdsConfig"], results: Mapping[str, "PsdsResult | None"]) -> None:
        """Add PSDS results: each value becomes a headline entry, its parameters go into the report."""
        for name, cfg in scenarios.items():
            result = results.get(name)
            self.extra[name] = None if result is None else float(result.value)
            self.psds[name] = (cfg, result)

    def entries(self) -> dict[str, Any]:
        """Headline numbers: macro and micro F1 of every metric, then ``extra``."""
        out = {
            "event_macro_f1": self.event.macro.f_measure,
            "event_micro_f1": self.event.micro.f_measure,
            "segment_macro_f1": self.segment.macro.f_measure,
            "segment_micro_f1": self.segment.micro.f_measure,
            "segment_macro_f1_zero_score": self.segment_zero_score.macro.f_measure,
            "clip_macro_f1": self.clip.macro.f_measure,
            "clip_micro_f1": self.clip.micro.f_measure,
        }
        clash = sorted(set(out) & set(self.extra))
        if clash:
            raise ValueError(f"extra entries {clash} clash with built-in entries")
        return {**out, **self.extra}

    def report(self) -> Report:
        """The JSON/Markdown report of this evaluation."""
        from audioadapt.config.load import to_dict

        from audioadapt.evaluation.decode_settings import decode_table

        results = {
            "event": self.event.to_dict(),
            "segment": self.segment.to_dict(),
            "segment_zero_score": self.segment_zero_score.to_dict(),
            "clip": self.clip.to_dict(),
        }
        if self.psds:
            results["psds"] = {name: {"value": None if r is None else r.value,
                                      "per_class": None if r is None else dict(r.class_values),
                                      "parameters": cfg.parameters()} for name, (cfg, r) in self.psds.items()}
        table = fscore_table(
            "Per-class results",
            {"event": self.event, "segment": self.segment, "clip": self.clip},
            measures={"event": ("f_measure", "precision", "recall"),
                      "segment": ("f_measure", "precision", "recall"),
                      "clip": ("f_measure",)},
            count=("event", "n_ref"),
            note=_table_note(self.config, self.segment_zero_score),
        )
        tables = [table]
        if self.psds:
            tables.append(_psds_table(self.psds))
        decoding = decode_table(self.inputs)
        if decoding is not None:
            tables.append(decoding)
        return Report("sed", results, to_dict(self.config), self.entries(), tables, dict(self.inputs))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready payload (as written by the report)."""
        return self.report().to_dict()

    def to_markdown(self) -> str:
        return self.report().to_markdown()


#: Columns of the PSDS table: the scenario parameters, in the order DCASE lists them.
_PSDS_PARAMETERS = ("dtc", "gtc", "cttc", "alpha_ct", "alpha_st", "max_efpr")


def _psds_table(psds: Mapping[str, tuple["PsdsConfig", "PsdsResult | None"]]) -> Table:
    rows = []
    for name, (cfg, result) in psds.items():
        params = cfg.parameters()
        shown = ["-" if params[k] is None else f"{params[k]:g}" for k in _PSDS_PARAMETERS]
        rows.append([name, None if result is None else result.value, *shown])
    return Table("PSDS", ["scenario", "PSDS", *_PSDS_PARAMETERS], rows,
                 note="Threshold-free, on the exact PSD-ROC over every score level (max_efpr: false positives "
                 "per hour); n/a: not computed (see the log, e.g. a class without reference events).")


def _table_note(cfg: SedMetricConfig, seg_zero: FScoreResult) -> str:
    pct = f"{100 * cfg.percentage_of_length:g} %"
    zero = seg_zero.macro.f_measure
    zero_text = "n/a" if zero != zero else f"{100 * zero:.2f}"
    return (
        f"Event: onset collar {1000 * cfg.t_collar:g} ms, offset collar max({1000 * cfg.t_collar:g} ms, {pct} "
        f"of the reference length), undefined ratios '{cfg.event_empty_output}'. "
        f"Segment: {cfg.segment_length:g} s segments, undefined ratios '{cfg.segment_empty_output}' "
        f"(n/a classes are left out of the macro row, as sed_eval does); "
        f"macro F1 with never-detected classes scored 0: {zero_text} %. "
        f"Clip: tags implied by the events, 2TP/(2TP+FP+FN)."
    )


def evaluate_sed(
    reference: Mapping[str, Sequence[Event]],
    estimated: Mapping[str, Sequence[Event]],
    classes: Sequence[str] | None = None,
    cfg: SedMetricConfig = SedMetricConfig(),
    durations: Mapping[str, float] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> SedEvaluation:
    """Evaluate predicted events against reference events.

    Parameters
    ----------
    reference:
        ``{filename: events}`` for every evaluated clip (``()`` for empty clips).
    estimated:
        ``{filename: events}``; clips without detections may be absent.
    classes:
        Class list; by default the sorted labels of both inputs (as DESED does).
    cfg:
        Metric settings.
    durations:
        Clip lengths for the segment metric; without them each file's length is
        its largest event offset (sed_eval's default, as DCASE ran it).
    inputs:
        Provenance recorded in the report (paths...).
    """
    classes = resolve_classes(classes, reference, estimated)
    event = event_based_metrics(reference, estimated, classes, cfg)
    segment = segment_based_metrics(reference, estimated, classes, cfg, durations)
    clip = clip_metrics(events_to_tags(reference), events_to_tags(estimated), classes, cfg)
    info = {
        "reference_files": len(reference),
        "reference_files_without_events": sum(1 for evs in reference.values() if not evs),
        "predicted_files": len(estimated),
        "reference_events": sum(len(evs) for evs in reference.values()),
        "predicted_events": sum(len(evs) for evs in estimated.values()),
        **dict(inputs or {}),
    }
    return SedEvaluation(event, segment, segment.rescore("zero_score"), clip, cfg, info)


#: What :func:`evaluate_sed_files` does with reference files the predictions do not name.
MissingPredictions = Literal["error", "empty"]
MISSING_PREDICTIONS: tuple[str, ...] = ("error", "empty")


def evaluate_sed_files(
    pred_tsv: str | Path,
    ref_tsv: str | Path,
    durations_tsv: str | Path | None = None,
    cfg: SedMetricConfig = SedMetricConfig(),
    classes: Sequence[str] | None = None,
    missing_predictions: MissingPredictions = "error",
) -> SedEvaluation:
    """Evaluate a predictions TSV against a reference TSV (DCASE strong format).

    Both files use the header ``filename onset offset event_label``; a row
    with only a filename (empty onset, offset and label) marks a clip without
    events. Bad rows raise :class:`~audioadapt.errors.DataError` naming the
    file and line.

    Labels: ``classes``, if given, is enforced on both files; otherwise every
    predicted label must occur in the reference (when it has any event), so
    that a misspelt label is an error rather than a class of its own.

    Files: a reference file without a row in the predictions is an error with
    ``missing_predictions="error"`` (usually a truncated or partial file), or
    is scored as a file without detections with ``"empty"``. Predicted files
    absent from the reference follow ``cfg.extra_prediction_files``.
    """
    from audioadapt.data.dcase import read_durations_tsv, read_strong_tsv

    if missing_predictions not in MISSING_PREDICTIONS:
        raise ValueError(f"missing_predictions must be one of {MISSING_PREDICTIONS}, got {missing_predictions!r}")
    reference = read_strong_tsv(ref_tsv, classes=classes, classes_from="--classes")
    estimated = _read_predictions(pred_tsv, ref_tsv, reference, classes)
    extra = [name for name in estimated if name not in reference]
    if extra and cfg.extra_prediction_files == "error":
        raise DataError(
            f"{len(extra)} predicted file(s) are not in the reference {ref_tsv}, e.g. {extra[0]!r} "
            "(check the filename column, or count them as false positives)",
            pred_tsv,
        )
    missing = [name for name in reference if name not in estimated]
    if missing and missing_predictions == "error":
        raise DataError(
            f"{len(missing)} of the {len(reference)} reference file(s) have no row here: {_first(missing)}. "
            "A file without detections needs a row with its name and empty onset, offset and event_label; "
            "to score missing files as files without detections, use --missing-pred empty",
            pred_tsv,
        )
    durations = None
    if durations_tsv is not None:
        durations = read_durations_tsv(durations_tsv)
        missing_durations = [name for name in (*reference, *estimated) if name not in durations]
        if missing_durations:
            raise DataError(f"no duration for {len(missing_durations)} evaluated file(s), "
                            f"e.g. {missing_durations[0]!r}", durations_tsv)
    inputs = {
        "predictions": str(pred_tsv),
        "reference": str(ref_tsv),
        "durations": None if durations_tsv is None else str(durations_tsv),
        "missing_predictions": missing_predictions,
        "reference_files_not_predicted": len(missing),
    }
    return evaluate_sed(reference, estimated, classes, cfg, durations, inputs)


def _first(names: Sequence[str], limit: int = 3) -> str:
    """``'a.wav', 'b.wav', 'c.wav', ...``: the first ``limit`` names."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def _read_predictions(pred_tsv: str | Path, ref_tsv: str | Path, reference: Mapping[str, Sequence[Event]],
                      classes: Sequence[str] | None) -> dict[str, tuple[Event, ...]]:
    """The predictions; a label outside ``classes`` (or, without them, the reference's labels) is an error."""
    from audioadapt.data.dcase import read_strong_tsv

    if classes is not None:
        return read_strong_tsv(pred_tsv, classes=classes, classes_from="--classes")
    known = sorted({ev.label for events in reference.values() for ev in events}) or None  # none: no check
    return read_strong_tsv(pred_tsv, classes=known,
                           classes_from=f"the reference {ref_tsv}; list every class with --classes")


__all__ = ["MISSING_PREDICTIONS", "SedEvaluation", "evaluate_sed", "evaluate_sed_files"]
