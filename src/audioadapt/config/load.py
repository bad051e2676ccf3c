"""YAML <-> dataclass conversion with strict key checking and dotted overrides.

Every default lives in a dataclass field. YAML presets and command-line
overrides only *change* values; a key that no dataclass declares is rejected
with the nearest valid key in the message, so a typo can never be a silent
no-op.

Presets are YAML files shipped in ``audioadapt/config/presets``. A preset may
start with ``extends: other_preset`` to inherit from another one; the child's
mappings are merged into the parent's recursively.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from audioadapt.errors import ConfigError

T = TypeVar("T")

_PRESET_PACKAGE = "audioadapt.config.presets"
_PROFILE_PACKAGE = "audioadapt.config.profiles"
_EXTENDS_KEY = "extends"


def _nearest(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Valid keys: {', '.join(valid)}."


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where safe."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: may not be null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else list(items)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-3" (no dot) as a string; accept numeric text.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(f"unknown config key '{where}.{key}'.{_nearest(key, fields)}")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, rejecting unknown keys.

    Missing keys keep the dataclass default; nested dataclasses are built
    recursively. ``where`` is the dotted path used in error messages.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    for key in data:
        if key not in fields:
            full = f"{where}.{key}" if where else key
            raise ConfigError(f"unknown config key '{full}'.{_nearest(key, fields)}")
    kwargs = {}
    for name, value in data.items():
        full = f"{where}.{name}" if where else name
        default = _field_default(fields[name])
        if isinstance(value, Mapping) and dataclasses.is_dataclass(default) and not isinstance(default, type):
            # A partial mapping changes only the keys it names: merge it into
            # the field's own default instance, which may differ from the
            # nested class's defaults.
            _check_keys(type(default), value, full)
            value = _merge(to_dict(default), value)
        kwargs[name] = _coerce(value, hints[name], full)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-YAML view of a config dataclass (tuples become lists, paths strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': cannot parse value: {exc}") from exc
    return key.split("."), value


def leaf_items(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of the leaves of a nested mapping (a preset or a config tree)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(leaf_items(value, path))
        else:
            out[path] = value
    return out


def override_items(overrides: Iterable[str]) -> dict[str, Any]:
    """``key.path=value`` texts as a ``{"key.path": value}`` mapping (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for text in overrides:
        parts, value = _parse_override(text)
        out[".".join(parts)] = value
    return out


def _check_path(cls: type, parts: list[str], text: str) -> None:
    """Walk the dataclass tree so a bad override names the nearest valid key."""
    current: Any = cls
    for depth, part in enumerate(parts):
        if not (dataclasses.is_dataclass(current) and isinstance(current, type)):
            # Below a mapping-valued field any key is allowed.
            return
        fields = {f.name: f for f in dataclasses.fields(current)}
        if part not in fields:
            prefix = ".".join(parts[:depth])
            full = f"{prefix}.{part}" if prefix else part
            raise ConfigError(f"unknown config key '{full}' in override '{text}'.{_nearest(part, fields)}")
        tp = get_type_hints(current)[part]
        args = [a for a in get_args(tp) if a is not type(None)]
        current = args[0] if get_origin(tp) in (Union, types.UnionType) and len(args) == 1 else tp


def _set_path(tree: dict, parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Return a copy of ``cfg`` with ``key.path=value`` overrides applied.

    Values are parsed as YAML scalars or flow collections (``1e-3``,
    ``true``, ``[16, 16, 32]``); the result is validated like a preset.
    """
    overrides = list(overrides)
    if not overrides:
        return cfg
    tree = to_dict(cfg)
    for text in overrides:
        parts, value = _parse_override(text)
        _check_path(type(cfg), parts, text)
        _set_path(tree, parts, value)
    return from_dict(type(cfg), tree)


def _merge(base: dict, child: Mapping) -> dict:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
    return data


def _preset_files(package: str = _PRESET_PACKAGE) -> dict[str, Path]:
    root = resources.files(package)
    out = {}
    for entry in root.iterdir():
        name = entry.name
        if name.endswith(".yaml"):
            out[name[: -len(".yaml")]] = Path(str(entry))
    return out


def list_presets(prefix: str = "") -> list[str]:
    """Names of the shipped presets, optionally only those starting with ``prefix``."""
    return sorted(n for n in _preset_files() if n.startswith(prefix))


def list_profiles(prefix: str = "") -> list[str]:
    """Names of the shipped benchmark profiles (partial configs applied to every benchmark row)."""
    return sorted(n for n in _preset_files(_PROFILE_PACKAGE) if n.startswith(prefix))


def profile_path(name_or_path: str | Path) -> Path:
    """The YAML file of a shipped profile (by name) or of a profile path."""
    text = str(name_or_path)
    shipped = _preset_files(_PROFILE_PACKAGE)
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"no profile or config file '{text}'.{_nearest(text, shipped)}")
    return path


def load_preset_dict(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> dict:
    """Read a preset by name (shipped) or by path, resolving ``extends``."""
    text = str(name_or_path)
    presets = _preset_files()
    if text in presets:
        path = presets[text]
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(
                f"no preset or config file '{text}'.{_nearest(text, presets)}"
            )
    if text in _seen:
        raise ConfigError(f"{path}: preset inheritance loops through '{text}'")
    data = _read_yaml(path)
    parent = data.pop(_EXTENDS_KEY, None)
    if parent is not None:
        base = load_preset_dict(parent, _seen + (text,))
        data = _merge(base, data)
    return data


def load_config(cls: type[T], preset: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Build ``cls`` from an optional preset (name or YAML path) and overrides."""
    data = load_preset_dict(preset) if preset is not None else {}
    where = str(preset) if preset is not None else ""
    try:
        cfg = from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from exc
    return apply_overrides(cfg, overrides)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = [
    "apply_overrides",
    "from_dict",
    "leaf_items",
    "list_presets",
    "list_profiles",
    "load_config",
    "load_preset_dict",
    "override_items",
    "profile_path",
    "save_config",
    "to_dict",
]
