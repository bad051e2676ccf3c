"""``audioadapt sed train``: train one SED system from a preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioadapt.cli.common import IntermixedParser

_DESCRIPTION = """\
Train a sound event detection system on a DESED 2019-layout dataset.

PRESET is a shipped preset or a YAML file:
  sed_baseline, sed_adv_whole, sed_adv_time, sed_tri_training,
  sed_adv_whole_tri_training, sed_adv_time_tri_training   (Park et al. 2019, Table 1)
  sed_mean_teacher                                        (the DCASE 2019 baseline method)
  sed_demo                                                (small and quick, for a CPU)
Any setting can be changed with key.path=value, e.g.
  train.epochs=20  method.phase2_epochs=10  sampler.phase1.batch_sizes.weak=8
Settings the chosen method would ignore are rejected. The model is selected on
the internal synthetic-valid event F1 + weak-valid clip F1, never on the
validation split; evaluate it afterwards with `audioadapt sed evaluate RUN_DIR`.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an SED system from a preset (Park et al. rows, mean teacher, demo)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.__class__ = IntermixedParser
    p.add_argument("preset", metavar="PRESET", help="preset name or YAML file")
    p.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (DESED 2019 layout)")
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--fast-dev-run", type=int, metavar="N",
                   help="smoke test: one epoch of at most N steps per phase")
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="configuration overrides")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed import train_sed
    from audioadapt.errors import ConfigError

    overrides = list(args.overrides)
    if args.fast_dev_run is not None:
        if args.fast_dev_run < 1:
            raise ConfigError(f"--fast-dev-run must be >= 1, got {args.fast_dev_run}")
        overrides.append(f"train.fast_dev_run={args.fast_dev_run}")
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    result = train_sed(args.preset, overrides, data_root=args.data, run_dir=args.out, resume=args.resume)
    best = result.best
    if best.get("value") is not None:
        print(f"best {best['metric']} = {best['value']:.4f} at epoch {best['global_epoch']}")
    print(f"run directory: {result.run_dir}")
    print(f"evaluate with: audioadapt sed evaluate {result.run_dir}")
    return 0
