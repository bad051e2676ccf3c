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
    add_settings_arguments(p, config_class="SedSynthConfig")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.cli.outputs import check_output_folder
    from audioadapt.cli.synth import synth_overrides
    from audioadapt.data.synthetic.sed import generate_sed_dataset, load_sed_config

    check_output_folder(args.out, "the dataset")
    cfg = load_sed_config(args.config, synth_overrides(args))
    info = generate_sed_dataset(
        args.out,
        cfg,
        events=args.events,
        backgrounds=args.backgrounds,
        workers=args.workers,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    counts = ", ".join(f"{split} {n}" for split, n in info.clips.items())
    events = ", ".join(f"{split} {n}" for split, n in info.events.items())
    print(f"wrote {info.root}: {len(info.classes)} classes; clips: {counts}; events: {events}")
    return 0
