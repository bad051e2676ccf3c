"""``audioadapt sed benchmark``: Park et al.'s Table 1 (plus the mean teacher) over several seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Train and score the six rows of Park et al.'s Table 1 and the DCASE 2019 baseline
method (mean teacher) with several seeds, and write the table (mean +/- std of
the event- and segment-based macro F1, and PSDS1) as Markdown, JSON and a bar chart.

Rows: baseline, adv_whole, adv_time, tri_training, adv_whole_tri_training,
adv_time_tri_training, mean_teacher. Extra rows, run only when named in --rows:
paper_adv_whole, paper_adv_time, paper_tri_training, paper_adv_whole_tri_training
and paper_adv_time_tri_training, the same systems with the paper-literal
readings (presets sed_paper_*); and oracle, Adv.time + Tri-training with the
true labels of the weak and unlabelled clips as its pseudo labels (preset
sed_oracle: an upper bound that needs a generated dataset's metadata/truth,
not a system).

--profile is a partial configuration applied to every row where it applies:
a shipped one (sed_cpu: a CPU-sized network and schedule; see `audioadapt
config list --profiles`) or a YAML file; a `rows:` section in it holds
per-row settings, and `extends: sed_cpu` (or a path) starts from another
profile. key.path=value overrides are applied the same way, after it.

Each (row, seed) is a run directory under OUT/runs/; running the same command
again skips finished runs and resumes interrupted ones; a finished run trained
with other settings (a changed profile or override) is refused before anything
trains: --rerun trains it again, another --out keeps both. Options taking
several values (--seeds, --rows, ...) take every word after them: put the
key.path=value overrides before them.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.sed_benchmark import SED_SPLIT
    from audioadapt.cli.common import add_benchmark_parser

    p = add_benchmark_parser(sub, help="Table 1 rows + mean teacher over several seeds -> Markdown/JSON/PNG",
                             description=_DESCRIPTION, rows_help="rows to run (default: all but the paper_* and oracle rows)")
    p.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (DESED 2019 layout)")
    p.add_argument("--split", default=SED_SPLIT, choices=["validation", "synthetic_valid"],
                   help=f"strongly labelled split to score (default: {SED_SPLIT}, the real domain)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.sed_benchmark import benchmark_sed
    from audioadapt.cli.common import report_failures

    table = benchmark_sed(args.data, args.out, seeds=args.seeds, rows=args.rows, profile=args.profile,
                          overrides=args.overrides, split=args.split, rerun=args.rerun,
                          keep_going=not args.fail_fast)
    print(table.table().to_markdown())
    code = report_failures(table.settings.get("failures") or {})
    print(f"wrote {args.out / 'benchmark.md'}, {args.out / 'benchmark.json'}, {args.out / 'benchmark.png'}")
    return code
