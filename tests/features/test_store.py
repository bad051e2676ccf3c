"""Feature-cache locations: the setting, the dataset folder, and the user cache for read-only corpora."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from audioadapt.features.store import CacheConfig, cache_base, resolve_path, user_cache_dir


def test_the_setting_wins_then_the_dataset_folder(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    assert cache_base(CacheConfig(directory=str(tmp_path / "mine")), root) == tmp_path / "mine"
    assert cache_base(CacheConfig(), root) == root / "cache"
    assert (root / "cache").is_dir()


def test_user_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "audioadapt" / "features"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_dir() == Path.home() / ".cache" / "audioadapt" / "features"


def _blocked_corpus(tmp_path):
    """A corpus folder where no cache folder can be created (a file holds the name)."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "cache").write_text("")
    return root


def test_unwritable_dataset_folder_falls_back_to_the_user_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = _blocked_corpus(tmp_path)
    with caplog.at_level(logging.INFO, logger="audioadapt.features.store"):
        base = cache_base(CacheConfig(), root)
    assert base.parent == tmp_path / "xdg" / "audioadapt" / "features" and base.name.startswith("corpus-")
    assert f"{root / 'cache'} cannot be written; the feature caches go to {base}" in caplog.text
    # every spelling of the corpus path names the same folder
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert cache_base(CacheConfig(), "corpus") == base == cache_base(CacheConfig(), "./link/")
    assert resolve_path("link/x.wav") == str(root / "x.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_corpus_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "corpus"
    root.mkdir()
    root.chmod(0o555)
    try:
        assert cache_base(CacheConfig(), root).parent == tmp_path / "xdg" / "audioadapt" / "features"
    finally:
        root.chmod(0o755)
