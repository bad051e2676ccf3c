"""The main job on embedded data: generate, describe, train and evaluate.

``run_sed_demo`` is what ``audioadapt sed demo`` (and ``scripts/demo.sh``)
runs: it generates the synthetic SED dataset, prints its statistics, then
trains Park et al.'s baseline and their best system (Adv.time +
Tri-training) with the ``sed_cpu`` profile's network and a short schedule
(:data:`DEMO_OVERRIDES`) and prints the two rows of the
Table 1-shaped results (:func:`audioadapt.api.sed_benchmark.benchmark_sed`
with one seed). Every step reuses what is already on disk: the generated
dataset (same size and seed), the feature caches (same features and files)
and finished runs, so a second call only prints the results again; an
interrupted run resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

#: Rows of Park et al.'s Table 1 the demo trains: the baseline and the paper's best system.
DEMO_ROWS: tuple[str, ...] = ("baseline", "adv_time_tri_training")
#: The CPU-sized network the demo trains them with.
DEMO_PROFILE = "sed_cpu"
#: The demo's short schedule, applied after the profile: 600 updates in phase 1 and 200 in phase 2 (the
#: profile's benchmark schedule trains 5 times longer). The baseline is still learning when it stops;
#: ``benchmarks/results/sed_synth_table1.md`` compares the systems trained until the baseline converged.
DEMO_OVERRIDES: tuple[str, ...] = ("train.epochs=6", "method.phase2_epochs=2")


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and the headline numbers."""

    data_root: Path
    results_dir: Path | None
    stats_markdown: str
    results_markdown: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _dataset_matches(root: Path, size: str, seed: int) -> bool:
    """Whether ``root`` already holds a generated dataset of this size and seed."""
    info = root / "dataset.json"
    if not info.is_file():
        return False
    try:
        meta = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    settings = meta.get("config", {})
    return settings.get("size") == size and settings.get("seed") == seed


def prepare_demo_data(root: Path, size: str, seed: int, workers: int | None = None, progress: bool = True) -> Path:
    """Generate the synthetic SED dataset under ``root`` unless it is already there."""
    from audioadapt.console import show_progress
    from audioadapt.data.synthetic.sed import generate_sed_dataset, load_sed_config

    if _dataset_matches(root, size, seed):
        log.info("reusing the generated dataset in %s", root)
        return root
    cfg = load_sed_config(None, [f"size={size}", f"seed={seed}"])
    generate_sed_dataset(root, cfg, workers=workers, progress=show_progress(progress), overwrite=root.exists())
    return root


def describe_dataset(root: Path, preset: str, overrides: Iterable[str] = ()) -> tuple[str, dict]:
    """Build (or reuse) the feature caches of the preset and summarise labels and features."""
    from audioadapt.api.sed import _resolve_config
    from audioadapt.data.corpora.desed import load_dcase_dataset
    from audioadapt.data.stats import domain_gap_db, feature_stats, split_stats, stats_markdown
    from audioadapt.training.sed_data import SedDataModule

    cfg, _ = _resolve_config(preset, overrides)
    dataset = load_dcase_dataset(root, cfg.data)  # every split first: the training sources' summary then repeats it
    data = SedDataModule(root, cfg).setup()
    splits = {s: split_stats(s, dataset.records(s), dataset.classes) for s in dataset.splits}
    feats = {}
    for name in data.sizes():
        source = data.source(name)
        feats[name] = feature_stats(name, source.features)
    gap = None
    if "synthetic" in feats and "weak" in feats:
        gap = domain_gap_db(feats["synthetic"], feats["weak"])
    text = stats_markdown(splits, feats, dataset.classes)
    if gap is not None:
        text += (f"\nDomain gap (RMS difference of the mean log-mel spectra, synthetic vs real weak clips): "
                 f"{gap:.2f} dB\n")
    summary = {"splits": {k: v.to_dict() for k, v in splits.items()},
               "features": {k: {kk: vv for kk, vv in v.to_dict().items() if kk != "mean_spectrum"}
                            for k, v in feats.items()},
               "domain_gap_db": gap, "data": data.summary()}
    return text, summary


def run_sed_demo(out: str | Path = "runs/demo", size: str = "small", seed: int = 0, *, train: bool = True,
                 rows: Iterable[str] = DEMO_ROWS, profile: str | Path = DEMO_PROFILE, train_seed: int = 0,
                 overrides: Iterable[str] = (), workers: int | None = None, progress: bool = True) -> DemoResult:
    """Generate the embedded dataset, describe it, train ``rows`` on it and evaluate them.

    Parameters
    ----------
    out: output folder; the dataset goes to ``out/data``, the runs and the
        results table (``benchmark.md`` / ``.json`` / ``.png``) to ``out/results``.
    size, seed: the generated dataset (``tiny``, ``small`` or ``medium``).
    train: train and evaluate after describing the data.
    rows: Table 1 rows to train (keys of :data:`~audioadapt.api.sed_benchmark.SED_ROWS`).
    profile: the benchmark profile applied to every row (shipped name or YAML path).
    train_seed: the training seed.
    overrides: dotted changes applied to every row, after the profile.
    workers: processes for generating audio (default: all cores).
    """
    from audioadapt.api.benchmark import read_profile, select_rows
    from audioadapt.api.sed_benchmark import SED_ROWS, benchmark_sed, sed_row_overrides
    from audioadapt.config.load import override_items
    from audioadapt.config.sed import load_sed_config

    out = Path(out)
    rows = list(rows)
    overrides = [*DEMO_OVERRIDES, *overrides]
    if not progress:
        overrides += ["cache.progress=false", "train.progress_bar=false"]
    prof = read_profile(profile).with_overrides(override_items(overrides))
    # Describe the data with the row that reads the most training sources (its feature caches are the runs').
    configs = [(row, sed_row_overrides(row, prof, train_seed)[0]) for row in select_rows(SED_ROWS, rows)]
    row, described = max(configs, key=lambda rc: len(load_sed_config(rc[0].preset, rc[1]).needed_sources()))
    root = prepare_demo_data(out / "data", size, seed, workers, progress)
    stats_md, summary = describe_dataset(root, row.preset, described)
    result = DemoResult(root, None, stats_md, summary=summary)
    (out / "data_stats.md").write_text(stats_md, encoding="utf-8")
    (out / "data_stats.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if not train:
        return result
    table = benchmark_sed(root, out / "results", seeds=(train_seed,), rows=rows, profile=profile,
                          overrides=overrides,
                          title=f"Park et al.'s Table 1 rows on the generated {size} dataset (seed {seed}), "
                                f"real-domain validation clips, training seed {train_seed}")
    result.results_dir = out / "results"
    result.results_markdown = table.table().to_markdown()
    result.summary["results"] = table.to_results()
    result.summary["failures"] = table.settings.get("failures", {})
    return result
