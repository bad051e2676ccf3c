"""``audioadapt sed``: sound event detection commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sed", help="sound event detection: demo, train, evaluate, predict, tune-thresholds, "
                       "export, benchmark, sweep")
    ssub = p.add_subparsers(dest="sed_command", metavar="ACTION")
    ssub.required = True
    from audioadapt.cli import sed_benchmark, sed_demo, sed_evaluate, sed_predict, sed_sweep, sed_train, sed_tune
    from audioadapt.cli import sed_export
    from audioadapt.cli.process import claim_for_commands

    sed_benchmark.register(ssub)
    sed_demo.register(ssub)
    sed_evaluate.register(ssub)
    sed_predict.register(ssub)
    sed_sweep.register(ssub)
    sed_train.register(ssub)
    sed_tune.register(ssub)
    sed_export.register(ssub)
    claim_for_commands(ssub)
