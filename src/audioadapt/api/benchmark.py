"""Run a grid of (system, seed) training runs and collect their headline numbers.

Shared by the SED and SER benchmarks. Each cell of the grid is one run
directory, ``<out>/runs/<row key>/seed<seed>``; a finished cell leaves a
``cell.json`` with its metrics and timing. Running the benchmark again skips
finished cells and resumes a cell cut short from its ``last.pt``, so an
interrupted benchmark loses at most the epoch in progress.

A *profile* is a partial configuration (a YAML mapping) applied to every
row, e.g. smaller networks and fewer epochs for a CPU. A profile key that a
row's method ignores (``method.phase2_epochs`` for a row without
tri-training) is left out for that row and recorded, never silently applied
or rejected.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioadapt.cpus import machine_description
from audioadapt.errors import AudioadaptError, ConfigError

log = logging.getLogger(__name__)

#: Marker file of a finished cell.
CELL_FILE = "cell.json"
#: What :meth:`GridResult.machine_counts` calls the machine of a cell that does not name one.
UNRECORDED_MACHINE = "not recorded"
#: Training seeds of a benchmark unless given.
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class RowSpec:
    """One system of a benchmark: a preset plus row-specific overrides.

    Attributes
    ----------
    key: directory-safe identifier.
    label: the name in the table.
    preset: the preset (name or YAML path).
    overrides: dotted overrides of this row only.
    """

    key: str
    label: str
    preset: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    row: RowSpec
    seed: int

    def run_dir(self, out_dir: Path) -> Path:
        return out_dir / "runs" / self.row.key / f"seed{self.seed}"


@dataclass
class GridResult:
    """Metrics of the finished cells and the failures, by ``(row key, seed)``."""

    metrics: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    seconds: dict[tuple[str, int], float] = field(default_factory=dict)
    failures: dict[tuple[str, int], str] = field(default_factory=dict)
    machines: dict[tuple[str, int], str] = field(default_factory=dict)

    def runs(self, row_key: str, seeds: Iterable[int]) -> dict[int, dict[str, float]]:
        """Seed -> metrics of the finished cells of one row."""
        return {s: self.metrics[(row_key, s)] for s in seeds if (row_key, s) in self.metrics}

    def seconds_of(self, row_key: str, seeds: Iterable[int]) -> list[float | None]:
        """Wall seconds of each seed's run of one row (``None`` where it did not finish)."""
        return [self.seconds.get((row_key, s)) for s in seeds]

    def machine_counts(self, row_keys: Iterable[str], seeds: Iterable[int]) -> dict[str, int]:
        """Machine description -> how many of these finished runs it made (:data:`UNRECORDED_MACHINE` for cells
        written before runs recorded it)."""
        counts: dict[str, int] = {}
        for key in ((r, s) for r in row_keys for s in seeds):
            if key in self.metrics:
                name = self.machines.get(key, UNRECORDED_MACHINE)
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def failure_names(self) -> dict[str, str]:
        """``"<row>/seed<N>" -> error`` of the failed cells."""
        return {f"{k[0]}/seed{k[1]}": v for k, v in self.failures.items()}


# -- profiles ------------------------------------------------------------------------------
#: Top-level profile key holding per-row sections.
ROWS_KEY = "rows"
#: Top-level profile key naming the profile a profile starts from.
EXTENDS_KEY = "extends"


@dataclass(frozen=True)
class Profile:
    """A partial configuration for every row, plus per-row sections (``rows: {row_key: {...}}``).

    Both hold dotted ``key -> value`` leaves; a row's section wins over the common part.
    """

    common: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def items_for(self, row_key: str) -> dict[str, Any]:
        return {**self.common, **self.rows.get(row_key, {})}

    def with_overrides(self, items: Mapping[str, Any]) -> Profile:
        """This profile with ``items`` added to the common part (winning over the row sections too)."""
        rows = {k: {kk: vv for kk, vv in v.items() if kk not in items} for k, v in self.rows.items()}
        return Profile({**self.common, **items}, rows)

    def progress_bar(self) -> bool:
        """``train.progress_bar`` of the common part (default true): whether the benchmark's own bar is shown too."""
        return self.common.get("train.progress_bar", True) is not False

    def check_rows(self, known: Iterable[str], where: str = "profile") -> None:
        unknown = sorted(set(self.rows) - set(known))
        if unknown:
            raise ConfigError(f"{where}: '{ROWS_KEY}' names unknown benchmark row(s) {unknown}; "
                              f"choose from {sorted(known)}")


