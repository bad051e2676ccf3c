"""Feature cache: contents, ragged items, keying and reuse, atomic builds, skipping bad files."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from audioadapt.audio import load_audio
from audioadapt.errors import AudioError, DataError
from audioadapt.features import cache as cache_module
from audioadapt.features.cache import FeatureCache, cache_key
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.logmel import LogMel

CFG = FeatureConfig(sample_rate=8000, clip_seconds=0.5, n_fft=256, win_length=256, hop_length=80, n_mels=20)
RAGGED = FeatureConfig(
    sample_rate=8000, clip_seconds=None, n_fft=256, win_length=256, hop_length=80, n_mels=20
)


def _write(path, seconds, rate=16000, seed=0, freq=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = 0.1 * rng.standard_normal(n)
    if freq is not None:
        x += 0.3 * np.sin(2 * np.pi * freq * np.arange(n) / rate)
    sf.write(path, x.astype(np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    lengths = [0.3, 0.5, 0.8, 0.5]  # shorter, equal and longer than the clip length
    return [_write(folder / f"c{i}.wav", s, seed=i, freq=300 * (i + 1)) for i, s in enumerate(lengths)]


def _expected(path, cfg):
    grid = FrameGrid.from_features(cfg)
    n = None if cfg.clip_seconds is None else grid.seconds_to_samples(cfg.clip_seconds)
    y = load_audio(path, cfg.sample_rate, num_samples=n)
    return LogMel(cfg)(torch.from_numpy(y)).numpy()


def test_fixed_length_build(clips, tmp_path):
    cache = FeatureCache.build(clips, CFG, tmp_path / "train", num_workers=0, progress=False, batch_size=3)
    assert len(cache) == 4 and cache.paths == tuple(map(str, clips))
    frames = FrameGrid.from_features(CFG).num_input_frames(4000)
    assert all(cache.num_frames(i) == frames for i in range(4))
    for i, path in enumerate(clips):
        np.testing.assert_allclose(cache[i], _expected(path, CFG), rtol=0, atol=1e-4)
    assert cache.as_array().shape == (4, frames, 20)
    np.testing.assert_array_equal(cache[-1], cache[3])
    assert isinstance(cache[0], np.memmap) and not cache[0].flags.writeable
    assert cache.feature_config == CFG
    with pytest.raises(IndexError):
        cache[4]


def test_ragged_build(clips, tmp_path):
    cache = FeatureCache.build(clips, RAGGED, tmp_path / "ragged", num_workers=0, progress=False, batch_size=4)
    grid = FrameGrid.from_features(RAGGED)
    expected = [grid.num_input_frames(int(s * 8000)) for s in (0.3, 0.5, 0.8, 0.5)]
    assert list(cache.frame_counts) == expected
    assert list(cache.offsets) == [0, *np.cumsum(expected)]
    assert cache.data.shape == (sum(expected), 20)
    for i, path in enumerate(clips):
        np.testing.assert_allclose(cache[i], _expected(path, RAGGED), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="differ in length"):
        cache.as_array()


def test_process_pool_gives_the_same_cache(clips, tmp_path, capsys):
    serial = FeatureCache.build(clips, RAGGED, tmp_path / "a", num_workers=0, progress=False)
    pooled = FeatureCache.build(clips, RAGGED, tmp_path / "b", num_workers=2, progress=True, batch_size=2)
    assert "log-mel b" in capsys.readouterr().err
    np.testing.assert_array_equal(pooled.offsets, serial.offsets)
    np.testing.assert_array_equal(np.asarray(pooled.data), np.asarray(serial.data))


def _forbid_rebuild(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("cache was rebuilt")

    monkeypatch.setattr(cache_module, "_write", fail)


def test_reused_when_nothing_changed(clips, tmp_path, monkeypatch):
    first = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    _forbid_rebuild(monkeypatch)
    again = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert again.key == first.key
    np.testing.assert_array_equal(again[2], first[2])


def test_rebuilt_when_config_changes(clips, tmp_path):
    first = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    cfg2 = FeatureConfig(**{**CFG.__dict__, "n_mels": 12})
    second = FeatureCache.build(clips, cfg2, tmp_path / "c", num_workers=0, progress=False)
    assert second.key != first.key and second[0].shape[1] == 12
    assert FeatureCache.open(tmp_path / "c").n_mels == 12


def test_rebuilt_when_a_file_changes(clips, tmp_path):
    first = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    old0 = np.array(first[0])
    _write(clips[0], 0.3, seed=99, freq=2500)
    st = os.stat(clips[0])
    os.utime(clips[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse mtime clocks
    with pytest.raises(DataError, match="stale"):
        FeatureCache.open(tmp_path / "c", CFG, clips)
    second = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert second.key != first.key
    assert np.abs(np.asarray(second[0]) - old0).max() > 1.0
    np.testing.assert_allclose(second[0], _expected(clips[0], CFG), atol=1e-4)


def test_rebuilt_when_the_file_list_changes(clips, tmp_path):
    first = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    reordered = clips[::-1]
    assert cache_key(reordered, CFG) != first.key
    second = FeatureCache.build(reordered, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert second.paths == tuple(map(str, reordered))
    np.testing.assert_array_equal(second[0], _expected(clips[-1], CFG).astype(np.float32))
    # Only the current cache is left in the parent folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "c"]


def test_open_checks(clips, tmp_path):
    with pytest.raises(DataError, match="no complete feature cache"):
        FeatureCache.open(tmp_path / "missing")
    FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert len(FeatureCache.open(tmp_path / "c", CFG, clips)) == 4
    with pytest.raises(DataError, match="stale"):
        FeatureCache.open(tmp_path / "c", CFG, clips[:3])


def test_damaged_cache_is_not_valid(clips, tmp_path):
    cache = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    data_file = cache.directory / "features.f32"
    with open(data_file, "r+b") as fh:
        fh.truncate(data_file.stat().st_size - 4)
    with pytest.raises(DataError, match="no complete feature cache"):
        FeatureCache.open(tmp_path / "c")
    rebuilt = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert rebuilt.data.size == 4 * rebuilt.num_frames(0) * 20


def test_killed_build_leaves_no_valid_cache(clips, tmp_path):
    """A build killed just before publishing leaves only a hidden temporary folder."""
    script = textwrap.dedent(
        f"""
        import os
        from audioadapt.features import cache as m
        from audioadapt.features.config import FeatureConfig
        m._publish = lambda *a, **k: os._exit(3)
        cfg = FeatureConfig(**{CFG.__dict__!r})
        m.FeatureCache.build({list(map(str, clips))!r}, cfg, {str(tmp_path / "c")!r}, num_workers=0, progress=False)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.build-")]
    assert len(leftovers) == 1
    assert not (tmp_path / "c").exists()
    with pytest.raises(DataError):
        FeatureCache.open(tmp_path / "c")
    # The next build cleans up after the dead one.
    FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "c"]


