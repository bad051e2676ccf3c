"""SER inference on audio files: very short and empty files, windows, the front end, older checkpoints."""

from __future__ import annotations

from pathlib import Path

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from audioadapt.api.ser import checkpoint_meta
from audioadapt.audio.io import write_audio
from audioadapt.config.ser import load_ser_config
from audioadapt.data.ser_frontend import NO_FRONTEND, frontend_with_offset
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


def test_windows_cover_the_input_with_whole_crops():
    from audioadapt.training.ser_predict import window_starts

    assert window_starts(80, 101, 100) == [0]  # no longer than a crop: one window, as in evaluation
    assert window_starts(101, 101, 100) == [0]
    assert window_starts(351, 101, 100) == [0, 100, 200, 250]  # the last one ends at the last frame
    assert window_starts(301, 101, 100) == [0, 100, 200]
    assert window_starts(351, 101, 50)[:3] == [0, 50, 100]
    assert window_starts(10_000, None, 100) == [0]  # whole utterances
    with pytest.raises(ValueError, match="hop_frames must be >= 1"):
        window_starts(351, 101, 0)


def _model(checkpoint):
    from audioadapt.config.load import from_dict
    from audioadapt.data.ser_dataset import SerDatasetConfig
    from audioadapt.features.config import FeatureConfig
    from audioadapt.training.ser_predict import load_ser_model

    ckpt, _ = checkpoint
    model, normalizer = load_ser_model(ckpt)
    meta = ckpt["meta"]
    return model, normalizer, from_dict(FeatureConfig, meta["feature_config"]), \
        from_dict(SerDatasetConfig, meta["dataset_config"])


def test_a_long_input_is_the_mean_of_its_windows(checkpoint):
    from audioadapt.training.ser_predict import predict_features

    model, normalizer, fcfg, dcfg = _model(checkpoint)
    dcfg = dataclasses.replace(dcfg, frontend=NO_FRONTEND)  # the windows alone (the front end: the next test)
    rng = np.random.default_rng(1)
    # 351 frames (3.5 s): the model's 1 s crop fits 4 windows; each window's frames differ in spread and spectrum
    long = np.concatenate([rng.normal(size=(100, 32)) * (1 + k) + rng.normal(scale=3, size=32)
                           for k in range(4)])[:351].astype(np.float32)
    whole = predict_features(model, normalizer, [long], fcfg, dcfg, batch_size=3)
    w = whole.windows
    assert w.file.tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(w.start, [0.0, 1.0, 2.0, 2.5])
    np.testing.assert_allclose(w.end, [1.0, 2.0, 3.0, 3.5])
    np.testing.assert_allclose(whole.durations, [3.5])
    np.testing.assert_allclose(whole.probabilities[0], w.probabilities.mean(axis=0), rtol=1e-6)
    assert whole.labels[0] == whole.probabilities[0].argmax()
    # each window is scored as that stretch on its own would be
    for k, start in enumerate((0, 100, 200, 250)):
        alone = predict_features(model, normalizer, [long[start: start + 101]], fcfg, dcfg, batch_size=1)
        np.testing.assert_allclose(w.probabilities[k], alone.probabilities[0], atol=1e-6)
    # the later windows count: the mean is not the first window's prediction
    assert not np.allclose(whole.probabilities[0], w.probabilities[0], atol=1e-4)
    # a hop of half a crop: windows every 0.5 s
    half = predict_features(model, normalizer, [long], fcfg, dcfg, batch_size=8, hop_seconds=0.5)
    np.testing.assert_allclose(half.windows.start, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5])


