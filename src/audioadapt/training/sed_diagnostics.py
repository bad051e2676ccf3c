"""Diagnostics of the SED methods: what each loss does to F, what D sees, what the labelers decide.

Measured on the training batches and logged with the training values, so they
reach ``metrics.csv`` (columns ``train/diag/<name>``, means over the epoch's
steps that measured them) and TensorBoard (same names; ``step/diag/<name>``
every ``train.log_every`` steps), when ``method.diagnostics.enabled``:

every step
    * ``diag/saturation``: share of the entries of F's output, the BiGRU
      sequence ``h`` (valid frames only), with ``|h| > saturation_threshold``.
    * ``diag/domain_acc_synthetic``, ``diag/domain_acc_real``,
      ``diag/domain_acc_balanced`` (with a domain classifier): D's accuracy on
      the batch (logit > 0 is "real"; per valid frame for Adv.time, per clip for
      Adv.whole), per domain and their mean.
    * ``diag/eq8`` (phase 1 with tri-training): the eq. 8 term without lambda.
every ``every`` steps (``ctx.step % every == 0``)
    * ``diag/grad_<term>``: L2 norm of the gradient that one loss term, as it
      enters the total loss (loss weights, lambda, and for ``domain`` the
      gradient reversal: times ``-alpha``), sends to F: at F's output ``h``
      (``gradient_at: features``, one cheap backward through the heads and D)
      or on F's parameters (``parameters``, a backward through the CRNN per
      term). Terms: ``f1``, ``f2``, ``ft`` (each head's ``L_y``), ``domain``
      (``L_d``); the mean teacher's ``ft`` (supervised BCE) and
      ``consistency``. ``grad_y`` is the sum of the heads' ``L_y`` (with two
      or more heads), ``grad_total`` the sum of all terms, and
      ``grad_cos_domain_y`` the cosine between the domain gradient and the
      classification gradient (negative: the reversed domain loss pulls F
      against classification).
    * ``diag/grad_labelers_eq8``, ``diag/grad_labelers_y`` (phase 1 with
      tri-training): the gradient norms of the eq. 8 term (with lambda) and of
      F1's and F2's ``L_y`` on the labelers' own parameters. Eq. 8 depends on
      no activation, so it sends nothing to F directly.
after each pseudo-labelling round (tri-training)
    ``pseudo/<source>/<count>/<class>``: counts of positive, negative and
    unknown frame entries and clip entries of the round's labels (also in
    ``pseudo_labels.json``), logged with the first epoch after the round. With
    ``pseudo_label_truth``: ``pseudo/<source>/truth_<score>/<class>`` (and
    ``<class>`` ``all_classes``, pooled): frame precision, recall and negative
    precision of the pseudo labels against the true strong labels of W and U,
    which the generator of synthetic datasets writes to ``metadata/truth/``
    (also under ``truth`` in ``pseudo_labels.json``). They are read only for
    this diagnostic: they never enter a loss, a label or the model selection.

Under DDP every value is that of the global batch, as in a one-process run:
counts and gradient products are reduced over the ranks. Measuring changes
nothing in training (no random draw, no gradient left behind).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality
from audioadapt.data.batch import REAL_DOMAIN, SYNTHETIC_DOMAIN
from audioadapt.data.labels import encode_strong
from audioadapt.errors import ConfigError, DataError
from audioadapt.training.gradients import gradient_summary, term_gradients

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.data.batch import SedBatch
    from audioadapt.data.sed_dataset import SedDataset
    from audioadapt.models.sed_model import SedOutput
    from audioadapt.training.distributed import DistInfo
    from audioadapt.training.method import StepContext

log = logging.getLogger(__name__)

PREFIX = "diag/"
PSEUDO_PREFIX = "pseudo/"
#: Counts per class of a pseudo-labelling round that are logged (keys of a round's ``per_class`` entries).
ROUND_COUNTS = ("frames_positive", "frames_negative", "frames_unknown", "clip_positive", "clip_negative",
                "clip_unknown")
#: Scores of the pseudo labels against the true labels.
TRUTH_SCORES = ("precision", "recall", "negative_precision")


@dataclass(frozen=True)
class SedDiagnosticsConfig:
    """What :class:`SedDiagnostics` measures (see the module docstring for every quantity).

    Attributes
    ----------
    enabled: measure and log the diagnostics.
    every: optimizer steps between two gradient measurements (the other
        quantities are measured every step).
    gradient_at: ``features`` measures each term's gradient at F's output
        (cheap: a backward through the heads and D only); ``parameters`` on
        F's parameters (a backward through the whole CRNN per term).
    saturation_threshold: ``|h|`` above which a recurrent output counts as
        saturated.
    pseudo_label_truth: score the pseudo labels against the true strong
        labels of the weak and unlabelled clips, a diagnostic only: ``false``
        (off), ``true`` (the generator's ``metadata/truth`` folder under the
        dataset root), or a folder holding ``weak.tsv`` and ``unlabeled.tsv``
        (relative to the dataset root, or absolute).
    """

    enabled: bool = True
    every: int = 10
    gradient_at: Literal["features", "parameters"] = "features"
    saturation_threshold: float = 0.99
    pseudo_label_truth: bool | str = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"method.diagnostics.every must be >= 1, got {self.every}")
        if not 0.0 < self.saturation_threshold < 1.0:
            raise ConfigError(f"method.diagnostics.saturation_threshold must lie in (0, 1), "
                              f"got {self.saturation_threshold}")
        if self.pseudo_label_truth == "":
            raise ConfigError("method.diagnostics.pseudo_label_truth must be true, false or a folder, got ''")

    def truth_dir(self, root: Path) -> Path | None:
        """The folder of the true labels of W and U, or ``None`` when they are not used."""
        return resolve_truth_dir(self.pseudo_label_truth, root) if self.enabled else None

    def inactive_keys(self, uses_labelers: bool) -> dict[str, str]:
        """Keys under ``method.diagnostics`` that a run ignores, with the reason."""
        if not self.enabled:
            return {k: "method.diagnostics.enabled is false"
                    for k in ("every", "gradient_at", "saturation_threshold", "pseudo_label_truth")}
        if not uses_labelers:
            return {"pseudo_label_truth": "there are no pseudo labels (no tri-training)"}
        return {}


# --------------------------------------------------------------------------- single quantities
def _valid_entries(shape: torch.Size, mask: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """Boolean ``shape`` (``(batch, frame, ...)``), true on valid frames of ``mask (batch, frame)``."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    valid = mask.bool()
    while valid.dim() < len(shape):
        valid = valid.unsqueeze(-1)
    return valid.expand(shape)


