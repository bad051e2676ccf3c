"""``audioadapt synth``: generate embedded datasets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate synthetic datasets")
    ssub = p.add_subparsers(dest="synth_command", metavar="KIND")
    ssub.required = True
    # `synth sed` is registered by audioadapt.cli.synth_sed
    from audioadapt.cli import synth_sed, synth_ser

    synth_sed.register(ssub)
    synth_ser.register(ssub)
