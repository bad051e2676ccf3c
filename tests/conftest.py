"""Fixtures shared across the test packages: the tiny generated datasets and a one-thread torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small networks gain nothing from intra-op threads; on a busy machine they cost a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sed_tiny_dataset(tmp_path_factory) -> Path:
    """The tiny generated SED dataset of this test session (generated on first use)."""
    from audioadapt.data.synthetic import SedSynthConfig, generate_sed_dataset

    root = tmp_path_factory.getbasetemp() / "sed_tiny_dataset"
    if not (root / "dataset.json").is_file():
        generate_sed_dataset(root, SedSynthConfig(size="tiny", seed=3), progress=False, overwrite=True)
    return root


@pytest.fixture(scope="session")
def ser_tiny_dataset(tmp_path_factory) -> Path:
    """The tiny generated SER dataset of this test session (generated on first use)."""
    from audioadapt.data.synthetic.ser import SerSynthConfig, generate_ser_dataset

    root = tmp_path_factory.getbasetemp() / "ser_tiny_dataset"
    if not (root / "dataset.json").is_file():
        generate_ser_dataset(root, SerSynthConfig(size="tiny", seed=5), workers=1, progress=False, overwrite=True)
    return root