def saturation_counts(features: torch.Tensor, mask: torch.Tensor | None, threshold: float) -> torch.Tensor:
    """``[saturated entries, valid entries]`` (float64) of ``features (batch, frame, dim)``."""
    h = features.detach()
    valid = _valid_entries(h.shape, mask, h.device)
    saturated = (h.abs() > threshold) & valid
    return torch.stack([saturated.sum(), valid.sum()]).to(torch.float64)


def domain_counts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[correct synthetic, synthetic, correct real, real]`` entries (float64) of D on a batch.

    ``logits`` is ``(batch,)`` (one per clip) or ``(batch, frame)`` (per frame,
    counted on the valid frames of ``mask``); ``labels (batch,)`` holds
    ``SYNTHETIC_DOMAIN``, ``REAL_DOMAIN`` or -1 (left out). A logit > 0 predicts real.
    """
    z = logits.detach()
    lab = labels.reshape(-1, *([1] * (z.dim() - 1))).expand(z.shape)
    valid = _valid_entries(z.shape, mask if z.dim() == 2 else None, z.device)
    predicted_real = z > 0
    out = []
    for domain in (SYNTHETIC_DOMAIN, REAL_DOMAIN):
        of_domain = valid & (lab == domain)
        correct = of_domain & (predicted_real == (domain == REAL_DOMAIN))
        out += [correct.sum(), of_domain.sum()]
    return torch.stack(out).to(torch.float64)


def domain_accuracies(counts: Sequence[float]) -> dict[str, float]:
    """Accuracy per domain present in ``counts`` (from :func:`domain_counts`) and, with both, their mean."""
    out = {}
    for name, (correct, total) in (("synthetic", counts[0:2]), ("real", counts[2:4])):
        if total > 0:
            out[f"domain_acc_{name}"] = float(correct) / float(total)
    if len(out) == 2:
        out["domain_acc_balanced"] = (out["domain_acc_synthetic"] + out["domain_acc_real"]) / 2
    return out


def eq8_value(labeler1: nn.Module, labeler2: nn.Module, cfg: OrthogonalityConfig) -> float:
    """The eq. 8 term of two labelers without lambda (``cfg.weight``)."""
    with torch.no_grad():
        return float(labeler_orthogonality(labeler1, labeler2, replace(cfg, weight=1.0)))


# --------------------------------------------------------------------------- per step
class SedDiagnostics:
    """The per-step diagnostics of a SED method (see the module docstring)."""

    def __init__(self, cfg: SedDiagnosticsConfig):
        self.cfg = cfg
        self._truth: PseudoLabelTruth | None = None

    def truth_scores(self, root: Path, source: str, dataset: "SedDataset",
                     labels: Mapping[str, torch.Tensor]) -> dict[str, dict[str, Any]] | None:
        """:func:`truth_scores` of a source's pseudo labels (``frame``, ``lengths``), or ``None`` when
        ``pseudo_label_truth`` is off. A diagnostic only: the result is logged and stored, never used."""
        folder = self.cfg.truth_dir(root)
        if folder is None:
            return None
        if self._truth is None or self._truth.folder != folder:
            self._truth = PseudoLabelTruth(folder)
        scores = self._truth.score(source, dataset, labels["frame"], labels["lengths"].tolist())
        pooled = scores["all_classes"]
        log.info("pseudo labels (%s) against the true labels: frame precision %s, recall %s, negative precision %s",
                 source, *(_percent(pooled[k]) for k in TRUTH_SCORES))
        return scores

    def gradients_due(self, ctx: "StepContext") -> bool:
        """True at the steps that measure gradients."""
        return self.cfg.enabled and ctx.step % self.cfg.every == 0

    def step_logs(self, ctx: "StepContext", out: "SedOutput", batch: "SedBatch", terms: Mapping[str, torch.Tensor],
                  *, encoder: nn.Module, classification: Sequence[str] = (),
                  labelers: tuple[nn.Module, nn.Module, OrthogonalityConfig] | None = None) -> dict[str, float]:
        """The diagnostics of one training step, keyed ``diag/<name>``.

        Parameters
        ----------
        ctx: where training stands (its ``dist`` reduces the counts).
        out: the model's outputs on ``batch`` (F's output ``out.features`` in the graph).
        batch: the training batch (domain labels).
        terms: the loss terms that reach F, each as it enters the total loss.
        encoder: F (its parameters, for ``gradient_at: parameters``).
        classification: the names among ``terms`` that are classification losses.
        labelers: F1, F2 and the eq. 8 settings, when eq. 8 is trained this step;
            ``terms`` then also holds ``ortho`` (eq. 8 with lambda), and the
            labelers' ``L_y`` are the ``classification`` terms ``f1`` and ``f2``.
        """
        if not self.cfg.enabled:
            return {}
        dist = ctx.dist
        counts = [saturation_counts(out.features, out.frame_mask, self.cfg.saturation_threshold)]
        if out.domain_logits is not None:
            counts.append(domain_counts(out.domain_logits, batch.domain, out.frame_mask))
        total = dist.all_reduce_mean(torch.cat(counts)).tolist()
        logs: dict[str, float] = {}
        if total[1] > 0:
            logs["saturation"] = total[0] / total[1]
        if out.domain_logits is not None:
            logs.update(domain_accuracies(total[2:6]))
        if labelers is not None:
            logs["eq8"] = eq8_value(*labelers)
        if self.gradients_due(ctx):
            logs.update(self._gradients(out, terms, encoder, classification, labelers, dist))
        return {PREFIX + k: v for k, v in logs.items()}

    def _gradients(self, out: "SedOutput", terms: Mapping[str, torch.Tensor], encoder: nn.Module,
                   classification: Sequence[str], labelers: tuple[nn.Module, nn.Module, Any] | None,
                   dist: "DistInfo") -> dict[str, float]:
        to_f = {k: v for k, v in terms.items() if k != "ortho"}
        if self.cfg.gradient_at == "features":
            grads = term_gradients(to_f, [out.features])
        else:
            grads = term_gradients(to_f, [p for p in encoder.parameters() if p.requires_grad])
        logs = gradient_summary(grads, classification, dist, per_rank_rows=self.cfg.gradient_at == "features")
        if labelers is not None and "ortho" in terms:
            params = [p for m in labelers[:2] for p in m.parameters() if p.requires_grad]
            own = {"eq8": terms["ortho"]}
            own["y"] = torch.stack([terms[n] for n in classification if n in ("f1", "f2")]).sum()
            summary = gradient_summary(term_gradients(own, params), (), dist)
            logs.update({"grad_labelers_eq8": summary["grad_eq8"], "grad_labelers_y": summary["grad_y"]})
        return logs


# --------------------------------------------------------------------------- pseudo-labelling rounds
def round_logs(record: Mapping[str, Any]) -> dict[str, float]:
    """One pseudo-labelling round (an entry of ``pseudo_labels.json``) as scalars ``pseudo/<source>/...``."""
    logs: dict[str, float] = {}
    for source, stats in record.get("sources", {}).items():
        for cls, counts in stats.get("per_class", {}).items():
            for key in ROUND_COUNTS:
                if key in counts:
                    logs[f"{PSEUDO_PREFIX}{source}/{key}/{cls}"] = float(counts[key])
        for cls, scores in (stats.get("truth") or {}).items():
            for key in TRUTH_SCORES:
                if scores.get(key) is not None:
                    logs[f"{PSEUDO_PREFIX}{source}/truth_{key}/{cls}"] = float(scores[key])
    return logs


def first_step_after_round(ctx: "StepContext") -> bool:
    """True at the first step of a phase that follows a phase (and so a pseudo-labelling round)."""
    return ctx.phase_index > 0 and ctx.epoch == 0 and ctx.step_in_epoch == 0


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _percent(value: float | None) -> str:
    return "undefined" if value is None else f"{100 * value:.1f} %"


def truth_scores(frame: torch.Tensor, lengths: Sequence[int], truth: Sequence[np.ndarray],
                 classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Frame precision, recall and negative precision of pseudo labels against the true labels.

    Parameters
    ----------
    frame: ``(clip, frame, class)`` pseudo labels, 1 / 0 / -1 (unknown).
    lengths: valid output frames of each clip.
    truth: per clip its true ``(frame, class)`` labels (0/1), at least ``lengths[i]`` frames.
    classes: the class names (column order).

    Returns
    -------
    Per class and ``all_classes`` (pooled over the classes): ``precision`` (true
    positives / pseudo positives), ``recall`` (true positives / true
    positive entries, unknown entries counting as missed),
    ``negative_precision`` (true negatives / pseudo negatives), ``None`` where
    undefined, and the counts ``pseudo_positive``, ``pseudo_negative``,
    ``true_positive_entries``.
    """
    counts = np.zeros((5, len(classes)), dtype=np.int64)  # tp, fp, tn, hard fn, true positives
    labels = frame.cpu().numpy()
    for i, n in enumerate(lengths):
        n = int(n)
        pl, true = labels[i, :n], np.asarray(truth[i][:n]) > 0.5
        if true.shape != pl.shape:
            raise ValueError(f"clip {i}: true labels {true.shape} do not match pseudo labels {pl.shape}")
        pos, neg = pl == 1, pl == 0
        counts += np.stack([pos & true, pos & ~true, neg & ~true, neg & true, true]).sum(axis=1)
    out = {c: _scores(*counts[:, i].tolist()) for i, c in enumerate(classes)}
    out["all_classes"] = _scores(*counts.sum(axis=1).tolist())
    return out


