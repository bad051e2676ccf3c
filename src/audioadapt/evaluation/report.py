"""Evaluation reports: one JSON file and one Markdown table per evaluation.

A :class:`Report` is generic: any evaluation (SED, SER, ...) fills in its
JSON-ready ``results``, its ``settings``, a few headline ``entries`` (single
numbers such as the macro event F1; threshold-free scores like PSDS are added
here with :meth:`Report.add_entry`) and the :class:`Table` objects its
Markdown shows. Every JSON file records the versions of the packages that
computed the numbers (torch and the metric packages drift; see the DCASE
notes); a run's evaluation also records the checkpoint, the run's seed and
how its epoch was selected (:func:`checkpoint_line`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioadapt.errors import DataError

#: Packages whose versions every results file records when installed.
VERSIONED_PACKAGES: tuple[str, ...] = ("audioadapt", "torch", "numpy", "scipy", "sed_eval", "sed_scores_eval")

#: Marker for an undefined (NaN / None) value in Markdown.
MISSING = "n/a"


def package_versions(packages: Iterable[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages``; packages that are not installed are left out."""
    from importlib import metadata

    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def format_value(value: Any, percent: bool = False, digits: int = 2) -> str:
    """Markdown cell text: floats with ``digits`` decimals (``percent`` scales by 100)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return f"{100 * value:.{digits}f}" if percent else f"{value:.{digits + 2}f}"
    return str(value)


def _jsonable(value: Any) -> Any:
    """Replace NaN/inf by ``None`` and tuples by lists, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return _jsonable(value.tolist())
    return value


@dataclass
class Table:
    """A titled table; ``percent_columns`` are shown as percentages."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    percent_columns: frozenset[str] = frozenset()
    note: str = ""

    def to_markdown(self, digits: int = 2) -> str:
        header = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
        lines = [f"### {self.title}", "", header, rule]
        for row in self.rows:
            cells = [format_value(v, c in self.percent_columns, digits) for c, v in zip(self.columns, row)]
            lines.append("| " + " | ".join(cells) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


@dataclass
class Report:
    """Everything one evaluation writes.

    Attributes
    ----------
    kind: what was evaluated (``"sed"``, ``"ser"``, ...).
    results: JSON-ready metric results.
    settings: the metric (and decoding) settings used.
    entries: headline numbers, name -> value (``None``/NaN when undefined).
    tables: what the Markdown shows, in order.
    inputs: where the data came from (paths, file counts).
    """

    kind: str
    results: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def add_entry(self, name: str, value: Any) -> None:
        """Add a headline number (e.g. ``psds1``); names must be unique."""
        if name in self.entries:
            raise ValueError(f"report entry {name!r} already exists")
        self.entries[name] = value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready payload, including the package versions."""
        return _jsonable(
            {
                "kind": self.kind,
                "entries": self.entries,
                "results": self.results,
                "settings": self.settings,
                "inputs": self.inputs,
                "versions": package_versions(),
            }
        )

    def to_markdown(self, digits: int = 2) -> str:
        """Markdown: the checkpoint and the data scored (a run's evaluation), headline entries, then every table."""
        parts = [f"## {self.kind.upper()} evaluation"]
        if self.inputs.get("checkpoint"):
            parts.append(checkpoint_line(self.inputs))
        if self.inputs.get("data_root"):
            parts.append(data_line(self.inputs))
        if self.entries:
            rows = [[name, value] for name, value in self.entries.items()]
            parts.append(Table("Summary", ["entry", "value"], rows).to_markdown(digits))
        parts += [t.to_markdown(digits) for t in self.tables]
        return "\n\n".join(parts) + "\n"


def report_paths(json_path: str | Path, markdown_path: str | Path | None = None) -> tuple[Path, Path]:
    """The JSON and Markdown files :func:`write_report` writes (default Markdown: the JSON path with ``.md``)."""
    json_path = Path(json_path)
    md_path = json_path.with_suffix(".md") if markdown_path is None else Path(markdown_path)
    if md_path == json_path:
        raise DataError("the Markdown report would overwrite the JSON report; give the JSON file a .json name",
                        json_path)
    return json_path, md_path


