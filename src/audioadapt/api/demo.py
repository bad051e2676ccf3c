"""The main job on embedded data: generate, describe, train and evaluate.

``run_sed_demo`` is what ``audioadapt sed demo`` (and ``scripts/demo.sh``)
runs. Every step reuses what is already on disk: the generated dataset (same
size and seed), the feature caches (same features and files) and a finished
training run, so a second call only prints the results again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

#: Preset the demo trains: the paper's best row on a CPU-sized network.
DEMO_PRESET = "sed_demo"


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and the headline numbers."""

    data_root: Path
    run_dir: Path | None
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
    from audioadapt.data.synthetic.sed import generate_sed_dataset, load_sed_config

    if _dataset_matches(root, size, seed):
        log.info("reusing the generated dataset in %s", root)
        return root
    cfg = load_sed_config(None, [f"size={size}", f"seed={seed}"])
    generate_sed_dataset(root, cfg, workers=workers, progress=progress, overwrite=root.exists())
    return root


def describe_dataset(root: Path, preset: str = DEMO_PRESET, overrides: Iterable[str] = ()) -> tuple[str, dict]:
    """Build (or reuse) the feature caches of the preset and summarise labels and features."""
    from audioadapt.api.sed import _resolve_config
    from audioadapt.data.corpora.desed import load_dcase_dataset
    from audioadapt.data.stats import domain_gap_db, feature_stats, split_stats, stats_markdown
    from audioadapt.training.sed_data import SedDataModule

    cfg, _ = _resolve_config(preset, overrides)
    data = SedDataModule(root, cfg).setup()
    dataset = load_dcase_dataset(root, cfg.data)
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


def _headline(evaluation: Any) -> str:
    """One Markdown table row block with the macro numbers of an evaluation."""
    def pct(x: float) -> str:
        return "n/a" if x != x else f"{100 * x:.2f} %"

    rows = [
        ("event-based F1 (macro)", pct(evaluation.event.macro.f_measure)),
        ("segment-based F1 (macro)", pct(evaluation.segment.macro.f_measure)),
        ("clip-level F1 (macro)", pct(evaluation.clip.macro.f_measure)),
    ]
    for key, value in sorted(evaluation.extra.items()):
        if isinstance(value, (int, float)):
            rows.append((key.upper() if key.startswith("psds") else key, f"{value:.4f}"))
    lines = ["| metric (real-domain validation) | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def run_sed_demo(out: str | Path = "runs/demo", size: str = "small", seed: int = 0, *, train: bool = True,
                 preset: str = DEMO_PRESET, overrides: Iterable[str] = (), workers: int | None = None,
                 progress: bool = True) -> DemoResult:
    """Generate the embedded dataset, describe it, train ``preset`` on it and evaluate.

    Parameters
    ----------
    out: output folder; the dataset goes to ``out/data``, the run to ``out/<preset>``.
    size, seed: the generated dataset (``tiny``, ``small`` or ``medium``).
    train: train and evaluate after describing the data.
    preset, overrides: the system to train and changes to it.
    workers: processes for generating audio (default: all cores).
    """
    from audioadapt.api.sed import evaluate_sed_run, train_sed
    from audioadapt.training.checkpoint import LAST

    out = Path(out)
    overrides = list(overrides)
    if not progress:
        overrides += ["cache.progress=false", "train.progress_bar=false"]
    root = prepare_demo_data(out / "data", size, seed, workers, progress)
    stats_md, summary = describe_dataset(root, preset, overrides)
    result = DemoResult(root, None, stats_md, summary=summary)
    (out / "data_stats.md").write_text(stats_md, encoding="utf-8")
    (out / "data_stats.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if not train:
        return result
    run_dir = out / preset
    finished = run_dir / "done.json"
    if not finished.is_file():
        resume = (run_dir / LAST).is_file()
        fit = train_sed(preset, overrides, data_root=root, run_dir=run_dir, resume=resume)
        finished.write_text(json.dumps({"best": fit.best}, indent=1, default=str) + "\n", encoding="utf-8")
    evaluation = evaluate_sed_run(run_dir)
    result.run_dir = run_dir
    result.results_markdown = _headline(evaluation)
    result.summary["results"] = {"event_f1": evaluation.event.macro.f_measure,
                                 "segment_f1": evaluation.segment.macro.f_measure, **evaluation.extra}
    return result
