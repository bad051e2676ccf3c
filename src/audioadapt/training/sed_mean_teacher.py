"""The DCASE 2019 task 4 baseline method (mean teacher) on our CRNN and features.

As in ``turpaultn/DCASE2019_task4`` ``baseline/main.py``:

* the student learns from BCE on frame labels (synthetic rows) and clip labels
  (weak rows; synthetic rows too unless ``method.synthetic_clip_loss`` is
  false, which the mean-teacher preset sets, as the 2019 code does);
* a consistency MSE between student and teacher probabilities, on the strong
  **and** the weak outputs of **all** rows, weighted by
  ``consistency_weight * exp(-5 (1 - t/T)^2)``, ``T`` being the first
  ``rampup_fraction`` of training (counted in steps through the run progress);
* the teacher sees the input with ``|N(0, sigma)|`` noise added to the
  **linear** mel (before the log) and is an EMA of the student's parameters
  after every optimizer step, ``alpha = min(1 - 1/(s + 1), ema_decay)`` with
  ``s`` the number of earlier updates (so the first update copies the student);
* the teacher runs in train mode during training (batch statistics and
  dropout, as both reference implementations do); its outputs get no gradient.

With ``method.adversarial`` ``time`` (preset ``sed_adv_time_mean_teacher``,
beyond the paper) or ``whole``, the student also has Park et al.'s domain
classifier D behind the gradient reversal layer: the domain loss of all rows
(synthetic vs real) is added with ``method.loss_weights.domain`` and alpha
follows ``method.grl_weight`` as in the Adv.* rows
(:mod:`~audioadapt.training.sed_adversarial`). The teacher stays the EMA of
the student (D included, never run).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from audioadapt.adaptation.losses import Divisor, clip_bce, frame_bce, masked_mean
from audioadapt.data.batch import SedBatch
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import FINAL_HEAD, SedModel, SedOutput
from audioadapt.training.method import Method, PhaseSpec, StepContext, StepOutput
from audioadapt.training.sed_adversarial import domain_loss, set_grl_coefficient
from audioadapt.training.sed_diagnostics import SedDiagnostics
from audioadapt.training.sed_predict import model_networks, run_model, selection_metrics

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.sed import SedExperimentConfig
    from audioadapt.training.loop import TrainConfig
    from audioadapt.training.sed_data import SedDataModule

TEACHER_PREFIX = "teacher_"


@dataclass(frozen=True)
class MeanTeacherConfig:
    """Mean-teacher settings (DCASE 2019 baseline values).

    Attributes
    ----------
    consistency_weight: maximum weight of the consistency terms (2).
    rampup_fraction: share of the run over which the weight ramps up
        (the first 50 of 100 epochs).
    ema_decay: upper bound of the EMA coefficient (0.999).
    teacher_noise: ``linear_mel`` adds ``|N(0, teacher_noise_std)|`` to the
        linear mel under the teacher's log-mel input; ``none`` adds nothing.
    teacher_noise_std: sigma of that noise (the 2019 code uses 0.25).
    predict: which model validation and evaluation use (2019: the student).
    """

    consistency_weight: float = 2.0
    rampup_fraction: float = 0.5
    ema_decay: float = 0.999
    teacher_noise: Literal["linear_mel", "none"] = "linear_mel"
    teacher_noise_std: float = 0.25
    predict: Literal["student", "teacher"] = "student"

    def __post_init__(self) -> None:
        if self.consistency_weight < 0:
            raise ConfigError(f"consistency_weight must be >= 0, got {self.consistency_weight}")
        if not 0.0 < self.rampup_fraction <= 1.0:
            raise ConfigError(f"rampup_fraction must lie in (0, 1], got {self.rampup_fraction}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.teacher_noise_std < 0:
            raise ConfigError(f"teacher_noise_std must be >= 0, got {self.teacher_noise_std}")


def consistency_rampup(progress: float, rampup_fraction: float) -> float:
    """``exp(-5 (1 - t)^2)`` with ``t = min(progress / rampup_fraction, 1)``: 0.0067 at the start, 1 after."""
    t = min(max(progress, 0.0) / rampup_fraction, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def ema_coefficient(updates_before: int, max_decay: float) -> float:
    """``min(1 - 1 / (s + 1), max_decay)`` for the ``s``-th update (0-based)."""
    return min(1.0 - 1.0 / (updates_before + 1), max_decay)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, alpha: float) -> None:
    """``teacher = alpha * teacher + (1 - alpha) * student`` on the parameters (not the buffers)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)


