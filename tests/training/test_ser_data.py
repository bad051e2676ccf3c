"""SER data module on a tiny generated dataset; the paired stage-2 loader; source validation parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from audioadapt.config.ser import SerCorpusConfig, SourceValidationConfig, load_ser_config
from audioadapt.data.utterances import EMOTIONS, Utterance
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.ser_data import (
    PairedLoader,
    SerDataModule,
    load_side,
    source_validation_split,
    strip_labels,
)

SMALL = ["features.n_mels=32", "dataset.crop_seconds=3.0", "dataset.pad_to_crop=false", "cache.num_workers=0",
         "cache.progress=false", "stage1.batch_size=8", "stage2.source_batch_size=8", "stage2.target_batch_size=8"]


@pytest.fixture(scope="module")
def tiny(ser_tiny_dataset) -> Path:
    return ser_tiny_dataset


def config(tiny: Path, *extra: str):
    return load_ser_config("ser_nnpm", [*SMALL, "source.corpus=generated", f"source.root={tiny}",
                                        "target.corpus=generated", f"target.root={tiny}", *extra])


def test_setup_splits_the_target_and_strips_adaptation_labels(tiny):
    data = SerDataModule(config(tiny, "source_validation.speakers=[source_spk02]")).setup()
    # paper protocol on a non-EMO-DB target: stratified, ceil(0.33 * 32) = 11 test utterances
    assert data.sizes() == {"source_slots": 32, "source_train": 24, "source_valid": 8, "target_adapt": 21,
                            "target_test": 11}
    assert {u.speaker for u in data.source_valid.utterances} == {"source_spk02"}
    assert "source_spk02" not in {u.speaker for u in data.source_train.utterances}
    assert all(u.label is None and u.native_label is None and not u.extra for u in data.target_adapt.utterances)
    assert (data.target_adapt.labels == -1).all() and all(data.target_adapt[i].label == -1 for i in range(3))
    assert (data.target_test.labels >= 0).all()
    adapt_ids = {u.utt_id for u in data.target_adapt.utterances}
    assert adapt_ids.isdisjoint(u.utt_id for u in data.target_test.utterances)
    # slot i of the memory is source item i, with its label
    assert [data.source_slots[i].index for i in range(4)] == [0, 1, 2, 3]
    assert data.source_slots.labels.tolist() == data.source_slots_eval.labels.tolist()
    summary = json.loads(json.dumps(data.summary()))
    assert summary["target_split"]["class_counts"]["test"] == {"angry": 3, "happy": 3, "sad": 3, "neutral": 2}
    assert summary["source_validation"]["ids"] == [u.utt_id for u in data.source_valid.utterances]
    assert summary["loaded"] == {"target": 32, "source": 32} and summary["features_skipped"]["source"] == 0


def test_caches_are_shared_and_target_only_setup(tiny):
    cfg = config(tiny, "source_validation.kind=none", "protocol.protocol=transductive")
    first = SerDataModule(cfg).setup()
    caches = sorted(p.name for p in (tiny / "cache").iterdir() if not p.name.startswith("."))
    again = SerDataModule(cfg).setup(source=False)
    assert sorted(p.name for p in (tiny / "cache").iterdir() if not p.name.startswith(".")) == caches
    assert again.source_slots is None and len(again.target_test) == 32 and first.source_valid is None
    assert torch.equal(again.target_test[5].features, first.target_test[5].features)


def test_stage2_loader_pairs_every_source_batch_with_a_full_target_batch(tiny):
    data = SerDataModule(config(tiny, "source_validation.kind=none")).setup()
    loader = data.stage2_loader()
    assert len(loader) == 4
    loader.set_epoch(0)
    batches = list(loader)
    assert len(batches) == 4 and all(b.target.size == 8 for b in batches)
    slots = torch.cat([b.source.index for b in batches]).sort().values
    assert slots.tolist() == list(range(32))  # one pass over every source utterance (every memory slot)
    assert all((b.target.label == -1).all() and (b.source.label >= 0).all() for b in batches)
    assert all((b.source.domain == 0).all() and (b.target.domain == 1).all() for b in batches)


class _Numbers(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _loader(n: int, batch: int, seed: int) -> DataLoader:
    sampler = torch.utils.data.DistributedSampler(_Numbers(n), num_replicas=1, rank=0, shuffle=True, seed=seed)
    return DataLoader(_Numbers(n), batch_size=batch, sampler=sampler, drop_last=True)


def test_paired_loader_cycles_the_target_and_depends_only_on_the_epoch():
    paired = PairedLoader(_loader(10, 2, 0), _loader(4, 2, 2))
    assert len(paired) == 5 and paired.cycles == 3
    paired.set_epoch(3)
    first = [(s.tolist(), t.tolist()) for s, t in ((b.source, b.target) for b in paired)]
    targets = [t for _, t in first]
    assert sorted(sum(targets[:2], [])) == [0, 1, 2, 3]  # each pass over the target is a permutation
    assert sorted(sum(targets[2:4], [])) == [0, 1, 2, 3]
    assert targets[:2] != targets[2:4]  # a new order on every pass
    paired.set_epoch(3)
    assert [(b.source.tolist(), b.target.tolist()) for b in paired] == first
    paired.set_epoch(4)
    assert [(b.source.tolist(), b.target.tolist()) for b in paired] != first
    with pytest.raises(DataError, match="no batch"):
        PairedLoader(_loader(10, 2, 0), _loader(1, 2, 1))


@pytest.mark.parametrize("length, steps", [("source", 2), ("target", 5), ("longer", 5)])
def test_an_epoch_can_pass_over_the_longer_side(length, steps):
    """A small source (4 utterances, 2 batches) next to 10 target utterances (5 batches)."""
    paired = PairedLoader(_loader(4, 2, 0), _loader(10, 2, 1), length)
    paired.set_epoch(2)
    batches = [(b.source.tolist(), b.target.tolist()) for b in paired]
    assert len(paired) == len(batches) == steps
    targets = sum((t for _, t in batches), [])
    sources = sum((s for s, _ in batches), [])
    if length != "source":
        assert sorted(targets) == list(range(10))  # one whole pass over the target per epoch
        assert sorted(sources[:4]) == sorted(sources[4:8]) == [0, 1, 2, 3]  # the source cycles, reshuffled
        assert sources[:4] != sources[4:8]
    paired.set_epoch(2)
    assert [(b.source.tolist(), b.target.tolist()) for b in paired] == batches
    # with the source as the epoch, the order is the one the earlier loader gave (same sampler epochs)
    if length == "source":
        source_only = _loader(4, 2, 0)
        source_only.sampler.set_epoch(2)
        assert [s for s, _ in batches] == [b.tolist() for b in source_only]
    with pytest.raises(ValueError, match="length must be one of"):
        PairedLoader(_loader(4, 2, 0), _loader(10, 2, 1), "both")


def test_stage2_epochs_cover_the_target_adaptation_side_with_a_small_source(tiny):
    small = ("source_validation.kind=none", "stage2.source_batch_size=16", "protocol.protocol=transductive")
    data = SerDataModule(config(tiny, *small)).setup()
    assert len(data.stage2_loader()) == 4  # 32 target utterances in 8s; 2 source batches of 16 cycle twice
    assert len(SerDataModule(config(tiny, *small, "stage2.epoch_length=source")).setup().stage2_loader()) == 2


def test_the_adaptation_truth_is_kept_aside_only_when_asked_for(tiny):
    plain = SerDataModule(config(tiny, "source_validation.kind=none")).setup()
    assert plain.target_adapt_truth is None
    data = SerDataModule(config(tiny, "source_validation.kind=none", "diagnostics.target_truth=true")).setup()
    truth = data.target_adapt_truth
    assert truth.tolist() == [u.label_index for u in data.split.adapt] and (truth >= 0).all()
    assert (data.target_adapt.labels == -1).all()  # the dataset still carries none
    oracle = SerDataModule(config(tiny, "source_validation.kind=none", "pseudo_multilabel.rule=oracle")).setup()
    assert oracle.target_adapt_truth.tolist() == truth.tolist()


def _utts(speakers: list[str]) -> list[Utterance]:
    return [Utterance(Path(f"/x/{i}.wav"), EMOTIONS[i % 4], s, "c", f"u{i:02d}") for i, s in enumerate(speakers)]


def test_source_validation_parts():
    utts = _utts(["a", "b", "c", "a", "b", "c", "a", "b"] * 2)
    train, valid = source_validation_split(utts, SourceValidationConfig(kind="speakers", speakers=("c",)))
    assert {utts[i].speaker for i in valid} == {"c"} and "c" not in {utts[i].speaker for i in train}
    assert sorted(train + valid) == list(range(16))
    train, valid = source_validation_split(utts, SourceValidationConfig(kind="stratified", fraction=0.25))
    assert len(valid) == 4 and sorted({utts[i].label for i in valid}) == sorted(EMOTIONS)
    assert source_validation_split(utts, SourceValidationConfig(kind="none")) == (list(range(16)), [])
    # whole speakers, about a fraction of the utterances, chosen from the seed
    many = _utts([f"s{i % 8}" for i in range(64)])
    cfg = SourceValidationConfig(kind="held_out_speakers", fraction=0.25, random_state=3)
    train, valid = source_validation_split(many, cfg)
    held = {many[i].speaker for i in valid}
    assert len(held) == 2 and len(valid) == 16 and held.isdisjoint(many[i].speaker for i in train)
    assert source_validation_split(many, cfg) == (train, valid)
    assert {many[i].speaker for i in source_validation_split(many, SourceValidationConfig(
        kind="held_out_speakers", fraction=0.25, random_state=4))[1]} != held
    with pytest.raises(DataError, match=r"\['Ses05F', 'Ses05M'\] are not in the source"):
        source_validation_split(utts, SourceValidationConfig())
    with pytest.raises(DataError, match="no source utterance"):
        source_validation_split(_utts(["a"] * 4), SourceValidationConfig(kind="speakers", speakers=("a",)))


def test_strip_labels_keeps_identity_only():
    u = Utterance(Path("/x/1.wav"), "sad", "s1", "c", "u1", "female", "T", {"emotion7": "sadness"})
    (stripped,) = strip_labels([u])
    assert (stripped.label, stripped.native_label, dict(stripped.extra)) == (None, None, {})
    assert (stripped.key, stripped.path, stripped.speaker) == (u.key, u.path, u.speaker)


def test_missing_corpora_and_foreign_folders(tiny, tmp_path):
    with pytest.raises(ConfigError, match="no source corpus: give --source"):
        load_side(SerCorpusConfig(), "source")
    (tmp_path / "dataset.json").write_text(json.dumps({"domains": {"source": {"manifest": "s/manifest.csv"}}}))
    with pytest.raises(DataError, match="no domain 'target'"):
        load_side(SerCorpusConfig("generated", str(tmp_path)), "target")
    target = load_side(SerCorpusConfig("csv", str(tiny / "target" / "manifest.csv")), "target")
    assert len(target) == 32 and target == sorted(target, key=lambda u: u.key)


def manifest_copy(tiny: Path, path: Path, keep) -> Path:
    """The tiny source manifest with absolute audio paths, its rows passed through ``keep(index, row)``."""
    import csv

    with open(tiny / "source" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for i, row in enumerate(rows):
            row["path"] = str(tiny / "source" / row["path"])
            if (row := keep(i, row)) is not None:
                writer.writerow(row)
    return path


def test_a_source_corpus_of_one_emotion_is_refused(tiny, tmp_path):
    one = manifest_copy(tiny, tmp_path / "angry.csv", lambda i, row: row if row["label"] == "angry" else None)
    with pytest.raises(DataError, match=r"the source corpus 'csv' has utterances of 1 emotion\(s\) \(angry 8\); "
                                        "training needs at least 2") as err:
        load_side(SerCorpusConfig("csv", str(one)), "source")
    assert err.value.path == one
    assert len(load_side(SerCorpusConfig("csv", str(one)), "target")) == 8  # a target side may hold one emotion


def test_a_row_without_label_is_an_error_or_a_counted_skip(tiny, tmp_path, caplog):
    holey = manifest_copy(tiny, tmp_path / "holey.csv", lambda i, row: {**row, "label": ""} if i == 0 else row)
    with pytest.raises(DataError, match="empty 'label'") as err:
        load_side(SerCorpusConfig("csv", str(holey)), "source")
    assert (err.value.path, err.value.line) == (holey, 2)
    with caplog.at_level("WARNING"):
        utts = load_side(SerCorpusConfig("csv", str(holey), on_error="skip"), "source")
    assert len(utts) == 31 and f"skipped 1 row(s):\n  {holey}:2: empty 'label'" in caplog.text


def test_an_unwritable_cache_place_names_the_setting(tiny, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="set cache.directory"):
        SerDataModule(config(tiny, f"cache.directory={blocker}")).setup()


def _forbid_cache_builds(monkeypatch):
    from audioadapt.features import cache as cache_module

    def fail(*args, **kwargs):
        raise AssertionError("a feature cache was rebuilt")

    monkeypatch.setattr(cache_module, "_write", fail)


def test_any_spelling_of_the_corpus_path_shares_the_caches(tiny, tmp_path, monkeypatch):
    first = SerDataModule(config(tiny.resolve(), "source_validation.kind=none")).setup()
    (tmp_path / "link").symlink_to(tiny, target_is_directory=True)
    monkeypatch.chdir(tiny.parent)
    _forbid_cache_builds(monkeypatch)
    for root in (Path(tiny.name), Path(".") / tiny.name, tmp_path / "link"):
        again = SerDataModule(config(root, "source_validation.kind=none")).setup()
        assert again.sizes() == first.sizes() and set(again.features_skipped.values()) == {0}


def test_a_corpus_folder_that_cannot_hold_caches_uses_the_user_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "dataset.json").write_bytes((tiny / "dataset.json").read_bytes())
    for side in ("source", "target"):
        (root / side).symlink_to(tiny / side, target_is_directory=True)
    (root / "cache").write_text("")  # no cache folder can be made here (as in a read-only corpus)
    data = SerDataModule(config(root, "source_validation.kind=none")).setup()
    assert data.sizes()["source_slots"] == 32
    (folder,) = (tmp_path / "xdg" / "audioadapt" / "features").iterdir()
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["source", "target"]
