"""The SER demo on generated data: a two-"language" corpus, then SNSA-F against NNPM.

``run_ser_demo`` is what ``audioadapt ser demo`` runs: it generates the
procedural two-language speech-emotion corpus (``audioadapt synth ser``),
prints its utterance counts per language and emotion, then trains the
source-only model (SNSA-F) and NNPM with the ``ser_demo`` preset's small
network and short schedule and prints their UA and WA on the target test
side as a benchmark table (:func:`audioadapt.api.ser_benchmark.benchmark_ser`
with one seed, NNPM's stage 2 starting from the SNSA-F run). Every step reuses
what is on disk: the generated corpus (same size and seed), the feature
caches and finished runs, so a second call only prints the results again;
an interrupted run resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Systems the demo trains: the source-only model and NNPM.
DEMO_ROWS: tuple[str, ...] = ("snsa_f", "nnpm")
#: The preset whose own settings (small SNSA, 4 s crops, 15 + 5 epochs of 16 + 16 utterances) the demo rows get.
DEMO_PRESET = "ser_demo"
#: The target protocol the demo scores: adaptation and test on different speakers.
DEMO_PROTOCOL = "held_out_speaker"


@dataclass
class SerDemoResult:
    """Where the demo wrote its outputs and the headline numbers."""

    data_root: Path
    results_dir: Path | None
    stats_markdown: str
    results_markdown: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def demo_overrides() -> list[str]:
    """The ``ser_demo`` preset's own settings as dotted overrides (their one home is the preset)."""
    from audioadapt.config.load import leaf_items, own_preset_dict

    return [f"{key}={json.dumps(value)}" for key, value in leaf_items(own_preset_dict(DEMO_PRESET)).items()]


def prepare_ser_demo_data(root: Path, size: str, seed: int, workers: int | None = None,
                          progress: bool = True) -> Path:
    """Generate the two-language corpus under ``root`` unless it is already there."""
    from audioadapt.api.demo import _dataset_matches
    from audioadapt.console import show_progress
    from audioadapt.data.synthetic.ser import generate_ser_dataset, load_ser_config

    if _dataset_matches(root, size, seed):
        log.info("reusing the generated corpus in %s", root)
        return root
    cfg = load_ser_config(None, [f"size={size}", f"seed={seed}"])
    generate_ser_dataset(root, cfg, workers=workers, progress=show_progress(progress), overwrite=root.exists())
    return root


def describe_corpus(root: Path) -> tuple[str, dict[str, Any]]:
    """Utterances per language and emotion, speakers and seconds, as Markdown and as a mapping."""
    from audioadapt.data.utterances import EMOTIONS

    info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    domains = info["domains"]
    head = "| language | " + " | ".join(EMOTIONS) + " | utterances | speakers | seconds (min-max) |"
    lines = [head, "|" + "---|" * (len(EMOTIONS) + 4)]
    summary: dict[str, Any] = {}
    for role in ("source", "target"):
        d = domains[role]
        sec = d["seconds"]
        counts = [int(d["per_class"].get(e, 0)) for e in EMOTIONS]
        lines.append(f"| {role} | " + " | ".join(str(c) for c in counts) +
                     f" | {d['utterances']} | {len(d['speakers'])} | {sec['total']:.0f} ({sec['min']:.1f}-"
                     f"{sec['max']:.1f}) |")
        summary[role] = {"per_class": dict(zip(EMOTIONS, counts)), "utterances": d["utterances"],
                         "speakers": len(d["speakers"]), "seconds": sec}
    text = ("Two procedural languages (vowels, consonants, syllable structure, rate, pitch, intonation and "
            "recording conditions differ); the same four emotions.\n\n" + "\n".join(lines) + "\n")
    return text, summary


def run_ser_demo(out: str | Path = "runs/ser_demo", size: str = "small", seed: int = 0, *, train: bool = True,
                 rows: Iterable[str] = DEMO_ROWS, protocol: str = DEMO_PROTOCOL, train_seed: int = 0,
                 overrides: Iterable[str] = (), workers: int | None = None,
                 progress: bool = True) -> SerDemoResult:
    """Generate the two-language corpus, describe it, train ``rows`` on it and score them.

    Parameters
    ----------
    out: output folder; the corpus goes to ``out/data``, the runs and the
        results table (``benchmark.md`` / ``.json`` / ``.png``) to ``out/results``.
    size, seed: the generated corpus (``tiny``, ``small`` or ``medium``).
    train: train and score after describing the corpus.
    rows: systems to train (keys of :data:`~audioadapt.api.ser_benchmark.SER_ROWS`).
    protocol: the target protocol (``held_out_speaker``, ``transductive`` or ``paper``).
    train_seed: the training seed.
    overrides: dotted changes applied to every row, after the demo's settings.
    workers: processes rendering audio (default: all cores).
    """
    from audioadapt.api.ser_benchmark import benchmark_ser

    out = Path(out)
    rows = list(rows)
    settings = [*demo_overrides(), *overrides]
    if not progress:
        settings += ["cache.progress=false", "train.progress_bar=false"]
    root = prepare_ser_demo_data(out / "data", size, seed, workers, progress)
    stats_md, summary = describe_corpus(root)
    (out / "data_stats.md").write_text(stats_md, encoding="utf-8")
    (out / "data_stats.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    result = SerDemoResult(root, None, stats_md, summary={"corpus": summary})
    if not train:
        return result
    tables = benchmark_ser(str(root), str(root), out / "results", seeds=(train_seed,), protocols=(protocol,),
                           rows=rows, overrides=settings)
    table = tables[protocol]
    result.results_dir = out / "results" / protocol
    result.results_markdown = table.table().to_markdown()
    result.summary["results"] = table.to_results()
    result.summary["failures"] = table.settings.get("failures", {})
    return result


__all__ = ["DEMO_PRESET", "DEMO_PROTOCOL", "DEMO_ROWS", "SerDemoResult", "demo_overrides", "describe_corpus",
           "prepare_ser_demo_data", "run_ser_demo"]
