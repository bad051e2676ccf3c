"""Strict config loading: unknown keys, type checks, overrides, presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from audioadapt.config import apply_overrides, from_dict, load_config, save_config, to_dict
from audioadapt.config.load import load_preset_dict
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
        ({"train": 3}, "train: expected a mapping"),
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
