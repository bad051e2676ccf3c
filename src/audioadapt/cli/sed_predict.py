"""``audioadapt sed predict``: sound events of audio files with a trained run, as a DCASE events TSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import IntermixedParser, add_progress_argument, add_reference_argument
    from audioadapt.cli.decode_args import OVERRIDES_HELP, add_tuned_threshold_arguments

    p = sub.add_parser(
        "predict",
        help="detect sound events in audio files with a trained SED run",
        description="Detect sound events in each audio file with a run's checkpoint and print (or write to "
        "--out) a DCASE events TSV: filename, onset, offset, event_label; a file without events gets one "
        "row with empty times and label. AUDIO is a file, a folder (searched recursively for .wav, .flac, "
        ".ogg, .mp3, .aif, .aiff) or a list file (.txt, .lst, .list: one path per line, relative to the "
        "list). A file is named by its path relative to the folder it was found in, as written in its list "
        "file, or by its file name when given directly. Files longer than the run's clip length are scored "
        "in consecutive clip-length windows joined before decoding. The run's decode settings apply, with the "
        "class thresholds tuned by 'sed tune-thresholds' if any; decode.key=value arguments change them.",
    )
    add_progress_argument(p)
    p.__class__ = IntermixedParser
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run")
    p.add_argument("audio", nargs="+", metavar="AUDIO",
                   help=f"audio file, folder or list file; decode.key=value arguments are overrides: {OVERRIDES_HELP}")
    p.add_argument("--out", type=Path, metavar="EVENTS.tsv",
                   help="write the events here instead of printing, and how they were made (checkpoint, decode "
                   "settings and overrides, where the thresholds came from) to EVENTS.json beside it")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="write one PNG per file here: log-mel spectrogram, detected events, frame probabilities")
    add_reference_argument(p)
    p.add_argument("--scores", type=Path, metavar="DIR",
                   help="write each file's frame scores here, one sed_scores_eval TSV per file (onset, offset, "
                   "one column per class), for 'sed evaluate --scores DIR --ref REF.tsv' or sed_scores_eval")
    p.add_argument("--checkpoint", default="best", metavar="best|last|PATH", help="checkpoint (default: best)")
    add_tuned_threshold_arguments(p)
    p.add_argument("--batch-size", type=int, metavar="N", help="clip-length windows per inference batch")
    p.add_argument("--compile", action="store_true",
                   help="run the network through torch.compile (default: the run's method.predict.compile); the "
                   "first batch of each input shape compiles first (tens of seconds with an empty cache)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed_predict import predict_sed_run
    from audioadapt.cli.common import check_reference
    from audioadapt.cli.decode_args import split_overrides
    from audioadapt.cli.outputs import check_output_file, check_output_folder
    from audioadapt.data.dcase import format_strong_tsv, write_strong_tsv
    from audioadapt.errors import ConfigError

    audio, overrides = split_overrides(args.audio)
    if not audio:
        raise ConfigError("give at least one AUDIO file, folder or list file (decode.key=value are overrides)")
    if args.out is not None:
        check_output_file(args.out, "--out")
        check_output_file(record_path(args.out), "--out's record")
    if args.plots is not None:
        check_output_folder(args.plots, "--plots")
    check_reference(args)
    if args.scores is not None:
        check_output_folder(args.scores, "--scores")
    prediction = predict_sed_run(args.run_dir, audio, checkpoint=args.checkpoint, batch_size=args.batch_size,
                                 plot_dir=args.plots, overrides=overrides,
                                 use_tuned_thresholds=not args.no_tuned_thresholds, scores_dir=args.scores,
                                 reference=args.ref, compile=True if args.compile else None)
    events = prediction.events
    if args.out is None:
        sys.stdout.write(format_strong_tsv(events))
    else:
        write_strong_tsv(args.out, events)
        _write_record(record_path(args.out), prediction.record())
        print(f"wrote {sum(map(len, events.values()))} event(s) of {len(events)} file(s) to {args.out} "
              f"(settings in {record_path(args.out)})")
    if args.scores is not None:
        print(f"wrote {len(events)} score file(s) to {args.scores}",
              file=sys.stderr if args.out is None else sys.stdout)
    if args.plots is not None:
        print(f"wrote {len(events)} plot(s) to {args.plots}", file=sys.stderr if args.out is None else sys.stdout)
    return 0


def record_path(out: Path) -> Path:
    """The JSON beside ``--out EVENTS.tsv`` that records how the events were made: ``EVENTS.json``."""
    return out.with_suffix(".json") if out.suffix != ".json" else out.with_name(out.name + ".record.json")


def _write_record(path: Path, record: dict) -> None:
    import json

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
