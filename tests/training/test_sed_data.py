"""The SED data module: file-name splits, caches, loaders, and what training never reads."""

from __future__ import annotations

import json

import pytest
import torch

from audioadapt.config.sed import load_sed_config
from audioadapt.data.dcase import write_weak_tsv
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.sed_data import SedDataModule, split_by_filename

from . import test_sed_e2e as e2e


@pytest.fixture(scope="module")
def tiny(sed_tiny_dataset):
    return sed_tiny_dataset


def test_split_depends_only_on_names_and_seed():
    names = [f"clip_{i:03d}.wav" for i in range(50)]
    train, valid = split_by_filename(names, 0.2, 26, "synthetic")
    assert len(valid) == 10 and len(train) == 40
    assert set(train).isdisjoint(valid) and set(train) | set(valid) == set(names)
    assert split_by_filename(list(reversed(names)), 0.2, 26, "synthetic") == (train, valid)
    assert split_by_filename(names, 0.2, 27, "synthetic")[1] != valid
    assert split_by_filename(names, 0.2, 26, "weak")[1] != valid  # each split draws its own
    assert split_by_filename(names[:3], 0.01, 0, "weak")[1] != []  # at least one valid clip
    with pytest.raises(DataError, match="repeat"):
        split_by_filename(["a.wav", "a.wav"], 0.5, 0, "weak")


def _config(preset: str, *extra: str):
    return load_sed_config(preset, e2e.tiny_overrides(preset) + list(extra))


def test_setup_splits_caches_and_counts(tiny):
    cfg = _config("sed_adv_time")
    data = SedDataModule(tiny, cfg).setup()
    assert data.sizes() == {"synthetic": 19, "weak": 10, "unlabeled": 12, "synthetic_valid": 5, "weak_valid": 2}
    synth = {r.filename for r in data.source("synthetic").records}
    assert synth.isdisjoint(r.filename for r in data.source("synthetic_valid").records)
    assert {"synthetic", "unlabeled", "weak"} <= {p.name.split("-")[0] for p in (tiny / "cache").iterdir()}
    summary = data.summary()
    assert summary["metadata"]["weak"] == {"listed": 12, "kept": 12, "lost": 0, "skipped_rows": 0}
    assert summary["valid_files"]["weak_valid"] == sorted(r.filename for r in data.source("weak_valid").records)
    json.dumps(summary)
    # same seed, same split; the features of a clip are its own
    again = SedDataModule(tiny, cfg).setup()
    assert [r.filename for r in again.source("weak_valid").records] == summary["valid_files"]["weak_valid"]
    item = data.source("weak_valid")[0]
    assert item.features.shape == (160, 32) and item.strong.shape == (40, 10)


def test_training_data_never_includes_the_validation_split_and_unused_sources(tiny):
    cfg = _config("sed_baseline", "data.layout.validation_tsv=absent.tsv")
    data = SedDataModule(tiny, cfg).setup()
    assert data.train.source_names == ("synthetic", "weak")  # no U: the baseline draws none
    assert "validation" not in data.counts
    with pytest.raises(DataError, match="absent.tsv"):
        data.eval_dataset("validation")  # only evaluation reads it


def test_loader_batches_have_the_phase_composition(tiny):
    cfg = _config("sed_adv_time_tri_training")
    data = SedDataModule(tiny, cfg).setup()
    loader = data.train_loader(cfg.sampler.phase1)
    batch = next(iter(loader))
    names = data.train.source_names
    counts = {n: int((batch.source == names.index(n)).sum()) for n in names}
    assert counts == {"synthetic": 4, "weak": 4, "unlabeled": 4}
    assert torch.equal(batch.domain, (batch.source != names.index("synthetic")).long())
    u = batch.source == names.index("unlabeled")
    assert (batch.strong[u] == -1).all() and (batch.weak[u] == -1).all()
    half = data.train_loader(cfg.sampler.phase1, rank=1, world_size=2)
    assert next(iter(half)).size == 6


def test_evaluation_split_and_durations(tiny):
    cfg = _config("sed_adv_time")
    data = SedDataModule(tiny, cfg)
    with pytest.raises(ConfigError, match="class list"):
        data.eval_dataset("validation")
    data = SedDataModule(tiny, load_sed_config("sed_adv_time", e2e.tiny_overrides("sed_adv_time") + [
        "data.classes=[bark,beeps,buzz,clink,crackle,glide,hum,syllables,water,whoosh]"]))
    dataset, durations = data.eval_dataset("validation")
    assert len(dataset) == 12 and set(durations) == {r.filename for r in dataset.records}
    with pytest.raises(ConfigError, match="cannot evaluate split"):
        data.eval_dataset("weak")


def test_missing_weak_metadata_is_a_clean_error(tiny, tmp_path):
    cfg = _config("sed_baseline", f"data.layout.weak_tsv={tmp_path / 'weak.tsv'}")
    write_weak_tsv(tmp_path / "weak.tsv", {"nothere.wav": ["bark"]})
    with pytest.raises(DataError, match="nothere.wav"):
        SedDataModule(tiny, cfg).setup()
