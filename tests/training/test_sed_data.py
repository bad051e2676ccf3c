"""The SED data module: file-name splits, caches, loaders, and what training never reads."""

from __future__ import annotations

import json

import pytest
import torch

from audioadapt.config.sed import load_sed_config
from audioadapt.data.dcase import write_weak_tsv
from audioadapt.data.manifest import Event
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
    assert summary["metadata"]["weak"] == {"listed": 12, "kept": 12, "lost": 0, "skipped_rows": 0, "clipped_events": 0}
    assert summary["classes_from"] == str(tiny / "dataset.json")
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


def test_train_seed_drives_the_batch_order_unless_the_sampler_has_a_seed(tiny):
    def rows(*extra: str) -> list[list[int]]:
        cfg = _config("sed_adv_time", *extra)
        data = SedDataModule(tiny, cfg).setup()
        return [batch.index.tolist() for batch in data.train_loader(cfg.sampler.phase1)]

    first = rows("train.seed=1")
    assert rows("train.seed=1") == first
    assert rows("train.seed=2") != first
    fixed = rows("train.seed=1", "sampler.phase1.seed=5")
    assert rows("train.seed=2", "sampler.phase1.seed=5") == fixed != first


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


def _forbid_cache_builds(monkeypatch):
    from audioadapt.features import cache as cache_module

    def fail(*args, **kwargs):
        raise AssertionError("a feature cache was rebuilt")

    monkeypatch.setattr(cache_module, "_write", fail)


def test_any_spelling_of_the_root_reuses_the_caches_and_finds_every_clip(tiny, tmp_path, monkeypatch):
    cfg = _config("sed_baseline")
    first = SedDataModule(tiny.resolve(), cfg).setup()
    first.eval_dataset("validation")
    (tmp_path / "link").symlink_to(tiny, target_is_directory=True)
    monkeypatch.chdir(tiny.parent)
    _forbid_cache_builds(monkeypatch)
    for root in (tiny.name, f"./{tiny.name}", tmp_path / "link"):
        data = SedDataModule(root, cfg).setup()
        assert data.sizes() == first.sizes() and set(data.features_skipped.values()) == {0}
        dataset, durations = data.eval_dataset("validation")
        assert len(dataset) == 12 and len(durations) == 12


def _mirror(tiny, root):
    """A dataset at ``root`` holding ``tiny``'s metadata, and its audio through a symbolic link."""
    import shutil

    shutil.copytree(tiny / "metadata", root / "metadata")
    shutil.copy(tiny / "dataset.json", root / "dataset.json")
    (root / "audio").symlink_to(tiny / "audio", target_is_directory=True)
    return root


def test_a_dataset_folder_that_cannot_hold_caches_uses_the_user_cache(tiny, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = _mirror(tiny, tmp_path / "corpus")
    (root / "cache").write_text("")  # no cache folder can be made here (as in a read-only corpus)
    with caplog.at_level("INFO"):
        data = SedDataModule(root, _config("sed_baseline")).setup()
    assert data.sizes()["synthetic"] == 19
    caches = tmp_path / "xdg" / "audioadapt" / "features"
    assert f"the feature caches go to {caches}" in caplog.text
    assert {p.name.split("-")[0] for p in next(caches.iterdir()).iterdir()} == {"synthetic", "weak"}


def test_an_empty_split_is_a_clean_error(tiny, tmp_path):
    syn = tmp_path / "synthetic.tsv"
    syn.write_text("filename\tonset\toffset\tevent_label\n", encoding="utf-8")
    cfg = _config("sed_baseline", f"data.layout.synthetic_tsv={syn}")
    with pytest.raises(DataError, match=r"synthetic\.tsv: split 'synthetic' holds no usable clip"):
        SedDataModule(tiny, cfg).setup()
    name = sorted((tiny / "audio/train/synthetic").iterdir())[0].name
    syn.write_text(f"filename\tonset\toffset\tevent_label\n{name}\t1.0\t2.0\tbark\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds 1 usable clip; holding out synthetic_valid needs at least 2"):
        SedDataModule(tiny, cfg).setup()


def _with_row(tiny, split_tsv: str, tmp_path, row: str):
    """A copy of one of ``tiny``'s metadata files with ``row`` appended, and the row's line number."""
    src = (tiny / split_tsv).read_text(encoding="utf-8")
    path = tmp_path / split_tsv.rsplit("/", 1)[1]
    path.write_text(src + row + "\n", encoding="utf-8")
    return path, len(src.splitlines()) + 1


@pytest.mark.parametrize("key, tsv, row, label", [
    ("synthetic_tsv", "metadata/train/synthetic.tsv", "{syn}\t1.0\t2.0\tDog_Barking", "Dog_Barking"),
    ("weak_tsv", "metadata/train/weak.tsv", "{weak}\tbark,Unicorn", "Unicorn"),
])
def test_an_unknown_label_is_an_error_against_the_dataset_class_list(tiny, tmp_path, key, tsv, row, label):
    names = {s: sorted((tiny / f"audio/train/{f}").iterdir())[0].name for s, f in
             (("syn", "synthetic"), ("weak", "weak"))}
    path, line = _with_row(tiny, tsv, tmp_path, row.format(**names))
    with pytest.raises(DataError) as info:
        SedDataModule(tiny, _config("sed_baseline", f"data.layout.{key}={path}")).setup()
    assert str(info.value).startswith(f"{path}:{line}: unknown label '{label}'; the classes (from "
                                      f"{tiny / 'dataset.json'}) are bark, beeps, buzz,")


def test_an_event_past_the_end_of_its_clip_is_an_error_or_cut_in_skip_mode(tiny, tmp_path):
    name = sorted((tiny / "audio/train/synthetic").iterdir())[0].name
    path, line = _with_row(tiny, "metadata/train/synthetic.tsv", tmp_path, f"{name}\t3.0\t25.0\tbark")
    with pytest.raises(DataError, match=rf"synthetic\.tsv:{line}: offset 25 s lies past the end of clip "
                                        rf"'{name}' \(its audio lasts 10\.000 s\)"):
        SedDataModule(tiny, _config("sed_baseline", f"data.layout.synthetic_tsv={path}")).setup()
    cfg = _config("sed_baseline", f"data.layout.synthetic_tsv={path}", "data.on_error=skip")
    data = SedDataModule(tiny, cfg).setup()
    assert data.summary()["metadata"]["synthetic"]["clipped_events"] == 1
    records = data.source("synthetic").records + data.source("synthetic_valid").records
    (record,) = [r for r in records if r.filename == name]
    assert Event(3.0, 10.0, "bark") in record.events


def test_an_unknown_validation_label_names_where_the_class_list_comes_from(tiny, tmp_path):
    name = sorted((tiny / "audio/validation").iterdir())[0].name
    path, line = _with_row(tiny, "metadata/validation/validation.tsv", tmp_path, f"{name}\t1.0\t2.0\tUnicorn")
    cfg = _config("sed_baseline", f"data.layout.validation_tsv={path}",
                  "data.classes=[bark,beeps,buzz,clink,crackle,glide,hum,syllables,water,whoosh]")
    with pytest.raises(DataError, match=rf"validation\.tsv:{line}: unknown label 'Unicorn'; the classes \(from "
                                        r"the checkpoint run/best\.pt\) are bark, "):
        SedDataModule(tiny, cfg, classes_from="the checkpoint run/best.pt").eval_dataset("validation")
    with pytest.raises(DataError, match=r"the classes \(from data\.classes\) are bark, "):
        SedDataModule(tiny, cfg).eval_dataset("validation")