def read_profile(path: str | Path | None, _seen: tuple[str, ...] = ()) -> Profile:
    """Read a profile: a shipped one by name (``sed_cpu``, ``ser_cpu``) or a YAML path (``None`` -> empty).

    ``extends: PARENT`` (a shipped profile's name, or a path relative to the file) starts from
    that profile; the file's own keys win, row section by row section.
    """
    from audioadapt.config.load import leaf_items, profile_path, read_yaml

    if path is None:
        return Profile()
    file = profile_path(path)
    here = str(file.resolve())
    if here in _seen:
        raise ConfigError(f"{file}: profiles extend each other in a loop")
    tree = read_yaml(file)
    parent = tree.pop(EXTENDS_KEY, None)
    sections = tree.pop(ROWS_KEY, None) or {}
    if not isinstance(sections, Mapping) or not all(isinstance(v, Mapping) for v in sections.values()):
        raise ConfigError(f"{path}: '{ROWS_KEY}' must map row keys to partial configurations")
    own = Profile(leaf_items(tree), {str(k): leaf_items(v) for k, v in sections.items()})
    if parent is None:
        return own
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{file}: '{EXTENDS_KEY}' must name one profile (a shipped name or a YAML path)")
    nearby = file.parent / parent
    base = read_profile(nearby if nearby.is_file() else parent, (*_seen, here))
    rows = {k: {**base.rows.get(k, {}), **own.rows.get(k, {})} for k in (*base.rows, *own.rows)}
    return Profile({**base.common, **own.common}, rows)


def split_profile(items: Mapping[str, Any], inactive: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Profile items as overrides for one row, and the ones left out because the row ignores them.

    ``inactive`` is the row configuration's ``inactive_keys()`` (dotted prefix -> reason).
    """
    from audioadapt.config.load import inactive_prefix

    applied, skipped = [], {}
    for key, value in items.items():
        prefix = inactive_prefix(key, inactive)
        if prefix is None:
            applied.append(f"{key}={json.dumps(value)}")
        else:
            skipped[key] = inactive[prefix]
    return applied, skipped


def row_overrides(row: RowSpec, profile: Profile, load: Callable[[str, list[str]], Any],
                  extra: Sequence[str]) -> tuple[list[str], dict[str, str], Any]:
    """The overrides of one run of ``row``: its own, the profile's that it uses, then ``extra``.

    ``load(preset, overrides)`` builds the row's configuration (``load_sed_config``,
    ``load_ser_config``); its ``inactive_keys()`` decide which profile keys are left
    out (returned with the reason). The full list is loaded once more, so a bad
    profile or override fails here, before any training. Returns the overrides,
    the left-out keys and the row's configuration without the profile.
    """
    cfg = load(row.preset, list(row.overrides))
    applied, skipped = split_profile(profile.items_for(row.key), cfg.inactive_keys())
    out = [*row.overrides, *applied, *extra]
    load(row.preset, out)
    return out, skipped, cfg


def parse_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    """Distinct seeds in the given order; at least one."""
    out = tuple(dict.fromkeys(int(s) for s in seeds))
    if not out:
        raise ConfigError("a benchmark needs at least one seed")
    return out


def select_rows(rows: Sequence[RowSpec], keys: Iterable[str] | None) -> list[RowSpec]:
    """The rows named by ``keys`` (all when ``None``), in table order; unknown keys are an error."""
    if keys is None:
        return list(rows)
    wanted = list(dict.fromkeys(keys))
    known = {r.key for r in rows}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise ConfigError(f"unknown benchmark row(s) {unknown}; choose from {[r.key for r in rows]}")
    return [r for r in rows if r.key in wanted]


# -- running -------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    """The mapping a JSON file holds; ``None`` when it is missing, unreadable or not a mapping."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_cell(path: Path) -> dict[str, Any] | None:
    data = _read_json(path)
    return data if data is not None and isinstance(data.get("metrics"), dict) else None


