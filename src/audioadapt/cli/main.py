"""``audioadapt`` console command.

Each command group lives in its own module with a ``register(subparsers)``
function that only builds the argument parser; the heavy imports happen
inside the handlers, so ``audioadapt --help`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from audioadapt import __version__
from audioadapt.cpus import prefer_passive_waiting
from audioadapt.errors import AudioadaptError

#: Command groups, in the order ``--help`` lists them.
_GROUPS = ("synth", "sed", "ser", "config_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audioadapt",
        description="Sound classifiers across a domain gap: SED tri-training + adversarial learning, "
        "cross-lingual SER with pseudo multilabels.",
    )
    parser.add_argument("--version", action="version", version=f"audioadapt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _GROUPS:
        importlib.import_module(f"audioadapt.cli.{name}").register(sub)
    return parser


def os_error_message(exc: OSError) -> str:
    """``FILE: reason`` of an operating-system error (``reason`` alone when it names no file)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    where = str(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    return f"{where}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    prefer_passive_waiting()  # before anything imports torch (see audioadapt.cpus)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except AudioadaptError as exc:
        print(f"audioadapt: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output, missing folder, full disk...
        if args.verbose:
            traceback.print_exc()
        print(f"audioadapt: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("audioadapt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
