"""``audioadapt sed sweep``: rank settings of one Table 1 row by the internal selection metric.

See :mod:`audioadapt.api.sweep`. The columns are the selection metric of the
SED methods (synthetic-valid event F1 + weak-valid clip F1) and its two parts,
at each run's selected epoch. Only the training splits are read: the
real-domain validation split is neither predicted nor scored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from audioadapt.api.benchmark import (DEFAULT_SEEDS, Cell, parse_seeds, read_profile, row_overrides, run_grid,
                                      select_rows)
from audioadapt.api.sweep import SweepAxis, grid_points, selected_epoch_metrics, sweep_rows
from audioadapt.config.load import override_items
from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec

log = logging.getLogger(__name__)

#: Columns: the internal selection metric and its parts (``Method.validate`` keys).
SWEEP_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("selection", "Selection (synthetic-valid event F1 + weak-valid clip F1)", percent=False),
    MetricSpec("synthetic_event_f1", "Synthetic-valid event F1"),
    MetricSpec("weak_clip_f1", "Weak-valid clip F1"),
)

_NOTE = ("Mean ± sample standard deviation over seeds of each run's internal selection metric at its selected "
         "epoch, computed on clips held out of the synthetic and weak training splits; rows are ranked by its "
         "mean. The real-domain validation split was not read.")


def sweep_sed(
    data_root: str | Path,
    out_dir: str | Path,
    row: str,
    grid: Sequence[str | SweepAxis],
    *,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    profile: str | Path | None = None,
    overrides: Iterable[str] = (),
    rerun: bool = False,
    keep_going: bool = True,
) -> BenchmarkTable:
    """Train ``row`` with every grid point and seed; write and return the ranked table.

    Parameters
    ----------
    data_root: the dataset (DESED 2019 layout).
    out_dir: sweep directory (runs, ``sweep.json`` / ``.md`` / ``.png``).
    row: a benchmark row key (``adv_time_tri_training``, ...; see ``audioadapt sed benchmark``).
    grid: ``key.path=v1,v2,...`` axes; every combination is a point.
    seeds: training seeds (initialisation and sampling).
    profile, overrides: as for :func:`audioadapt.api.sed_benchmark.benchmark_sed`; a grid
        point wins over both.
    rerun, keep_going: as for the benchmark.
    """
    from audioadapt.api.sed import train_sed
    from audioadapt.api.sed_benchmark import SED_ALL_ROWS
    from audioadapt.config.sed import load_sed_config

    out_dir = Path(out_dir)
    seeds = parse_seeds(seeds)
    base = select_rows(SED_ALL_ROWS, [row])[0]
    axes = [a if isinstance(a, SweepAxis) else SweepAxis.parse(a) for a in grid]
    prof = read_profile(profile).with_overrides(override_items(overrides))
    prof.check_rows([r.key for r in SED_ALL_ROWS], str(profile))
    points = dict(sweep_rows(base, grid_points(axes)))
    by_key = {spec.key: spec for spec in points}

    def overrides_of(spec_key: str, seed: int) -> list[str]:
        point = points[by_key[spec_key]]
        return row_overrides(base, prof, load_sed_config, [*point, f"train.seed={seed}"])[0]

    for spec in points:  # every point must load before any training
        overrides_of(spec.key, seeds[0])

    def run_cell(cell: Cell, run_dir: Path, resume: bool) -> dict[str, float]:
        result = train_sed(base.preset, overrides_of(cell.row.key, cell.seed), data_root=data_root,
                           run_dir=run_dir, resume=resume)
        return selected_epoch_metrics(run_dir, result.best.get("global_epoch"))

    grid_result = run_grid([Cell(spec, s) for spec in points for s in seeds], out_dir, run_cell, rerun=rerun,
                           keep_going=keep_going, progress=prof.progress_bar(),
                           config_of=lambda cell: load_sed_config(base.preset, overrides_of(cell.row.key, cell.seed)))
    rows = [BenchmarkRow(spec.key, spec.label, grid_result.runs(spec.key, seeds),
                         {"preset": base.preset, "point": list(points[spec]),
                          "seconds_per_run": grid_result.seconds_of(spec.key, seeds)})
            for spec in points]
    rows.sort(key=lambda r: _rank_key(r.summary("selection").mean))
    table = BenchmarkTable(
        "sed_sweep", f"Sweep of {base.label} on {Path(data_root).name} (internal selection metric)",
        SWEEP_METRICS, rows,
        settings={"data_root": str(Path(data_root).resolve()), "row": base.key, "seeds": list(seeds),
                  "grid": {a.key: list(a.values) for a in axes}, "profile": str(profile) if profile else None,
                  "common_settings": prof.common, "failures": grid_result.failure_names()},
        note=_NOTE, machines=grid_result.machine_counts(list(by_key), seeds))
    paths = table.write(out_dir, stem="sweep")
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return table


def _rank_key(mean: float) -> float:
    return -mean if mean == mean else float("inf")  # best first, undefined last


__all__ = ["SWEEP_METRICS", "sweep_sed"]
