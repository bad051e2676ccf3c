"""``audioadapt ser benchmark``: the NNPM paper's systems (and DANN) over seeds and protocols."""

from __future__ import annotations

import argparse

_DESCRIPTION = """\
Train and score SNSA-F, SNSA-wo-SL, SNSA-wo-HL, NNPM and DANN, and NNPM with
oracle multilabels (the true target emotions: an upper bound, not a system), on
a source -> target pair with several seeds, for each target protocol, and write one table
per protocol (mean +/- std of UA and WA on the target test side) as Markdown,
JSON and a bar chart, plus OUT/benchmark.md with all protocols.

Ablations add NNPM rows: --freeze 0 1 2 (first N conv layers frozen, the
paper's Table 3) and --thresholds 0.4 0.5 0.6 0.7 0.8 0.9 (similarity
threshold, the paper's Figure 2).

--profile is a partial configuration applied to every row where it applies:
a shipped one (ser_cpu; see `audioadapt config list --profiles`) or a YAML
file; a `rows:` section holds per-row settings, and `extends: NAME` starts
from another profile. key.path=value overrides are applied the same way,
after it. Stage-2 systems start from the same seed's SNSA-F run (stage 1
sees only the source) unless --no-share-stage1. Running the same command
again skips finished runs and resumes interrupted ones; a finished run
trained with other settings is refused before anything trains (--rerun
trains it again, another --out keeps both). Options taking several values
(--seeds, --rows, ...) take every word after them: put the key.path=value
overrides before them.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.api.ser_benchmark import SER_PROTOCOLS
    from audioadapt.cli.common import add_benchmark_parser

    p = add_benchmark_parser(sub, help="NNPM, its baselines and DANN over seeds and protocols -> Markdown/JSON/PNG",
                             description=_DESCRIPTION,
                             rows_help="systems: snsa_f snsa_wo_sl snsa_wo_hl nnpm dann oracle (default: all; "
                                       "none with --rows '')")
    p.add_argument("--source", required=True, metavar="CORPUS:PATH", help="labelled source corpus")
    p.add_argument("--target", required=True, metavar="CORPUS:PATH", help="target corpus")
    p.add_argument("--protocols", nargs="+", default=list(SER_PROTOCOLS),
                   choices=["transductive", "held_out_speaker", "paper"], help="target protocols")
    p.add_argument("--freeze", type=int, nargs="+", default=[], metavar="N", help="freeze-N ablation rows")
    p.add_argument("--thresholds", type=float, nargs="+", default=[], metavar="THETA",
                   help="similarity-threshold ablation rows")
    p.add_argument("--no-share-stage1", action="store_true", help="every run trains its own stage 1")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.ser_benchmark import benchmark_ser
    from audioadapt.cli.common import report_failures

    rows = None if args.rows is None else [r for r in args.rows if r]
    tables = benchmark_ser(args.source, args.target, args.out, seeds=args.seeds, protocols=args.protocols,
                           rows=rows, freeze=args.freeze, thresholds=args.thresholds, profile=args.profile,
                           overrides=args.overrides, share_stage1=not args.no_share_stage1, rerun=args.rerun,
                           keep_going=not args.fail_fast)
    failures = {}
    for protocol, table in tables.items():
        print(table.table().to_markdown())
        print()
        failures.update({f"{protocol}/{k}": v for k, v in (table.settings.get("failures") or {}).items()})
    code = report_failures(failures)
    print(f"wrote {args.out / 'benchmark.md'} and one folder per protocol")
    return code
