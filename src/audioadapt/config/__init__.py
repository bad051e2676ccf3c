"""Typed configuration: dataclasses, YAML presets and dotted overrides."""

from audioadapt.config.load import (
    apply_overrides,
    from_dict,
    list_presets,
    list_profiles,
    load_config,
    load_preset_dict,
    save_config,
    to_dict,
)

__all__ = [
    "apply_overrides",
    "from_dict",
    "list_presets",
    "list_profiles",
    "load_config",
    "load_preset_dict",
    "save_config",
    "to_dict",
]
