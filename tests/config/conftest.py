"""Parametrisation over the real configuration trees, so a new section or setting is covered automatically.

A test that takes ``sed_section`` / ``ser_section`` runs once per section (a nested
dataclass, also one inside a mapping such as ``psds.scenarios.psds1``) of
:class:`SedExperimentConfig` / :class:`SerExperimentConfig`; one that takes
``sed_float_key`` / ``ser_float_key`` runs once per float setting.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Union, get_args, get_origin, get_type_hints

import pytest
import yaml


def _fields(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, annotation, value)`` of every setting and section below a config instance."""
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        yield key, hints[f.name], value
        if dataclasses.is_dataclass(value):
            yield from _fields(value, key)
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    yield f"{key}.{name}", type(item), item
                    yield from _fields(item, f"{key}.{name}")


def _is_float(tp: Any) -> bool:
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)] == [float]
    return tp is float


def section_keys(cfg: Any) -> list[str]:
    return [key for key, _, value in _fields(cfg) if dataclasses.is_dataclass(value)]


def float_keys(cfg: Any) -> list[str]:
    return [key for key, tp, _ in _fields(cfg) if _is_float(tp)]


@pytest.fixture
def nested_yaml(tmp_path) -> Callable[[str, Any], Path]:
    """A function writing the dotted ``key`` (one line per level) with ``value`` to a YAML file."""
    def write(key: str, value: Any) -> Path:
        tree = value
        for part in reversed(key.split(".")):
            tree = {part: tree}
        path = tmp_path / "mine.yaml"
        path.write_text(yaml.safe_dump(tree, default_flow_style=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def first_key_inside() -> Callable[[Any, str], str]:
    """A function giving the name of the first setting inside a section of a config."""
    def first(cfg: Any, section: str) -> str:
        from audioadapt.config.load import to_dict

        tree = to_dict(cfg)
        for part in section.split("."):
            tree = tree[part]
        return next(iter(tree))

    return first


def pytest_generate_tests(metafunc):
    from audioadapt.config.sed import SedExperimentConfig
    from audioadapt.config.ser import SerExperimentConfig

    trees = {"sed": SedExperimentConfig, "ser": SerExperimentConfig}
    for name, cls in trees.items():
        if f"{name}_section" in metafunc.fixturenames:
            metafunc.parametrize(f"{name}_section", section_keys(cls()))
        if f"{name}_float_key" in metafunc.fixturenames:
            metafunc.parametrize(f"{name}_float_key", float_keys(cls()))
