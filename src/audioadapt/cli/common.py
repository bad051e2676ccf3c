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


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` (``args.progress``): no progress bars.

    Bars are shown only when stderr is a terminal; the command line applies
    the switch to every bar of the command (:mod:`audioadapt.console`).
    """
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars (they are off anyway when stderr is not a terminal)")


def add_reference_argument(p: argparse.ArgumentParser) -> None:
    """``--ref REF.tsv`` (``args.ref``): reference events drawn in the plots of a prediction."""
    p.add_argument("--ref", type=Path, metavar="REF.tsv",
                   help="with --plots: draw these reference events (DCASE strong TSV: filename onset offset "
                   "event_label) under the detected ones")


def check_reference(args: argparse.Namespace, plots: str = "plots") -> None:
    """``--ref`` needs the plots it is drawn in (``args.<plots>``) and a readable file."""
    from audioadapt.errors import ConfigError, DataError

    if args.ref is None:
        return
    if getattr(args, plots) is None:
        raise ConfigError(f"--ref only applies with --{plots} (the reference events are drawn in the plots)")
    if not args.ref.is_file():
        raise DataError("no such reference file (--ref)", args.ref)


def add_run_arguments(p: argparse.ArgumentParser, unit: str) -> None:
    """``--out``, ``--resume``, ``--fast-dev-run``, ``--no-progress`` and the trailing ``key.path=value`` overrides."""
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--fast-dev-run", type=int, metavar="N",
                   help=f"smoke test: one epoch of at most N steps per {unit}")
    add_progress_argument(p)
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


def add_benchmark_parser(sub: argparse._SubParsersAction, *, help: str, description: str,
                         rows_help: str) -> argparse.ArgumentParser:
    """The ``benchmark`` sub-command with the options every benchmark shares.

    ``--out``, ``--seeds``, ``--rows``, ``--profile``, ``--rerun``, ``--fail-fast``,
    ``--no-progress`` and the trailing ``key.path=value`` overrides; the caller adds its data options.
    """
    from audioadapt.api.benchmark import DEFAULT_SEEDS

    p = sub.add_parser("benchmark", help=help, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = IntermixedParser
    seeds = " ".join(str(s) for s in DEFAULT_SEEDS)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="benchmark directory")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), metavar="N",
                   help=f"training seeds (default {seeds})")
    p.add_argument("--rows", nargs="+", metavar="ROW", help=rows_help)
    p.add_argument("--profile", type=Path, metavar="YAML", help="shipped profile name or YAML file applied to every row")
    p.add_argument("--rerun", action="store_true", help="train finished runs again")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="key.path=value", help="settings for every row")
    return p


def never_rose_note(best: dict) -> str:
    """`` (never rose above its first value ...)`` for a run whose selection metric stayed flat, else ``""``."""
    if not best.get("never_rose"):
        return ""
    moved = "fell below" if best.get("mode") == "min" else "rose above"
    return f" ({best.get('metric')} never {moved} its first value; this is the last tied epoch)"


def report_failures(failures: dict[str, str]) -> int:
    """Print one line per failed run; the exit code (1 if any failed)."""
    for name, why in failures.items():
        print(f"FAILED {name}: {why}")
    return 1 if failures else 0
