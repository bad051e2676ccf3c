"""``audioadapt synth sed``: write a domain-shift SED dataset in the DCASE 2019 layout."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Write strongly labelled synthetic-domain clips, weakly labelled and unlabelled
real-domain clips and a strongly labelled real-domain validation set under OUT
(DESED 2019 layout, plus dataset.json).

Events are procedural (ten classes) unless --events names a bank of isolated
recordings: a folder DIR/<label>/[<group>/]file, a CSV manifest
'path,label[,group]' (paths relative to the CSV), or a YAML bank spec. Backgrounds
are each domain's noise family unless --backgrounds names a bank. With banks,
each source recording (group) is used on one side only: synthetic split, real
training splits, or validation.

--split-seed N fixes what each side holds (which recordings go to which side,
and the event sources of every clip) independently of --seed, which then only
re-renders them (backgrounds, rooms, microphones, placement, SNRs, levels).
Default: the --seed. A second real-domain validation set of the same held-out
sources, under other conditions, for a model trained on a first dataset:
  audioadapt synth sed OTHER --seed 1 --split-seed 0 --set real_domain.snr_db=[-6,12] \
      --set sizes.synthetic=0 --set sizes.weak=0 --set sizes.unlabeled=0
  audioadapt sed evaluate RUN --data OTHER

Domain knobs go through --config YAML and --set key=value, e.g.
  --set gap=0.5  --set real_domain.channel.reverb=0  --set sizes.synthetic=1000
"""


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.synth import add_output_arguments, add_settings_arguments
    from audioadapt.data.synthetic.sizes import SIZE_PRESETS

    p = sub.add_parser(
        "sed",
        help="domain-shift sound event detection dataset (DCASE 2019 layout)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_arguments(p, SIZE_PRESETS, size_help="clips per split (default: the config's size)",
                         workers_help="processes rendering clips (default: all available cores)")
    p.add_argument("--events", type=Path, metavar="DIR_OR_MANIFEST", help="bank of isolated event recordings")
    p.add_argument("--backgrounds", type=Path, metavar="DIR_OR_MANIFEST", help="bank of background recordings")
    p.add_argument("--split-seed", type=int, metavar="N",
                   help="seed of what each side holds: the split of source recordings between synthetic, real "
                   "training and validation, and every clip's event sources (default: the config's split_seed, "
                   "else the dataset seed)")
    add_settings_arguments(p, config_class="SedSynthConfig")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.cli.outputs import check_output_folder
    from audioadapt.console import show_progress
    from audioadapt.cli.synth import synth_overrides
    from audioadapt.data.synthetic.sed import generate_sed_dataset, load_sed_config

    check_output_folder(args.out, "the dataset")
    overrides = synth_overrides(args) + ([] if args.split_seed is None else [f"split_seed={args.split_seed}"])
    cfg = load_sed_config(args.config, overrides)
    info = generate_sed_dataset(
        args.out,
        cfg,
        events=args.events,
        backgrounds=args.backgrounds,
        workers=args.workers,
        progress=show_progress(args.progress),
        overwrite=args.overwrite,
    )
    counts = ", ".join(f"{split} {n}" for split, n in info.clips.items())
    events = ", ".join(f"{split} {n}" for split, n in info.events.items())
    print(f"wrote {info.root}: {len(info.classes)} classes; clips: {counts}; events: {events}")
    return 0
