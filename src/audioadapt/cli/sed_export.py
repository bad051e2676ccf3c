"""``audioadapt sed export``: a SED run's network as an ONNX graph with a JSON sidecar."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.export import register_export

    register_export(sub, "sed", "best")