def _speech_with_silences(rate: int) -> np.ndarray:
    """1.5 s of digital silence, 3 s of noise whose level changes every second, 0.5 s of silence."""
    rng = np.random.default_rng(4)
    loud = np.concatenate([rng.normal(size=rate) * level for level in (0.3, 0.01, 0.1)])
    return np.concatenate([np.zeros(3 * rate // 2), loud, np.zeros(rate // 2)]).astype(np.float32)


def test_the_front_end_acts_once_on_the_whole_input_before_its_windows(checkpoint):
    from audioadapt.data.ser_dataset import SerDataset
    from audioadapt.data.utterances import Utterance
    from audioadapt.features.logmel import LogMel
    from audioadapt.training.ser_predict import predict_dataset, predict_features, signal_features

    model, normalizer, fcfg, dcfg = _model(checkpoint)
    assert dcfg.frontend.active  # the preset's defaults: trimming and loudness
    x = signal_features(LogMel(fcfg), _speech_with_silences(fcfg.sample_rate), 1, "speech")
    whole = predict_features(model, normalizer, [x], fcfg, dcfg, batch_size=4)
    shaped, offset = frontend_with_offset(x, dcfg.frontend, fcfg)
    assert 130 <= offset <= 150 and len(shaped) < len(x) - 150  # 1.5 s of leading silence, 0.1 s of it kept
    # windows of the front-ended whole input, on the input's time axis: the trimmed frames are added back
    w = whole.windows
    starts = [0, 100, 200, len(shaped) - 101]
    np.testing.assert_allclose(w.start, (offset + np.asarray(starts)) * 0.01, atol=1e-9)
    np.testing.assert_allclose(w.end[-1], (offset + len(shaped) - 1) * 0.01, atol=1e-9)
    np.testing.assert_allclose(whole.durations, [(len(x) - 1) * 0.01])
    off = dataclasses.replace(dcfg, frontend=NO_FRONTEND)
    per_window = []
    for k, start in enumerate(starts):
        alone = predict_features(model, normalizer, [shaped[start: start + 101]], fcfg, off, batch_size=1)
        np.testing.assert_allclose(w.probabilities[k], alone.probabilities[0], atol=1e-6)
        cut = x[offset + start: offset + start + 101]
        per_window.append(predict_features(model, normalizer, [cut], fcfg, dcfg, batch_size=1).probabilities[0])
    # not the front end of each window on its own (its loudness gain would follow that window's level)
    assert not np.allclose(w.probabilities, np.stack(per_window), atol=1e-5)
    # the first window is what evaluation scores of this utterance (front end on the whole, then the start crop)
    utt = Utterance(Path("speech.wav"), None, None, "t", "speech")
    ref = predict_dataset(model, normalizer, SerDataset([utt], [x], fcfg, dcfg, use_labels=False), 1)
    np.testing.assert_allclose(w.probabilities[0], ref.probabilities[0], atol=1e-6)


def _without_frontend_key(ckpt: dict) -> dict:
    """``ckpt`` as a run saved before ``dataset.frontend`` existed wrote it."""
    meta = dict(ckpt["meta"])
    meta["dataset_config"] = {k: v for k, v in meta["dataset_config"].items() if k != "frontend"}
    experiment = dict(meta["experiment_config"])
    experiment["dataset"] = {k: v for k, v in experiment["dataset"].items() if k != "frontend"}
    meta["experiment_config"] = experiment
    return {**ckpt, "meta": meta}


def test_a_checkpoint_saved_before_the_front_end_existed_predicts_without_it(checkpoint, tmp_path):
    import audioadapt
    from audioadapt.api.ser import load_ser_run, predict_ser
    from audioadapt.config.load import to_dict
    from audioadapt.training.checkpoint import save_checkpoint

    ckpt, rate = checkpoint
    old = _without_frontend_key(ckpt)
    no_frontend = {**ckpt, "meta": {**ckpt["meta"], "dataset_config": {**ckpt["meta"]["dataset_config"],
                                                                        "frontend": to_dict(NO_FRONTEND)}}}
    speech = write_audio(tmp_path / "speech.wav", _speech_with_silences(rate), rate)
    got = predict_files(old, [speech])
    np.testing.assert_allclose(got.probabilities, predict_files(no_frontend, [speech]).probabilities, atol=1e-6)
    assert got.windows.start[0] == 0.0  # nothing trimmed
    assert not np.allclose(got.probabilities, predict_files(ckpt, [speech]).probabilities, atol=1e-5)
    # loading the run: its configuration, the command's rows and the Python API say the same
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(old, run / "last.pt")
    _, cfg, _ = load_ser_run(run)
    assert cfg.dataset.frontend == NO_FRONTEND and cfg.dataset.crop_seconds == 1.0
    (row,) = predict_ser(run, [speech])
    np.testing.assert_allclose([row[c] for c in EMOTIONS], got.probabilities[0], atol=1e-6)
    system = audioadapt.load(run, device="cpu")
    assert system.config.dataset.frontend == NO_FRONTEND
    probs = system.predict(speech).probabilities
    np.testing.assert_allclose([probs[c] for c in EMOTIONS], got.probabilities[0], atol=1e-6)
    # a run that saved its front end keeps it
    save_checkpoint(ckpt, run / "last.pt")
    assert load_ser_run(run)[1].dataset.frontend.active


def test_an_input_shorter_than_a_crop_is_predicted_as_the_test_side_is(checkpoint):
    from audioadapt.data.ser_dataset import SerDataset
    from audioadapt.data.utterances import Utterance
    from audioadapt.training.ser_predict import predict_dataset, predict_features

    model, normalizer, fcfg, dcfg = _model(checkpoint)
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(n, 32)).astype(np.float32) for n in (40, 101)]
    utts = [Utterance(Path(f"u{i}.wav"), None, None, "t", f"u{i}") for i in range(2)]
    ref = predict_dataset(model, normalizer, SerDataset(utts, feats, fcfg, dcfg, use_labels=False), 2)
    got = predict_features(model, normalizer, feats, fcfg, dcfg, batch_size=2)
    assert got.windows.file.tolist() == [0, 1]
    np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=1e-6)


def test_files_are_scored_whole_and_rows_list_the_windows(checkpoint, tmp_path):
    from audioadapt.api.ser import prediction_rows

    ckpt, rate = checkpoint
    rng = np.random.default_rng(3)
    long = write_audio(tmp_path / "long.wav", (rng.normal(size=int(2.5 * rate)) * 0.1).astype(np.float32), rate)
    short = write_audio(tmp_path / "short.wav", (rng.normal(size=rate // 2) * 0.1).astype(np.float32), rate)
    pred = predict_files(ckpt, [long, short])
    rows = prediction_rows(["long", "short"], pred, EMOTIONS)
    assert [(r["path"], r["windows"]) for r in rows] == [("long", 3), ("short", 1)]
    assert rows[0]["label"] == EMOTIONS[int(np.argmax([rows[0][c] for c in EMOTIONS]))]
    detailed = prediction_rows(["long", "short"], pred, EMOTIONS, windows=True)
    assert [(r["path"], r["window"], r["start"], r["end"]) for r in detailed] == [
        ("long", "mean", 0.0, 2.5), ("long", 0, 0.0, 1.0), ("long", 1, 1.0, 2.0), ("long", 2, 1.5, 2.5),
        ("short", "mean", 0.0, 0.5), ("short", 0, 0.0, 0.5)]
    mean = np.mean([[r[c] for c in EMOTIONS] for r in detailed[1:4]], axis=0)
    np.testing.assert_allclose([detailed[0][c] for c in EMOTIONS], mean, rtol=1e-5)
