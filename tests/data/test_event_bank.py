"""Banks of isolated recordings: folders, CSV manifests, YAML specs, group splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioadapt.data.event_bank import assign_groups, load_item, read_bank
from audioadapt.errors import AudioError, DataError

SR = 16000


def _write(path: Path, seconds: float = 0.2, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), sr)
    return path


def test_folder_labels_from_subfolders_and_groups_from_nested_folders(tmp_path):
    _write(tmp_path / "dog" / "a.wav")
    _write(tmp_path / "dog" / "rec7" / "take1.flac")
    _write(tmp_path / "dog" / "rec7" / "take2.flac")
    _write(tmp_path / "cat" / "rec7" / "x.wav")
    (tmp_path / "dog" / "notes.txt").write_text("not audio")
    items = read_bank(tmp_path)
    by_name = {i.path.name: i for i in items}
    assert set(by_name) == {"a.wav", "take1.flac", "take2.flac", "x.wav"}
    assert by_name["a.wav"].label == "dog"
    assert by_name["take1.flac"].group == by_name["take2.flac"].group == by_name["x.wav"].group
    assert by_name["a.wav"].group != by_name["take1.flac"].group
    assert by_name["x.wav"].label == "cat"
    assert not any(str(tmp_path) in i.group for i in items)  # groups never hold absolute paths


def test_folder_files_at_the_top_are_backgrounds_only(tmp_path):
    _write(tmp_path / "hum.wav")
    (bg,) = read_bank(tmp_path, require_labels=False)
    assert bg.label == ""
    with pytest.raises(DataError, match="sub-folders"):
        read_bank(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no audio files"):
        read_bank(tmp_path)


def test_csv_manifest_paths_relative_to_the_csv(tmp_path):
    _write(tmp_path / "audio" / "1.wav")
    _write(tmp_path / "audio" / "2.wav")
    _write(tmp_path / "audio" / "3.wav")
    csv = tmp_path / "bank.csv"
    csv.write_text("path,label,group\naudio/1.wav,dog,s1\naudio/2.wav,dog,s1\naudio/3.wav,cat,\n")
    items = read_bank(csv)
    assert [i.label for i in items] == ["dog", "dog", "cat"]
    assert items[0].path == tmp_path / "audio" / "1.wav"
    assert items[0].group == items[1].group == "s1"
    assert items[2].group == "audio/3.wav"  # no group: the file is its own source


def test_csv_without_group_column(tmp_path):
    _write(tmp_path / "1.wav")
    csv = tmp_path / "bank.csv"
    csv.write_text("path,label\n1.wav,dog\n")
    (item,) = read_bank(csv)
    assert item.group == "1.wav"


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("path,label\nmissing.wav,dog\n", "not found", 2),
        ("file,label\n1.wav,dog\n", "missing column", 1),
        ("path,label\n1.wav,dog\n1.wav,\n", "empty 'label'", 3),
        ("path,label\n,dog\n", "empty 'path'", 2),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, text, message, line):
    _write(tmp_path / "1.wav")
    csv = tmp_path / "bank.csv"
    csv.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_bank(csv)
    assert info.value.path == csv and info.value.line == line


def test_a_file_listed_twice_is_an_error(tmp_path):
    _write(tmp_path / "1.wav")
    csv = tmp_path / "bank.csv"
    csv.write_text("path,label\n1.wav,dog\n./1.wav,cat\n")
    with pytest.raises(DataError, match="listed twice"):
        read_bank(csv)


def test_missing_bank_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_bank(tmp_path / "nope")
    other = tmp_path / "bank.txt"
    other.write_text("x")
    with pytest.raises(DataError, match="expected a folder"):
        read_bank(other)


def _corpus(tmp_path: Path) -> Path:
    """A fake corpus with its own column names, as a third-party manifest would have."""
    corpus = tmp_path / "data" / "corpus"
    rows = [
        ("a/1.flac", "blender", "111"),
        ("a/2.flac", "blender", "111(1)"),
        ("a/3.flac", "juicer", "222"),
        ("a/4.flac", "fridge", "333"),
        ("a/5.flac", "book", "444"),
    ]
    for rel, _, _ in rows:
        _write(corpus / rel)
    (corpus / "manifest.csv").write_text(
        "path,category,source_id\n" + "".join(f"{p},{c},{s}\n" for p, c, s in rows)
    )
    return corpus


def test_yaml_spec_selects_relabels_and_groups(tmp_path):
    _corpus(tmp_path)
    spec = tmp_path / "recipe" / "events.yaml"
    spec.parent.mkdir()
    spec.write_text(
        "root: ../data\n"
        "sources:\n"
        "  - manifest: corpus/manifest.csv\n"
        "    name: k20\n"
        "    label_column: category\n"
        "    group_column: source_id\n"
        "    group_strip: '\\(1\\)$'\n"
        "    labels: {blender: mixer, juicer: mixer, fridge: cold}\n"
        "    exclude: [a/4.flac]\n"
    )
    items = read_bank(spec)
    assert [(i.path.name, i.label, i.group) for i in items] == [
        ("1.flac", "mixer", "k20:111"),
        ("2.flac", "mixer", "k20:111"),
        ("3.flac", "mixer", "k20:222"),
    ]


def test_yaml_spec_wildcard_label_and_default_group(tmp_path):
    _corpus(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text("root: data\nsources:\n  - manifest: corpus/manifest.csv\n    label_column: category\n"
                    "    labels: {'*': thing, book: paper}\n")
    items = read_bank(spec)
    assert Counter(i.label for i in items) == {"thing": 4, "paper": 1}
    assert items[0].group == "corpus/manifest.csv:a/1.flac"


@pytest.mark.parametrize(
    "text, message",
    [
        ("sources:\n  - manifest: x.csv\n    lable_column: c\n", "lable_column"),
        ("sources: []\n", "at least one"),
        ("[1, 2]\n", "mapping"),
        ("sources:\n  - manifest: x.csv\n    group_strip: '('\n", "regular expression"),
        ("sources: [\n", "invalid YAML"),
        ("sources:\n  - manifest: nothere.csv\n", "manifest not found"),
    ],
)
def test_yaml_spec_errors_name_the_file(tmp_path, text, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_bank(spec)
    assert str(tmp_path) in str(info.value)


def test_mapping_that_keeps_nothing_is_an_error(tmp_path):
    _corpus(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text("root: data\nsources:\n  - manifest: corpus/manifest.csv\n    label_column: category\n"
                    "    labels: {spoon: spoon}\n")
    with pytest.raises(DataError, match="no recording"):
        read_bank(spec)


def test_load_item_resamples_to_mono(tmp_path):
    path = tmp_path / "dog" / "s.wav"
    path.parent.mkdir()
    sf.write(path, np.zeros((800, 2)) + 0.25, 8000)
    (item,) = read_bank(tmp_path)
    x = load_item(item, 16000)
    assert x.ndim == 1 and x.dtype == np.float64
    assert x.size == pytest.approx(1600, abs=2)
    bad = tmp_path / "cat" / "bad.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"not audio")
    item = next(i for i in read_bank(tmp_path) if i.path == bad)
    with pytest.raises(AudioError, match="bad.wav"):
        load_item(item, 16000)


# --------------------------------------------------------------------------- group split
def _strata(seed: int = 0):
    rng = np.random.default_rng(seed)
    strata = {}
    for c in range(5):
        groups = [f"g{c}_{g}" for g in range(int(rng.integers(3, 12)))]
        strata[f"class{c}"] = [g for g in groups for _ in range(int(rng.integers(1, 6)))]
    strata["class0"] += ["shared", "shared"]
    strata["class1"] += ["shared"]
    return strata


def test_assign_groups_puts_each_group_on_one_side_covering_every_stratum():
    strata = _strata()
    fractions = (0.4, 0.4, 0.2)
    side = assign_groups(strata, fractions, np.random.default_rng(0))
    assert set(side) == {g for groups in strata.values() for g in groups}
    assert set(side.values()) <= {0, 1, 2}
    for groups in strata.values():
        assert {side[g] for g in groups} == {0, 1, 2}
    # item shares roughly follow the fractions overall
    counts = Counter(side[g] for groups in strata.values() for g in groups)
    total = sum(counts.values())
    for s, frac in enumerate(fractions):
        assert counts[s] / total == pytest.approx(frac, abs=0.15)


def test_assign_groups_is_deterministic_and_seed_dependent():
    strata = _strata(1)
    a = assign_groups(strata, (0.5, 0.5), np.random.default_rng(3))
    b = assign_groups(strata, (0.5, 0.5), np.random.default_rng(3))
    assert a == b
    others = [assign_groups(strata, (0.5, 0.5), np.random.default_rng(s)) for s in range(4, 8)]
    assert any(o != a for o in others)


def test_assign_groups_skips_sides_with_zero_share():
    side = assign_groups(_strata(), (0.5, 0.5, 0.0), np.random.default_rng(0))
    assert set(side.values()) == {0, 1}
    with pytest.raises(ValueError):
        assign_groups(_strata(), (0.0, 0.0), np.random.default_rng(0))


# --------------------------------------------------------------------------- shipped recipe specs
_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "real_sed"


@pytest.mark.parametrize("name", ["events.yaml", "backgrounds.yaml"])
def test_recipe_bank_specs_are_valid(name):
    """The recipe's specs parse strictly (their manifests are not read here)."""
    import re

    import yaml

    from audioadapt.config.load import from_dict
    from audioadapt.data.event_bank import BankSpec

    spec = from_dict(BankSpec, yaml.safe_load((_RECIPE / name).read_text()))
    for source in spec.sources:
        if source.group_strip:
            strip = re.compile(source.group_strip)
            assert strip.sub("", "J2-couvert(1).mp4") == "J2-couvert.mp4"
            assert strip.sub("", "M-eplucher(1)") == "M-eplucher"
            assert strip.sub("", "158737") == "158737"
    if name == "events.yaml":
        labels = {v for s in spec.sources for v in (s.labels or {}).values()}
        assert len(labels) == 10
