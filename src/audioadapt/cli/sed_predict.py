"""``audioadapt sed predict``: sound events of audio files with a trained run, as a DCASE events TSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="detect sound events in audio files with a trained SED run",
        description="Detect sound events in each audio file with a run's checkpoint and print (or write to "
        "--out) a DCASE events TSV: filename, onset, offset, event_label; a file without events gets one "
        "row with empty times and label. AUDIO is a file, a folder (searched recursively for .wav, .flac, "
        ".ogg, .mp3, .aif, .aiff) or a list file (.txt, .lst, .list: one path per line, relative to the "
        "list). A file is named by its path relative to the folder it was found in, as written in its list "
        "file, or by its file name when given directly. Files longer than the run's clip length are scored "
        "in consecutive clip-length windows joined before decoding.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio file, folder or list file")
    p.add_argument("--out", type=Path, metavar="EVENTS.tsv", help="write the events here instead of printing")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="write one PNG per file here: log-mel spectrogram, detected events, frame probabilities")
    p.add_argument("--checkpoint", default="best", metavar="best|last|PATH", help="checkpoint (default: best)")
    p.add_argument("--batch-size", type=int, metavar="N", help="clip-length windows per inference batch")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed_predict import predict_sed
    from audioadapt.cli.outputs import check_output_file, check_output_folder
    from audioadapt.data.dcase import format_strong_tsv, write_strong_tsv

    if args.out is not None:
        check_output_file(args.out, "--out")
    if args.plots is not None:
        check_output_folder(args.plots, "--plots")
    events = predict_sed(args.run_dir, args.audio, checkpoint=args.checkpoint, batch_size=args.batch_size,
                         plot_dir=args.plots)
    if args.out is None:
        sys.stdout.write(format_strong_tsv(events))
    else:
        write_strong_tsv(args.out, events)
        print(f"wrote {sum(map(len, events.values()))} event(s) of {len(events)} file(s) to {args.out}")
    if args.plots is not None:
        print(f"wrote {len(events)} plot(s) to {args.plots}", file=sys.stderr if args.out is None else sys.stdout)
    return 0
