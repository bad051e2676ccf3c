"""SER inference on audio files: very short and empty files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audioadapt.api.ser import checkpoint_meta
from audioadapt.audio.io import write_audio
from audioadapt.config.ser import load_ser_config
from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import AudioError
from audioadapt.features.normalization import Normalizer
from audioadapt.models.ser_model import SerModel
from audioadapt.training.checkpoint import make_checkpoint
from audioadapt.training.ser_predict import model_networks, predict_files, shortest_input

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["features.n_mels=32", "model.encoder.conv_channels=[8,8]", "model.encoder.lstm_hidden=8",
         "model.encoder.attention_dim=8", "dataset.crop_seconds=1.0"]


@pytest.fixture(scope="module")
def checkpoint():
    """An untrained SER checkpoint: inference only needs its shapes and settings."""
    cfg = load_ser_config("ser_nnpm", SMALL)
    model = SerModel(cfg.model, cfg.features.n_mels)
    normalizer = Normalizer(cfg.normalizer, cfg.features.n_mels)
    return make_checkpoint(networks=model_networks(model), method_state={}, progress={}, best={},
                           meta=checkpoint_meta(cfg, normalizer, EMOTIONS)), cfg.features.sample_rate


def test_files_shorter_than_one_stft_window_are_padded(checkpoint, tmp_path, caplog):
    ckpt, rate = checkpoint
    rng = np.random.default_rng(0)
    paths = [write_audio(tmp_path / "one.wav", rng.normal(size=1).astype(np.float32) * 0.1, rate),
             write_audio(tmp_path / "tenth.wav", rng.normal(size=rate // 100).astype(np.float32) * 0.1, rate),
             write_audio(tmp_path / "second.wav", rng.normal(size=rate).astype(np.float32) * 0.1, rate)]
    with caplog.at_level("WARNING", logger="audioadapt.training.ser_predict"):
        pred = predict_files(ckpt, paths)
    assert pred.probabilities.shape == (3, len(EMOTIONS))
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert f"{paths[0]}: 1 sample(s) is shorter than the shortest input of the model" in caplog.text
    assert str(paths[1]) in caplog.text and str(paths[2]) not in caplog.text


def test_the_shortest_input_gives_the_frames_asked_for():
    from audioadapt.features.config import FeatureConfig
    from audioadapt.features.logmel import LogMel

    for center in (True, False):
        logmel = LogMel(FeatureConfig(sample_rate=16000, n_fft=400, win_length=400, hop_length=160, center=center))
        for frames in (1, 4, 8):
            n = shortest_input(logmel, frames)
            assert logmel.num_frames(n) >= frames and (n == logmel.min_num_samples
                                                       or logmel.num_frames(n - 1) < frames)


def test_a_file_without_samples_is_named(checkpoint, tmp_path):
    ckpt, rate = checkpoint
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), rate)
    with pytest.raises(AudioError, match="holds no samples") as err:
        predict_files(ckpt, [empty])
    assert err.value.path == empty