def _clean(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        v = float("nan") if v is None else float(v)
        out[str(k)] = v
    return out


def _selection(run_dir: Path) -> dict[str, Any] | None:
    """The selection record of a run's ``summary.json`` (``None`` when it has none)."""
    from audioadapt.training.experiment import SUMMARY_FILE

    data = _read_json(run_dir / SUMMARY_FILE)
    return data.get("selection") if data is not None and isinstance(data.get("selection"), dict) else None


#: Settings that do not change what a run learns (logging, devices, threads); finished cells may differ in them.
NON_RESULT_KEYS: tuple[str, ...] = ("train.progress_bar", "train.log_every", "train.tensorboard", "train.num_workers",
                                    "train.device", "train.cpu_allocator", "train.num_threads")


def check_finished(cells: Sequence[Cell], out_dir: Path, config_of: Callable[[Cell], Any],
                   ignore: Iterable[str] = NON_RESULT_KEYS) -> None:
    """Raise :class:`ConfigError` naming every finished cell trained with other settings than ``config_of`` gives.

    A finished cell is one with a ``cell.json``; its settings are its run's ``config.yaml``.
    Keys added to the configuration after the run (absent from its file) do not count.
    """
    from audioadapt.config.load import config_differences, inactive_prefix, read_yaml, to_dict
    from audioadapt.training.experiment import CONFIG_FILE

    skip = tuple(ignore)
    stale = []
    for cell in cells:
        run_dir = cell.run_dir(out_dir)
        if _read_cell(run_dir / CELL_FILE) is None or not (run_dir / CONFIG_FILE).is_file():
            continue
        changed = [k for k in config_differences(read_yaml(run_dir / CONFIG_FILE), to_dict(config_of(cell)),
                                                 new_keys=False)
                   if inactive_prefix(k, skip) is None]
        if changed:
            shown = ", ".join(sorted(changed)[:5]) + (", ..." if len(changed) > 5 else "")
            stale.append(f"{run_dir} ({shown})")
    if stale:
        raise ConfigError(f"{len(stale)} finished run(s) in {out_dir} were trained with other settings than these: "
                          + "; ".join(stale) + ". Pass --rerun to train them again with these settings, "
                          "or give another --out")


def run_grid(
    cells: Sequence[Cell],
    out_dir: str | Path,
    run_cell: Callable[[Cell, Path, bool], Mapping[str, Any]],
    *,
    rerun: bool = False,
    keep_going: bool = True,
    progress: bool = True,
    config_of: Callable[[Cell], Any] | None = None,
    ignore: Iterable[str] = (),
) -> GridResult:
    """Run every cell not finished yet; return all cells' metrics.

    Parameters
    ----------
    cells: the grid, in run order.
    out_dir: the benchmark directory.
    run_cell: ``(cell, run_dir, resume) -> metrics``: trains (resuming when
        ``resume``) and evaluates one run, returns its headline numbers.
    rerun: run finished cells again (their run directories are replaced).
    keep_going: record a failing cell and go on with the others (the error
        is logged with its traceback and written to ``<run_dir>/error.txt``);
        with ``False`` the first failure propagates.
    progress: show a bar over the runs (where bars are shown at all:
        :func:`audioadapt.console.show_progress`); the benchmarks pass
        ``train.progress_bar`` of their settings (:meth:`Profile.progress_bar`).
    config_of: the configuration a cell trains with; a finished cell whose
        ``config.yaml`` differs from it (beyond ``ignore`` and
        :data:`NON_RESULT_KEYS`) is an error before anything trains, so that a
        table never mixes runs of other settings (``rerun``, or another
        ``out_dir``, trains them anew).
    ignore: further dotted keys (or their prefixes) that may differ.

    Each finished cell's ``cell.json`` also keeps the run's selection record
    (its ``summary.json``); a run whose selection metric never rose is logged.
    """
    from audioadapt.training.logging import progress_bar

    out_dir = Path(out_dir)
    if config_of is not None and not rerun:
        check_finished(cells, out_dir, config_of, (*NON_RESULT_KEYS, *ignore))
    result = GridResult()
    bar = progress_bar(len(cells), "benchmark", progress, unit="run", leave=True)
    try:
        for cell in cells:
            bar.set_postfix_str(f"{cell.row.key} seed {cell.seed}")
            _run_cell(cell, out_dir, run_cell, result, rerun, keep_going)
            bar.update()
    finally:
        bar.close()
    return result


def _run_cell(cell: Cell, out_dir: Path, run_cell: Callable[[Cell, Path, bool], Mapping[str, Any]],
              result: GridResult, rerun: bool, keep_going: bool) -> None:
    """Run (or skip, when finished) one cell of :func:`run_grid` and record it in ``result``."""
    key = (cell.row.key, cell.seed)
    run_dir = cell.run_dir(out_dir)
    done = _read_cell(run_dir / CELL_FILE)
    if done is not None and not rerun:
        result.metrics[key] = _clean(done["metrics"])
        result.seconds[key] = float(done.get("seconds", math.nan))
        if isinstance(done.get("machine"), str):
            result.machines[key] = done["machine"]
        return
    if rerun and run_dir.exists():
        shutil.rmtree(run_dir)
    resume = (run_dir / "last.pt").is_file()
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # cut short before its first checkpoint: nothing to keep
    start = time.perf_counter()
    try:
        metrics = _clean(run_cell(cell, run_dir, resume))
    except (AudioadaptError, RuntimeError, ValueError, OSError) as exc:
        if not keep_going:
            raise
        text = f"{type(exc).__name__}: {exc}"
        log.error("benchmark cell %s seed %d failed: %s", cell.row.key, cell.seed, text)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        result.failures[key] = text
        return
    seconds = time.perf_counter() - start
    selection = _selection(run_dir)
    if selection is not None and selection.get("never_rose"):
        log.warning("benchmark cell %s seed %d: the selection metric %s never rose above its first value; "
                    "its numbers are those of the last tied epoch (%s)", cell.row.key, cell.seed,
                    selection.get("metric"), selection.get("global_epoch"))
    payload = {"row": cell.row.key, "label": cell.row.label, "preset": cell.row.preset, "seed": cell.seed,
               "overrides": list(cell.row.overrides), "metrics": metrics, "seconds": seconds, "resumed": resume,
               "selection": selection, "machine": machine_description()}
    tmp = run_dir / (CELL_FILE + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    tmp.replace(run_dir / CELL_FILE)
    result.metrics[key] = metrics
    result.seconds[key] = seconds
    result.machines[key] = payload["machine"]


__all__ = ["CELL_FILE", "Cell", "DEFAULT_SEEDS", "GridResult", "NON_RESULT_KEYS", "Profile", "ROWS_KEY", "RowSpec",
           "UNRECORDED_MACHINE", "check_finished",
           "parse_seeds", "read_profile", "row_overrides", "run_grid", "select_rows", "split_profile"]