def _scores(tp: int, fp: int, tn: int, fn_hard: int, true_pos: int) -> dict[str, Any]:
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, true_pos),
            "negative_precision": _ratio(tn, tn + fn_hard), "pseudo_positive": tp + fp,
            "pseudo_negative": tn + fn_hard, "true_positive_entries": true_pos}


def resolve_truth_dir(value: bool | str, root: Path) -> Path | None:
    """The folder of the true labels of W and U that ``value`` names: ``False`` none, ``True`` the
    generator's ``metadata/truth`` under ``root``, else a folder (relative to ``root`` or absolute)."""
    if value is False:
        return None
    if value is True:
        from audioadapt.data.synthetic.sed import TRUTH_DIR

        value = TRUTH_DIR
    path = Path(value)
    return path if path.is_absolute() else Path(root) / path


class PseudoLabelTruth:
    """The true strong labels of the pseudo-labelled sources, read only to score the pseudo labels.

    Parameters
    ----------
    folder: holds ``<source>.tsv`` (DCASE strong format) for ``weak`` and ``unlabeled``.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._frames: dict[str, list[np.ndarray]] = {}

    def frames(self, source: str, dataset: "SedDataset") -> list[np.ndarray]:
        """The true frame labels of every clip of ``dataset``, encoded as the training labels are."""
        if source not in self._frames:
            from audioadapt.data.dcase import read_strong_tsv

            path = self.folder / f"{source}.tsv"
            if not path.is_file():
                raise DataError("no true labels of the pseudo-labelled clips here (a dataset written by "
                                "'audioadapt synth sed' has them in metadata/truth/); set "
                                "method.diagnostics.pseudo_label_truth=false or regenerate the dataset", path)
            events = read_strong_tsv(path, classes=dataset.classes)
            missing = [r.filename for r in dataset.records if r.filename not in events]
            if missing:
                raise DataError(f"no true labels for {len(missing)} clip(s) of '{source}', e.g. {missing[0]!r}",
                                path)
            self._frames[source] = [
                encode_strong(events[r.filename], dataset.classes, dataset.grid, dataset.num_output_frames(i),
                              dataset.config.labels)
                for i, r in enumerate(dataset.records)]
        return self._frames[source]

    def score(self, source: str, dataset: "SedDataset", frame: torch.Tensor,
              lengths: Iterable[int]) -> dict[str, dict[str, Any]]:
        """:func:`truth_scores` of ``source``'s pseudo labels."""
        return truth_scores(frame, list(lengths), self.frames(source, dataset), dataset.classes)


__all__ = [
    "PREFIX",
    "PSEUDO_PREFIX",
    "ROUND_COUNTS",
    "TRUTH_SCORES",
    "PseudoLabelTruth",
    "SedDiagnostics",
    "SedDiagnosticsConfig",
    "domain_accuracies",
    "domain_counts",
    "eq8_value",
    "first_step_after_round",
    "resolve_truth_dir",
    "round_logs",
    "saturation_counts",
    "truth_scores",
]
