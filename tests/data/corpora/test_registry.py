"""The corpus registry and its entry point."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from audioadapt.data.corpora import CORPORA, load_corpus
from audioadapt.errors import ConfigError


def test_every_loader_has_the_common_signature() -> None:
    assert set(CORPORA) == {"iemocap", "emodb", "shemo", "urdu", "ekorpus", "ravdess", "csv"}
    for name, loader in CORPORA.items():
        params = inspect.signature(loader).parameters
        assert list(params)[0] == "root", name
        for kw, default in (("on_error", "raise"), ("report", None), ("keep_unmapped", False), ("check_audio", False)):
            assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY and params[kw].default == default, (name, kw)


def test_load_corpus_dispatches_and_forwards_keywords(tmp_path: Path, make_audio) -> None:
    make_audio(tmp_path / "wav" / "03a01Fa.wav")
    make_audio(tmp_path / "wav" / "03a01La.wav")
    assert [u.utt_id for u in load_corpus("EMODB", tmp_path)] == ["03a01Fa"]
    assert len(load_corpus("emodb", tmp_path, keep_unmapped=True)) == 2


def test_unknown_corpus_and_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown corpus 'iemocap4'"):
        load_corpus("iemocap4", tmp_path)
    (tmp_path / "wav").mkdir()
    with pytest.raises(ConfigError, match="on_error"):
        load_corpus("ekorpus", tmp_path, on_error="ignore")
