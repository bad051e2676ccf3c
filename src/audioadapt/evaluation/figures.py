"""Figures written as PNG files: an off-screen matplotlib figure and an atomic save."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from typing import Any


def new_figure(width: float, height: float, **kwargs: Any) -> Any:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches on its own Agg canvas.

    The global backend (``pyplot``) is left untouched, so plotting works in
    any process, without a display. ``kwargs`` go to ``Figure`` (e.g. ``layout``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (a temporary file renamed into place); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (a longer word keeps its own line)."""
    return "\n".join(textwrap.wrap(text, max(width, 8), break_long_words=False, break_on_hyphens=False)) or text


__all__ = ["new_figure", "save_png", "wrap"]
