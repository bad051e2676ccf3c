"""``audioadapt config``: list the shipped presets and benchmark profiles."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="list presets or print a resolved config")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    lp = csub.add_parser("list", help="list shipped presets (and, with --profiles, benchmark profiles)")
    lp.add_argument("prefix", nargs="?", default="", help="only names starting with this")
    lp.add_argument("--profiles", action="store_true", help="list the benchmark profiles instead")
    lp.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from audioadapt.config import list_presets, list_profiles

    for name in (list_profiles if args.profiles else list_presets)(args.prefix):
        print(name)
    return 0
