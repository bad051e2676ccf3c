"""``audioadapt synth``: generate embedded datasets.

Also the arguments every ``synth`` command shares (OUT, --size, --seed,
--workers, --config, --set, --overwrite, --no-progress) and how they become
config overrides.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate synthetic datasets")
    ssub = p.add_subparsers(dest="synth_command", metavar="KIND")
    ssub.required = True
    from audioadapt.cli import synth_sed, synth_ser

    synth_sed.register(ssub)
    synth_ser.register(ssub)


def add_output_arguments(p: argparse.ArgumentParser, sizes: Iterable[str], *, size_help: str,
                         workers_help: str) -> None:
    """Add OUT, ``--size`` (one of ``sizes``), ``--seed`` and ``--workers``."""
    p.add_argument("out", type=Path, metavar="OUT", help="dataset root to create")
    p.add_argument("--size", choices=list(sizes), help=size_help)
    p.add_argument("--seed", type=int, help="dataset seed (default: the config's seed)")
    p.add_argument("--workers", type=int, help=workers_help)


def add_settings_arguments(p: argparse.ArgumentParser, *, config_class: str) -> None:
    """Add ``--config`` (fields of ``config_class``), ``--set``, ``--overwrite`` and ``--no-progress``."""
    p.add_argument("--config", metavar="YAML", help=f"generator settings ({config_class} fields)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    from audioadapt.cli.common import add_progress_argument

    add_progress_argument(p)


def synth_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides, then ``--size`` and ``--seed`` as ``size=``/``seed=`` overrides.

    Raises
    ------
    ConfigError
        If ``--workers`` is below 1.
    """
    from audioadapt.errors import ConfigError

    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"size={args.size}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    return overrides
