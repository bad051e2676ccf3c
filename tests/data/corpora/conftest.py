"""Fixtures for the corpus-loader tests: tiny generated audio files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def make_audio() -> Callable[..., Path]:
    """Write a short 16 kHz mono tone (``.wav`` or ``.flac`` from the suffix) and return its path."""

    def write(path: Path, seconds: float = 0.05, sample_rate: int = 16000) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        sf.write(str(path), (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate)
        return path

    return write
