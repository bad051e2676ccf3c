"""SER datasets: the feature preset, crops, padding, labels, domains, indices and the cache pipeline."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from audioadapt.config.load import from_dict, load_preset_dict
from audioadapt.data.labels import UNKNOWN
from audioadapt.data.ser_dataset import (
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    SerBatch,
    SerDataset,
    SerDatasetConfig,
    cache_utterances,
    collate_ser,
)
from audioadapt.data.ser_frontend import SerFrontEndConfig
from audioadapt.data.utterances import EMOTIONS, Utterance
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.normalization import Normalizer, NormalizerConfig

N_MEL = 5
#: The crop and padding tests locate frames by their values: no trimming or loudness change.
OFF = SerFrontEndConfig(trim_db=None, loudness_dbfs=None)
RAW = SerDatasetConfig(frontend=OFF)


def _preset() -> tuple[FeatureConfig, NormalizerConfig]:
    data = load_preset_dict("ser_features")
    assert set(data) == {"features", "normalizer"}
    return from_dict(FeatureConfig, data["features"]), from_dict(NormalizerConfig, data["normalizer"])


FEATURES, NORMALIZER = _preset()


def _utterances(labels: list[str | None], root: Path = Path("/data")) -> list[Utterance]:
    return [Utterance(root / f"u{i}.wav", lab, "spk1", "demo", f"u{i}") for i, lab in enumerate(labels)]


def _ramp(frames: int, offset: float = 0.0) -> np.ndarray:
    """Features whose first column is the frame number (so crops can be located)."""
    x = np.zeros((frames, N_MEL), dtype=np.float32)
    x[:, 0] = np.arange(frames) + offset
    x[:, 1:] = offset
    return x


# --------------------------------------------------------------------------- preset
def test_preset_holds_the_paper_front_end():
    f = FEATURES
    assert (f.sample_rate, f.win_length, f.n_fft, f.hop_length, f.n_mels) == (16000, 400, 512, 160, 80)
    assert f.window == "hann" and f.log == "log" and f.log_offset == pytest.approx(1e-6)
    assert f.clip_seconds is None and f.mel_scale == "htk"
    assert NORMALIZER.kind == "instance_meanstd"


def test_crop_is_751_frames_with_the_preset():
    ds = SerDataset(_utterances(["angry"]), [_ramp(900)], FEATURES)
    assert ds.crop_frames == 751
    grid = FrameGrid.from_features(FEATURES)
    assert ds.crop_frames == grid.num_input_frames(120000)


# --------------------------------------------------------------------------- crops and padding
def test_evaluation_crops_the_start_and_keeps_short_items():
    feats = [_ramp(900), _ramp(300, offset=7.0)]
    ds = SerDataset(_utterances(["angry", "sad"]), feats, FEATURES, RAW)
    long, short = ds[0], ds[1]
    assert long.features.shape == (751, N_MEL) and long.features[0, 0] == 0 and long.features[-1, 0] == 750
    assert torch.equal(short.features, torch.from_numpy(feats[1]))
    batch = ds.collate([long, short])
    assert isinstance(batch, SerBatch) and batch.features.shape == (2, 751, N_MEL)
    assert batch.lengths.tolist() == [751, 300]
    mask = batch.frame_mask()
    assert mask[1, :300].all() and not mask[1, 300:].any() and mask[0].all()
    assert (batch.features[1, 300:] == 0).all() and (batch.features[1, :300, 1] == 7.0).all()


def test_training_crops_are_random_contiguous_and_seeded():
    ds = SerDataset(_utterances(["happy"]), [_ramp(2000)], FEATURES, RAW, train=True)
    torch.manual_seed(0)
    starts = [int(ds[0].features[0, 0]) for _ in range(20)]
    for _ in range(3):
        x = ds[0].features[:, 0]
        assert x.shape == (751,) and torch.equal(x, x[0] + torch.arange(751, dtype=torch.float32))
    assert len(set(starts)) > 5 and min(starts) >= 0 and max(starts) <= 2000 - 751
    torch.manual_seed(0)
    assert [int(ds[0].features[0, 0]) for _ in range(20)] == starts
    gen = torch.Generator().manual_seed(1)
    seeded = SerDataset(_utterances(["happy"]), [_ramp(2000)], FEATURES, RAW, train=True, generator=gen)
    assert len({int(seeded[0].features[0, 0]) for _ in range(10)}) > 1


def test_pad_to_longest_and_whole_utterances():
    cfg = SerDatasetConfig(crop_seconds=None, pad_to_crop=False, frontend=OFF)
    ds = SerDataset(_utterances(["angry", "sad"]), [_ramp(900), _ramp(40)], FEATURES, cfg)
    assert ds.crop_frames is None and ds[0].features.shape[0] == 900
    batch = ds.collate([ds[1], ds[0]])
    assert batch.features.shape == (2, 900, N_MEL) and batch.lengths.tolist() == [40, 900]
    short = SerDataset(_utterances(["sad"]), [_ramp(40)], FEATURES, SerDatasetConfig(pad_to_crop=False, frontend=OFF))
    assert short.collate([short[0]]).features.shape == (1, 40, N_MEL)


def test_collate_rejects_rows_longer_than_the_crop_and_mixed_mels():
    ds = SerDataset(_utterances(["angry"]), [_ramp(30)], FEATURES)
    item = ds[0]
    with pytest.raises(ValueError, match="more than num_frames"):
        collate_ser([item], num_frames=10)
    other = type(item)(torch.zeros(5, N_MEL + 1), 0, 0, 1)
    with pytest.raises(ValueError, match="expected"):
        collate_ser([item, other])
    with pytest.raises(ValueError, match="empty"):
        collate_ser([])


# --------------------------------------------------------------------------- labels, domains, indices
def test_labels_domain_and_index():
    labels = ["sad", None, "angry", "neutral"]
    feats = [_ramp(10 + i) for i in range(4)]
    source = SerDataset(_utterances(labels), feats, FEATURES, domain=SOURCE_DOMAIN)
    items = [source[i] for i in range(4)]
    assert [it.label for it in items] == [EMOTIONS.index("sad"), UNKNOWN, EMOTIONS.index("angry"),
                                         EMOTIONS.index("neutral")]
    assert [it.index for it in items] == [0, 1, 2, 3] and {it.domain for it in items} == {SOURCE_DOMAIN}
    target = SerDataset(_utterances(labels), feats, FEATURES, domain=TARGET_DOMAIN, use_labels=False)
    batch = target.collate([target[i] for i in (3, 0)])
    assert batch.label.tolist() == [UNKNOWN, UNKNOWN] and batch.index.tolist() == [3, 0]
    assert batch.domain.tolist() == [TARGET_DOMAIN] * 2 and not batch.labelled().any()
    # The records' labels stay available (memory-bank slot labels, evaluation).
    assert target.labels.tolist() == source.labels.tolist() == [2, UNKNOWN, 0, 3]
    assert target.class_counts() == {"angry": 1, "happy": 0, "sad": 1, "neutral": 1}


def test_data_loader_batches_and_pickled_collate():
    labels = [EMOTIONS[i % 4] for i in range(10)]
    ds = SerDataset(_utterances(labels), [_ramp(20 + 7 * i) for i in range(10)], FEATURES,
                    SerDatasetConfig(pad_to_crop=False, frontend=OFF))
    loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=ds.collate)
    batches = list(loader)
    assert [b.size for b in batches] == [4, 4, 2]
    assert batches[1].index.tolist() == [4, 5, 6, 7] and batches[1].features.shape[1] == 20 + 7 * 7
    assert batches[1].label.tolist() == [0, 1, 2, 3]
    restored = pickle.loads(pickle.dumps(ds.collate))
    assert restored([ds[0]]).features.shape == (1, 20, N_MEL)
    moved = batches[0].to("cpu")
    assert torch.equal(moved.features, batches[0].features)


def test_batch_checks_its_shapes():
    with pytest.raises(ValueError, match="lengths"):
        SerBatch(torch.zeros(2, 3, 4), torch.zeros(3, dtype=torch.long), torch.zeros(2), torch.zeros(2),
                 torch.zeros(2))


# --------------------------------------------------------------------------- bad input
def test_misaligned_or_short_stores_are_errors():
    class Store(list):
        paths = ("/data/u1.wav", "/data/u0.wav")
        feature_config = FEATURES

    with pytest.raises(DataError, match="item 0"):
        SerDataset(_utterances(["angry", "sad"]), Store([_ramp(5), _ramp(5)]))
    with pytest.raises(DataError, match="2 utterances"):
        SerDataset(_utterances(["angry", "sad"]), [_ramp(5)], FEATURES)
    with pytest.raises(ConfigError, match="features_config"):
        SerDataset(_utterances(["angry"]), [_ramp(5)])
    with pytest.raises(DataError, match="expected \\(frame, mel\\)"):
        SerDataset(_utterances(["angry"]), [np.zeros(5)], FEATURES)[0]
    with pytest.raises(IndexError):
        SerDataset(_utterances(["angry"]), [_ramp(5)], FEATURES)[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(crop_seconds=0.0), "crop_seconds"),
        (dict(crop_seconds=None), "pad_to_crop"),
        (dict(train_crop="end"), "train_crop"),
    ],
)
def test_config_is_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SerDatasetConfig(**kwargs)


# --------------------------------------------------------------------------- cache pipeline
def test_cache_utterances_skips_bad_files_and_stays_aligned(tmp_path):
    rng = np.random.default_rng(0)
    seconds = [1.0, 0.25, 8.0]
    utts = []
    for i, s in enumerate(seconds):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32), 16000)
        utts.append(Utterance(path, EMOTIONS[i], "s", "demo", f"u{i}"))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    utts.insert(1, Utterance(broken, "happy", "s", "demo", "broken"))
    kept, cache = cache_utterances(utts, FEATURES, tmp_path / "cache", num_workers=0, progress=False,
                                   on_error="skip")
    assert [u.utt_id for u in kept] == ["u0", "u1", "u2"] and len(cache) == 3
    grid = FrameGrid.from_features(FEATURES)
    assert [cache.num_frames(i) for i in range(3)] == [grid.num_input_frames(int(s * 16000)) for s in seconds]
    ds = SerDataset(kept, cache, train=False)  # the feature settings come from the cache
    batch = ds.collate([ds[i] for i in range(3)])
    assert batch.features.shape == (3, 751, 80) and batch.lengths.tolist() == [101, 26, 751]
    # Per-utterance normalisation from the preset uses only the valid frames.
    out = Normalizer(NORMALIZER, 80)(batch.features, batch.lengths)
    valid = out[1, :26]
    assert abs(float(valid.mean())) < 1e-4 and float(valid.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert (out[1, 26:] == 0).all()
    with pytest.raises(DataError):
        SerDataset(utts, cache)
    with pytest.raises(DataError, match="broken.wav"):
        cache_utterances(utts, FEATURES, tmp_path / "cache2", num_workers=0, progress=False)
