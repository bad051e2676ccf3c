"""``audioadapt ser``: cross-lingual speech emotion recognition commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ser", help="speech emotion recognition across languages: train, evaluate, predict, export")
    ssub = p.add_subparsers(dest="ser_command", metavar="ACTION")
    ssub.required = True
    from audioadapt.cli import ser_benchmark, ser_evaluate, ser_predict, ser_train
    from audioadapt.cli import ser_demo, ser_export
    from audioadapt.cli.process import claim_for_commands

    ser_train.register(ssub)
    ser_evaluate.register(ssub)
    ser_predict.register(ssub)
    ser_benchmark.register(ssub)
    ser_export.register(ssub)
    ser_demo.register(ssub)
    claim_for_commands(ssub)
