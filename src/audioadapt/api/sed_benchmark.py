"""Park et al.'s Table 1 on any DESED-layout dataset: every row x several seeds.

>>> from audioadapt.api.sed_benchmark import benchmark_sed
>>> table = benchmark_sed("data/small", "bench/sed", seeds=(0, 1, 2), profile="sed_cpu")
>>> print(table.to_markdown())

Writes ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` into the
output directory, plus one run directory per (row, seed) under ``runs/``
(each with its ``eval_validation.*``). Rows are selected on the internal
synthetic/weak validation parts only; the numbers are scored afterwards on the
strongly labelled real-domain ``validation`` split, as in the paper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audioadapt.api.benchmark import (DEFAULT_SEEDS, Cell, Profile, RowSpec, parse_seeds, read_profile,
                                      row_overrides, run_grid, select_rows)
from audioadapt.config.load import override_items
from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec

log = logging.getLogger(__name__)

#: The six rows of Park et al.'s Table 1, the DCASE 2019 baseline method, then that method with Adv.time.
SED_ROWS: tuple[RowSpec, ...] = (
    RowSpec("baseline", "Our baseline", "sed_baseline"),
    RowSpec("adv_whole", "Adv.whole", "sed_adv_whole"),
    RowSpec("adv_time", "Adv.time", "sed_adv_time"),
    RowSpec("tri_training", "Tri-training", "sed_tri_training"),
    RowSpec("adv_whole_tri_training", "Adv.whole + Tri-training", "sed_adv_whole_tri_training"),
    RowSpec("adv_time_tri_training", "Adv.time + Tri-training", "sed_adv_time_tri_training"),
    RowSpec("mean_teacher", "Mean teacher (DCASE 2019 baseline method)", "sed_mean_teacher"),
    RowSpec("adv_time_mean_teacher", "Adv.time + mean teacher", "sed_adv_time_mean_teacher"),
)

#: The rows whose paper-literal reading is a preset of its own (``sed_paper_<key>``).
_PAPER_KEYS = ("adv_whole", "adv_time", "tri_training", "adv_whole_tri_training", "adv_time_tri_training")

#: Extra rows, run only when named: the five non-baseline Table 1 rows with the paper-literal readings of
#: eq. 8, the GRL schedule and the pseudo-label rule (``sed_paper_base.yaml``).
SED_PAPER_ROWS: tuple[RowSpec, ...] = tuple(
    RowSpec(f"paper_{r.key}", f"{r.label} (paper-literal)", f"sed_paper_{r.key}") for r in SED_ROWS
    if r.key in _PAPER_KEYS)

#: Bounds, run only when named: Adv.time + Tri-training with the true labels of the pseudo-labelled clips in
#: place of the labelers' vote (a generated dataset's ``metadata/truth``): what perfect pseudo labels would give.
SED_BOUND_ROWS: tuple[RowSpec, ...] = (
    RowSpec("oracle", "Adv.time + Tri-training with true labels for W and U (oracle bound)", "sed_oracle"),
)

#: The row every other system is compared with (paired per-seed differences).
SED_REFERENCE_ROW = "baseline"
#: Every row a benchmark can run; without ``rows`` it runs :data:`SED_ROWS`.
SED_ALL_ROWS: tuple[RowSpec, ...] = SED_ROWS + SED_PAPER_ROWS + SED_BOUND_ROWS

#: The strongly labelled split a benchmark scores unless told otherwise: the real domain, as the paper.
SED_SPLIT = "validation"

#: The table's columns (Table 1: macro event- and segment-based F1); the JSON keeps more.
SED_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("event_macro_f1", "Event-based macro F1"),
    MetricSpec("segment_macro_f1", "Segment-based macro F1"),
    MetricSpec("segment_macro_f1_zero_score", "Segment-based macro F1, undetected classes = 0"),
    MetricSpec("psds1", "PSDS1", percent=False),
)

_NOTE = ("Mean ± sample standard deviation over seeds, scored on the `{split}` split (collar 200 ms / 20 % "
         "event F1 with undetected classes scored 0, as DCASE; 1 s segment F1 macro-averaged as sed_eval does, "
         "leaving out classes whose F1 is undefined because the system never detects them, and the same with "
         "those classes scored 0; PSDS1). A run that detects nothing has no sed_eval segment F1; `(n=k)` says "
         "over how many seeds a mean is. Each run is selected on the internal synthetic-valid event F1 + "
         "weak-valid clip F1, never on this split.")


def sed_row_overrides(row: RowSpec, profile: Profile, seed: int) -> tuple[list[str], dict[str, str]]:
    """The overrides of one run of ``row``: its own, the common ones it uses, and the seed."""
    from audioadapt.config.sed import load_sed_config

    out, skipped, _ = row_overrides(row, profile, load_sed_config, [f"train.seed={seed}"])
    return out, skipped


def benchmark_sed(
    data_root: str | Path,
    out_dir: str | Path,
    *,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    rows: Iterable[str] | None = None,
    profile: str | Path | None = None,
    overrides: Iterable[str] = (),
    split: str = SED_SPLIT,
    rerun: bool = False,
    keep_going: bool = True,
    title: str | None = None,
) -> BenchmarkTable:
    """Train and score every selected row with every seed; write and return the table.

    Parameters
    ----------
    data_root: the dataset (DESED 2019 layout, e.g. from ``audioadapt synth sed``).
    out_dir: benchmark directory (runs, ``benchmark.json`` / ``.md`` / ``.png``).
    seeds: training seeds (``train.seed``).
    rows: row keys of :data:`SED_ALL_ROWS` to run (default: those of :data:`SED_ROWS`; the
        paper-literal rows of :data:`SED_PAPER_ROWS` run when named).
    profile: YAML mapping applied to every row where it applies (sizes, epochs).
    overrides: dotted overrides applied like the profile, after it.
    split: the strongly labelled split scored (``validation``).
    rerun: train finished cells again.
    keep_going: record failing runs and go on (they are listed in the JSON).
    title: the table's title (default: names the dataset folder and the split).
    """
    from audioadapt.api.sed import evaluate_sed_run, train_sed
    from audioadapt.config.sed import load_sed_config

    out_dir = Path(out_dir)
    seeds = parse_seeds(seeds)
    chosen = select_rows(SED_ALL_ROWS, rows) if rows is not None else list(SED_ROWS)
    prof = read_profile(profile).with_overrides(override_items(overrides))
    prof.check_rows([r.key for r in SED_ALL_ROWS], str(profile))
    per_row = {row.key: sed_row_overrides(row, prof, 0)[1] for row in chosen}  # validates every row first

    def run_cell(cell: Cell, run_dir: Path, resume: bool) -> dict[str, Any]:
        train_sed(cell.row.preset, sed_row_overrides(cell.row, prof, cell.seed)[0], data_root=data_root,
                  run_dir=run_dir, resume=resume)
        return evaluate_sed_run(run_dir, split=split).entries()

    def config_of(cell: Cell) -> Any:
        return load_sed_config(cell.row.preset, sed_row_overrides(cell.row, prof, cell.seed)[0])

    grid = run_grid([Cell(r, s) for r in chosen for s in seeds], out_dir, run_cell, rerun=rerun,
                    keep_going=keep_going, progress=prof.progress_bar(), config_of=config_of)
    table_rows = []
    for row in chosen:
        settings = {"preset": row.preset, "row_overrides": list(row.overrides),
                    "common_settings_not_applied": per_row[row.key],
                    "seconds_per_run": grid.seconds_of(row.key, seeds)}
        table_rows.append(BenchmarkRow(row.key, row.label, grid.runs(row.key, seeds), settings))
    table = BenchmarkTable(
        "sed_benchmark", title or f"SED benchmark on {Path(data_root).name} ({split} split)", SED_METRICS, table_rows,
        settings={"data_root": str(Path(data_root).resolve()), "split": split, "seeds": list(seeds),
                  "profile": str(profile) if profile is not None else None, "common_settings": prof.common, "row_settings": prof.rows,
                  "failures": grid.failure_names()},
        note=_NOTE.format(split=split), reference=SED_REFERENCE_ROW,
        machines=grid.machine_counts([r.key for r in chosen], seeds))
    paths = table.write(out_dir)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return table


__all__ = ["SED_ALL_ROWS", "SED_METRICS", "SED_PAPER_ROWS", "SED_REFERENCE_ROW", "SED_ROWS", "SED_SPLIT", "benchmark_sed",
           "sed_row_overrides"]
