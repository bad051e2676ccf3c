"""Tiny trained SED and SER runs (seconds of training on the tiny generated datasets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: A 2-block CRNN on 32 x 160 inputs, 4 output frames per second; a low threshold so that it detects events.
SED_TINY = ["features.hop_length=1380", "features.n_mels=32", "model.crnn.filters=[8,16]",
            "model.crnn.kernel_sizes=[3,3]", "model.crnn.pooling=[[2,4],[2,8]]", "model.crnn.rnn_hidden=16",
            "model.crnn.rnn_layers=1", "train.lr=1e-2", "train.epochs=2", "train.device=cpu",
            "train.progress_bar=false", "train.tensorboard=false", "sampler.phase1.batch_sizes.synthetic=4",
            "sampler.phase1.batch_sizes.weak=4", "sampler.phase1.steps_per_epoch=3", "cache.num_workers=0",
            "cache.progress=false", "method.predict.batch_size=16", "decode.threshold=0.2"]

#: ser_demo shrunk to seconds, with a 1 s crop so that a few seconds of speech make several windows.
SER_TINY = ["features.n_mels=32", "model.encoder.conv_channels=[8,8]", "model.encoder.lstm_hidden=8",
            "model.encoder.attention_dim=8", "dataset.crop_seconds=1.0", "stage1.epochs=1", "stage1.batch_size=8",
            "stage2.epochs=1", "stage2.source_batch_size=8", "stage2.target_batch_size=8", "train.device=cpu",
            "train.progress_bar=false", "train.tensorboard=false", "cache.num_workers=0", "cache.progress=false"]


def _one_thread(train, *args, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sed_run(sed_tiny_dataset, tmp_path_factory) -> Path:
    """A tiny trained baseline SED run."""
    from audioadapt.api.sed import train_sed

    run_dir = tmp_path_factory.mktemp("sed_run") / "run"
    _one_thread(train_sed, "sed_baseline", SED_TINY, data_root=sed_tiny_dataset, run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="session")
def ser_run(ser_tiny_dataset, tmp_path_factory) -> Path:
    """A tiny trained NNPM run (it has a memory)."""
    from audioadapt.api.ser import train_ser

    run_dir = tmp_path_factory.mktemp("ser_run") / "run"
    _one_thread(train_ser, "ser_demo", SER_TINY, source=ser_tiny_dataset, target=ser_tiny_dataset, run_dir=run_dir)
    return run_dir
