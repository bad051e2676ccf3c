"""The shared training loop: a method plugs hooks into one :class:`Trainer`.

``method`` holds the hook protocol, ``loop`` the Trainer and its
``TrainConfig``, ``checkpoint`` the safe checkpoint format, ``logging`` the
CSV / TensorBoard / progress-bar output, ``distributed`` the DDP support and
``experiment`` run directories, seeds and versions.
"""

from audioadapt.training.checkpoint import load_checkpoint, restore_networks, save_checkpoint
from audioadapt.training.distributed import DistInfo, cleanup_distributed, init_distributed
from audioadapt.training.experiment import Experiment, seed_everything, start_experiment
from audioadapt.training.loop import FitResult, TrainConfig, Trainer
from audioadapt.training.method import Method, PhaseSpec, StepContext, StepOutput

__all__ = [
    "DistInfo",
    "Experiment",
    "FitResult",
    "Method",
    "PhaseSpec",
    "StepContext",
    "StepOutput",
    "TrainConfig",
    "Trainer",
    "cleanup_distributed",
    "init_distributed",
    "load_checkpoint",
    "restore_networks",
    "save_checkpoint",
    "seed_everything",
    "start_experiment",
]