def data_line(inputs: Mapping[str, Any]) -> str:
    """``Data: `ROOT` (validation split, 100 clips)``: which dataset a run's evaluation scored."""
    details = [f"{inputs['split']} split" if inputs.get("split") else "",
               f"{inputs['clips']} clips" if inputs.get("clips") is not None else ""]
    shown = ", ".join(d for d in details if d)
    return f"Data: `{inputs['data_root']}`" + (f" ({shown})" if shown else "")


def checkpoint_line(inputs: Mapping[str, Any]) -> str:
    """``Checkpoint: `RUN/best.pt` (best, epoch 12, seed 0)``: which checkpoint of a run was scored.

    When the run's selection metric never beat its first value the line says so: the
    checkpoint is then the last of the tied epochs, not one the metric preferred.
    """
    role = inputs.get("checkpoint_role", "file")
    seed = f", seed {inputs['seed']}" if inputs.get("seed") is not None else ""
    epoch = f"epoch {inputs.get('global_epoch', '?')}"
    if inputs.get("weights_epoch") is not None:
        epoch += f", holding the weights of the selected epoch {inputs['weights_epoch']}"
    line = f"Checkpoint: `{inputs['checkpoint']}` ({role}, {epoch}{seed})"
    selection = inputs.get("selection") or {}
    if selection.get("never_rose"):
        moved = "fell below" if selection.get("mode") == "min" else "rose above"
        line += (f". The selection metric ({selection.get('metric')}) never {moved} its first value "
                 f"{format_value(selection.get('first_value'))} in {selection.get('validations')} validated "
                 "epochs: this is the last of the tied epochs")
    return line


def write_report(
    report: Report, json_path: str | Path, markdown_path: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``report`` as JSON and Markdown (default: the JSON path with ``.md``).

    Both files are written atomically; returns their paths.
    """
    json_path, md_path = report_paths(json_path, markdown_path)
    text = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    for path, content in ((json_path, text), (md_path, report.to_markdown())):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    return json_path, md_path


def fscore_table(
    title: str,
    results: Mapping[str, Any],
    measures: Sequence[str] | Mapping[str, Sequence[str]] = ("f_measure", "precision", "recall"),
    labels: Mapping[str, str] | None = None,
    count: tuple[str, str] | None = None,
    note: str = "",
) -> Table:
    """Per-class table joining several F-score results side by side.

    Parameters
    ----------
    title:
        Table title.
    results:
        Column group name -> result with ``classes``, ``class_wise`` (rows
        with the measures as attributes), ``macro`` and ``micro`` (e.g.
        :class:`~audioadapt.evaluation.sed_metrics.FScoreResult`); all must
        share the class list.
    measures:
        Which measures to show: one list for every group, or group -> list.
    labels:
        Short names of the measures in the header (default ``F1``, ``P``, ``R``).
    count:
        Optional ``(group, attribute)`` count shown first, e.g. ``("event", "n_ref")``.
    """
    labels = {"f_measure": "F1", "precision": "P", "recall": "R", **(labels or {})}
    groups = list(results)
    if not groups:
        raise ValueError("fscore_table needs at least one result")
    classes = tuple(results[groups[0]].classes)
    for g in groups[1:]:
        if tuple(results[g].classes) != classes:
            raise ValueError(f"results {groups[0]!r} and {g!r} have different classes")
    columns = ["class"]
    if count is not None:
        columns.append(f"{count[0]} {count[1]}")
    per_group = {g: tuple(measures[g] if isinstance(measures, Mapping) else measures) for g in groups}
    value_columns = [f"{g} {labels.get(m, m)} (%)" for g in groups for m in per_group[g]]
    columns += value_columns

    def row(name: str, pick, counted) -> list[Any]:
        cells: list[Any] = [name]
        if count is not None:
            cells.append(counted)
        for g in groups:
            src = pick(results[g])
            cells += [getattr(src, m, None) for m in per_group[g]]
        return cells

    rows = [
        row(c, lambda r, c=c: r.class_wise[c], getattr(results[count[0]].class_wise[c], count[1]) if count else None)
        for c in classes
    ]
    rows.append(row("macro", lambda r: r.macro, None))
    rows.append(row("micro", lambda r: r.micro, getattr(results[count[0]].micro, count[1]) if count else None))
    return Table(title, columns, rows, frozenset(value_columns), note)


__all__ = [
    "MISSING",
    "Report",
    "Table",
    "VERSIONED_PACKAGES",
    "checkpoint_line",
    "data_line",
    "format_value",
    "fscore_table",
    "package_versions",
    "report_paths",
    "write_report",
]