def test_failed_build_keeps_previous_cache(clips, tmp_path):
    FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        FeatureCache.build([*clips, bad], CFG, tmp_path / "c", num_workers=0, progress=False)
    assert len(FeatureCache.open(tmp_path / "c", CFG, clips)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "c"]


def test_skip_bad_files(clips, tmp_path, caplog):
    folder = tmp_path / "audio"
    text = folder / "text.wav"
    text.write_text("hello")
    empty = folder / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 8000)
    tiny = _write(folder / "tiny.wav", 0.005, rate=8000)
    missing = folder / "missing.wav"
    paths = [clips[0], text, clips[1], empty, missing, tiny, clips[2]]
    with caplog.at_level(logging.WARNING):
        cache = FeatureCache.build(paths, RAGGED, tmp_path / "s", num_workers=0, progress=False, on_error="skip")
    assert cache.paths == tuple(map(str, clips[:3]))
    skipped = {path: reason for path, _, reason in cache.skipped.skipped}
    assert set(skipped) == {str(text), str(empty), str(missing), str(tiny)}
    assert "no samples" in skipped[str(empty)] and "not found" in skipped[str(missing)]
    assert "too short" in skipped[str(tiny)]
    assert "skipped 4" in caplog.text
    np.testing.assert_allclose(cache[1], _expected(clips[1], RAGGED), atol=1e-4)
    # Reopened with the same request it is reused; a strict request rebuilds and fails.
    assert FeatureCache.build(paths, RAGGED, tmp_path / "s", num_workers=0, progress=False, on_error="skip").paths == cache.paths
    with pytest.raises(AudioError, match="text.wav"):
        FeatureCache.build(paths, RAGGED, tmp_path / "s", num_workers=0, progress=False)


def test_all_files_bad(tmp_path):
    with pytest.raises(DataError, match="none of the 1"):
        FeatureCache.build([tmp_path / "nope.wav"], CFG, tmp_path / "c", num_workers=0, progress=False, on_error="skip")
    assert list(tmp_path.iterdir()) == []


def test_pickles_without_the_frames(clips, tmp_path):
    cache = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    _ = cache[0]
    blob = pickle.dumps(cache)
    assert len(blob) < 10_000
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone[2], cache[2])


def test_any_spelling_of_the_paths_finds_the_same_items(clips, tmp_path, monkeypatch):
    """Absolute, relative, ``./..`` and symbolic-link spellings share one cache and find every item."""
    first = FeatureCache.build(clips, CFG, tmp_path / "c", num_workers=0, progress=False)
    assert first.paths == tuple(os.path.realpath(p) for p in clips)
    (tmp_path / "link").symlink_to(tmp_path / "audio", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    _forbid_rebuild(monkeypatch)
    spellings = [[f"audio/{p.name}" for p in clips], [f"./audio/../audio/{p.name}" for p in clips],
                 [tmp_path / "link" / p.name for p in clips]]
    for paths in spellings:
        again = FeatureCache.build(paths, CFG, "c", num_workers=0, progress=False)
        assert again.key == first.key
        assert again.positions(paths) == [0, 1, 2, 3]
        assert FeatureCache.open("c", CFG, paths).positions(reversed(paths)) == [3, 2, 1, 0]
    assert first.positions(["audio/nothere.wav"]) == [None]


def test_skipped_files_are_not_found_by_any_spelling(clips, tmp_path, monkeypatch):
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_text("not audio")
    cache = FeatureCache.build([*clips, bad], CFG, tmp_path / "c", num_workers=0, progress=False, on_error="skip")
    monkeypatch.chdir(tmp_path)
    assert cache.positions(["audio/c1.wav", "audio/bad.wav"]) == [1, None]
    assert [path for path, _, _ in cache.skipped.skipped] == [os.path.realpath(bad)]


def test_an_unwritable_cache_folder_is_a_clean_error(clips, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"file/c: cannot write the feature cache .*set cache.directory"):
        FeatureCache.build(clips, CFG, tmp_path / "file" / "c", num_workers=0, progress=False)