def linear_mel_noise(features: torch.Tensor, cfg: FeatureConfig, std: float, db_multiplier: float) -> torch.Tensor:
    """Add ``|N(0, std)|`` to the linear mel under log-mel ``features``, then take the log again.

    ``db_multiplier`` is the feature extractor's (``LogMel.db_multiplier``) for ``log: db``. The
    noise comes from torch's global generator (seeded and checkpointed by the Trainer).
    """
    noise = torch.randn_like(features).abs() * std
    if cfg.log == "db":
        linear = torch.pow(10.0, features / db_multiplier)
        out = db_multiplier * torch.log10(torch.clamp(linear + noise, min=cfg.amin))
        if cfg.db_range is not None:
            out = torch.clamp(out, min=cfg.db_range[0], max=cfg.db_range[1])
        return out
    linear = torch.exp(features) - cfg.log_offset
    return torch.log(torch.clamp(linear + noise, min=0.0) + cfg.log_offset)


def _masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None,
                divisor: Divisor | None = None) -> torch.Tensor:
    """Mean squared difference over the valid frames (``mask (batch, frame)``) of ``(batch, frame, class)``.

    ``divisor`` as in :mod:`audioadapt.adaptation.losses` (the global count under DDP).
    """
    sq = (a - b) ** 2
    valid = torch.ones_like(sq, dtype=torch.bool) if mask is None else mask.unsqueeze(-1).expand_as(sq)
    return masked_mean(sq, valid, divisor)


