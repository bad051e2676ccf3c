"""The ``export`` action shared by ``audioadapt sed`` and ``audioadapt ser``."""

from __future__ import annotations

import argparse
from pathlib import Path

_OUTPUTS = {"sed": "frame probabilities (batch, out_frame, class) and clip probabilities (batch, class)",
            "ser": "class probabilities (batch, class)"}
_SIDECAR = {"sed": "classes, feature settings, normaliser settings and statistics, frame hop, how files longer "
                   "than a clip are cut into windows, and the decode settings (class thresholds, median filter, ...)",
            "ser": "classes, feature settings, normaliser settings and statistics, crop length, how inputs longer "
                   "than a crop are cut into windows whose probabilities are averaged, and the utterance front end "
                   "(silence trimming and loudness normalisation, applied to the features before the graph)"}


def register_export(sub: argparse._SubParsersAction, task: str, default_checkpoint: str) -> None:
    """Add ``export RUN_DIR --format onnx --out FILE.onnx`` for ``task`` (``"sed"`` or ``"ser"``)."""
    p = sub.add_parser(
        "export",
        help=f"export a trained {task.upper()} run's network as an ONNX graph with a JSON sidecar",
        description=f"Write the run's network as an ONNX graph from log-mel features (batch, frame, mel; the "
        f"normaliser is inside the graph) to {_OUTPUTS[task]}, with dynamic batch and frame axes, and beside it a "
        f"JSON sidecar (same name, .json) with what another runtime needs to reproduce the predictions: "
        f"{_SIDECAR[task]}. The conv blocks are exported with standard operators (not the fused CPU kernel). "
        "When onnxruntime is installed, the graph is checked against PyTorch on an example input and the largest "
        "difference printed. Needs the 'export' extra (pip install 'audioadapt[export]').",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="graph format (default: onnx)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.onnx", help="the graph file to write")
    p.add_argument("--checkpoint", default=default_checkpoint, metavar="best|last|PATH",
                   help=f"checkpoint (default: {default_checkpoint})")
    p.set_defaults(func=_run, export_task=task)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.export import export_sed, export_ser, sidecar_path
    from audioadapt.cli.outputs import check_output_file

    check_output_file(args.out, "--out")
    check_output_file(sidecar_path(args.out), "--out's sidecar")
    export = export_sed if args.export_task == "sed" else export_ser
    result = export(args.run_dir, args.out, format=args.format, checkpoint=args.checkpoint)
    check = "" if result.max_abs_diff is None else \
        f"; onnxruntime matches PyTorch to {result.max_abs_diff:.1e} on an example input"
    print(f"wrote {result.model} and {result.sidecar}{check}")
    return 0


__all__ = ["register_export"]
