"""The ``audioadapt`` command owns its process: the runs it loads may tune it.

A run records process settings (``train.cpu_allocator``) that the trainer
applies when it starts. Loading a run for evaluation or prediction applies
them only in a process that claimed them
(:func:`audioadapt.training.allocator.claim_process`), so the library leaves
a notebook's process as it found it, while every ``audioadapt sed ...`` and
``audioadapt ser ...`` command claims its process before it runs.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable


def claiming(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` (a command handler) preceded by :func:`~audioadapt.training.allocator.claim_process`."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from audioadapt.training.allocator import claim_process

        claim_process()
        return func(args)

    return run


def claim_for_commands(subparsers: argparse._SubParsersAction) -> None:
    """Make every command registered in ``subparsers`` claim the process before its handler runs."""
    for parser in subparsers.choices.values():
        func = parser.get_default("func")
        if func is not None:
            parser.set_defaults(func=claiming(func))


__all__ = ["claim_for_commands", "claiming"]
