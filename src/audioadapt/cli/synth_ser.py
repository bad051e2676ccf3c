"""``audioadapt synth ser``: write a two-"language" speech-emotion dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Write two procedural speech-emotion corpora (angry, happy, sad, neutral) under
OUT, one per domain ("language"): OUT/source and OUT/target, each with a CSV
manifest (path,label,speaker,gender,seconds) and 16-bit WAV files, plus
OUT/dataset.json. Read them with the 'csv' corpus loader.

The languages differ in vowels, consonants, syllable structure, rate, pitch
register, intonation and recording conditions; settings go through --config
YAML and --set key=value, e.g.
  --set gap=0.5  --set target.recording.snr_db=[0,10]  --set sizes.source_speakers=12
"""


def register(sub: argparse._SubParsersAction) -> None:
    # The size names are spelled out rather than imported: the generator
    # module pulls in numpy, and building the parser must stay light.
    p = sub.add_parser(
        "ser",
        help="cross-language speech emotion dataset (two CSV-manifest corpora)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", type=Path, metavar="OUT", help="dataset root to create")
    p.add_argument("--size", metavar="{tiny,small,medium}",
                   help="dataset size: tiny 32+32 utterances, small 768+384, medium 5600+1600 "
                   "(default: the config's size)")
    p.add_argument("--seed", type=int, help="dataset seed (default: the config's seed)")
    p.add_argument("--workers", type=int,
                   help="processes rendering utterances (default: the available cores, one per 64 utterances)")
    p.add_argument("--config", metavar="YAML", help="generator settings (SerSynthConfig fields)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.data.synthetic.ser import generate_ser_dataset, load_ser_config
    from audioadapt.errors import ConfigError

    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"size={args.size}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    cfg = load_ser_config(args.config, overrides)
    info = generate_ser_dataset(args.out, cfg, workers=args.workers, progress=args.progress,
                                overwrite=args.overwrite)
    parts = ", ".join(f"{role} {info.utterances[role]} ({info.seconds[role] / 60:.1f} min) in {path.parent}"
                      for role, path in info.manifests.items())
    print(f"wrote {info.root}: {parts}")
    return 0
