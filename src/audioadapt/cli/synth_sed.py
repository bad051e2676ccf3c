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
    from audioadapt.data.synthetic.sizes import SIZE_PRESETS

    p = sub.add_parser(
        "sed",
        help="domain-shift sound event detection dataset (DCASE 2019 layout)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", type=Path, metavar="OUT", help="dataset root to create")
    p.add_argument("--size", choices=list(SIZE_PRESETS), help="clips per split (default: the config's size)")
    p.add_argument("--seed", type=int, help="dataset seed (default: the config's seed)")
    p.add_argument("--workers", type=int, help="processes rendering clips (default: all available cores)")
    p.add_argument("--events", type=Path, metavar="DIR_OR_MANIFEST", help="bank of isolated event recordings")
    p.add_argument("--backgrounds", type=Path, metavar="DIR_OR_MANIFEST", help="bank of background recordings")
    p.add_argument("--config", metavar="YAML", help="generator settings (SedSynthConfig fields)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.data.synthetic.sed import generate_sed_dataset, load_sed_config
    from audioadapt.errors import ConfigError

    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"size={args.size}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    cfg = load_sed_config(args.config, overrides)
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
