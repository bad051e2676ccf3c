"""The configuration of a whole SED experiment (Park et al. 2019 and the 2019 mean teacher).

:class:`SedExperimentConfig` nests the configuration dataclasses of the
building blocks; each default lives in the block that uses it and is only
referenced here. The open design choices of the method (see the SED method
notes, section 18) are fields of :class:`SedMethodConfig` or of the blocks it
nests; every one is documented where it is defined.

Presets (``audioadapt/config/presets/sed_*.yaml``) select the six rows of
Park et al.'s Table 1 with two switches, ``method.adversarial`` and
``method.tri_training``, and the DCASE 2019 baseline with
``method.kind: mean_teacher``. ``model.heads`` and ``model.domain.mode`` follow
these switches: leave them out (giving them is an error in a preset or override).
Keys that a run would ignore (e.g. ``method.orthogonality`` without
tri-training) are rejected by :func:`load_sed_config`, so no setting is ever a
silent no-op.

The dataclass defaults are the paper-literal readings of the open choices.
The Table 1 presets take the working readings from ``sed_base.yaml`` (labelers
with a hidden layer and eq. 8 as a per-unit cosine on it, a GRL warm-up then a
small alpha, confident negative pseudo labels); ``sed_paper_*`` (extending
``sed_paper_base.yaml``) are the same rows with the paper-literal readings. A
preset inherits only the settings its row uses.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


from audioadapt.adaptation.domain import DomainConfig
from audioadapt.adaptation.grl import check_coeff_schedule
from audioadapt.adaptation.orthogonality import OrthogonalityConfig
from audioadapt.adaptation.pseudo_labels import PseudoLabelConfig
from audioadapt.adaptation.schedules import ScheduleConfig
from audioadapt.config.load import (apply_overrides, from_dict, inactive_prefix, leaf_items, override_items,
                                    own_preset_dict, preset_config, to_dict)
from audioadapt.data.corpora.desed import SedDataConfig
from audioadapt.data.labels import LabelConfig
from audioadapt.data.sampling import SamplerConfig
from audioadapt.data.sed_dataset import SedDatasetConfig
from audioadapt.errors import ConfigError
from audioadapt.evaluation.decoding import DecodeConfig
from audioadapt.evaluation.psds import PsdsConfig
from audioadapt.evaluation.sed_metrics import SedMetricConfig
from audioadapt.features.config import FeatureConfig
from audioadapt.features.normalization import NormalizerConfig
from audioadapt.models.sed_model import FINAL_HEAD, LABELER_HEADS, SedModelConfig
from audioadapt.training.loop import TrainConfig
from audioadapt.features.store import CacheConfig
from audioadapt.training.sed_data import TRAIN_SOURCES, SedSplitConfig
from audioadapt.training.sed_diagnostics import SedDiagnosticsConfig
from audioadapt.training.sed_mean_teacher import MeanTeacherConfig
from audioadapt.training.sed_predict import SedPredictConfig

log = logging.getLogger(__name__)

AdversarialMode = Literal["none", "whole", "time"]


@dataclass(frozen=True)
class SedLossWeights:
    """Weights of the loss terms (the paper gives none; 1 each).

    Attributes
    ----------
    f1, f2, ft: weight of each head's ``L_y = L_frame + L_clip`` (eq. 1).
    domain: weight of ``L_d`` (eq. 4) for D's own update; the gradient that
        reaches F through the GRL is further scaled by ``grl_weight`` (alpha).
    """

    f1: float = 1.0
    f2: float = 1.0
    ft: float = 1.0
    domain: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) >= 0:
                raise ConfigError(f"method.loss_weights.{f.name} must be >= 0, got {getattr(self, f.name)}")


@dataclass(frozen=True)
class SedMethodConfig:
    """The training method and its open choices.

    Attributes
    ----------
    kind: ``tri_adv`` (Park et al.: all six Table 1 rows) or ``mean_teacher``
        (the DCASE 2019 baseline, on our CRNN and features).
    adversarial: domain classifier D behind a GRL: ``none``, ``whole``
        (Adv.whole, one logit per clip) or ``time`` (Adv.time, per frame).
        Sets ``model.domain.mode``. With ``kind: mean_teacher`` D sits on the
        student (``sed_adv_time_mean_teacher``), with the same ``grl_weight``,
        ``grl_progress`` and ``loss_weights.domain``.
    tri_training: labelers F1, F2 with the orthogonality term in phase 1, a
        pseudo-labelling pass, then phase 2 (Algorithm 1). Without it only
        phase 1 runs, training F and Ft (and D). Sets ``model.heads``.
    grl_weight: schedule of alpha (eq. 5) over the training progress;
        default the Ganin & Lempitsky sigmoid ramp to 1 from the start (the
        Table 1 presets: no reversal for the first 30 % of the run, then a
        ramp to 0.1, ``sed_base.yaml``).
    grl_progress: what the progress counts: ``run`` (both phases together;
        phase 2 keeps full strength) or ``phase`` (the ramp restarts).
    orthogonality: eq. 8 (lambda is its ``weight``, ``ortho_weight`` 1.0;
        first layer, Frobenius normalisation, sum of absolute values; the
        Table 1 presets: the mean per-unit cosine on the labelers' hidden
        layer, ``model.head.labeler_hidden_dim``).
    pseudo_labels: the agreement rule (tau 0.5, weak labels never
        contradicted, frame-level labels, clip labels for U; the Table 1
        presets: negatives only below 0.1, and none for a class the weak
        label marks present).
    pseudo_label_rounds: labelling passes; 1 is Algorithm 1. With ``r > 1``
        phase 2 is cut into ``r`` parts and W, U are relabelled (by the frozen
        F1, F2 on the updated F) before each part.
    loss_weights: weights of the heads' and the domain loss terms.
    synthetic_clip_loss: synthetic clips also get ``L_clip`` (labels implied
        by their events); false gives them frame labels only (2019 baseline).
    phase2_epochs: epochs of phase 2; ``None`` uses ``train.epochs`` (the
        epochs of phase 1), i.e. 100 + 100 by default.
    select_in_last_phase: model selection (``best.pt``) only among the epochs
        of the last phase, i.e. the final classifier Algorithm 1 outputs;
        false selects over the whole run.
    validation: the internal 80/20 splits of the synthetic and weak clips
        whose event F1 + clip F1 select the model (never the validation split).
    predict: which head(s) predict (``ft``), the inference batch size and whether prediction and
        evaluation run the network through ``torch.compile`` (``compile``, default false).
    mean_teacher: settings of ``kind: mean_teacher``.
    diagnostics: what is measured and logged to explain a run (gradients
        reaching F, D's accuracy, saturation, eq. 8, pseudo-label counts).
    """

    kind: Literal["tri_adv", "mean_teacher"] = "tri_adv"
    adversarial: AdversarialMode = DomainConfig.mode
    tri_training: bool = True
    grl_weight: ScheduleConfig = field(default_factory=ScheduleConfig)
    grl_progress: Literal["run", "phase"] = "run"
    orthogonality: OrthogonalityConfig = field(default_factory=OrthogonalityConfig)
    pseudo_labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    pseudo_label_rounds: int = 1
    loss_weights: SedLossWeights = field(default_factory=SedLossWeights)
    synthetic_clip_loss: bool = SedDatasetConfig.weak_from_strong
    phase2_epochs: int | None = None
    select_in_last_phase: bool = True
    validation: SedSplitConfig = field(default_factory=SedSplitConfig)
    predict: SedPredictConfig = field(default_factory=SedPredictConfig)
    mean_teacher: MeanTeacherConfig = field(default_factory=MeanTeacherConfig)
    diagnostics: SedDiagnosticsConfig = field(default_factory=SedDiagnosticsConfig)

    def __post_init__(self) -> None:
        check_coeff_schedule(self.grl_weight, "method.grl_weight")
        if self.pseudo_label_rounds < 1:
            raise ConfigError(f"method.pseudo_label_rounds must be >= 1, got {self.pseudo_label_rounds}")
        if self.phase2_epochs is not None and self.phase2_epochs < 0:
            raise ConfigError(f"method.phase2_epochs must be >= 0 or null, got {self.phase2_epochs}")
        if self.kind == "mean_teacher" and self.tri_training:
            raise ConfigError("method.kind 'mean_teacher' needs method.tri_training: false")

    @property
    def uses_labelers(self) -> bool:
        """True when F1 and F2 are trained (tri-training)."""
        return self.kind == "tri_adv" and self.tri_training

    def heads(self) -> tuple[str, ...]:
        """The heads the model needs."""
        return LABELER_HEADS + (FINAL_HEAD,) if self.uses_labelers else (FINAL_HEAD,)


@dataclass(frozen=True)
class SedPhaseSamplers:
    """Batch composition per phase (sources ``synthetic``, ``weak``, ``unlabeled``).

    ``phase1`` serves phase 1 and every single-phase method (S / W / U, 16 / 16
    / 32 by default: the 2019 baseline's proportions in Park et al.'s batch of
    64). ``phase2`` serves phase 2: ``weak`` rows then carry their weak labels
    and the pseudo frame labels (W and W_psl), ``unlabeled`` rows are U_psl.
    """

    phase1: SamplerConfig = field(default_factory=SamplerConfig)
    phase2: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        for name in ("phase1", "phase2"):
            unknown = sorted(set(getattr(self, name).batch_sizes) - set(TRAIN_SOURCES))
            if unknown:
                raise ConfigError(f"sampler.{name}.batch_sizes names unknown sources {unknown}; "
                                  f"valid: {', '.join(TRAIN_SOURCES)}")


def _default_psds() -> dict[str, PsdsConfig]:
    return {"psds1": PsdsConfig.scenario1(), "psds2": PsdsConfig.scenario2()}


@dataclass(frozen=True)
class SedPsdsConfig:
    """PSDS scenarios added to evaluation reports (not used by Park et al.; DCASE 2020+).

    Attributes
    ----------
    enabled: compute them when evaluating a run.
    scenarios: report name -> parameters (DCASE PSDS1 and PSDS2).
    """

    enabled: bool = True
    scenarios: dict[str, PsdsConfig] = field(default_factory=_default_psds)


@dataclass(frozen=True)
class SedExperimentConfig:
    """Everything one SED training run and its evaluation use.

    Attributes
    ----------
    data: dataset layout, class list and strictness of the metadata readers.
    labels: rounding of event times to output frames.
    features: log-mel front end (cached per split).
    normalizer: feature normalisation (stored in every checkpoint).
    cache: where the feature caches are built.
    model: the network (F, heads, D). ``heads`` and ``domain.mode`` follow
        the method switches.
    sampler: batch composition per phase.
    train: optimisation and bookkeeping (``train.epochs`` = phase-1 epochs).
    method: the method and its open choices.
    decode: post-processing of frame scores into events.
    metrics: event, segment and clip metric settings.
    psds: PSDS scenarios of evaluation reports.
    """

    data: SedDataConfig = field(default_factory=SedDataConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    normalizer: NormalizerConfig = field(default_factory=NormalizerConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    model: SedModelConfig = field(default_factory=SedModelConfig)
    sampler: SedPhaseSamplers = field(default_factory=SedPhaseSamplers)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: SedMethodConfig = field(default_factory=SedMethodConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    metrics: SedMetricConfig = field(default_factory=SedMetricConfig)
    psds: SedPsdsConfig = field(default_factory=SedPsdsConfig)

    def __post_init__(self) -> None:
        m = self.method
        heads = m.heads()
        # Derived from the method switches; load_sed_config rejects explicit values.
        domain = dataclasses.replace(self.model.domain, mode=m.adversarial)
        object.__setattr__(self, "model", dataclasses.replace(self.model, heads=heads, domain=domain))
        unknown = [h for h in m.predict.heads if h not in heads]
        if unknown:
            raise ConfigError(f"method.predict.heads {unknown} are not heads of this method ({list(heads)})")
        p1 = self.sampler.phase1.batch_sizes
        for source in ("synthetic", "weak"):
            if p1.get(source, 0) <= 0:
                raise ConfigError(f"sampler.phase1.batch_sizes.{source} must be positive (labelled rows)")
        if m.kind == "tri_adv" and m.adversarial == "none" and p1.get("unlabeled", 0) > 0:
            raise ConfigError("sampler.phase1.batch_sizes.unlabeled must be 0 without a domain classifier: "
                              "unlabelled rows enter only the domain loss in phase 1")
        self._check_epochs()

    def _check_epochs(self) -> None:
        """Every phase trains: phase 1 (the only one without tri-training) and each part of phase 2."""
        if self.train.epochs < 1:
            raise ConfigError(f"train.epochs={self.train.epochs} trains nothing (it counts the epochs of phase 1, "
                              "the only phase without tri-training); give at least 1")
        rounds = self.method.pseudo_label_rounds
        if self.method.uses_labelers and self.phase2_epochs() < rounds:
            given = ("method.phase2_epochs" if self.method.phase2_epochs is not None
                     else "train.epochs, as method.phase2_epochs is null")
            raise ConfigError(f"phase 2 (training on the pseudo labels) gets {self.phase2_epochs()} epoch(s) "
                              f"({given}) for {rounds} pseudo-labelling round(s): each round needs at least one; "
                              "raise method.phase2_epochs, lower method.pseudo_label_rounds or set "
                              "method.tri_training=false")

    # -- derived ------------------------------------------------------------------
    def phase2_epochs(self) -> int:
        """Epochs of phase 2 (``method.phase2_epochs`` or ``train.epochs``)."""
        value = self.method.phase2_epochs
        return self.train.epochs if value is None else value

    def needed_sources(self) -> tuple[str, ...]:
        """Training sources that some phase draws rows from."""
        samplers = [self.sampler.phase1] + ([self.sampler.phase2] if self.method.uses_labelers else [])
        return tuple(s for s in TRAIN_SOURCES if any(c.batch_sizes.get(s, 0) > 0 for c in samplers))

    def inactive_keys(self) -> dict[str, str]:
        """Dotted key prefixes that this run ignores, with the reason."""
        m = self.method
        out = {"model.heads": "follows method.kind and method.tri_training",
               "model.domain.mode": "follows method.adversarial"}
        if m.kind != "mean_teacher":
            out["method.mean_teacher"] = "method.kind is not mean_teacher"
        else:
            out["method.loss_weights.ft"] = "the mean teacher weighs its terms with method.mean_teacher"
        if not m.uses_labelers:
            why = "there is no tri-training (method.tri_training false or a mean teacher)"
            for key in ("method.orthogonality", "method.pseudo_labels", "method.pseudo_label_rounds",
                        "method.phase2_epochs", "method.select_in_last_phase", "sampler.phase2",
                        "method.loss_weights.f1", "method.loss_weights.f2", "model.head.labeler_hidden_dim"):
                out[key] = why
        if m.adversarial == "none":
            for key in ("method.grl_weight", "method.grl_progress", "method.loss_weights.domain", "model.domain"):
                out[key] = "method.adversarial is none"
        for key, why in m.diagnostics.inactive_keys(m.uses_labelers).items():
            out[f"method.diagnostics.{key}"] = why
        if not self.psds.enabled:
            out["psds.scenarios"] = "psds.enabled is false"
        return out

    def ignored_keys(self, items: Mapping[str, Any]) -> dict[str, str]:
        """The settings among ``items`` (dotted key -> value) that change nothing, with the reason.

        A setting changes nothing when its key is inactive for this run (see
        :meth:`inactive_keys`) and its value differs from the one the run uses
        anyway: the default, or for ``model.heads`` / ``model.domain.mode`` the
        value derived from the method. Restating that value (as a resolved
        ``config.yaml`` does) is harmless and not reported.
        """
        inactive = self.inactive_keys()
        defaults, current = to_dict(SedExperimentConfig()), to_dict(self)
        out = {}
        for key, value in items.items():
            prefix = inactive_prefix(key, inactive)
            if prefix is not None:
                reference = _lookup(current if prefix in _DERIVED else defaults, key)
                if to_dict(value) != reference:
                    out[key] = inactive[prefix]
        return out

    def check_keys(self, items: Mapping[str, Any], where: str = "") -> None:
        """Raise :class:`ConfigError` if any setting in ``items`` would change nothing."""
        bad = self.ignored_keys(items)
        if bad:
            source = f"{where}: " if where else ""
            listed = "; ".join(f"'{k}' ({why})" for k, why in bad.items())
            raise ConfigError(f"{source}setting(s) that would have no effect: {listed}")


#: Keys whose value the method switches derive.
_DERIVED = ("model.heads", "model.domain.mode")
_MISSING = object()


def _without(tree: Mapping[str, Any], prefixes: Iterable[str]) -> dict:
    """A copy of the nested ``tree`` without the subtrees at the dotted ``prefixes`` (and sections left empty)."""
    out = copy.deepcopy(dict(tree))
    for prefix in prefixes:
        *parents, last = prefix.split(".")
        chain, node = [], out
        for part in parents:
            if not isinstance(node.get(part), dict):
                break
            chain.append((node, part))
            node = node[part]
        else:
            node.pop(last, None)
            for parent, part in reversed(chain):
                if not parent[part]:
                    del parent[part]
    return out


def _lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def load_sed_config(preset: str | Path | None = None, overrides: Iterable[str] = ()) -> SedExperimentConfig:
    """Build a :class:`SedExperimentConfig` from a preset (name or YAML path) and dotted overrides.

    Unknown keys and bad values are :class:`~audioadapt.errors.ConfigError`, and
    so are settings the run would ignore (:meth:`SedExperimentConfig.ignored_keys`):
    a preset setting its own switches make inactive, or an override without
    effect. A preset setting that only an override's switch makes inactive
    (e.g. a preset's ``method.phase2_epochs`` with
    ``method.tri_training=false``) is logged as ignored.

    A preset inherits (``extends``) only the settings it uses: a parent's
    setting that the run ignores is left out, so that its key keeps the
    default (e.g. ``sed_base.yaml``'s labeler and GRL settings in
    ``sed_baseline``), and the resolved configuration loads again as a preset.
    """
    overrides = list(overrides)
    own, tree = preset_config(SedExperimentConfig, preset)
    where = str(preset) if preset is not None else ""
    mine = leaf_items(own_preset_dict(preset)) if preset is not None else {}
    own.check_keys(mine, where)
    cfg = override_sed_config(own, overrides)
    inherited = cfg.ignored_keys({k: v for k, v in leaf_items(tree).items() if k not in mine})
    if inherited:
        log.debug("%s: inherited setting(s) this run does not use, left at their defaults: %s", where,
                  ", ".join(inherited))
        inactive = cfg.inactive_keys()
        tree = _without(tree, {inactive_prefix(k, inactive) for k in inherited})
        cfg = override_sed_config(from_dict(SedExperimentConfig, tree), overrides)
    for key, why in cfg.ignored_keys(mine).items():
        log.warning("%s: '%s' is ignored after the overrides (%s)", where, key, why)
    return cfg


def override_sed_config(cfg: SedExperimentConfig, overrides: Iterable[str]) -> SedExperimentConfig:
    """``cfg`` with dotted overrides applied and checked like :func:`load_sed_config`'s."""
    overrides = list(overrides)
    out = apply_overrides(cfg, overrides)
    out.check_keys(override_items(overrides), "overrides")
    return out


__all__ = [
    "AdversarialMode",
    "SedExperimentConfig",
    "SedLossWeights",
    "SedMethodConfig",
    "SedPhaseSamplers",
    "SedPsdsConfig",
    "leaf_items",
    "load_sed_config",
    "override_sed_config",
]
