"""``audioadapt sed train``: train one SED system from a preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioadapt.cli.common import add_run_arguments, add_train_parser, never_rose_note, train_overrides

_DESCRIPTION = """\
Train a sound event detection system on a DESED 2019-layout dataset.

PRESET is a shipped preset or a YAML file:
  sed_baseline, sed_adv_whole, sed_adv_time, sed_tri_training,
  sed_adv_whole_tri_training, sed_adv_time_tri_training   (Park et al. 2019, Table 1)
  sed_mean_teacher                                        (the DCASE 2019 baseline method)
Any setting can be changed with key.path=value, e.g.
  train.epochs=20  method.phase2_epochs=10  sampler.phase1.batch_sizes.weak=8
Settings the chosen method would ignore are rejected. The model is selected on
the internal synthetic-valid event F1 + weak-valid clip F1, never on the
validation split; evaluate it afterwards with `audioadapt sed evaluate RUN_DIR`.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_train_parser(sub, help="train an SED system from a preset (Park et al. rows, mean teacher, demo)",
                         description=_DESCRIPTION)
    p.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (DESED 2019 layout)")
    add_run_arguments(p, "phase")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed import train_sed

    overrides = train_overrides(args)
    result = train_sed(args.preset, overrides, data_root=args.data, run_dir=args.out, resume=args.resume)
    best = result.best
    if best.get("value") is not None:
        print(f"best {best['metric']} = {best['value']:.4f} at epoch {best['global_epoch']}{never_rose_note(best)}")
    print(f"run directory: {result.run_dir}")
    print(f"evaluate with: audioadapt sed evaluate {result.run_dir}")
    return 0
