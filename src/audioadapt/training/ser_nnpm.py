"""NNPM (Li, Yan & Wang 2021), its baselines SNSA-F, SNSA-wo-SL, SNSA-wo-HL, and DANN, as one Method.

Phases (``method.kind``):

* **stage1** (every kind, unless ``stage2.init_from`` gives a stage-1
  checkpoint): SNSA + FC(4) trained with cross-entropy on the source training
  part. With a source validation part, every epoch is scored by its UA and
  the best epoch's weights are put back at the end of the stage (so
  ``last.pt`` of an ``snsa_f`` run is the selected model; ``best.pt`` is the
  same epoch). ``snsa_f`` stops here and predicts the target with these weights.
* between the stages, the memory (one slot per source utterance, eq. 3) is
  filled by one pass of the stage-1 model over the whole source set (eval
  mode, evaluation crops);
* **stage2**, the first ``stage2.freeze_conv`` conv layers frozen, the last
  epoch kept. Each step of ``nnpm`` / ``snsa_wo_sl`` / ``snsa_wo_hl``:

  1. encode a source batch (all source utterances take part; ``index`` is
     the memory slot) and a target batch with the same weights. What meets
     the memory is encoded as ``memory.encoder_mode`` says: ``eval``
     (default) runs the target batch (with gradient) and the source
     features to write (without) with dropout off, as the memory was
     initialised; the source cross-entropy keeps the training-mode forward;
  2. similarities ``f_hat_t M^T`` and pseudo multilabels (eq. 4; with
     ``pseudo_multilabel.rule: oracle`` the slots of the true emotion) from
     the memory **before** this step's write;
  3. ``L = L_s + lambda L_t`` (eqs. 5-9; ``snsa_wo_sl`` drops ``L_s`` and
     encodes the source batch without gradient, its head is not trained;
     ``snsa_wo_hl`` takes every eligible negative instead of the hardest);
  4. the optimizer step, then (:meth:`after_optimizer_step`, no gradient) the
     write of the batch's detached source features with the epoch's rate
     (:meth:`~audioadapt.adaptation.memory.MemoryConfig.epoch_rate`: 0 in the
     first epoch, 0.4 in the last, eq. 3's ``gamma_e``).

  ``dann`` instead trains ``L_s + w L_d`` with the domain classifier behind
  the GRL, whose coefficient follows ``dann.grl_weight`` over the stage-2
  progress (one forward of the source and target rows together).

Per step (averaged per epoch in ``metrics.csv`` and TensorBoard) stage 2
logs the loss terms and the memory rate, and the diagnostics of
:mod:`audioadapt.adaptation.nnpm_diagnostics`: empty share and sizes of the
pseudo multilabels, their agreement with the head, the positive and negative
parts of ``L_t`` and what the mining picks; with ``diagnostics.gradient_every``
also the norm of each loss term's gradient on the encoder (DANN too). No
target label is read unless the run asks for it: the oracle row reads the
adaptation side's true emotions to build its sets, and
``diagnostics.target_truth`` reads them to log the sets' purity (the logs
only: training is the same with scrambled target labels).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from audioadapt.adaptation.losses import domain_bce
from audioadapt.adaptation.memory import MemoryBank
from audioadapt.adaptation.nnpm_diagnostics import nnpm_step_diagnostics
from audioadapt.adaptation.nnpm_losses import nnpm_loss, source_cross_entropy
from audioadapt.adaptation.pseudo_multilabel import oracle_multilabel, pseudo_multilabel
from audioadapt.data.ser_dataset import SerBatch
from audioadapt.errors import CheckpointError
from audioadapt.features.normalization import Normalizer
from audioadapt.models.ser_model import SerModel
from audioadapt.training.checkpoint import improves
from audioadapt.training.distributed import broadcast_networks
from audioadapt.training.gradients import gradient_summary, term_gradients
from audioadapt.training.method import Method, PhaseSpec, StepContext, StepOutput
from audioadapt.training.ser_data import SerPairBatch
from audioadapt.training.ser_predict import encode_dataset, model_networks, predict_dataset, run_ser_model

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.ser import SerExperimentConfig
    from audioadapt.training.loop import TrainConfig
    from audioadapt.training.ser_data import SerDataModule

log = logging.getLogger(__name__)

STAGE1, STAGE2 = "stage1", "stage2"


def concat_batches(a: SerBatch, b: SerBatch) -> SerBatch:
    """Rows of ``a`` then ``b`` in one batch, the shorter one zero-padded to the longer frame count."""
    frames = max(a.features.shape[1], b.features.shape[1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, frames - x.shape[1]))

    return SerBatch(torch.cat([pad(a.features), pad(b.features)]), torch.cat([a.lengths, b.lengths]),
                    torch.cat([a.label, b.label]), torch.cat([a.domain, b.domain]), torch.cat([a.index, b.index]))


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (dropout off) inside the block, gradients untouched; restore every flag after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def load_stage1_checkpoint(where: str | Path, device: torch.device | str = "cpu") -> tuple[Path, dict[str, Any]]:
    """The checkpoint ``stage2.init_from`` names (a file, or a run directory's ``best.pt``, else ``last.pt``)."""
    from audioadapt.training.checkpoint import BEST, LAST, load_checkpoint

    path = Path(where)
    if path.is_dir():
        path = path / BEST if (path / BEST).is_file() else path / LAST
    ckpt = load_checkpoint(path, map_location=device)
    meta = ckpt.get("meta") or {}
    if any(k not in meta for k in ("model_config", "feature_config", "normalizer")):
        raise CheckpointError(f"{path}: not a checkpoint of a SER run (its meta has no model, feature or "
                              "normaliser settings)")
    return path, ckpt


class SerNnpmMethod(Method):
    """Stage-1 source training and the stage-2 adaptation of ``cfg.method.kind``.

    Parameters
    ----------
    cfg: the experiment configuration.
    model: the network (with D for ``dann``).
    normalizer: feature normalisation (fitted if its kind needs it).
    data: the set-up data module.
    """

    selection_mode = "max"

    def __init__(self, cfg: "SerExperimentConfig", model: SerModel, normalizer: Normalizer,
                 data: "SerDataModule"):
        self.cfg = cfg
        self.kind = cfg.method.kind
        self.model = model
        self.normalizer = normalizer
        self.data = data
        self.memory: MemoryBank | None = None
        if cfg.method.uses_memory:
            if data.source_slots is None:
                raise RuntimeError("the data module has no source set (setup(source=True) first)")
            self.memory = MemoryBank(len(data.source_slots), model.feature_dim, cfg.model.n_classes, cfg.memory)
        self.selection_metric = "selection" if cfg.runs_stage1 and data.has_source_validation else None
        self.stage: str | None = None  # the phase running (or last run)
        self._best: dict[str, Any] | None = None  # stage-1 weights of the best source-validation UA
        self.stage1_epoch: int | None = None  # the stage-1 epoch whose weights were kept, once stage 1 ended
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._truth: torch.Tensor | None = None  # the adaptation side's true emotions, when the run reads them

    # -- structure -------------------------------------------------------------------
    def networks(self) -> dict[str, torch.nn.Module]:
        return model_networks(self.model)

    def phases(self, config: "TrainConfig") -> Sequence[PhaseSpec]:
        s1, s2 = self.cfg.stage1, self.cfg.stage2
        out = []
        if self.cfg.runs_stage1:
            out.append(PhaseSpec(STAGE1, s1.epochs, ("encoder", "head"), lr=s1.lr))
        if self.cfg.method.has_stage2:
            trainable = {"snsa_wo_sl": ("encoder",), "dann": ("encoder", "head", "domain")}
            out.append(PhaseSpec(STAGE2, s2.epochs, trainable.get(self.kind, ("encoder", "head")), lr=s2.lr))
        return out

    def parameters_to_optimize(self, phase: PhaseSpec) -> Iterable[torch.Tensor] | Iterable[dict]:
        # The Trainer builds the optimizer before on_phase_start, so the freezing of
        # the phase (also after a resume) is applied here, before parameters are picked.
        self.model.freeze_conv(self.cfg.stage2.freeze_conv if phase.name == STAGE2 else 0)
        return super().parameters_to_optimize(phase)

    def train_loader(self, phase: PhaseSpec, ctx: StepContext):
        kwargs = dict(rank=ctx.dist.rank, world_size=ctx.dist.world_size, num_workers=ctx.config.num_workers,
                      pin_memory=ctx.device.type == "cuda")
        if phase.name == STAGE1:
            return self.data.stage1_loader(**kwargs)
        return self.data.stage2_loader(**kwargs)

    def setup(self, ctx: StepContext) -> None:
        self.normalizer.to(ctx.device)
        if self.memory is not None:
            self.memory.to(ctx.device)
        truth = getattr(self.data, "target_adapt_truth", None)
        if self.cfg.reads_target_truth:
            if truth is None:
                raise RuntimeError("the run reads the target truth but the data module kept none")
            self._truth = torch.as_tensor(truth, dtype=torch.long, device=ctx.device)
        if not self.cfg.runs_stage1:
            self._load_stage1(str(self.cfg.stage2.init_from), ctx.device)

    def _load_stage1(self, where: str, device: torch.device) -> None:
        """Weights (and normaliser state) of a stage-1 checkpoint."""
        from audioadapt.config.load import to_dict
        from audioadapt.training.checkpoint import restore_networks

        path, ckpt = load_stage1_checkpoint(where, device)
        meta = ckpt["meta"]
        for key, mine in (("model_config", self.cfg.model), ("feature_config", self.cfg.features)):
            saved = dict(meta.get(key) or {})
            current = to_dict(mine)
            if key == "model_config":  # the stage-1 network has no D
                saved.pop("domain", None)
                current.pop("domain", None)
            if saved != current:
                raise CheckpointError(f"{path}: its {key} differs from this run's; stage2.init_from needs the "
                                      "same model and features")
        restore_networks(self.networks(), ckpt, names=["encoder", "head"])
        self.normalizer.load_state_dict(meta["normalizer"])  # refuses other normaliser settings
        log.info("stage 2 starts from the stage-1 weights of %s (stage1 and source_validation settings unused)",
                 path)

    # -- stage 1 ------------------------------------------------------------------------
    def _source_step(self, batch: SerBatch) -> StepOutput:
        out = run_ser_model(self.model, self.normalizer, batch, mask_padding=self.cfg.method.mask_padding)
        loss = source_cross_entropy(out.logits, batch.label)
        accuracy = (out.logits.detach().argmax(dim=1) == batch.label).float().mean()
        return StepOutput(loss, {"source_ce": loss.detach(), "source_accuracy": accuracy})

    def validate(self, ctx: StepContext) -> Mapping[str, float]:
        if ctx.phase.name != STAGE1 or self.data.source_valid is None:
            return {}
        from audioadapt.evaluation.ser_metrics import ser_metrics

        ds = self.data.source_valid
        pred = predict_dataset(self.model, self.normalizer, ds, self.cfg.method.predict_batch_size, ctx.device,
                               mask_padding=self.cfg.method.mask_padding)
        result = ser_metrics(ds.labels, pred.labels, self.data.classes)
        metrics = {"source_ua": result.ua, "source_wa": result.wa, "selection": result.ua}
        # the same choice as the Trainer's best.pt (train.monitor may name another key)
        key = ctx.config.monitor or self.selection_metric or "selection"
        mode = ctx.config.monitor_mode or self.selection_mode
        value = metrics.get(key, math.nan)
        if improves(value, None if self._best is None else self._best["value"], mode):  # ties: the later epoch
            self._best = {"value": value, "epoch": ctx.epoch,
                          "weights": {n: {k: v.detach().clone() for k, v in m.state_dict().items()}
                                      for n, m in self.networks().items()}}
        return metrics

    def on_phase_end(self, phase: PhaseSpec, ctx: StepContext) -> None:
        if phase.name != STAGE1:
            return
        if self._best is not None:  # rank 0 validated; the others receive its weights
            for name, module in self.networks().items():
                module.load_state_dict(self._best["weights"][name])
            log.info("stage 1: keeping epoch %d (source validation %s %.4f)", self._best["epoch"],
                     ctx.config.monitor or "UA", self._best["value"])
            self.stage1_epoch = int(self._best["epoch"])
            self._best = None
        if self.selection_metric is not None:
            broadcast_networks(self.networks(), ctx.dist)
        if len(ctx.phases) > ctx.phase_index + 1:
            self.init_memory(ctx)

    # -- stage 2 ------------------------------------------------------------------------------
    def on_phase_start(self, phase: PhaseSpec, ctx: StepContext) -> None:
        self.stage = phase.name
        if phase.name == STAGE2 and self.memory is not None and not self.memory.initialized:
            self.init_memory(ctx)  # stage 1 came from stage2.init_from

    def init_memory(self, ctx: StepContext) -> None:
        """Fill every slot with one pass of the current model over the whole source set."""
        if self.memory is None:
            return
        ds = self.data.source_slots_eval
        features, _ = encode_dataset(self.model, self.normalizer, ds, self.cfg.method.predict_batch_size,
                                     ctx.device, mask_padding=self.cfg.method.mask_padding)
        self.memory.initialize(features, torch.as_tensor(ds.labels, device=features.device))
        broadcast_networks({"memory": self.memory}, ctx.dist)
        log.info("memory initialised with %d source utterances", self.memory.num_slots)

    def memory_rate(self, ctx: StepContext) -> float:
        """eq. 3's rate ``gamma_e`` at this epoch of stage 2 (:meth:`MemoryConfig.epoch_rate`)."""
        epochs = ctx.phase.epochs
        return self.cfg.memory.epoch_rate(min(ctx.epoch, epochs - 1), epochs) if epochs else self.cfg.memory.rate_end

    def training_step(self, batch: SerBatch | SerPairBatch, ctx: StepContext) -> StepOutput:
        if ctx.phase.name == STAGE1:
            return self._source_step(batch)  # type: ignore[arg-type]
        if self.kind == "dann":
            return self._dann_step(batch, ctx)  # type: ignore[arg-type]
        return self._nnpm_step(batch, ctx)  # type: ignore[arg-type]

    @contextmanager
    def _memory_mode(self) -> Iterator[None]:
        """The network as ``memory.encoder_mode`` wants it for what meets the memory."""
        if self.cfg.memory.encoder_mode == "eval":
            with eval_mode(self.model):
                yield
        else:
            yield

    def _nnpm_step(self, batch: SerPairBatch, ctx: StepContext) -> StepOutput:
        assert self.memory is not None
        memory, mask, losses = self.memory, self.cfg.method.mask_padding, self.cfg.losses
        src, tgt = batch.source, batch.target
        separate = self.cfg.memory.encoder_mode == "eval"  # the written features need their own forward
        s_out = None
        if losses.source_loss or not separate:
            with torch.set_grad_enabled(losses.source_loss):
                s_out = run_ser_model(self.model, self.normalizer, src, mask_padding=mask)
        with self._memory_mode():
            t_out = run_ser_model(self.model, self.normalizer, tgt, mask_padding=mask)
            if separate:
                with torch.no_grad():
                    s_mem = run_ser_model(self.model, self.normalizer, src, mask_padding=mask)
        written = s_mem if separate else s_out
        assert written is not None
        similarity = memory.similarity(t_out.feature_hat)  # the memory before this step's write
        truth = None if self._truth is None else self._truth[tgt.index]
        if self.cfg.pseudo_multilabel.rule == "oracle":
            assert truth is not None
            labels = oracle_multilabel(truth, memory.labels)
        else:
            labels = pseudo_multilabel(similarity.detach(), self.cfg.pseudo_multilabel)
        active = ~labels.empty if self.cfg.pseudo_multilabel.empty_policy == "skip" else None
        loss = nnpm_loss(s_out.logits if losses.source_loss else None, src.label if losses.source_loss else None,
                         similarity, labels.positives, losses, memory.labels, memory.num_classes, active)
        self._pending = (src.index.detach(), written.feature.detach())
        with torch.no_grad():
            s_logits = (s_out if s_out is not None else written).logits
            logs: dict[str, Any] = {
                "target_loss": loss.target.detach(),
                "memory_rate": self.memory_rate(ctx),
                "source_accuracy": (s_logits.argmax(dim=1) == src.label).float().mean(),
                **nnpm_step_diagnostics(labels, memory.labels, memory.num_classes, similarity.detach(),
                                        t_out.logits.argmax(dim=1), loss.target_parts,
                                        truth if self.cfg.diagnostics.target_truth else None),
            }
            if loss.source is not None:
                logs["source_ce"] = loss.source.detach()
        if self._gradients_due(ctx):
            weight = losses.target_weight
            terms = {"target": weight * loss.target,
                     "target_positive": weight * loss.target_parts.positive.mean(),
                     "target_negative": weight * loss.target_parts.negative.mean()}
            if loss.source is not None:
                terms["source"] = loss.source
            logs.update(self._gradient_logs(terms, ctx, cosine=("target", "source"),
                                            outside_total=("target_positive", "target_negative")))
        return StepOutput(loss.total, logs)

    def _gradients_due(self, ctx: StepContext) -> bool:
        every = self.cfg.diagnostics.gradient_every
        return every > 0 and ctx.step % every == 0

    def _gradient_logs(self, terms: Mapping[str, torch.Tensor], ctx: StepContext,
                       **summary: Any) -> dict[str, float]:
        """``grad_<term>`` on the encoder's trainable parameters (see :func:`.gradients.gradient_summary`)."""
        params = [p for p in self.networks()["encoder"].parameters() if p.requires_grad]
        return gradient_summary(term_gradients(terms, params), dist=ctx.dist, **summary)

    def after_optimizer_step(self, batch: Any, ctx: StepContext) -> None:
        if self._pending is None:
            return
        indices, features = self._pending
        self._pending = None
        if self.memory is not None and ctx.phase.name == STAGE2:
            self.memory.write(ctx.dist.all_gather(indices), ctx.dist.all_gather(features), self.memory_rate(ctx))

    def _dann_step(self, batch: SerPairBatch, ctx: StepContext) -> StepOutput:
        alpha = self.cfg.dann.grl_weight.value(ctx.phase_progress)
        self.model.set_grl_weight(alpha)
        both = concat_batches(batch.source, batch.target)
        out = run_ser_model(self.model, self.normalizer, both, mask_padding=self.cfg.method.mask_padding,
                            domain=True)
        n = batch.source.size
        l_s = source_cross_entropy(out.logits[:n], batch.source.label)
        per_frame = out.domain_logits is not None and out.domain_logits.dim() == 2
        mask = out.frame_mask if per_frame else None
        l_d = domain_bce(out.domain_logits, both.domain, self.model.cfg.domain.balance, mask)
        loss = l_s + self.cfg.dann.domain_weight * l_d
        with torch.no_grad():
            accuracy = (out.logits[:n].argmax(dim=1) == batch.source.label).float().mean()
        logs: dict[str, Any] = {"source_ce": l_s.detach(), "domain": l_d.detach(), "grl_weight": alpha,
                                "source_accuracy": accuracy}
        if self._gradients_due(ctx):  # the domain term as it reaches the encoder: through the GRL, times -alpha
            logs.update(self._gradient_logs({"source": l_s, "domain": self.cfg.dann.domain_weight * l_d}, ctx,
                                            classification=("source",)))
        return StepOutput(loss, logs)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "stage": self.stage}
        if self.memory is not None:
            out["memory"] = {"features": self.memory.features.detach().clone(),
                             "labels": self.memory.labels.detach().clone()}
        if self._best is not None:
            out["stage1_best"] = self._best
        if self.stage1_epoch is not None:
            out["stage1_epoch"] = self.stage1_epoch
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise CheckpointError(f"the checkpoint holds the state of method '{state.get('kind')}', "
                                  f"this run is '{self.kind}'")
        if self.memory is not None:
            saved = state.get("memory")
            if not saved or tuple(saved["features"].shape) != tuple(self.memory.features.shape):
                shape = None if not saved else tuple(saved["features"].shape)
                raise CheckpointError(f"the checkpoint's memory {shape} does not match this run's "
                                      f"{tuple(self.memory.features.shape)} (another source set?)")
            self.memory.load_state_dict({"features": saved["features"], "labels": saved["labels"]})
        self.stage = state.get("stage")
        self.stage1_epoch = state.get("stage1_epoch")
        best = state.get("stage1_best")
        self._best = None if best is None else {"value": float(best["value"]), "epoch": int(best["epoch"]),
                                                "weights": best["weights"]}


__all__ = ["STAGE1", "STAGE2", "SerNnpmMethod", "concat_batches", "eval_mode", "load_stage1_checkpoint"]
