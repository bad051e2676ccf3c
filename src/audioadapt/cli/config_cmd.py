"""``audioadapt config``: list the shipped presets and benchmark profiles, print a resolved configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: The experiment kinds ``config show`` resolves, and the preset-name prefix of each.
TASKS = ("sed", "ser")


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import IntermixedParser

    p = sub.add_parser("config", help="list presets or print a resolved config")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    lp = csub.add_parser("list", help="list shipped presets (and, with --profiles, benchmark profiles)")
    lp.add_argument("prefix", nargs="?", default="", help="only names starting with this")
    lp.add_argument("--profiles", action="store_true", help="list the benchmark profiles instead")
    lp.set_defaults(func=_list)
    sp = csub.add_parser(
        "show", help="print the resolved configuration of a preset with overrides (YAML)",
        description="Print the configuration a training with PRESET and the overrides would use, every "
        "default included, as the YAML a run saves as config.yaml (it loads again as a preset). Bad keys "
        "and values are reported as `train` reports them.")
    sp.__class__ = IntermixedParser
    sp.add_argument("preset", metavar="PRESET", help="preset name or YAML file")
    sp.add_argument("--task", choices=TASKS,
                    help="sed or ser (default: from the preset's name, sed_* / ser_*, else from its keys)")
    sp.add_argument("overrides", nargs="*", metavar="key.path=value", help="configuration overrides")
    sp.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    from audioadapt.config import list_presets, list_profiles

    for name in (list_profiles if args.profiles else list_presets)(args.prefix):
        print(name)
    return 0


def preset_task(preset: str) -> str:
    """``"sed"`` or ``"ser"`` for a preset: by its name's prefix, else by the top-level keys of its settings.

    Raises
    ------
    ConfigError
        When neither tells (the message asks for ``--task``).
    """
    from dataclasses import fields

    from audioadapt.config.load import load_preset_dict
    from audioadapt.config.sed import SedExperimentConfig
    from audioadapt.config.ser import SerExperimentConfig
    from audioadapt.errors import ConfigError

    name = Path(preset).stem
    for task in TASKS:
        if name.startswith(f"{task}_"):
            return task
    keys = set(load_preset_dict(preset))
    fits = [task for task, cls in zip(TASKS, (SedExperimentConfig, SerExperimentConfig))
            if keys <= {f.name for f in fields(cls)}]
    if len(fits) != 1:
        raise ConfigError(f"{preset}: cannot tell whether this is a SED or a SER configuration; give --task sed "
                          "or --task ser")
    return fits[0]


def resolved_config(preset: str, overrides: list[str], task: str | None = None) -> Any:
    """The configuration a ``train`` command would use for ``preset`` and ``overrides``."""
    from audioadapt.config.sed import load_sed_config
    from audioadapt.config.ser import load_ser_config

    task = task or preset_task(preset)
    return (load_sed_config if task == "sed" else load_ser_config)(preset, overrides)


def _show(args: argparse.Namespace) -> int:
    import yaml

    from audioadapt.config.load import to_dict

    cfg = resolved_config(args.preset, list(args.overrides), args.task)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    return 0
