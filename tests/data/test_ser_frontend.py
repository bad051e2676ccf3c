"""SER front end: silence trimming and loudness normalisation on the log-mel, equal to doing it on the waveform."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from audioadapt.config.load import from_dict, load_preset_dict
from audioadapt.config.ser import load_ser_config
from audioadapt.data.ser_dataset import SerDataset, SerDatasetConfig
from audioadapt.data.ser_frontend import (
    FrontEndFeatures,
    SerFrontEndConfig,
    apply_frontend,
    check_frontend_features,
    frame_energy,
    level_dbfs,
)
from audioadapt.data.utterances import Utterance
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.logmel import LogMel

FEATURES = from_dict(FeatureConfig, load_preset_dict("ser_features")["features"])
SR = FEATURES.sample_rate
TRIM_ONLY = SerFrontEndConfig(trim_db=40.0, trim_margin_seconds=0.1, loudness_dbfs=None)
LOUDNESS_ONLY = SerFrontEndConfig(trim_db=None, loudness_dbfs=-23.0)


def logmel(signal: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return LogMel(FEATURES)(torch.from_numpy(signal.astype(np.float32)).unsqueeze(0))[0].numpy()


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated signal with an RMS of 1 (harmonics of 150 Hz and a little noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    x = voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t))
    return x / np.sqrt(np.mean(x**2))


def test_levels_read_as_dbfs_of_the_waveform_rms():
    noise = np.random.default_rng(1).standard_normal(SR)
    noise *= 10 ** (-20 / 20) / np.sqrt(np.mean(noise**2))
    assert level_dbfs(frame_energy(logmel(noise), FEATURES), FEATURES) == pytest.approx(-20.0, abs=0.3)
    speech = 10 ** (-37 / 20) * speech_like(1.0)
    assert level_dbfs(frame_energy(logmel(speech), FEATURES), FEATURES) == pytest.approx(-37.0, abs=0.5)
    assert level_dbfs(np.zeros(5), FEATURES) == -np.inf


def test_leading_and_trailing_silence_is_trimmed_to_the_margin():
    sound = 0.1 * speech_like(1.0)
    gap = np.zeros(SR // 5)  # silence inside the utterance stays
    signal = np.concatenate([np.zeros(SR), sound, gap, sound, np.zeros(int(1.5 * SR))])
    y = logmel(signal)
    out = apply_frontend(y, TRIM_ONLY, FEATURES)
    # 2.2 s of sound and gap, 0.1 s of margin on each side, a frame or two of STFT spread at each edge
    assert 240 <= len(out) <= 246, len(out)
    starts = [s for s in range(len(y) - len(out) + 1) if np.array_equal(out, y[s:s + len(out)])]
    assert len(starts) == 1 and 87 <= starts[0] <= 90, starts  # sound from frame 100, less the margin
    assert apply_frontend(y, SerFrontEndConfig(trim_db=None, loudness_dbfs=None), FEATURES) is y


def test_loudness_normalisation_equals_a_waveform_gain():
    speech = speech_like(2.0, seed=3)
    quiet, loud = logmel(10 ** (-60 / 20) * speech), logmel(10 ** (-15 / 20) * speech)
    # the log_offset floor makes the quiet recording's spectrum another shape, not only another offset
    assert np.abs((quiet - quiet.mean()) - (loud - loud.mean())).max() > 1.0
    target = logmel(10 ** (-23 / 20) * speech)
    for y in (quiet, loud):
        out = apply_frontend(y, LOUDNESS_ONLY, FEATURES)
        assert out.dtype == np.float32 and out.shape == y.shape
        assert level_dbfs(frame_energy(out, FEATURES), FEATURES) == pytest.approx(-23.0, abs=1e-3)
        # the floor keeps what the quiet one lost below it; everything above it matches the -23 dBFS recording
        audible = target > np.log(FEATURES.log_offset) + 3
        assert np.abs(out - target)[audible].max() < 0.05
    # exactly the waveform gain of the measured level (which reads the RMS to about 0.1 dB)
    measured = level_dbfs(frame_energy(loud, FEATURES), FEATURES)
    assert measured == pytest.approx(-15.0, abs=0.2)
    gained = logmel(10 ** ((-23 - measured) / 20) * 10 ** (-15 / 20) * speech)
    assert np.abs(apply_frontend(loud, LOUDNESS_ONLY, FEATURES) - gained).max() < 1e-3


def test_digital_silence_and_bad_shapes_pass_unchanged():
    silence = logmel(np.zeros(SR // 2))
    out = apply_frontend(silence, SerFrontEndConfig(), FEATURES)
    assert np.isfinite(out).all() and np.array_equal(out, silence)
    flat = np.zeros(5, dtype=np.float32)
    assert apply_frontend(flat, SerFrontEndConfig(), FEATURES) is flat


def test_datasets_see_the_front_end_before_the_crop():
    signal = np.concatenate([np.zeros(SR), 0.05 * speech_like(2.0), np.zeros(SR)])
    y = logmel(signal)
    utts = [Utterance("/d/u0.wav", "sad", "s", "demo", "u0")]
    cfg = SerDatasetConfig(crop_seconds=1.0, pad_to_crop=False)
    ds = SerDataset(utts, [y], FEATURES, cfg)
    expected = apply_frontend(y, cfg.frontend, FEATURES)
    assert np.array_equal(ds.features[0], expected) and len(expected) < len(y) - 150
    assert np.array_equal(ds[0].features.numpy(), expected[:101])  # the evaluation crop starts at the sound
    raw = SerDataset(utts, [y], FEATURES, SerDatasetConfig(crop_seconds=1.0, pad_to_crop=False,
                                                         frontend=SerFrontEndConfig(trim_db=None,
                                                                                    loudness_dbfs=None)))
    assert np.array_equal(raw[0].features.numpy(), y[:101])


class Store(list):
    """A feature store with paths (module level, so that it pickles)."""

    paths = ("/d/u0.wav",)


def test_the_wrapped_store_pickles_and_passes_the_store_through():
    wrapped = FrontEndFeatures(Store([logmel(0.1 * speech_like(0.5))]), SerFrontEndConfig(), FEATURES)
    again = pickle.loads(pickle.dumps(wrapped))
    assert again.paths == ("/d/u0.wav",) and len(again) == 1 and np.array_equal(again[0], wrapped[0])


def test_settings_are_checked():
    for kwargs, message in ((dict(trim_db=0.0), "trim_db must be positive or null"),
                            (dict(trim_margin_seconds=-0.1), "trim_margin_seconds must be >= 0"),
                            (dict(loudness_dbfs=3.0), "loudness_dbfs must be <= 0")):
        with pytest.raises(ConfigError, match=message):
            SerFrontEndConfig(**kwargs)
    db = FeatureConfig(log="db")
    with pytest.raises(ConfigError, match="needs features.log: log, got 'db'"):
        check_frontend_features(SerFrontEndConfig(), db)
    check_frontend_features(SerFrontEndConfig(trim_db=None, loudness_dbfs=None), db)
    with pytest.raises(ConfigError, match="needs features.log: log"):
        load_ser_config("ser_nnpm", ["features.log=db"])
    cfg = load_ser_config("ser_nnpm", ["dataset.frontend.trim_db=null", "dataset.frontend.loudness_dbfs=null"])
    assert not cfg.dataset.frontend.active and load_ser_config("ser_nnpm").dataset.frontend.active
