"""The synthetic speech-emotion dataset: layout, balance, determinism, emotion cues, domain gap."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioadapt.config.load import from_dict, load_preset_dict
from audioadapt.data.corpora import load_corpus
from audioadapt.data.synthetic.ser import (
    SER_SIZE_PRESETS,
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    LanguageConfig,
    SerSizeOverrides,
    SerSynthConfig,
    generate_ser_dataset,
    load_ser_config,
)
from audioadapt.data.utterances import EMOTIONS, label_counts, speaker_counts
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.logmel import LogMel

ROLES = ("source", "target")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ser_tiny")
    start = time.perf_counter()
    info = generate_ser_dataset(root, SerSynthConfig(size="tiny", seed=3), workers=1, progress=False)
    return root, info, time.perf_counter() - start


def _few(**changes) -> SerSynthConfig:
    """One speaker per domain, one utterance per emotion: 4 + 4 utterances."""
    base = dict(size="tiny", seed=5, sizes=SerSizeOverrides(1, 1, 1, 1))
    base.update(changes)
    return SerSynthConfig(**base)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(root: Path, domain: str) -> list[dict[str, str]]:
    with open(root / domain / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- measurements
def _frames(x: np.ndarray, win: int = 640, hop: int = 160) -> np.ndarray:
    n = 1 + (len(x) - win) // hop
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]


def _voiced_frames(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectra ``(frame, freq)`` and F0s of the clearly voiced frames, by windowed autocorrelation."""
    frames = _frames(x)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).mean(axis=1)
    window = np.hanning(frames.shape[1])
    spec = np.abs(np.fft.rfft(frames * window, 2 * frames.shape[1])) ** 2
    ac = np.fft.irfft(spec)[:, : frames.shape[1]]
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, 2 * frames.shape[1])) ** 2)[: frames.shape[1]]
    ac /= (ac[:, :1] + 1e-12) * (window_ac / window_ac[0])  # Boersma's correction for the window
    lo, hi = sr // 500, sr // 60
    lag = lo + ac[:, lo:hi].argmax(axis=1)
    voiced = (ac[np.arange(len(lag)), lag] > 0.5) & (energy > energy.max() * 10**-3)
    return spec[voiced], sr / lag[voiced]


def _median_f0_semitones(x: np.ndarray, sr: int) -> float:
    """Median F0 of the voiced frames, in semitones re 100 Hz."""
    return float(np.median(12 * np.log2(_voiced_frames(x, sr)[1] / 100.0)))


def _active_level_db(x: np.ndarray) -> float:
    """RMS level (dBFS) of the frames within 30 dB of the loudest."""
    db = 10 * np.log10((_frames(x) ** 2).mean(axis=1) + 1e-12)
    return float(10 * np.log10(np.mean(10 ** (db[db > db.max() - 30] / 10))))


def _voice_brightness_db(x: np.ndarray, sr: int) -> float:
    """Energy in 2-6 kHz over energy in 0.1-1 kHz, in the voiced frames."""
    spec = _voiced_frames(x, sr)[0].sum(axis=0)
    freqs = np.fft.rfftfreq(2 * 640, 1 / sr)
    high = spec[(freqs > 2000) & (freqs < 6000)].sum()
    low = spec[(freqs > 100) & (freqs < 1000)].sum()
    return float(10 * np.log10(high / low))


def _per_class(root: Path, domain: str, measure) -> dict[str, float]:
    values: dict[str, list[float]] = {e: [] for e in EMOTIONS}
    for row in _rows(root, domain):
        x, sr = sf.read(root / domain / row["path"])
        values[row["label"]].append(measure(x, sr))
    return {e: float(np.mean(v)) for e, v in values.items()}


# --------------------------------------------------------------------------- layout
def test_tiny_is_fast_and_has_the_preset_counts(tiny):
    root, info, seconds = tiny
    sizes = SER_SIZE_PRESETS["tiny"]
    assert info.utterances == {"source": sizes.source_speakers * sizes.source_per_class * len(EMOTIONS),
                               "target": sizes.target_speakers * sizes.target_per_class * len(EMOTIONS)}
    assert seconds < 30


