"""The NNPM paper's Table 1 (plus DANN) on a source -> target pair: systems x seeds x protocols.

>>> from audioadapt.api.ser_benchmark import benchmark_ser
>>> tables = benchmark_ser("csv:emodb4.csv", "urdu:/data/urdu", "bench/ser", seeds=(0, 1, 2),
...                        protocols=("transductive", "held_out_speaker"))

For each protocol, ``<out>/<protocol>/`` gets ``benchmark.json`` / ``.md`` /
``.png`` (UA and WA on the target test side, mean +/- std over seeds) and
one run directory per (system, seed); ``<out>/benchmark.md`` joins the
protocols. Ablations are extra rows: ``freeze`` (NNPM with the first N conv
layers frozen, the paper's Table 3) and ``thresholds`` (NNPM with another
similarity threshold, the paper's Figure 2).

With ``share_stage1`` (default), the stage-2 systems of a seed and protocol
start from the ``snsa_f`` run of that seed and protocol (``stage2.init_from``)
instead of training the same stage 1 again: stage 1 sees only the source
corpus, so this changes nothing but the compute.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from audioadapt.api.benchmark import (DEFAULT_SEEDS, Cell, Profile, RowSpec, parse_seeds, read_profile,
                                      row_overrides, run_grid, select_rows)
from audioadapt.config.load import override_items
from audioadapt.data.protocols import SPEAKER_CONFOUND_WARNING
from audioadapt.errors import ConfigError
from audioadapt.evaluation.benchmark import BenchmarkRow, BenchmarkTable, MetricSpec

log = logging.getLogger(__name__)

#: Metric key of the source-only model's UA on the source validation side (its stage-1 selection value).
SOURCE_UA = "source_ua"

#: The paper's Table 1 rows, the adversarial baseline of its Table 2, then the oracle-multilabel bound.
SER_ROWS: tuple[RowSpec, ...] = (
    RowSpec("snsa_f", "SNSA-F", "ser_snsa_f"),
    RowSpec("snsa_wo_sl", "SNSA-wo-SL", "ser_snsa_wo_sl"),
    RowSpec("snsa_wo_hl", "SNSA-wo-HL", "ser_snsa_wo_hl"),
    RowSpec("nnpm", "NNPM", "ser_nnpm"),
    RowSpec("dann", "DANN", "ser_dann"),
    RowSpec("oracle", "NNPM, oracle multilabels (bound)", "ser_oracle"),
)
#: Rows that read target labels in training (upper bounds, not systems).
SER_BOUND_ROWS: tuple[str, ...] = ("oracle",)

#: Columns: UA and WA on the target test side; the source-only row also gets its stage-1 selection value, the UA
#: on the source's held-out validation speakers (stage-2 rows train on every source utterance, so have none).
SER_METRICS: tuple[MetricSpec, ...] = (MetricSpec("ua", "UA"), MetricSpec("wa", "WA"),
                                       MetricSpec(SOURCE_UA, "Source UA (held-out source speakers)"))
#: The row every other system is compared with (paired per-seed differences): the source-only model.
SER_REFERENCE_ROW = "snsa_f"

#: Target protocols a benchmark runs unless told otherwise.
SER_PROTOCOLS: tuple[str, ...] = ("transductive", "held_out_speaker")

#: The stage-1-only row whose run the stage-2 rows start from.
STAGE1_ROW = "snsa_f"
#: Settings a finished cell may differ in besides the training ones (a moved benchmark, corpus or feature cache).
SER_NON_RESULT_KEYS: tuple[str, ...] = ("stage2.init_from", "cache.directory", "source.root", "target.root")

_NOTE = ("Mean ± sample standard deviation over seeds; UA = mean per-class recall, WA = accuracy, on the "
         "target test side of the `{protocol}` protocol. Target labels are used only for these scores, and by the "
         "oracle row, whose pseudo multilabels are the true emotions of the adaptation side: the upper bound of "
         "what the memory mechanism can give, not a system. Source UA: the source-only model's UA on the source "
         "speakers held out of its training (the value stage 1 selected its epoch on); the stage-2 rows train on "
         "every source utterance and have none.")


def ablation_rows(freeze: Iterable[int] = (), thresholds: Iterable[float] = ()) -> list[RowSpec]:
    """NNPM rows of the freeze-N ablation and the similarity-threshold sweep."""
    rows = [RowSpec(f"nnpm_freeze{n}", f"NNPM, freeze {n}", "ser_nnpm", (f"stage2.freeze_conv={int(n)}",))
            for n in dict.fromkeys(int(n) for n in freeze)]
    for theta in dict.fromkeys(float(t) for t in thresholds):
        if not 0.0 < theta < 1.0:
            raise ConfigError(f"similarity thresholds must be in (0, 1), got {theta}")
        rows.append(RowSpec(f"nnpm_theta{theta:g}", f"NNPM, θ = {theta:g}", "ser_nnpm",
                            (f"pseudo_multilabel.threshold={theta}",)))
    return rows


def ser_row_overrides(row: RowSpec, profile: Profile, seed: int, protocol: str,
                      stage1_dir: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The overrides of one run: the row's, the profile's that it uses, seed, protocol, stage-1 start."""
    from audioadapt.config.ser import load_ser_config

    out, skipped, cfg = row_overrides(row, profile, load_ser_config,
                                      [f"train.seed={seed}", f"protocol.protocol={protocol}"])
    if stage1_dir is not None and cfg.method.has_stage2:
        out.append(f"stage2.init_from={stage1_dir}")
    return out, skipped


