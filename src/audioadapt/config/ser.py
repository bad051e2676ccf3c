"""The configuration of a whole cross-lingual SER experiment (NNPM, its ablations and DANN).

:class:`SerExperimentConfig` nests the configuration dataclasses of the
building blocks; every default lives in the block that uses it (and the
speech features in the ``ser_features`` preset) and is only referenced here.
The choices the NNPM paper leaves open (tagged [D] in the SER method notes)
are fields with the notes' defaults; the reconstructed equations ([R]) are
implemented by the blocks:

==========================  ======================================================
setting                     default (tag)
==========================  ======================================================
features                    16 kHz, Hann 400, FFT 512, hop 160, 80 mels,
                            ``log(x + 1e-6)`` ([P] + [D], ``ser_features`` preset)
normalizer                  per-utterance mean/variance over valid frames ([D])
dataset.crop_seconds        7.5 s: random crop in training, first 7.5 s at test ([P]/[D])
dataset.frontend            silence at both ends trimmed (40 dB below the loudest frame),
                            loudness -23 dBFS, per utterance before the crop ([D])
model                       SNSA conv1d 80->128->128, BLSTM 2x88, ``d_a`` 64, FC(4) ([D])
memory                      one slot per source utterance, rate 0 -> 0.4 weighting
                            the old slot (MMCL convention), 0.4 in the last epoch;
                            dropout-free (eval-mode) features meet the memory ([R]/[D])
pseudo_multilabel           threshold 0.9 ([P]), empty sets keep the negative term ([D])
losses                      delta 1, r 0.01 of the slots, negatives of other emotions
                            than the positive set's, y_neg -1, lambda 1 ([D])
stage1                      Adam, lr 1e-3, 50 epochs, 32 source utterances per step,
                            model selected on the source validation UA ([D])
stage2                      Adam, lr 1e-4, 50 epochs ([P]) over the longer side,
                            32 source + 32 target per step ([D]), first 2 conv layers
                            frozen ([P]), last epoch
source_validation           IEMOCAP Session 5 (speakers Ses05F, Ses05M) ([D])
diagnostics                 pseudo-multilabel and loss diagnostics; no target label read
protocol                    the paper's split ([P]; see :mod:`audioadapt.data.protocols`)
method.mask_padding         padded frames never reach the BLSTM or the attention ([D])
==========================  ======================================================

``method.kind`` picks the system: ``snsa_f`` (stage 1 only), ``nnpm``,
``snsa_wo_sl`` (no source loss in stage 2), ``snsa_wo_hl`` (every eligible
negative instead of the mined hardest ones; ``losses.target_loss=mse_all``
gives eq. 6 over all slots instead) and ``dann`` (source CE + domain BCE
through a gradient reversal layer, the adversarial baseline of the paper's
Table 2). ``losses.target_loss`` and ``losses.source_loss`` follow the kind;
settings that the chosen kind would ignore (e.g. ``memory`` for ``dann``,
``stage2`` for ``snsa_f``) are rejected unless they keep their default, so no
setting is ever a silent no-op. ``train.epochs`` and ``train.lr`` are replaced
by ``stage1`` / ``stage2`` and rejected as well.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from audioadapt.adaptation.grl import check_coeff_schedule
from audioadapt.adaptation.memory import MemoryConfig
from audioadapt.adaptation.nnpm_losses import NnpmLossConfig
from audioadapt.adaptation.pseudo_multilabel import PseudoMultilabelConfig
from audioadapt.adaptation.schedules import ScheduleConfig
from audioadapt.config.ser_corpus import (  # noqa: F401  (re-exported)
    GENERATED,
    SerCorpusConfig,
    loader_options,
    parse_corpus_spec,
)
from audioadapt.config.load import (
    apply_overrides,
    from_dict,
    leaf_items,
    load_preset_dict,
    override_items,
    preset_config,
    to_dict,
)
from audioadapt.data.protocols import ProtocolConfig
from audioadapt.data.ser_dataset import SerDatasetConfig
from audioadapt.data.ser_frontend import check_frontend_features
from audioadapt.errors import ConfigError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.normalization import NormalizerConfig
from audioadapt.models.ser_model import SerModelConfig
from audioadapt.training.loop import TrainConfig
from audioadapt.features.store import CacheConfig

MethodKind = Literal["snsa_f", "nnpm", "snsa_wo_sl", "snsa_wo_hl", "dann"]
METHOD_KINDS: tuple[str, ...] = ("snsa_f", "nnpm", "snsa_wo_sl", "snsa_wo_hl", "dann")
#: Kinds whose stage 2 uses the memory bank and pseudo multilabels.
MEMORY_KINDS: tuple[str, ...] = ("nnpm", "snsa_wo_sl", "snsa_wo_hl")
#: ``(losses.target_loss values allowed, losses.source_loss)`` of each memory kind (notes section 7); the
#: first target loss is the kind's default. SNSA-wo-HL drops the mining only (``all_negatives``); its
#: earlier reading, eq. 6 over every slot (``mse_all``), stays selectable.
LOSS_SWITCHES: Mapping[str, tuple[tuple[str, ...], bool]] = {
    "nnpm": (("hard_negative",), True),
    "snsa_wo_sl": (("hard_negative",), False),
    "snsa_wo_hl": (("all_negatives", "mse_all"), True),
}


def allowed_loss_switches(kind: str) -> tuple[tuple[str, ...], bool]:
    """``(losses.target_loss values allowed, losses.source_loss)`` of a method kind (defaults without memory)."""
    default = NnpmLossConfig()
    return LOSS_SWITCHES.get(kind, ((default.target_loss,), default.source_loss))


def loss_switches(kind: str) -> tuple[str, bool]:
    """``(losses.target_loss, losses.source_loss)`` a method kind sets by default."""
    allowed, source_loss = allowed_loss_switches(kind)
    return allowed[0], source_loss


#: The preset holding the speech-feature defaults.
FEATURE_PRESET = "ser_features"


SOURCE_VALIDATION_KINDS: tuple[str, ...] = ("none", "speakers", "held_out_speakers", "stratified")


@dataclass(frozen=True)
class SourceValidationConfig:
    """The held-out source part that selects the stage-1 model (notes section 10, [D]).

    Stage 1 trains on the rest of the source corpus and keeps the epoch with
    the best source-validation UA; stage 2 uses **every** source utterance
    (memory slots and source batches) and keeps its last epoch. Target labels
    never select anything.

    Attributes
    ----------
    kind: ``speakers`` (hold out ``speakers``), ``held_out_speakers``
        (whole speakers chosen from ``random_state`` to hold about
        ``fraction`` of the utterances with the corpus's class proportions,
        as the target's held-out-speaker protocol chooses them: selection on
        voices stage 1 never heard), ``stratified`` (a random ``fraction``
        with the class proportions of the corpus; its speakers and sentences
        are also in training, which flatters the selection) or ``none`` (no
        selection: stage 1 keeps its last epoch).
    speakers: held-out source speakers of ``speakers``; default IEMOCAP Session 5.
    fraction: share of the source utterances of ``held_out_speakers`` and ``stratified``.
    random_state: seed of ``held_out_speakers`` and ``stratified``.
    candidates: random speaker orders ``held_out_speakers`` tries.
    """

    kind: Literal["none", "speakers", "held_out_speakers", "stratified"] = "speakers"
    speakers: tuple[str, ...] = ("Ses05F", "Ses05M")
    fraction: float = 0.2
    random_state: int = 0
    candidates: int = ProtocolConfig.held_out_candidates

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_VALIDATION_KINDS:
            raise ConfigError(f"source_validation.kind must be one of {list(SOURCE_VALIDATION_KINDS)}, got "
                              f"{self.kind!r}")
        if self.candidates < 1:
            raise ConfigError(f"source_validation.candidates must be at least 1, got {self.candidates}")
        if self.kind == "speakers" and not self.speakers:
            raise ConfigError("source_validation.kind 'speakers' needs source_validation.speakers")
        if not 0.0 < self.fraction < 1.0:
            raise ConfigError(f"source_validation.fraction must lie in (0, 1), got {self.fraction}")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


def _check_positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{where}.{name} must be positive, got {value}")


@dataclass(frozen=True)
class SerStage1Config:
    """Stage 1: supervised source training (Adam).

    Attributes
    ----------
    epochs: passes over the source training part (notes: at most 50, with
        source-validation selection).
    lr: Adam learning rate.
    batch_size: source utterances per step and rank (under DDP the global
        batch is ``world_size`` times this).
    """

    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"stage1.epochs must be >= 0, got {self.epochs}")
        _check_positive("stage1", lr=self.lr, batch_size=self.batch_size)


@dataclass(frozen=True)
class SerStage2Config:
    """Stage 2: adaptation (NNPM, its ablations, DANN), Adam.

    An epoch is ``epoch_length`` steps: one pass over the whole source set,
    over the target adaptation side, or over the longer of the two; the
    other side is reshuffled and cycled when it runs out. The last epoch is
    the result.

    Attributes
    ----------
    epochs: stage-2 epochs (paper: 50; the memory rate reaches its end over them).
    epoch_length: ``longer`` (default: a small source no longer cuts the
        adaptation short: 339 EMO-DB utterances against 400 URDU ones give 13
        steps per epoch instead of 11), ``source`` (one pass over the source
        set, the notes' reading) or ``target``.
    lr: Adam learning rate.
    source_batch_size, target_batch_size: utterances of each side per step
        and rank (under DDP the global batch is ``world_size`` times these).
    freeze_conv: the first N conv layers stay frozen (paper: 2, the whole
        front end; Table 3 varies it over 0, 1, 2).
    init_from: start from this stage-1 checkpoint (a ``.pt`` file or a run
        directory, e.g. of an ``snsa_f`` run) instead of running stage 1 in
        this run; its model and feature settings must match.
    """

    epochs: int = 50
    epoch_length: Literal["longer", "source", "target"] = "longer"
    lr: float = 1e-4
    source_batch_size: int = 32
    target_batch_size: int = 32
    freeze_conv: int = 2
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.freeze_conv < 0:
            raise ConfigError(f"stage2.epochs and stage2.freeze_conv must be >= 0, got {self.epochs}, "
                              f"{self.freeze_conv}")
        _check_positive("stage2", lr=self.lr, source_batch_size=self.source_batch_size,
                        target_batch_size=self.target_batch_size)
        if self.epoch_length not in EPOCH_LENGTHS:
            raise ConfigError(f"stage2.epoch_length must be one of {list(EPOCH_LENGTHS)}, got {self.epoch_length!r}")


#: What one stage-2 epoch passes over (see :attr:`SerStage2Config.epoch_length`).
EPOCH_LENGTHS: tuple[str, ...] = ("longer", "source", "target")


@dataclass(frozen=True)
class SerDiagnosticsConfig:
    """What stage 2 logs besides its losses (:mod:`audioadapt.adaptation.nnpm_diagnostics`).

    Attributes
    ----------
    target_truth: also measure the pseudo multilabels against the **true**
        emotions of the target adaptation side (``pml_purity``,
        ``pml_vote_accuracy``, ``head_target_accuracy``). Off by default: it
        reads target labels, which then reach the logs only, never training
        or selection (a test trains with scrambled target labels and gets the
        same weights).
    gradient_every: every this many optimizer steps of stage 2, measure the
        L2 norm of the gradient that each loss term sends to the encoder's
        trainable parameters (``grad_source``, ``grad_target`` and its parts
        ``grad_target_positive`` / ``grad_target_negative``, ``grad_domain``
        for DANN, ``grad_total``) and the cosine between the target (or
        domain) term's gradient and the source term's; 0 (default) = off.
        Each measurement costs one backward per term; training is unchanged.
    """

    target_truth: bool = False
    gradient_every: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.gradient_every, bool) or self.gradient_every < 0:
            raise ConfigError(f"diagnostics.gradient_every must be 0 (off) or a positive number of steps, "
                              f"got {self.gradient_every}")


@dataclass(frozen=True)
class SerDannConfig:
    """The DANN baseline's stage 2: ``L = L_s + weight * L_d`` with a GRL before D.

    Attributes
    ----------
    grl_weight: gradient-reversal coefficient over the stage-2 progress
        (Ganin & Lempitsky's sigmoid ramp to 1, updated every step).
    domain_weight: weight of the domain loss for D's own update.
    """

    grl_weight: ScheduleConfig = field(default_factory=ScheduleConfig)
    domain_weight: float = 1.0

    def __post_init__(self) -> None:
        check_coeff_schedule(self.grl_weight, "dann.grl_weight")
        if not (math.isfinite(self.domain_weight) and self.domain_weight >= 0):
            raise ConfigError(f"dann.domain_weight must be finite and >= 0, got {self.domain_weight}")


@dataclass(frozen=True)
class SerMethodConfig:
    """Which system trains, and how the networks see the data.

    Attributes
    ----------
    kind: ``snsa_f``, ``nnpm``, ``snsa_wo_sl``, ``snsa_wo_hl`` or ``dann``
        (see the module docstring).
    mask_padding: padded frames (short utterances in a batch) are masked:
        the BLSTM runs on packed sequences and the attention gives them no
        weight, so an utterance is encoded as if it were alone. False feeds
        the zero padding like the paper's fixed 7.5 s input.
    predict_batch_size: utterances per inference batch (memory
        initialisation, source validation, prediction).
    """

    kind: MethodKind = "nnpm"
    mask_padding: bool = True
    predict_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.kind not in METHOD_KINDS:
            raise ConfigError(f"method.kind must be one of {list(METHOD_KINDS)}, got {self.kind!r}")
        _check_positive("method", predict_batch_size=self.predict_batch_size)

    @property
    def uses_memory(self) -> bool:
        return self.kind in MEMORY_KINDS

    @property
    def has_stage2(self) -> bool:
        return self.kind != "snsa_f"


def _feature_preset() -> dict[str, Any]:
    return load_preset_dict(FEATURE_PRESET)


def default_ser_features() -> FeatureConfig:
    """The speech features of the ``ser_features`` preset (their one home)."""
    return from_dict(FeatureConfig, _feature_preset()["features"], "features")


def default_ser_normalizer() -> NormalizerConfig:
    """The per-utterance normaliser of the ``ser_features`` preset."""
    return from_dict(NormalizerConfig, _feature_preset()["normalizer"], "normalizer")


@dataclass(frozen=True)
class SerExperimentConfig:
    """Everything one SER training run and its evaluation use.

    Attributes
    ----------
    source, target: the two corpora (labels of the target are used only to
        split it by ``protocol`` and to score the test side).
    source_validation: the held-out source part of stage-1 selection.
    protocol: how the target corpus is split into adaptation and test sides.
    features: log-mel front end (whole utterances are cached).
    normalizer: feature normalisation (stored in every checkpoint).
    dataset: crop length and positions, padding.
    cache: where the feature caches are built (default ``<corpus root>/cache``).
    model: the SNSA network (and D for ``dann``: ``model.domain.mode`` must be
        ``whole`` or ``time`` then, ``none`` otherwise).
    memory, pseudo_multilabel, losses: NNPM (eqs. 3-9); ``losses.target_loss``
        and ``losses.source_loss`` follow ``method.kind``.
    dann: the DANN baseline.
    diagnostics: what stage 2 logs (the target-truth measures are a switch).
    stage1, stage2: optimisation of the two stages.
    train: the Trainer's bookkeeping (device, seed, logs, AMP, workers).
    method: the system and the inference batch size.
    """

    source: SerCorpusConfig = field(default_factory=SerCorpusConfig)
    target: SerCorpusConfig = field(default_factory=SerCorpusConfig)
    source_validation: SourceValidationConfig = field(default_factory=SourceValidationConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    features: FeatureConfig = field(default_factory=default_ser_features)
    normalizer: NormalizerConfig = field(default_factory=default_ser_normalizer)
    dataset: SerDatasetConfig = field(default_factory=SerDatasetConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    model: SerModelConfig = field(default_factory=SerModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    pseudo_multilabel: PseudoMultilabelConfig = field(default_factory=PseudoMultilabelConfig)
    losses: NnpmLossConfig = field(default_factory=NnpmLossConfig)
    dann: SerDannConfig = field(default_factory=SerDannConfig)
    diagnostics: SerDiagnosticsConfig = field(default_factory=SerDiagnosticsConfig)
    stage1: SerStage1Config = field(default_factory=SerStage1Config)
    stage2: SerStage2Config = field(default_factory=SerStage2Config)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: SerMethodConfig = field(default_factory=SerMethodConfig)

    def __post_init__(self) -> None:
        kind = self.method.kind
        # Derived from the kind (load_ser_config rejects contradicting explicit values).
        allowed, source_loss = allowed_loss_switches(kind)
        target_loss = self.losses.target_loss if self.losses.target_loss in allowed else allowed[0]
        object.__setattr__(self, "losses", dataclasses.replace(self.losses, target_loss=target_loss,
                                                               source_loss=source_loss))
        domain = self.model.domain.mode
        if kind == "dann" and domain == "none":
            raise ConfigError("method.kind 'dann' needs a domain classifier: set model.domain.mode to whole "
                              "(one logit per utterance) or time (one per BLSTM frame)")
        if kind != "dann" and domain != "none":
            raise ConfigError(f"model.domain.mode {domain!r} is only used by method.kind 'dann' (got {kind!r})")
        self._check_epochs()
        check_frontend_features(self.dataset.frontend, self.features)
        n_conv = len(self.model.encoder.conv_channels)
        if self.method.has_stage2 and self.stage2.freeze_conv > n_conv:
            raise ConfigError(f"stage2.freeze_conv={self.stage2.freeze_conv} but the encoder has {n_conv} conv layers")
        ignored = {} if _READING_STORED.get() else self.ignored_settings()
        if ignored:
            listed = "; ".join(f"'{k}' ({why})" for k, why in ignored.items())
            raise ConfigError(f"setting(s) that would have no effect with method.kind '{kind}': {listed}")

    def _check_epochs(self) -> None:
        """The run trains: snsa_f's stage 1 and every other kind's stage 2 need epochs.

        Stage 1 may have none before a stage 2 (the adaptation then starts from
        the untrained network, as DANN from scratch).
        """
        if not self.method.has_stage2 and self.stage1.epochs < 1:
            raise ConfigError(f"stage1.epochs={self.stage1.epochs} trains nothing (method.kind 'snsa_f' has only "
                              "stage 1); give at least 1")
        if self.method.has_stage2 and self.stage2.epochs < 1:
            raise ConfigError(f"stage2.epochs={self.stage2.epochs} leaves stage 2 (the adaptation of method.kind "
                              f"'{self.method.kind}') without epochs; give at least 1, or choose method.kind "
                              "snsa_f to train stage 1 only")

    # -- derived ------------------------------------------------------------------
    @property
    def runs_stage1(self) -> bool:
        """True when this run trains stage 1 itself (no ``stage2.init_from``)."""
        return not (self.method.has_stage2 and self.stage2.init_from is not None)

    @property
    def reads_target_truth(self) -> bool:
        """True when stage 2 reads the adaptation side's true emotions: the oracle, or the truth diagnostics."""
        return self.method.uses_memory and (self.pseudo_multilabel.rule == "oracle" or self.diagnostics.target_truth)

    def inactive_keys(self) -> dict[str, str]:
        """Dotted keys this run ignores, with the reason."""
        kind = self.method.kind
        out = {"train.epochs": "stage1.epochs and stage2.epochs set the epochs",
               "train.lr": "stage1.lr and stage2.lr set the learning rates"}
        if not self.method.has_stage2:
            for key in ("stage2", "diagnostics.gradient_every"):
                out[key] = "snsa_f has no stage 2"
        if not self.method.uses_memory:
            for key in ("memory", "pseudo_multilabel", "losses", "diagnostics.target_truth"):
                out[key] = f"{kind} uses no memory bank"
        else:
            if self.losses.target_loss == "mse_all":
                for key in ("losses.delta", "losses.hard_negative_ratio", "losses.hard_negative_count",
                            "losses.negatives", "losses.negative_target"):
                    out[key] = "losses.target_loss mse_all (eq. 6) has no hard-negative mining"
            elif self.losses.target_loss == "all_negatives":
                for key in ("losses.hard_negative_ratio", "losses.hard_negative_count"):
                    out[key] = "snsa_wo_hl takes every negative instead of mining the hardest"
            if self.pseudo_multilabel.rule == "oracle":
                for key in ("pseudo_multilabel.threshold", "pseudo_multilabel.empty_policy"):
                    out[key] = "the oracle's sets are the true emotion's slots"
        if kind != "dann":
            out["dann"] = "only method.kind 'dann' trains a domain classifier"
        # With stage2.init_from, stage1 and source_validation are not used either; a
        # preset's values for them are common, so they are only logged by the method.
        return out

    def ignored_settings(self) -> dict[str, str]:
        """The inactive keys whose value differs from the default (they would change nothing)."""
        out = {}
        for key, why in self.inactive_keys().items():
            if to_dict(_get(self, key)) != to_dict(_default_of(key)):
                out[key] = why
        return out


def _get(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _default_of(key: str) -> Any:
    """The default value of a dotted key of :class:`SerExperimentConfig` (without building one)."""
    head, _, rest = key.partition(".")
    f = {x.name: x for x in dataclasses.fields(SerExperimentConfig)}[head]
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
    return _get(value, rest) if rest else value


def _explicit_switches(tree: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``losses.target_loss`` / ``losses.source_loss`` as a preset or the overrides give them."""
    items = {**leaf_items(tree), **leaf_items(override_items(overrides))}
    return {key: items[f"losses.{key}"] for key in _SWITCH_KEYS if f"losses.{key}" in items}


_SWITCH_KEYS = ("target_loss", "source_loss")


#: True while a run's stored configuration is read (:func:`stored_ser_config`).
_READING_STORED: contextvars.ContextVar[bool] = contextvars.ContextVar("reading_stored_ser_config", default=False)


def stored_ser_config(data: Mapping[str, Any] | str | Path, where: str = "") -> SerExperimentConfig:
    """A run's stored configuration (a mapping from its checkpoint, or its ``config.yaml``).

    A stored configuration is complete: it holds every key, the ones its
    method ignores included, at the values of the version that wrote it. A
    later default for an ignored key must not make a finished run unreadable:
    those keys are read back at today's defaults (they change nothing, so the
    run is the same, and the configuration can be copied with
    ``dataclasses.replace`` like any other); everything else is read and
    checked as in :func:`load_ser_config`.
    """
    token = _READING_STORED.set(True)
    try:
        if isinstance(data, Mapping):
            cfg = from_dict(SerExperimentConfig, data, where)
        else:
            cfg = preset_config(SerExperimentConfig, data)[0]  # errors name the file and line
        for key in cfg.ignored_settings():
            cfg = _with_value(cfg, key, _default_of(key))
    finally:
        _READING_STORED.reset(token)
    return dataclasses.replace(cfg)  # checked once more, as any configuration


def _with_value(obj: Any, key: str, value: Any) -> Any:
    """``obj`` with the dotted ``key`` set to ``value`` (nested dataclasses replaced)."""
    head, _, rest = key.partition(".")
    inner = _with_value(getattr(obj, head), rest, value) if rest else value
    return dataclasses.replace(obj, **{head: inner})


def load_ser_config(preset: str | Path | None = None, overrides: Iterable[str] = ()) -> SerExperimentConfig:
    """Build a :class:`SerExperimentConfig` from a preset (name or YAML path) and dotted overrides.

    Unknown keys, bad values and settings the chosen ``method.kind`` would
    ignore are :class:`~audioadapt.errors.ConfigError`, and so is a
    ``losses.target_loss`` / ``losses.source_loss`` that contradicts the kind
    (choose ``snsa_wo_sl`` / ``snsa_wo_hl`` instead).
    """
    overrides = list(overrides)
    cfg, tree = preset_config(SerExperimentConfig, preset)
    try:
        cfg = apply_overrides(cfg, overrides)
    except ConfigError as exc:
        raise ConfigError(f"overrides: {exc}") from exc
    allowed_targets, source_loss = allowed_loss_switches(cfg.method.kind)
    allowed = {"target_loss": allowed_targets, "source_loss": (source_loss,)}
    for key, value in _explicit_switches(tree, overrides).items():
        if value not in allowed[key]:
            sets = " or ".join(repr(v) for v in allowed[key])
            raise ConfigError(f"losses.{key}={value!r} contradicts method.kind '{cfg.method.kind}' (which takes "
                              f"{sets}); choose the method kind instead")
    return cfg


def with_corpora(cfg: SerExperimentConfig, source: str | Path | SerCorpusConfig | None = None,
                 target: str | Path | SerCorpusConfig | None = None) -> SerExperimentConfig:
    """``cfg`` with the source and/or target corpus replaced (``CORPUS:PATH`` text, a folder, or a config).

    A text or folder replaces the corpus and root only: ``on_error`` and the
    loader ``options`` of the side stay (and are checked against the new loader).
    """
    changes = {}
    for name, value in (("source", source), ("target", target)):
        if isinstance(value, SerCorpusConfig):
            changes[name] = value
        elif value is not None:  # a CORPUS:PATH text keeps the side's on_error and loader options
            spec = parse_corpus_spec(str(value))
            changes[name] = dataclasses.replace(getattr(cfg, name), corpus=spec.corpus, root=spec.root)
    return dataclasses.replace(cfg, **changes) if changes else cfg


__all__ = [
    "FEATURE_PRESET",
    "GENERATED",
    "LOSS_SWITCHES",
    "MEMORY_KINDS",
    "METHOD_KINDS",
    "MethodKind",
    "SerCorpusConfig",
    "EPOCH_LENGTHS",
    "SOURCE_VALIDATION_KINDS",
    "SerDannConfig",
    "SerDiagnosticsConfig",
    "SerExperimentConfig",
    "SerMethodConfig",
    "SerStage1Config",
    "SerStage2Config",
    "SourceValidationConfig",
    "default_ser_features",
    "allowed_loss_switches",
    "default_ser_normalizer",
    "load_ser_config",
    "stored_ser_config",
    "loader_options",
    "loss_switches",
    "parse_corpus_spec",
    "with_corpora",
]
