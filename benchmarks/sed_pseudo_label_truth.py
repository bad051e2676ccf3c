"""Score the pseudo labels a finished tri-training run trained on against the true labels of a generated dataset.

The pseudo labels are read from the run's ``last.pt`` (the method state holds them), the true frame labels of the
weak and unlabelled clips from the dataset's ``metadata/truth`` (written by ``audioadapt synth sed``), and the
scores are those of ``method.diagnostics.pseudo_label_truth`` (frame precision, recall and negative precision,
per class and pooled). Use it on runs trained without that switch; nothing is written into the run.

``--clip-gate`` also scores a what-if, never trained on: the pseudo labels of clips without a weak label with
their positive frames kept only for the classes the labelers' clip vote calls present (the rest unknown), as a
weak label gates the weak clips' frames (source ``<source>+clip_gate``).

    .venv/bin/python benchmarks/sed_pseudo_label_truth.py RUN_DIR [RUN_DIR ...] --data DATASET [--clip-gate] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from audioadapt.config.sed import load_sed_config
from audioadapt.data.labels import UNKNOWN
from audioadapt.training.checkpoint import load_checkpoint
from audioadapt.training.sed_data import SedDataModule
from audioadapt.training.sed_diagnostics import PseudoLabelTruth, resolve_truth_dir


def clip_gated(frame: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """``frame (clip, frame, class)`` with positives turned unknown where ``clip (clip, class)`` is not 1."""
    return frame.masked_fill((frame == 1) & (clip != 1).unsqueeze(1), UNKNOWN)


def score_run(run_dir: Path, data_root: Path, clip_gate: bool = False) -> dict[str, dict]:
    """``{source: {class or 'all_classes': scores}}`` of the pseudo labels in ``run_dir/last.pt`` (with
    ``clip_gate``, also ``<source>+clip_gate`` for the sources without weak labels)."""
    pseudo = (load_checkpoint(run_dir / "last.pt").get("method") or {}).get("pseudo") or {}
    if not pseudo:
        raise SystemExit(f"{run_dir / 'last.pt'}: no pseudo labels (not a tri-training run, or phase 2 never began)")
    data = SedDataModule(data_root, load_sed_config(str(run_dir / "config.yaml"))).setup()
    truth = PseudoLabelTruth(resolve_truth_dir(True, data_root))
    out = {}
    for source, labels in pseudo.items():
        lengths, clips = torch.as_tensor(labels["lengths"]).tolist(), data.source(source)
        out[source] = truth.score(source, clips, labels["frame"], lengths)
        if clip_gate and source == "unlabeled":
            out[f"{source}+clip_gate"] = truth.score(source, clips, clip_gated(labels["frame"], labels["clip"]), lengths)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--data", type=Path, required=True, help="the generated dataset the runs trained on")
    ap.add_argument("--clip-gate", action="store_true",
                    help="also score the unlabelled clips' pseudo labels gated by their clip vote (a what-if)")
    ap.add_argument("--json", type=Path, default=None, help="write every score here")
    args = ap.parse_args(argv)
    out = {}
    print("| run | source | precision | recall | negative precision | pseudo positive | pseudo negative | true positive |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        out[str(run)] = scores = score_run(run, args.data, args.clip_gate)
        for source, per_class in scores.items():
            a = per_class["all_classes"]
            print(f"| {run} | {source} | {a['precision']:.3f} | {a['recall']:.3f} | {a['negative_precision']:.3f} | "
                  f"{a['pseudo_positive']} | {a['pseudo_negative']} | {a['true_positive_entries']} |")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