def test_layout_is_read_by_the_csv_loader(tiny):
    root, info, _ = tiny
    seen_ids = set()
    for role in ROLES:
        utts = load_corpus("csv", info.manifests[role], check_audio=True)
        assert len(utts) == info.utterances[role]
        assert {u.corpus for u in utts} == {role}
        assert {u.extra["sample_rate"] for u in utts} == {16000} and {u.extra["channels"] for u in utts} == {1}
        assert {u.gender for u in utts} == {"female", "male"}
        seen_ids |= {u.utt_id for u in utts}
        for u in utts:
            duration = u.extra["frames"] / 16000
            assert 1.5 - 1e-3 <= duration <= 6.0 + 1e-3
            assert float(u.extra["seconds"]) == pytest.approx(duration, abs=1e-3)
    assert len(seen_ids) == sum(info.utterances.values())  # ids are unique across the two corpora


def test_classes_and_speakers_are_balanced(tiny):
    root, info, _ = tiny
    for role in ROLES:
        utts = load_corpus("csv", info.manifests[role])
        counts = label_counts(utts)
        assert set(counts.values()) == {info.utterances[role] // 4}
        speakers = speaker_counts(utts)
        assert len(speakers) == getattr(SER_SIZE_PRESETS["tiny"], f"{role}_speakers")
        for spk in speakers:
            assert set(label_counts(u for u in utts if u.speaker == spk).values()) == {2}


def test_dataset_json_records_settings_counts_and_speakers(tiny):
    root, info, _ = tiny
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["seed"] == 3 and meta["sample_rate"] == 16000 and meta["emotions"] == list(EMOTIONS)
    assert meta["config"]["size"] == "tiny"
    for role in ROLES:
        dom = meta["domains"][role]
        assert dom["utterances"] == info.utterances[role]
        assert dom["seconds"]["total"] == pytest.approx(info.seconds[role])
        assert len(dom["speakers"]) == len({r["speaker"] for r in _rows(root, role)})
        assert set(dom["cues"]) == set(EMOTIONS)
    assert meta["effective_target"]["recording"] == meta["config"]["target"]["recording"]


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path):
    generate_ser_dataset(tmp_path / "a", _few(), workers=1, progress=False)
    generate_ser_dataset(tmp_path / "b", _few(), workers=2, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and sum(k.endswith(".wav") for k in a) == 8
    generate_ser_dataset(tmp_path / "c", _few(seed=6), workers=1, progress=False)
    c = _files(tmp_path / "c")
    assert all(c[k] != a[k] for k in a if k.endswith(".wav"))


def test_each_utterance_has_its_own_random_stream(tmp_path):
    generate_ser_dataset(tmp_path / "one", _few(), workers=1, progress=False)
    generate_ser_dataset(tmp_path / "two", _few(sizes=SerSizeOverrides(2, 2, 1, 1)), workers=1, progress=False)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    # The first speaker's first take of each emotion does not depend on how many utterances follow.
    first = [k for k in one if k.startswith("source/audio/")]
    assert len(first) == 4 and all(one[k] == two[k] for k in first)
    target = [k for k in one if k.startswith("target/audio/")]
    assert all(one[k] == two[k] for k in target)


def test_refuses_to_overwrite_without_the_flag(tmp_path):
    generate_ser_dataset(tmp_path, _few(), workers=1, progress=False)
    with pytest.raises(DataError, match="already holds a dataset"):
        generate_ser_dataset(tmp_path, _few(), workers=1, progress=False)
    generate_ser_dataset(tmp_path, _few(seed=9), workers=1, progress=False, overwrite=True)
    assert json.loads((tmp_path / "dataset.json").read_text())["seed"] == 9


# --------------------------------------------------------------------------- emotion cues
def test_emotion_cues_are_measurable_in_the_audio(tiny):
    root, _, _ = tiny
    f0 = _per_class(root, "source", _median_f0_semitones)
    assert f0["happy"] > f0["neutral"] + 1.0 and f0["angry"] > f0["neutral"] + 0.5
    assert f0["sad"] < f0["neutral"] - 0.5
    level = _per_class(root, "source", lambda x, sr: _active_level_db(x))
    assert level["angry"] > level["happy"] > level["neutral"] > level["sad"]
    assert level["angry"] - level["sad"] > 6
    bright = _per_class(root, "source", _voice_brightness_db)
    assert bright["angry"] > bright["neutral"] > bright["sad"]


def test_sad_is_slow_and_the_arousing_emotions_fast(tiny):
    root, _, _ = tiny
    cues = json.loads((root / "dataset.json").read_text())["domains"]["source"]["cues"]
    rate = {e: cues[e]["syllable_rate"] for e in EMOTIONS}
    assert rate["angry"] > rate["neutral"] > rate["sad"] and rate["happy"] > rate["sad"]


# --------------------------------------------------------------------------- domain gap
def _utterance_vectors(root: Path, domain: str) -> np.ndarray:
    data = load_preset_dict("ser_features")
    logmel = LogMel(from_dict(FeatureConfig, data["features"]))
    out = []
    for row in _rows(root, domain):
        x, _ = sf.read(root / domain / row["path"], dtype="float32")
        f = logmel(torch.from_numpy(x)).numpy()
        f = (f - f.mean()) / f.std()
        out.append(np.concatenate([f.mean(axis=0), f.std(axis=0)]))
    return np.asarray(out)


def test_domains_differ_measurably(tiny):
    root, _, _ = tiny
    src, tgt = _utterance_vectors(root, "source"), _utterance_vectors(root, "target")
    x = np.concatenate([src, tgt])
    y = np.r_[np.zeros(len(src)), np.ones(len(tgt))]
    correct = 0
    for i in range(len(x)):  # leave-one-out nearest domain centroid
        keep = np.arange(len(x)) != i
        centroids = [x[keep & (y == d)].mean(axis=0) for d in (0, 1)]
        correct += int(np.argmin([np.linalg.norm(x[i] - c) for c in centroids]) == y[i])
    assert correct / len(x) > 0.9
    meta = json.loads((root / "dataset.json").read_text())["domains"]
    rates = [np.mean([meta[r]["cues"][e]["syllable_rate"] for e in EMOTIONS]) for r in ROLES]
    assert rates[1] > rates[0] * 1.1  # the target language is spoken faster


def test_gap_zero_makes_the_target_a_copy_of_the_source_domain():
    cfg = SerSynthConfig(gap=0.0)
    target = cfg.effective_target()
    assert target.name == "target"
    assert target.language == cfg.source.language and target.recording == cfg.source.recording
    assert SerSynthConfig().effective_target() == TARGET_DOMAIN
    half = SerSynthConfig(gap=0.5).effective_target()
    assert SOURCE_DOMAIN.language.vowel_seconds > half.language.vowel_seconds > TARGET_DOMAIN.language.vowel_seconds


# --------------------------------------------------------------------------- configuration
def test_yaml_changes_only_what_it_names(tmp_path):
    path = tmp_path / "ser.yaml"
    path.write_text("seed: 4\ntarget:\n  recording:\n    snr_db: [0, 10]\nsizes:\n  source_speakers: 2\n")
    cfg = load_ser_config(path, ["emotions.sad.tempo=0.6"])
    assert cfg.seed == 4 and cfg.target.recording.snr_db == (0.0, 10.0)
    assert cfg.target.recording.channel == TARGET_DOMAIN.recording.channel
    assert cfg.target.language == TARGET_DOMAIN.language
    assert cfg.emotions.sad.tempo == 0.6 and cfg.emotions.angry == SerSynthConfig().emotions.angry
    assert cfg.split_sizes().source_speakers == 2
    assert cfg.split_sizes().target_speakers == SER_SIZE_PRESETS[cfg.size].target_speakers


@pytest.mark.parametrize(
    "changes, message",
    [
        (["size=huge"], "size 'huge'"),
        (["source.language.consonants=[q]"], "consonants"),
        (["duration_range=[6, 1.5]"], "duration_range"),
        (["target.name=source"], "different names"),
        (["emotions.happy.tempo=0"], "tempo"),
        (["sizes.target_per_class=0"], "target_per_class"),
        (["target.langage.stress=final"], "unknown config key"),
    ],
)
def test_bad_settings_are_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        load_ser_config(None, changes).split_sizes()


def test_language_checks_its_vowels():
    with pytest.raises(ConfigError, match="vowels"):
        LanguageConfig(vowels=((500.0, 1500.0),), consonants=("t",))
    lang = dataclasses.replace(SOURCE_DOMAIN.language, stress="final")
    assert lang.stress == "final"