class SedMeanTeacherMethod(Method):
    """Student/teacher training of the DCASE 2019 baseline (one phase, ``train.epochs`` epochs), optionally with D."""

    selection_metric = "selection"
    selection_mode = "max"

    def __init__(self, cfg: "SedExperimentConfig", model: SedModel, normalizer: Normalizer,
                 data: "SedDataModule"):
        from audioadapt.features.logmel import LogMel

        if tuple(model.heads.keys()) != (FINAL_HEAD,):
            raise ConfigError("the mean teacher needs a model with the single head 'ft'")
        if (model.domain is not None) != (cfg.method.adversarial != "none"):
            raise ConfigError(f"method.adversarial is {cfg.method.adversarial!r} but the model "
                              f"{'has' if model.domain is not None else 'lacks'} a domain classifier")
        self.cfg = cfg
        self.mt = cfg.method.mean_teacher
        self.student = model
        self.teacher = copy.deepcopy(model).requires_grad_(False)
        self.normalizer = normalizer
        self.data = data
        self.db_multiplier = LogMel(cfg.features).db_multiplier
        self.diagnostics = SedDiagnostics(cfg.method.diagnostics)
        self._outputs: SedOutput | None = None  # the student's outputs of the step in progress, for the diagnostics

    @property
    def adversarial(self) -> bool:
        """True when the student has a domain classifier behind the GRL."""
        return self.student.domain is not None

    def networks(self) -> dict[str, torch.nn.Module]:
        return {**model_networks(self.student), **model_networks(self.teacher, TEACHER_PREFIX)}

    def phases(self, config: "TrainConfig") -> Sequence[PhaseSpec]:
        trainable = ("encoder", FINAL_HEAD) + (("domain",) if self.adversarial else ())
        return (PhaseSpec("train", config.epochs, trainable),)

    def train_loader(self, phase: PhaseSpec, ctx: StepContext):
        return self.data.train_loader(self.cfg.sampler.phase1, rank=ctx.dist.rank, world_size=ctx.dist.world_size,
                                      num_workers=ctx.config.num_workers, pin_memory=ctx.device.type == "cuda")

    def setup(self, ctx: StepContext) -> None:
        self.normalizer.to(ctx.device)

    def consistency_weight(self, ctx: StepContext) -> float:
        return self.mt.consistency_weight * consistency_rampup(ctx.run_progress, self.mt.rampup_fraction)

    def compute_losses(self, batch: SedBatch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Unweighted terms: ``frame``, ``clip`` (student BCE), ``consistency_strong``, ``consistency_weak``
        and, with a domain classifier, ``domain`` (eq. 4 through the GRL)."""
        if self.adversarial:
            set_grl_coefficient(self.student, self.cfg.method, ctx)
        out = run_model(self.student, self.normalizer, batch, (FINAL_HEAD,), domain=self.adversarial)
        noisy = batch.features
        if self.mt.teacher_noise == "linear_mel" and self.mt.teacher_noise_std > 0:
            noisy = linear_mel_noise(batch.features, self.cfg.features, self.mt.teacher_noise_std, self.db_multiplier)
        with torch.no_grad():
            self.teacher.train()
            teacher = run_model(self.teacher, self.normalizer, batch, (FINAL_HEAD,), domain=False, features=noisy)
        s, t = out[FINAL_HEAD], teacher[FINAL_HEAD]
        divisor = ctx.dist.all_reduce_mean if ctx.dist.enabled else None  # global-batch means under DDP
        terms = {
            "frame": frame_bce(s.frame_logits, batch.strong, out.frame_mask, divisor),
            "clip": clip_bce(s.clip_logits, batch.weak, divisor),
            "consistency_strong": _masked_mse(s.frame_probs, t.frame_probs.detach(), out.frame_mask, divisor),
            "consistency_weak": ((s.clip_probs - t.clip_probs.detach()) ** 2).mean(),
        }
        if self.adversarial:
            terms["domain"] = domain_loss(self.student, out, batch, divisor)
        self._outputs = out
        return terms

    def training_step(self, batch: SedBatch, ctx: StepContext) -> StepOutput:
        terms = self.compute_losses(batch, ctx)
        weight = self.consistency_weight(ctx)
        loss = terms["frame"] + terms["clip"] + weight * (terms["consistency_strong"] + terms["consistency_weak"])
        logs = {**{k: v.detach() for k, v in terms.items()}, "consistency_weight": weight}
        if self.adversarial:
            loss = loss + self.cfg.method.loss_weights.domain * terms["domain"]
            logs["grl_weight"] = self.student.grl.coeff
        logs.update(self._diagnostic_logs(batch, ctx, terms, weight))
        return StepOutput(loss, logs)

    def _diagnostic_logs(self, batch: SedBatch, ctx: StepContext, terms: Mapping[str, torch.Tensor],
                         weight: float) -> dict[str, float]:
        """The step's diagnostics (:mod:`~audioadapt.training.sed_diagnostics`): the terms reaching F are the
        supervised BCE (``ft``), the weighted consistency and, with D, the weighted domain loss."""
        out, self._outputs = self._outputs, None
        parts = {"ft": terms["frame"] + terms["clip"],
                 "consistency": weight * (terms["consistency_strong"] + terms["consistency_weak"])}
        if "domain" in terms:
            parts["domain"] = self.cfg.method.loss_weights.domain * terms["domain"]
        return self.diagnostics.step_logs(ctx, out, batch, parts, encoder=self.student.encoder,
                                          classification=("ft",))

    def after_optimizer_step(self, batch: SedBatch, ctx: StepContext) -> None:
        ema_update(self.teacher, self.student, ema_coefficient(ctx.step - 1, self.mt.ema_decay))

    def validate(self, ctx: StepContext) -> Mapping[str, float]:
        model = self.student if self.mt.predict == "student" else self.teacher
        p = self.cfg.method.predict
        return selection_metrics(model, self.normalizer, self.data, p.heads, p.batch_size, self.cfg.decode,
                                 self.cfg.metrics, ctx.device)


__all__ = [
    "TEACHER_PREFIX",
    "MeanTeacherConfig",
    "SedMeanTeacherMethod",
    "consistency_rampup",
    "ema_coefficient",
    "ema_update",
    "linear_mel_noise",
]
