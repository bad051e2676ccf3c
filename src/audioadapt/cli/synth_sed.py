"""Placeholder: registered so the parser builds; filled in by its module owner."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
