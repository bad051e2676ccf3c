"""``audioadapt`` console command.

Each command group lives in its own module with a ``register(subparsers)``
function that only builds the argument parser; the heavy imports happen
inside the handlers, so ``audioadapt --help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback

from audioadapt import __version__
from audioadapt.console import command_console, launch_rank, set_command
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
    """Entry point; returns the process exit code.

    Progress bars are shown only on a terminal (and not with ``--no-progress``).
    Under torchrun, ranks other than 0 print no results (their stdout is
    dropped) and log only warnings and errors.
    """
    prefer_passive_waiting()  # before anything imports torch (see audioadapt.cpus)
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = launch_rank()
    with contextlib.ExitStack() as stack:
        set_command(["audioadapt", *(sys.argv[1:] if argv is None else argv)])
        stack.callback(set_command, None)
        stack.enter_context(command_console(args.verbose, progress=getattr(args, "progress", True), rank=rank))
        if rank:
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        return _run(args)
    return 0  # pragma: no cover - the block returns


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; errors caused by bad input become one line on stderr and exit code 2."""
    try:
        code = int(args.func(args) or 0)
        _leave_process_group()
        return code
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


def _leave_process_group() -> None:
    """After a command that succeeded under torchrun: destroy the process group it joined, every rank together.

    A gloo group left to interpreter shutdown can abort a rank ("terminate called without an active
    exception"). Only on success: after an error the other ranks may never reach the barrier. Nothing is done,
    and torch is not imported, when no group was joined.
    """
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        from audioadapt.training.distributed import cleanup_distributed

        cleanup_distributed()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
