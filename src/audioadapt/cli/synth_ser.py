"""``audioadapt synth ser``: write a two-"language" speech-emotion dataset."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audioadapt.data.synthetic.sizes import SerSizes

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
    from audioadapt.cli.synth import add_output_arguments, add_settings_arguments
    from audioadapt.data.synthetic.sizes import SER_SIZE_PRESETS

    p = sub.add_parser(
        "ser",
        help="cross-language speech emotion dataset (two CSV-manifest corpora)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_arguments(
        p, SER_SIZE_PRESETS, size_help=f"dataset size: {_size_counts(SER_SIZE_PRESETS)} (default: the config's size)",
        workers_help="processes rendering utterances (default: the available cores, one per 64 utterances)",
    )
    add_settings_arguments(p, config_class="SerSynthConfig")
    p.set_defaults(func=_run)


def _size_counts(presets: Mapping[str, SerSizes]) -> str:
    """``tiny 32+32 utterances, small ...``: source+target utterances of each size preset."""
    from audioadapt.data.utterances import EMOTIONS

    counts = [f"{name} {s.source_speakers * s.source_per_class * len(EMOTIONS)}"
              f"+{s.target_speakers * s.target_per_class * len(EMOTIONS)}" for name, s in presets.items()]
    counts[0] += " utterances"
    return ", ".join(counts)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.cli.outputs import check_output_folder
    from audioadapt.console import show_progress
    from audioadapt.cli.synth import synth_overrides
    from audioadapt.data.synthetic.ser import generate_ser_dataset, load_ser_config

    check_output_folder(args.out, "the dataset")
    cfg = load_ser_config(args.config, synth_overrides(args))
    info = generate_ser_dataset(args.out, cfg, workers=args.workers, progress=show_progress(args.progress),
                                overwrite=args.overwrite)
    parts = ", ".join(f"{role} {info.utterances[role]} ({info.seconds[role] / 60:.1f} min) in {path.parent}"
                      for role, path in info.manifests.items())
    print(f"wrote {info.root}: {parts}")
    return 0
