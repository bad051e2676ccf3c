"""Park et al. (DCASE 2019): tri-training and adversarial learning, all six Table 1 rows.

Algorithm 1 as a :class:`~audioadapt.training.method.Method`:

* **phase 1** trains F, Ft (and F1, F2 with tri-training, D with adversarial
  learning) on batches of S, W and U. ``L_y = L_frame + L_clip`` (eq. 1) of
  each head uses only the known labels, so U rows enter only the domain loss
  ``L_d`` (eq. 4); F1 and F2 add the orthogonality term (eq. 8). One Adam
  step on the sum, with the GRL between F and D, is eqs. 5-7;
* the **pseudo-labelling pass** (between the phases) labels W and U where F1
  and F2 agree (tau 0.5); a class absent from a clip's weak label is never
  made positive. Counts per class go to the run log and ``pseudo_labels.json``;
* **phase 2** trains F, Ft and D on S, W (weak labels + pseudo frame labels)
  and U_psl; F1 and F2 are frozen.

The rows of Table 1: baseline (F + Ft on S and W, ``adversarial: none``,
``tri_training: false``), Adv.whole / Adv.time (``adversarial``), Tri-training
and the two combinations.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import operator
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from audioadapt.adaptation.losses import clip_bce, frame_bce
from audioadapt.adaptation.orthogonality import labeler_orthogonality
from audioadapt.adaptation.pseudo_labels import PseudoLabels, make_pseudo_labels, pseudo_label_stats
from audioadapt.data.batch import SedBatch
from audioadapt.data.labels import UNKNOWN
from audioadapt.errors import CheckpointError
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import FINAL_HEAD, LABELER_HEADS, SedModel
from audioadapt.training.method import Method, PhaseSpec, StepContext, StepOutput
from audioadapt.training.sed_adversarial import domain_loss, grl_coefficient, set_grl_coefficient
from audioadapt.training.sed_diagnostics import (PseudoLabelTruth, SedDiagnostics, first_step_after_round,
                                                  resolve_truth_dir, round_logs)
from audioadapt.training.sed_predict import model_networks, run_model, selection_metrics

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.config.sed import SedExperimentConfig
    from audioadapt.training.loop import TrainConfig
    from audioadapt.training.sed_data import SedDataModule

log = logging.getLogger(__name__)

PSEUDO_LABEL_FILE = "pseudo_labels.json"
#: Sources that get pseudo labels, in labelling order.
PSEUDO_SOURCES = ("weak", "unlabeled")


@contextmanager
def eval_mode(*modules: torch.nn.Module):
    """Put ``modules`` in eval mode, restoring their modes afterwards."""
    saved = [(m, m.training) for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.train(training)


class SedTriAdvMethod(Method):
    """Tri-training + adversarial learning (and their ablations).

    Parameters
    ----------
    cfg: the experiment configuration.
    model: the network; its heads and D match ``cfg.method``.
    normalizer: feature normalisation (fitted if it needs to be).
    data: the set-up data module.
    """

    selection_metric = "selection"
    selection_mode = "max"

    def __init__(self, cfg: "SedExperimentConfig", model: SedModel, normalizer: Normalizer,
                 data: "SedDataModule"):
        self.cfg = cfg
        self.model = model
        self.normalizer = normalizer
        self.data = data
        self.rounds_done = 0
        self._oracle: PseudoLabelTruth | None = None  # the true labels, when pseudo_labels.truth asks for them
        self.pseudo: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, Any]] = []
        self.diagnostics = SedDiagnostics(cfg.method.diagnostics)
        self._outputs: Any = None  # the model outputs of the step in progress, for the diagnostics

    # -- structure -------------------------------------------------------------------
    @property
    def labelers(self) -> bool:
        return self.cfg.method.uses_labelers

    @property
    def adversarial(self) -> bool:
        return self.model.domain is not None

    def networks(self) -> dict[str, torch.nn.Module]:
        return model_networks(self.model)

    def phases(self, config: "TrainConfig") -> Sequence[PhaseSpec]:
        extra_d = ("domain",) if self.adversarial else ()
        first = ("encoder", FINAL_HEAD) + (LABELER_HEADS if self.labelers else ()) + extra_d
        phases = [PhaseSpec("phase1", config.epochs, first)]
        if self.labelers:
            second = ("encoder", FINAL_HEAD) + extra_d
            rounds = self.cfg.method.pseudo_label_rounds
            total = self.cfg.phase2_epochs()
            if rounds == 1:
                phases.append(PhaseSpec("phase2", total, second))
            else:
                for r in range(rounds):
                    epochs = total // rounds + (1 if r < total % rounds else 0)
                    phases.append(PhaseSpec(f"phase2_r{r + 1}", epochs, second))
        return phases

    def train_loader(self, phase: PhaseSpec, ctx: StepContext):
        sampler = self.cfg.sampler.phase1 if phase.name == "phase1" else self.cfg.sampler.phase2
        return self.data.train_loader(sampler, rank=ctx.dist.rank, world_size=ctx.dist.world_size,
                                      num_workers=ctx.config.num_workers, pin_memory=ctx.device.type == "cuda")

    def setup(self, ctx: StepContext) -> None:
        self.normalizer.to(ctx.device)

    # -- losses -------------------------------------------------------------------------
    def grl_weight(self, ctx: StepContext) -> float:
        """alpha of eq. 5 at the current progress."""
        return grl_coefficient(self.cfg.method, ctx)

    def compute_losses(self, batch: SedBatch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of one batch: ``<head>_frame``, ``<head>_clip``, ``ortho``, ``domain``.

        ``ortho`` already carries lambda (``method.orthogonality.weight``). Under
        DDP each masked mean divides this rank's sum by the mean count of valid
        entries over ranks, so that the ranks' average is the global batch's mean
        (pseudo labels leave different numbers of known entries on each rank).
        """
        phase1 = ctx.phase.name == "phase1"
        heads = (LABELER_HEADS + (FINAL_HEAD,)) if (phase1 and self.labelers) else (FINAL_HEAD,)
        if self.adversarial:
            set_grl_coefficient(self.model, self.cfg.method, ctx)
        out = run_model(self.model, self.normalizer, batch, heads, domain=self.adversarial)
        divisor = ctx.dist.all_reduce_mean if ctx.dist.enabled else None  # global-batch means under DDP
        terms: dict[str, torch.Tensor] = {}
        for h in heads:
            terms[f"{h}_frame"] = frame_bce(out[h].frame_logits, batch.strong, out.frame_mask, divisor)
            terms[f"{h}_clip"] = clip_bce(out[h].clip_logits, batch.weak, divisor)
        if phase1 and self.labelers:
            heads_mod = self.model.heads
            terms["ortho"] = labeler_orthogonality(heads_mod["f1"], heads_mod["f2"], self.cfg.method.orthogonality)
        if self.adversarial:
            terms["domain"] = domain_loss(self.model, out, batch, divisor)
        self._outputs = out
        return terms

    def training_step(self, batch: SedBatch, ctx: StepContext) -> StepOutput:
        terms = self.compute_losses(batch, ctx)
        w = self.cfg.method.loss_weights
        parts = {"ortho": terms["ortho"]} if "ortho" in terms else {}  # each term as it enters the loss
        for h in (*LABELER_HEADS, FINAL_HEAD):
            if f"{h}_frame" in terms:
                parts[h] = getattr(w, h) * (terms[f"{h}_frame"] + terms[f"{h}_clip"])
        if "domain" in terms:
            parts["domain"] = w.domain * terms["domain"]
        loss = functools.reduce(operator.add, parts.values())
        logs: dict[str, Any] = {k: v.detach() for k, v in terms.items()}
        if self.adversarial:
            logs["grl_weight"] = self.model.grl.coeff
        logs.update(self._diagnostic_logs(batch, ctx, parts))
        return StepOutput(loss, logs)

    def _diagnostic_logs(self, batch: SedBatch, ctx: StepContext,
                         parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """The step's diagnostics (:mod:`~audioadapt.training.sed_diagnostics`) and, first after a
        pseudo-labelling round, the round's counts."""
        out, self._outputs = self._outputs, None
        heads = self.model.heads
        labelers = (heads["f1"], heads["f2"], self.cfg.method.orthogonality) if "ortho" in parts else None
        logs = self.diagnostics.step_logs(ctx, out, batch, parts, encoder=self.model.encoder,
                                          classification=(*LABELER_HEADS, FINAL_HEAD), labelers=labelers)
        if self.diagnostics.cfg.enabled and self.history and first_step_after_round(ctx):
            logs.update(round_logs(self.history[-1]))
        return logs

    # -- validation -------------------------------------------------------------------------
    def validate(self, ctx: StepContext) -> Mapping[str, float]:
        p = self.cfg.method.predict
        metrics = selection_metrics(self.model, self.normalizer, self.data, p.heads, p.batch_size,
                                    self.cfg.decode, self.cfg.metrics, ctx.device)
        last = ctx.phase_index == len(ctx.phases) - 1
        if self.labelers and self.cfg.method.select_in_last_phase and not last:
            metrics["selection"] = math.nan  # only the final classifier of the last phase is selected
        return metrics

    # -- pseudo labels ----------------------------------------------------------------------------
    def on_phase_end(self, phase: PhaseSpec, ctx: StepContext) -> None:
        if self.labelers and ctx.phase_index < len(ctx.phases) - 1:
            self.pseudo_label(ctx)

    @torch.no_grad()
    def pseudo_label(self, ctx: StepContext) -> None:
        """Label W and U with F1, F2 (one pass of Algorithm 1's ``Pseudo-labeling``)."""
        self.rounds_done += 1
        record: dict[str, Any] = {"round": self.rounds_done, "after_phase": ctx.phase.name, "sources": {}}
        with eval_mode(self.model, self.normalizer):
            for source in PSEUDO_SOURCES:
                if self.data.train is None or source not in self.data.train.source_names:
                    continue
                labels = self._label_source(source, ctx.device)
                self.pseudo[source] = labels
                self._apply(source, labels)
                record["sources"][source] = self._stats(source, labels)
                truth = self.diagnostics.truth_scores(self.data.root, source, self.data.source(source), labels)
                if truth is not None:  # a diagnostic only: never applied, never selected on
                    record["sources"][source]["truth"] = truth
        self.history.append(record)
        if ctx.is_main and ctx.run_dir is not None:
            path = ctx.run_dir / PSEUDO_LABEL_FILE
            path.write_text(json.dumps(self.history, indent=1) + "\n", encoding="utf-8")

    def _label_source(self, source: str, device: torch.device) -> dict[str, torch.Tensor]:
        ds = self.data.source(source)
        ds.reset_labels()  # vote with the original weak labels, not an earlier round's
        cfg = self.cfg.method
        n, k = len(ds), len(ds.classes)
        lengths = torch.tensor([ds.num_output_frames(i) for i in range(n)], dtype=torch.long)
        frame = torch.full((n, int(lengths.max()), k), UNKNOWN, dtype=torch.int8)
        clip = torch.full((n, k), UNKNOWN, dtype=torch.int8)
        if cfg.pseudo_labels.truth is not False:  # the oracle bound: the true labels, no vote
            if self._oracle is None:
                self._oracle = PseudoLabelTruth(resolve_truth_dir(cfg.pseudo_labels.truth, self.data.root))
            for i, true in enumerate(self._oracle.frames(source, ds)):
                t = torch.as_tensor(np.asarray(true) > 0.5, dtype=torch.int8)[: int(lengths[i])]
                frame[i, : len(t)] = t
                clip[i] = t.amax(dim=0) if len(t) else 0
            return {"frame": frame, "clip": clip, "lengths": lengths}
        for batch in self.data.eval_loader(ds, cfg.predict.batch_size):
            batch = batch.to(device)
            out = run_model(self.model, self.normalizer, batch, LABELER_HEADS, domain=False)
            pl = make_pseudo_labels(out["f1"].frame_probs, out["f2"].frame_probs, out["f1"].clip_probs,
                                    out["f2"].clip_probs, cfg.pseudo_labels, batch.weak, out.frame_mask)
            rows = batch.index.cpu()
            t = min(pl.frame.shape[1], frame.shape[1])
            frame[rows, :t] = pl.frame[:, :t].cpu()
            clip[rows] = pl.clip.cpu()
        for i in range(n):
            frame[i, lengths[i]:] = UNKNOWN
        return {"frame": frame, "clip": clip, "lengths": lengths}

    def _apply(self, source: str, labels: Mapping[str, torch.Tensor]) -> None:
        """Put pseudo labels into the dataset: frame labels for W and U, clip labels for U."""
        ds = self.data.source(source)
        ds.reset_labels()
        n = len(ds)
        lengths = labels["lengths"].tolist()
        ds.set_strong_labels(range(n), [labels["frame"][i, : lengths[i]] for i in range(n)])
        if source == "unlabeled":
            ds.set_weak_labels(range(n), labels["clip"])

    def _stats(self, source: str, labels: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        lengths = labels["lengths"]
        mask = torch.arange(labels["frame"].shape[1])[None, :] < lengths[:, None]
        stats = pseudo_label_stats(PseudoLabels(labels["frame"], labels["clip"]), mask)
        classes = list(self.data.classes)
        per_class = {c: {"frames_positive": stats.frames_positive[i], "frames_negative": stats.frames_negative[i],
                         "frames_unknown": stats.frames_unknown[i], "events": stats.events[i],
                         "clips_with_events": stats.clips_with_events[i], "clip_positive": stats.clip_positive[i],
                         "clip_negative": stats.clip_negative[i],
                         "clip_unknown": stats.clips - stats.clip_positive[i] - stats.clip_negative[i]}
                     for i, c in enumerate(classes)}
        log.info("pseudo labels (%s, round %d): %d of %d clips labelled, %.1f %% of (frame, class) entries known",
                 source, self.rounds_done, stats.clips_labelled, stats.clips, 100 * stats.coverage)
        for c, s in per_class.items():
            log.info("  %s: %d clip(s) with events, %d event(s), %d positive and %d negative frame(s)",
                     c, s["clips_with_events"], s["events"], s["frames_positive"], s["frames_negative"])
        return {"clips": stats.clips, "clips_labelled": stats.clips_labelled, "coverage": stats.coverage,
                "per_class": per_class}

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rounds_done": self.rounds_done, "pseudo": {s: dict(v) for s, v in self.pseudo.items()},
                "history": self.history}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        unknown = sorted(set(state) - {"rounds_done", "pseudo", "history"})
        if unknown:
            raise CheckpointError(f"unexpected method state {unknown} for {type(self).__name__}")
        self.rounds_done = int(state.get("rounds_done", 0))
        self.history = list(state.get("history", []))
        self.pseudo = {s: dict(v) for s, v in (state.get("pseudo") or {}).items()}
        for source, labels in self.pseudo.items():
            n = len(self.data.source(source))
            if labels["frame"].shape[0] != n:
                raise CheckpointError(f"the checkpoint's pseudo labels of '{source}' cover {labels['frame'].shape[0]} "
                                      f"clips, the data has {n}: resume with the same dataset and split")
            self._apply(source, labels)


def pseudo_label_arrays(method: SedTriAdvMethod, source: str) -> list[np.ndarray]:
    """The stored frame pseudo labels of ``source``, one ``(frame, class)`` int8 array per clip."""
    labels = method.pseudo[source]
    return [labels["frame"][i, : int(n)].numpy() for i, n in enumerate(labels["lengths"])]


__all__ = ["PSEUDO_LABEL_FILE", "PSEUDO_SOURCES", "SedTriAdvMethod", "eval_mode", "pseudo_label_arrays"]
