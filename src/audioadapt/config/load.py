"""YAML <-> dataclass conversion with strict key checking and dotted overrides.

Every default lives in a dataclass field. YAML presets and command-line
overrides only *change* values; a key that no dataclass declares is rejected
with the nearest valid key in the message, so a typo can never be a silent
no-op.

Presets are YAML files shipped in ``audioadapt/config/presets``. A preset may
start with ``extends: other_preset`` to inherit from another one; the child's
mappings are merged into the parent's recursively.

Every config file is read with :class:`StrictLoader`: a key given twice in one
mapping is an error (PyYAML would keep the last one), and so is a file without
any setting. A bad value in a file is reported with the file and line of its
key. Numbers must be finite (``inf`` or ``nan`` is never a valid setting), and
a section (a nested dataclass) accepts only a ``key: value`` mapping.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
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
_MERGE_TAG = "tag:yaml.org,2002:merge"


class KeyedConfigError(ConfigError):
    """A :class:`ConfigError` about one dotted config key, kept in ``key``.

    A loader that knows where each key of a file is uses it to add the file
    and line to the message.
    """

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def _bad(where: str, problem: str) -> KeyedConfigError:
    return KeyedConfigError(f"{where}: {problem}", where)


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error.

    The error is a :class:`yaml.constructor.ConstructorError` whose
    ``problem_mark`` is the second occurrence, so every handler of YAML errors
    reports its line.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self._check_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _check_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # "<<: *anchor" merges defaults; own keys may override them
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r} (also on line {first.start_mark.line + 1}); give each key once",
                    key_node.start_mark)


def _nearest(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Valid keys: {', '.join(valid)}."


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _finite_float(value: Any, where: str) -> float:
    """``value`` as a finite float: infinity and NaN are never valid settings."""
    if isinstance(value, str):
        # YAML 1.1 reads "1e-3" (no dot) as a string; accept numeric text.
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(where, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise _bad(where, f"expected a finite number, got {value!r}")
    return float(value)


def _strip_optional(tp: Any) -> Any:
    """``X`` of ``X | None`` (any other annotation unchanged)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _require_mapping(value: Any, tp: Any, where: str) -> None:
    """A section (nested dataclass) or a mapping-valued setting takes ``key: value`` pairs only."""
    base = _strip_optional(tp)
    if isinstance(value, Mapping) or (value is None and base is not tp):
        return
    if dataclasses.is_dataclass(base) and isinstance(base, type):
        raise _bad(where, f"expected a section (key: value mapping), got {value!r}")
    if get_origin(base) in (dict, Mapping):
        raise _bad(where, f"expected a mapping, got {value!r}")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where safe."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        _require_mapping(value, tp, where)
        return from_dict(tp, value, where)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if len(args) < len(get_args(tp)):
                return None
            raise _bad(where, "may not be null")
        if len(args) == 1:  # "X | None": X's own message
            return _coerce(value, args[0], where)
        for arg in args:
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise _bad(where, f"{value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise _bad(where, f"{value!r} is not one of {list(choices)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _bad(where, f"expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _bad(where, f"expected {len(args)} items, got {len(value)}")
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else list(items)
    if origin in (dict, Mapping):
        _require_mapping(value, tp, where)
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(where, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise _bad(where, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        return _finite_float(value, where)
    if tp is str:
        if not isinstance(value, str):
            raise _bad(where, f"expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise _bad(where, f"expected a path, got {value!r}")
        return Path(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _bad(where, f"expected {_type_name(tp)}, got {value!r}")
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
            raise KeyedConfigError(f"unknown config key '{where}.{key}'.{_nearest(key, fields)}", f"{where}.{key}")


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
            raise KeyedConfigError(f"unknown config key '{full}'.{_nearest(key, fields)}", full)
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
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, KeyedConfigError):
            raise
        message = str(exc) if isinstance(exc, ConfigError) else f"{where or cls.__name__}: {exc}"
        # A check of the section as a whole is keyed to the section: a file's error then names its line.
        raise (KeyedConfigError(message, where) if where else ConfigError(message)) from exc


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


def config_differences(a: Any, b: Any, prefix: str = "", *, new_keys: bool = True) -> list[str]:
    """Dotted keys where the config trees ``a`` and ``b`` differ.

    With ``new_keys=False`` keys that only ``b`` has are not differences (a key added to
    the configuration after ``a`` was saved).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in (set(a) | set(b)) if new_keys else set(a):
            out += config_differences(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key),
                                      new_keys=new_keys)
        return out
    return [] if a == b else [prefix or "<root>"]


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.load(raw, Loader=StrictLoader) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': cannot parse value: {getattr(exc, 'problem', None) or exc}") from exc
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


def _path_type(cls: type, parts: list[str], text: str) -> Any:
    """The annotation at a dotted override path; an unknown key names the nearest valid one."""
    current: Any = cls
    for depth, part in enumerate(parts):
        current = _strip_optional(current)
        if get_origin(current) in (dict, Mapping):
            # Below a mapping-valued field any key is allowed; its values keep their type.
            current = (get_args(current) or (Any, Any))[1]
            continue
        if not (dataclasses.is_dataclass(current) and isinstance(current, type)):
            return Any
        fields = {f.name: f for f in dataclasses.fields(current)}
        if part not in fields:
            prefix = ".".join(parts[:depth])
            full = f"{prefix}.{part}" if prefix else part
            raise ConfigError(f"unknown config key '{full}' in override '{text}'.{_nearest(part, fields)}")
        current = get_type_hints(current)[part]
    return current


def inactive_prefix(key: str, inactive: Iterable[str]) -> str | None:
    """The dotted prefix among ``inactive`` (e.g. a config's ``inactive_keys()``) that ``key`` lies under, or ``None``."""
    return next((p for p in inactive if key == p or key.startswith(p + ".")), None)


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
        # Checked one by one: a later "train.lr=..." must not turn a bad "train=abc" into a fresh section.
        _require_mapping(value, _path_type(type(cfg), parts, text), ".".join(parts))
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


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Dotted key -> 1-based line of every key of the mappings under ``node``."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = f"{prefix}.{key_node.value}" if prefix else key_node.value
                out[key] = key_node.start_mark.line + 1
                out.update(_key_lines(value_node, key))
    return out


def _load_yaml(path: Path) -> tuple[dict, dict[str, int]]:
    """The top-level mapping of a config file and the line of each of its dotted keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(f"{path}: the config file holds no settings (it is empty, only comments or null); "
                          "write key: value settings into it, or leave it out")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
    return data, _key_lines(node)


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a config file (read with :class:`StrictLoader`; never empty)."""
    return _load_yaml(Path(path))[0]


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


def _find_preset(text: str) -> Path:
    presets = _preset_files()
    if text in presets:
        return presets[text]
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"no preset or config file '{text}'.{_nearest(text, presets)}")
    return path


def _load_preset(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> tuple[dict, dict[str, str]]:
    """A preset's tree with ``extends`` resolved, and ``file:line`` of each dotted key it sets."""
    text = str(name_or_path)
    path = _find_preset(text)
    if text in seen:
        raise ConfigError(f"{path}: preset inheritance loops through '{text}'")
    data, lines = _load_yaml(path)
    where = {key: f"{path}:{line}" for key, line in lines.items()}
    parent = data.pop(_EXTENDS_KEY, None)
    if parent is None:
        return data, where
    base, base_where = _load_preset(parent, seen + (text,))
    return _merge(base, data), {**base_where, **where}


def load_preset_dict(name_or_path: str | Path) -> dict:
    """Read a preset by name (shipped) or by path, resolving ``extends``."""
    return _load_preset(name_or_path)[0]


def own_preset_dict(name_or_path: str | Path) -> dict:
    """The settings a preset file gives itself: its mapping without ``extends`` (none of its parents' keys)."""
    data, _ = _load_yaml(_find_preset(str(name_or_path)))
    data.pop(_EXTENDS_KEY, None)
    return data


def _locate(key: str, where: Mapping[str, str]) -> str | None:
    """``file:line`` of a dotted key (``a.b[2]`` is looked up as ``a.b``), else of the nearest section above it."""
    key = re.sub(r"\[\d+\]", "", key)
    while key:
        if key in where:
            return where[key]
        key = key.rpartition(".")[0]
    return None


def preset_config(cls: type[T], preset: str | Path | None) -> tuple[T, dict]:
    """``cls`` built from a preset (name or YAML path), and the preset's tree.

    An error names the file and line of the key at fault, else the preset.
    """
    if preset is None:
        return from_dict(cls, {}), {}
    tree, where = _load_preset(preset)
    try:
        return from_dict(cls, tree), tree
    except ConfigError as exc:
        located = _locate(exc.key, where) if isinstance(exc, KeyedConfigError) else None
        raise ConfigError(f"{located or preset}: {exc}") from exc


def load_config(cls: type[T], preset: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Build ``cls`` from an optional preset (name or YAML path) and overrides."""
    cfg, _ = preset_config(cls, preset)
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
    "KeyedConfigError",
    "StrictLoader",
    "apply_overrides",
    "config_differences",
    "from_dict",
    "inactive_prefix",
    "leaf_items",
    "list_presets",
    "list_profiles",
    "load_config",
    "load_preset_dict",
    "own_preset_dict",
    "override_items",
    "preset_config",
    "profile_path",
    "read_yaml",
    "save_config",
    "to_dict",
]
