"""Strict config loading: unknown keys, type checks, overrides, presets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from audioadapt.config import apply_overrides, from_dict, load_config, save_config, to_dict
from audioadapt.config.load import list_profiles, load_preset_dict, profile_path, read_yaml
from audioadapt.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    kind: Literal["adam", "sgd"] = "adam"


@dataclass(frozen=True)
class Outer:
    name: str = "run"
    epochs: int = 10
    counts: tuple[int, ...] = (16, 16, 32)
    threshold: float | None = None
    train: Inner = field(default_factory=Inner)
    extra: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] | None = None
    out: Path = Path("runs")


def test_defaults_come_from_the_dataclass():
    cfg = from_dict(Outer, {})
    assert cfg == Outer()


def test_nested_values_and_coercions():
    cfg = from_dict(Outer, {"epochs": 3, "train": {"lr": 1, "betas": [0.5, 0.6]}, "out": "x/y"})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.betas == (0.5, 0.6)
    assert cfg.out == Path("x/y")


def test_unknown_key_names_the_nearest_valid_key():
    with pytest.raises(ConfigError) as exc:
        from_dict(Outer, {"train": {"lrr": 0.1}})
    msg = str(exc.value)
    assert "train.lrr" in msg and "Did you mean 'lr'" in msg


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"epochs": "ten"}, "epochs: expected an integer"),
        ({"epochs": True}, "epochs: expected an integer"),
        ({"train": {"kind": "rmsprop"}}, "train.kind: 'rmsprop' is not one of"),
        ({"train": {"betas": [0.9]}}, "train.betas: expected 2 items"),
        ({"train": 3}, "train: expected a section (key: value mapping), got 3"),
        ({"counts": "16"}, "counts: expected a list"),
    ],
)
def test_type_errors_name_the_key(data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        from_dict(Outer, data)


def test_dotted_overrides_parse_yaml_values():
    cfg = apply_overrides(Outer(), ["train.lr=5e-4", "counts=[8, 8, 16]", "threshold=0.3", "train.kind=sgd"])
    assert cfg.train.lr == 5e-4
    assert cfg.counts == (8, 8, 16)
    assert cfg.threshold == 0.3
    assert cfg.train.kind == "sgd"


def test_override_into_mapping_field_accepts_new_keys():
    cfg = apply_overrides(Outer(), ["extra.alarm=0.4"])
    assert cfg.extra == {"alarm": 0.4}


def test_misspelled_override_is_rejected_with_hint():
    with pytest.raises(ConfigError) as exc:
        apply_overrides(Outer(), ["trian.lr=1"])
    assert "Did you mean 'train'" in str(exc.value)
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides(Outer(), ["train.lr"])


def test_preset_file_with_extends_and_round_trip(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"epochs": 4, "train": {"lr": 0.01, "kind": "sgd"}}))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": str(base), "train": {"lr": 0.02}}))
    cfg = load_config(Outer, child, ["name=x"])
    assert (cfg.epochs, cfg.train.lr, cfg.train.kind, cfg.name) == (4, 0.02, "sgd", "x")
    saved = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert from_dict(Outer, yaml.safe_load(saved.read_text())) == cfg
    assert to_dict(cfg)["counts"] == [16, 16, 32]


def test_bad_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\ntrain: {lr: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_preset_dict(bad)


def test_unknown_preset_suggests_names():
    with pytest.raises(ConfigError, match="no preset or config file 'does-not-exist'"):
        load_preset_dict("does-not-exist")


def test_extends_loop_is_detected(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(ConfigError, match="loops"):
        load_preset_dict(a)


@dataclass(frozen=True)
class WithCustomDefault:
    train: Inner = field(default_factory=lambda: Inner(lr=0.5, kind="sgd"))


def test_partial_nested_mapping_merges_into_the_field_default():
    cfg = from_dict(WithCustomDefault, {"train": {"betas": [0.1, 0.2]}})
    # untouched keys keep the field's own default, not Inner's class defaults
    assert cfg.train == Inner(lr=0.5, betas=(0.1, 0.2), kind="sgd")
    cfg = apply_overrides(WithCustomDefault(), ["train.lr=0.25"])
    assert cfg.train == Inner(lr=0.25, kind="sgd")
    with pytest.raises(ConfigError, match="train.bets"):
        from_dict(WithCustomDefault, {"train": {"bets": [0.1, 0.2]}})


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- non-finite numbers -------------------------------------------------------------------------

@pytest.mark.parametrize("override, key, shown", [
    ("train.lr=inf", "train.lr", "inf"),
    ("train.lr=-inf", "train.lr", "-inf"),
    ("train.lr=nan", "train.lr", "nan"),
    ("train.lr=.inf", "train.lr", "inf"),
    ("threshold=NaN", "threshold", "nan"),
    ("train.betas=[0.9, .inf]", "train.betas[1]", "inf"),
    ("extra.alarm=Infinity", "extra.alarm", "inf"),
    ("limits={a: .nan}", "limits.a", "nan"),
])
def test_an_override_with_a_non_finite_number_is_rejected(override, key, shown):
    with pytest.raises(ConfigError, match=re.escape(f"{key}: expected a finite number, got {shown}")):
        apply_overrides(Outer(), [override])


def test_a_non_finite_number_from_python_is_rejected():
    with pytest.raises(ConfigError, match=re.escape("train.lr: expected a finite number, got inf")):
        from_dict(Outer, {"train": {"lr": float("inf")}})
    with pytest.raises(ConfigError, match=re.escape("threshold: expected a finite number, got nan")):
        from_dict(Outer, {"threshold": float("nan")})


def test_a_bad_value_in_a_file_names_the_file_and_line_of_its_key(tmp_path):
    base = _file(tmp_path, "base.yaml", "epochs: 3\ntrain:\n  kind: sgd\n  lr: .nan\n")
    child = _file(tmp_path, "child.yaml", f"extends: {base}\nname: x\n")
    with pytest.raises(ConfigError, match=re.escape(f"{base}:4: train.lr: expected a finite number, got nan")):
        load_config(Outer, child)
    fixed = _file(tmp_path, "fixed.yaml", f"extends: {base}\n\ntrain:\n  lr: -.inf\n")
    with pytest.raises(ConfigError, match=re.escape(f"{fixed}:4: train.lr: expected a finite number, got -inf")):
        load_config(Outer, fixed)
    typo = _file(tmp_path, "typo.yaml", "train:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{typo}:2: unknown config key 'train.lrr'")):
        load_config(Outer, typo)
    item = _file(tmp_path, "item.yaml", "counts:\n  - 1\n  - x\n")
    with pytest.raises(ConfigError, match=re.escape(f"{item}:1: counts[1]: expected an integer, got 'x'")):
        load_config(Outer, item)


# -- empty files and duplicated keys -------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "null\n", "~\n", "---\n"])
def test_an_empty_config_file_is_an_error_naming_it(tmp_path, text):
    path = _file(tmp_path, "empty.yaml", text)
    message = f"{path}: the config file holds no settings"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match=re.escape(message)):  # also as the parent of another preset
        load_preset_dict(_file(tmp_path, "child.yaml", f"extends: {path}\nepochs: 2\n"))
    with pytest.raises(ConfigError, match=re.escape(message)):  # and as a profile
        read_yaml(profile_path(path))


@pytest.mark.parametrize("text, line, key", [
    ("train:\n  lr: 0.1\nepochs: 3\ntrain:\n  kind: sgd\n", 4, "train"),
    ("train:\n  lr: 0.1\n  kind: sgd\n  lr: 0.2\n", 4, "lr"),
    ("epochs: 2\ntrain: {lr: 0.1, lr: 0.2}\n", 2, "lr"),
    ("extra:\n  a: 1\n  b: 2\n\n  a: 3\n", 5, "a"),
])
def test_a_duplicated_key_is_an_error_naming_its_second_line(tmp_path, text, line, key):
    path = _file(tmp_path, "dup.yaml", text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}: invalid YAML: duplicate key '{key}'")):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}: invalid YAML: duplicate key '{key}'")):
        read_yaml(profile_path(path))
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}: invalid YAML: duplicate key '{key}'")):
        load_config(Outer, _file(tmp_path, "child.yaml", f"extends: {path}\n"))


def test_merge_keys_may_be_overridden_and_overrides_may_not_repeat_a_key(tmp_path):
    path = _file(tmp_path, "anchors.yaml", "base: &b {lr: 0.1, kind: sgd}\ntrain:\n  <<: *b\n  lr: 0.2\n")
    assert read_yaml(path)["train"] == {"lr": 0.2, "kind": "sgd"}
    with pytest.raises(ConfigError, match="cannot parse value.*duplicate key 'lr'"):
        apply_overrides(Outer(), ["train={lr: 1, lr: 2}"])


def test_the_shipped_profiles_read_strictly():
    for name in list_profiles():
        assert read_yaml(profile_path(name))


# -- sections ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["train=abc", "train=[1, 2]", "train=null", "train=3", "train="])
def test_a_section_rejects_a_scalar_even_when_a_later_override_sets_a_key_inside_it(bad):
    with pytest.raises(ConfigError, match=re.escape("train: expected a section (key: value mapping), got")):
        apply_overrides(Outer(), [bad, "train.lr=0.5"])


def test_a_mapping_setting_rejects_a_scalar_and_an_optional_one_may_be_reset():
    with pytest.raises(ConfigError, match=re.escape("extra: expected a mapping, got 'abc'")):
        apply_overrides(Outer(), ["extra=abc", "extra.alarm=0.4"])
    cfg = apply_overrides(Outer(limits={"a": 1.0}), ["limits=null", "limits.b=2"])
    assert cfg.limits == {"b": 2.0}
    assert apply_overrides(Outer(limits={"a": 1.0}), ["limits=null"]).limits is None
