"""``audioadapt config``: list presets and print resolved configurations."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="list presets or print a resolved config")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    lp = csub.add_parser("list", help="list shipped presets")
    lp.add_argument("prefix", nargs="?", default="", help="only presets starting with this")
    lp.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from audioadapt.config import list_presets

    for name in list_presets(args.prefix):
        print(name)
    return 0
