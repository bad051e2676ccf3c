"""``audioadapt sed sweep``: choose a row's settings on the internal selection metric."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Train one benchmark row (e.g. adv_time_tri_training) with every combination of
the --grid values and every seed, and rank the combinations by the internal
selection metric at each run's selected epoch: synthetic-valid event F1 +
weak-valid clip F1, on clips held out of the training splits. The real-domain
validation split is never read, so a setting chosen here can be reported on it
honestly. Writes OUT/sweep.{md,json,png}; running the same command again skips
finished runs and resumes interrupted ones.

Example:
  audioadapt sed sweep --row adv_time_tri_training --data data/small --out runs/sweep \\
      --profile sed_cpu --grid method.grl_weight.end=0.03,0.1,0.3 --seeds 0 1 2
"""


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.benchmark import DEFAULT_SEEDS
    from audioadapt.cli.common import IntermixedParser, add_progress_argument

    p = sub.add_parser("sweep", help="rank settings of one row by the internal selection metric",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = IntermixedParser
    p.add_argument("--row", required=True, metavar="ROW", help="benchmark row to sweep (see `sed benchmark -h`)")
    p.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (DESED 2019 layout)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="sweep directory")
    p.add_argument("--grid", required=True, action="append", metavar="KEY=V1,V2,...",
                   help="a setting and its values (repeat for more settings; every combination is trained)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), metavar="N",
                   help=f"training seeds (default {' '.join(map(str, DEFAULT_SEEDS))})")
    p.add_argument("--profile", type=Path, metavar="YAML", help="shipped profile name or YAML file")
    p.add_argument("--rerun", action="store_true", help="train finished runs again")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="settings of every run (before --seeds)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed_sweep import sweep_sed
    from audioadapt.cli.common import report_failures

    table = sweep_sed(args.data, args.out, args.row, args.grid, seeds=args.seeds, profile=args.profile,
                      overrides=args.overrides, rerun=args.rerun, keep_going=not args.fail_fast)
    print(table.table().to_markdown())
    code = report_failures(table.settings.get("failures") or {})
    print(f"wrote {args.out / 'sweep.md'}, {args.out / 'sweep.json'}, {args.out / 'sweep.png'}")
    return code
