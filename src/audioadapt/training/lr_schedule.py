"""Learning-rate schedules within a phase: each phase's optimizer starts at its learning rate.

``constant`` keeps it; ``cosine`` anneals it by half a cosine to ``final`` times it at the
phase's last step. The factor is a function of the step within the phase only, so that a
resumed run takes up the schedule where it stopped without saved scheduler state.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

LrSchedule = Literal["constant", "cosine"]
#: Param-group key holding a group's learning rate before any schedule factor.
BASE_LR = "initial_lr"


def lr_factor(kind: LrSchedule, step: int, total: int, final: float = 0.0) -> float:
    """The multiplier of the base learning rate at ``step`` (0-based) of ``total`` steps of a phase."""
    if kind == "constant" or total <= 1:
        return 1.0
    if kind == "cosine":
        progress = min(max(step / (total - 1), 0.0), 1.0)
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown learning-rate schedule {kind!r}")


def remember_base_lr(optimizer: torch.optim.Optimizer) -> None:
    """Record each param group's learning rate as its base (kept when already recorded, e.g. by a checkpoint)."""
    for group in optimizer.param_groups:
        group.setdefault(BASE_LR, group["lr"])


def apply_lr_factor(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set each param group's learning rate to its base times ``factor``."""
    for group in optimizer.param_groups:
        group["lr"] = group[BASE_LR] * factor


__all__ = ["BASE_LR", "LrSchedule", "apply_lr_factor", "lr_factor", "remember_base_lr"]
