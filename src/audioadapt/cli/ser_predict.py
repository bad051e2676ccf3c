"""``audioadapt ser predict``: emotion and class probabilities of audio files with a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import add_progress_argument

    p = sub.add_parser(
        "predict",
        help="predict the emotion of audio files with a trained SER run",
        description="Predict the emotion (angry, happy, sad, neutral) of each audio file with a run's "
        "checkpoint. AUDIO is a file, a folder (searched recursively for .wav, .flac, .ogg, .mp3, .aif, .aiff) "
        "or a list file (.txt, .lst, .list: one path per line, relative to the list). Prints (or writes to "
        "--out) one row per file: path, label, one probability per class, for runs with a memory the "
        "label of the nearest memory slot, and the number of windows scored. Files of any length are scored "
        "whole: in windows of the run's crop length (dataset.crop_seconds, the model's input in training) "
        "every --hop seconds, the last one ending at the file's end; a file's probabilities are the mean of "
        "its windows' probabilities and its label their argmax (a file no longer than the crop is one "
        "window). The run's front end (dataset.frontend: silence trimming, loudness) is applied to each whole "
        "file before it is cut into windows. --windows adds one row per window (window 0, 1, ... with start and "
        "end in seconds of the file, trimmed leading silence counted) after each file's row (window 'mean'). A file shorter than the model's shortest input (a few STFT frames) "
        "is padded with zeros at its end (with a warning), as 'sed predict' pads files shorter than a clip; a file without samples is "
        "an error.",
    )
    add_progress_argument(p)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio file, folder or list file")
    p.add_argument("--format", choices=("csv", "json"), help="output format (default: from --out, else csv)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here instead of printing")
    p.add_argument("--checkpoint", default="last", metavar="last|best|PATH", help="checkpoint (default: last)")
    p.add_argument("--batch-size", type=int, metavar="N", help="windows per inference batch")
    p.add_argument("--windows", action="store_true",
                   help="also print one row per window of each file (start, end, label, probabilities)")
    p.add_argument("--hop", type=float, metavar="SECONDS",
                   help="seconds between window starts (default: the run's crop length, windows side by side)")
    p.set_defaults(func=_run)


def format_rows(rows: list[dict], fmt: str) -> str:
    """Prediction rows as CSV (header from the first row) or a JSON list."""
    import csv
    import io
    import json

    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.ser import predict_ser
    from audioadapt.cli.outputs import check_output_file
    from audioadapt.errors import ConfigError

    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.hop is not None and not args.hop > 0:
        raise ConfigError(f"--hop must be positive, got {args.hop}")
    if args.out is not None:
        check_output_file(args.out, "--out")
    fmt = args.format or ("json" if args.out is not None and args.out.suffix.lower() == ".json" else "csv")
    rows = predict_ser(args.run_dir, args.audio, checkpoint=args.checkpoint, batch_size=args.batch_size,
                       windows=args.windows, hop_seconds=args.hop)
    text = format_rows(rows, fmt)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        files = sum(1 for row in rows if row.get("window", "mean") == "mean")
        print(f"wrote {len(rows)} row(s) of {files} file(s) to {args.out}")
    return 0
