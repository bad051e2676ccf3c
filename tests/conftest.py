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


#: A benchmark profile that shrinks every SED row to seconds (160 x 32 inputs, a 2-block CRNN, 3 steps per epoch).
SED_TINY_PROFILE = """\
features: {hop_length: 1380, n_mels: 32}
model:
  crnn: {filters: [8, 16], kernel_sizes: [3, 3], pooling: [[2, 4], [2, 8]], rnn_hidden: 16, rnn_layers: 1,
         dropout: 0.0}
  head: {dropout: 0.0}
  domain: {hidden: [16]}
train: {epochs: 2, lr: 3.0e-3, device: cpu, progress_bar: false, tensorboard: false}
sampler:
  phase1: {batch_sizes: {synthetic: 4, weak: 4}, steps_per_epoch: 3}
  phase2: {batch_sizes: {synthetic: 4, weak: 4, unlabeled: 4}, steps_per_epoch: 3}
method: {phase2_epochs: 1, predict: {batch_size: 16}}
cache: {num_workers: 0, progress: false}
psds: {enabled: false}
rows:
  adv_time: {sampler: {phase1: {batch_sizes: {unlabeled: 4}}}}
  adv_time_tri_training: {sampler: {phase1: {batch_sizes: {unlabeled: 4}}}}
"""


@pytest.fixture(scope="session")
def sed_tiny_profile(tmp_path_factory) -> Path:
    """:data:`SED_TINY_PROFILE` as a file."""
    path = tmp_path_factory.getbasetemp() / "sed_tiny_profile.yaml"
    path.write_text(SED_TINY_PROFILE, encoding="utf-8")
    return path
