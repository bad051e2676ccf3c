"""Small pieces shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path


class IntermixedParser(argparse.ArgumentParser):
    """Accepts ``key=value`` overrides after options (``PRESET --data ROOT a.b=1``)."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def add_train_parser(sub: argparse._SubParsersAction, *, help: str, description: str) -> argparse.ArgumentParser:
    """The ``train`` sub-command with its PRESET argument; overrides may follow options."""
    p = sub.add_parser("train", help=help, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = IntermixedParser
    p.add_argument("preset", metavar="PRESET", help="preset name or YAML file")
    return p


def add_run_arguments(p: argparse.ArgumentParser, unit: str) -> None:
    """``--out``, ``--resume``, ``--fast-dev-run`` and the trailing ``key.path=value`` overrides."""
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--fast-dev-run", type=int, metavar="N",
                   help=f"smoke test: one epoch of at most N steps per {unit}")
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="configuration overrides")


def train_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides of a ``train`` call, with ``--fast-dev-run`` folded in; checks ``--resume``."""
    from audioadapt.errors import ConfigError

    overrides = list(args.overrides)
    if args.fast_dev_run is not None:
        if args.fast_dev_run < 1:
            raise ConfigError(f"--fast-dev-run must be >= 1, got {args.fast_dev_run}")
        overrides.append(f"train.fast_dev_run={args.fast_dev_run}")
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
    return overrides