def source_ua(run_dir: str | Path) -> float | None:
    """A stage-1 run's UA on the source validation side at its selected epoch (``None`` without one).

    It is the value stage 1 selected its weights on (``summary.json``), so no second pass over the source is
    needed; runs without a source validation side (stage 2 only, or ``source_validation.kind: none``) have none.
    """
    from audioadapt.training.experiment import SUMMARY_FILE

    try:
        summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    selection = summary.get("selection") if isinstance(summary, dict) else None
    if not isinstance(selection, dict) or selection.get("metric") != "selection" or "stage1" not in summary.get(
            "phases", []) or "stage2" in summary.get("phases", []):
        return None
    value = selection.get("value")
    return float(value) if isinstance(value, (int, float)) else None


def target_speaker_purity(run_dir: str | Path) -> float | None:
    """The target set's speaker/emotion purity recorded in a run's ``data.json`` (``None`` when absent).

    See :func:`audioadapt.data.protocols.speaker_label_purity`: the share of target utterances whose emotion is
    their speaker's most frequent one.
    """
    from audioadapt.training.experiment import DATA_FILE

    try:
        record = json.loads((Path(run_dir) / DATA_FILE).read_text(encoding="utf-8"))
        value = record["target_split"]["speaker_label_purity"]["corpus"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _confound_note(purity: float | None) -> str:
    if purity is None or purity <= SPEAKER_CONFOUND_WARNING:
        return ""
    return (f" Speaker and emotion are confounded in this target: {100 * purity:.0f} % of its utterances carry their "
            "speaker's most frequent emotion, so labels learnt on the adaptation side (pseudo or, in the oracle row, "
            "true) teach its voices; under held-out speakers the test voices are new, and a random split lets "
            "speaker identity stand in for emotion.")


def benchmark_ser(
    source: str,
    target: str,
    out_dir: str | Path,
    *,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    protocols: Sequence[str] = SER_PROTOCOLS,
    rows: Iterable[str] | None = None,
    freeze: Iterable[int] = (),
    thresholds: Iterable[float] = (),
    profile: str | Path | None = None,
    overrides: Iterable[str] = (),
    share_stage1: bool = True,
    rerun: bool = False,
    keep_going: bool = True,
) -> dict[str, BenchmarkTable]:
    """Train and score every selected system for every seed and protocol; write and return the tables.

    Parameters
    ----------
    source, target: ``CORPUS:PATH`` specifications (as ``audioadapt ser train``).
    out_dir: benchmark directory.
    seeds: training seeds (``train.seed``).
    protocols: target protocols (``transductive``, ``held_out_speaker``, ``paper``).
    rows: keys of :data:`SER_ROWS` (default: all six, the oracle bound included).
    freeze, thresholds: ablation rows (see :func:`ablation_rows`).
    profile: YAML mapping applied to every row where it applies.
    overrides: dotted overrides applied like the profile, after it.
    share_stage1: stage-2 rows start from the same seed's ``snsa_f`` run.
    rerun, keep_going: as :func:`audioadapt.api.benchmark.run_grid`.
    """
    from audioadapt.api.ser import evaluate_ser_run, resolve_ser_config, train_ser

    out_dir = Path(out_dir)
    seeds = parse_seeds(seeds)
    protocols = tuple(dict.fromkeys(protocols))
    if not protocols:
        raise ConfigError("a SER benchmark needs at least one protocol")
    chosen = select_rows(SER_ROWS, rows) + ablation_rows(freeze, thresholds)
    prof = read_profile(profile).with_overrides(override_items(overrides))
    prof.check_rows({r.key for r in (*SER_ROWS, *chosen)}, str(profile))
    share = share_stage1 and any(r.key == STAGE1_ROW for r in chosen)
    if share_stage1 and not share:
        log.warning("stage 1 is not shared: the %s row is not selected, so every run trains its own", STAGE1_ROW)
    tables: dict[str, BenchmarkTable] = {}
    for protocol in protocols:
        where = out_dir / protocol
        skipped = {r.key: ser_row_overrides(r, prof, 0, protocol)[1] for r in chosen}  # validates every row

        def stage1_of(seed: int, where: Path = where) -> Path | None:
            return Cell(next(r for r in chosen if r.key == STAGE1_ROW), seed).run_dir(where) if share else None

        def overrides_of(cell: Cell, protocol: str = protocol) -> list[str]:
            first = stage1_of(cell.seed) if cell.row.key != STAGE1_ROW else None
            return ser_row_overrides(cell.row, prof, cell.seed, protocol, first)[0]

        def run_cell(cell: Cell, run_dir: Path, resume: bool) -> dict[str, Any]:
            train_ser(cell.row.preset, overrides_of(cell), source=source, target=target, run_dir=run_dir,
                      resume=resume)
            metrics = evaluate_ser_run(run_dir)["test"]
            return {"ua": metrics.ua, "wa": metrics.wa, "utterances": metrics.n_utterances}

        def config_of(cell: Cell) -> Any:
            return resolve_ser_config(cell.row.preset, overrides_of(cell), source, target)[0]

        # The stage-1 row of a seed runs before the rows that start from it.
        order = sorted(chosen, key=lambda r: r.key != STAGE1_ROW)
        grid = run_grid([Cell(r, s) for s in seeds for r in order], where, run_cell, rerun=rerun,
                        keep_going=keep_going, progress=prof.progress_bar(), config_of=config_of,
                        ignore=SER_NON_RESULT_KEYS)
        table_rows = []
        purity = next((p for r in chosen for seed in seeds
                       if (p := target_speaker_purity(Cell(r, seed).run_dir(where))) is not None), None)
        for row in chosen:
            runs = grid.runs(row.key, seeds)
            for seed, metrics in runs.items():  # read from the run, so that earlier finished cells get it too
                value = source_ua(Cell(row, seed).run_dir(where))
                metrics[SOURCE_UA] = math.nan if value is None else value
            table_rows.append(BenchmarkRow(row.key, row.label, runs, {
                "preset": row.preset, "row_overrides": list(row.overrides),
                "profile_settings_not_applied": skipped[row.key],
                "stage1_from": STAGE1_ROW if share and row.key != STAGE1_ROW else None,
                "seconds_per_run": grid.seconds_of(row.key, seeds)}))
        table = BenchmarkTable(
            "ser_benchmark", f"SER benchmark: {source} -> {target}, {protocol} protocol", SER_METRICS, table_rows,
            settings={"source": source, "target": target, "protocol": protocol, "seeds": list(seeds),
                      "profile": str(profile) if profile is not None else None, "common_settings": prof.common,
                      "row_settings": prof.rows, "share_stage1": share, "target_speaker_label_purity": purity,
                      "failures": grid.failure_names()},
            note=_NOTE.format(protocol=protocol) + _confound_note(purity), reference=SER_REFERENCE_ROW,
            machines=grid.machine_counts([r.key for r in chosen], seeds))
        table.write(where)
        tables[protocol] = table
    summary = "\n".join(t.to_markdown() for t in tables.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmark.md").write_text(summary, encoding="utf-8")
    return tables


__all__ = ["SER_BOUND_ROWS", "SER_METRICS", "SER_PROTOCOLS", "SER_REFERENCE_ROW", "SER_ROWS", "STAGE1_ROW",
           "SOURCE_UA", "ablation_rows", "benchmark_ser", "ser_row_overrides", "source_ua",
           "target_speaker_purity"]
