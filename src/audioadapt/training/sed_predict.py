"""Inference helpers shared by SED validation and evaluation.

* :func:`run_model`: normalise a batch and run the network (training and inference);
* :func:`inference_model`: the network as prediction runs it, eager or through ``torch.compile``;
* :func:`predict_scores`: frame and clip probabilities of the predicting head(s)
  over a dataset, each clip's frames cropped to its own output length;
* :func:`selection_metrics`: the 2019 baseline's model-selection numbers
  (synthetic-valid event F1 + weak-valid clip F1);
* :func:`evaluate_scores`: decode scores into events and compute the event,
  segment and clip metrics, plus PSDS1/2 when requested;
* :func:`postprocessed_scores`: the threshold-free scores of each clip with
  their frame boundaries (for PSDS, score files and threshold tuning);
* :func:`model_networks` / :func:`load_model`: the names under which a
  :class:`~audioadapt.models.sed_model.SedModel` is checkpointed, and the way
  back from a checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from audioadapt.data.batch import SedBatch
from audioadapt.data.labels import encode_weak
from audioadapt.data.sed_dataset import SedDataset
from audioadapt.errors import CheckpointError, ConfigError, DataError
from audioadapt.evaluation.api import SedEvaluation, evaluate_sed
from audioadapt.evaluation.decoding import DecodeConfig, decode_batch, frame_boundaries, postprocess_scores
from audioadapt.evaluation.sed_metrics import SedMetricConfig, clip_metrics_from_probabilities, event_based_metrics
from audioadapt.features.frames import FrameGrid
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import FINAL_HEAD, SedModel, SedModelConfig, SedOutput

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.evaluation.psds import PsdsConfig
    from audioadapt.training.sed_data import SedDataModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SedPredictConfig:
    """What predicts, and in what batches.

    Attributes
    ----------
    heads: heads whose probabilities are averaged into the prediction; the
        paper predicts with the final classifier ``ft`` only (averaging
        ``f1``, ``f2`` and ``ft`` is an option, not the paper's method).
    batch_size: clips per inference batch.
    compile: run the network through ``torch.compile`` (inductor) in ``sed predict``,
        ``sed evaluate`` and :func:`audioadapt.load`'s ``SedSystem``; validation during training
        stays eager. The first batch of each new input shape compiles first (paper-size model on a
        shared 2-core AMD EPYC: 20-40 s with an empty inductor cache, 5-17 s with a warm one). The
        predictions are eager's up to float rounding. Off by default because it gained little
        there: paper-size model, head ``ft``, one thread, eager and compiled interleaved, median of
        7: 0.96 of eager's time per batch of 1 clip, 0.98-0.99 per batch of 4. The convolutions
        stay oneDNN calls and the fused block tail a custom operator, and the BiGRU (about a third
        of inference) breaks the graph and runs eagerly, so inductor only fuses the heads'
        element-wise work. ``sed predict --compile`` turns it on for one call.
    """

    heads: tuple[str, ...] = (FINAL_HEAD,)
    batch_size: int = 32
    compile: bool = False

    def __post_init__(self) -> None:
        if not self.heads or len(set(self.heads)) != len(self.heads):
            raise ConfigError(f"predict.heads must name distinct heads, got {list(self.heads)}")
        if self.batch_size <= 0:
            raise ConfigError(f"predict.batch_size must be positive, got {self.batch_size}")


# -- checkpoint names -----------------------------------------------------------------
def model_networks(model: SedModel, prefix: str = "") -> dict[str, nn.Module]:
    """The parts of ``model`` as named networks: ``encoder`` (F), one per head, ``domain`` (D)."""
    nets: dict[str, nn.Module] = {f"{prefix}encoder": model.encoder}
    nets.update({f"{prefix}{name}": head for name, head in model.heads.items()})
    if model.domain is not None:
        nets[f"{prefix}domain"] = model.domain
    return nets


def load_model(checkpoint: Mapping[str, Any], prefix: str = "") -> tuple[SedModel, Normalizer]:
    """Rebuild the model (networks named with ``prefix``) and the normaliser of a loaded checkpoint."""
    from audioadapt.config.load import from_dict
    from audioadapt.features.config import FeatureConfig
    from audioadapt.training.checkpoint import restore_networks

    meta = checkpoint.get("meta") or {}
    missing = [k for k in ("model_config", "feature_config", "normalizer", "classes") if k not in meta]
    if missing:
        raise CheckpointError(f"the checkpoint's meta lacks {missing}; it was not written by a SED run")
    features = from_dict(FeatureConfig, meta["feature_config"])
    model = SedModel(from_dict(SedModelConfig, meta["model_config"]), features.n_mels, len(meta["classes"]))
    restore_networks(model_networks(model, prefix), checkpoint)
    normalizer = Normalizer.from_state_dict(meta["normalizer"])
    return model, normalizer


# -- running the model ------------------------------------------------------------------
def inference_model(model: SedModel, compile: bool = False) -> SedModel:
    """``model``, or with ``compile`` its ``torch.compile`` wrapper (same parameters, same call).

    Wrapping again is cheap: compiled code is cached on the model's ``forward`` and reused while the
    input shapes and modes it was compiled for hold.
    """
    return cast(SedModel, torch.compile(model)) if compile else model


def run_model(model: SedModel, normalizer: Normalizer, batch: SedBatch, heads: Sequence[str] | None = None,
              domain: bool = True, features: torch.Tensor | None = None) -> SedOutput:
    """Normalise ``batch.features`` (or ``features``, e.g. a noisy copy) and run ``model``.

    Padded frames (rows shorter than the batch) are masked through ``batch.lengths``.
    """
    x = batch.features if features is None else features
    x = normalizer(x, batch.lengths)
    mask = None if batch.lengths is None else batch.frame_mask()
    return model(x, mask, heads=heads, domain=domain)


@dataclass
class SedScores:
    """Probabilities of one dataset, in dataset order.

    Attributes
    ----------
    filenames: one per clip.
    frame: per clip a ``(frame, class)`` array, cropped to the clip's output length.
    clip: ``(clip, class)`` clip probabilities.
    """

    filenames: list[str]
    frame: list[np.ndarray]
    clip: np.ndarray

    def frame_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.filenames, self.frame))


@torch.no_grad()
def predict_scores(model: SedModel, normalizer: Normalizer, dataset: SedDataset, heads: Sequence[str],
                   batch_size: int, device: torch.device | str = "cpu", num_workers: int = 0,
                   compile: bool = False) -> SedScores:
    """Mean frame and clip probabilities of ``heads`` over every clip of ``dataset`` (eval mode).

    ``compile``: run the network through ``torch.compile`` (:attr:`SedPredictConfig.compile`).
    """
    from audioadapt.training.sed_data import SedDataModule

    modes = [(m, m.training) for m in (model, normalizer)]
    model.eval()
    normalizer.eval()
    network = inference_model(model, compile)
    frames: list[np.ndarray] = []
    clips: list[np.ndarray] = []
    try:
        for batch in SedDataModule.eval_loader(dataset, batch_size, num_workers):
            batch = batch.to(device)
            out = run_model(network, normalizer, batch, heads, domain=False)
            frame = torch.stack([out[h].frame_probs for h in heads]).mean(0).float().cpu().numpy()
            clip = torch.stack([out[h].clip_probs for h in heads]).mean(0).float().cpu().numpy()
            for row, index in enumerate(batch.index.tolist()):
                frames.append(frame[row, : dataset.num_output_frames(index)])
            clips.append(clip)
    finally:
        for module, training in modes:
            module.train(training)
    return SedScores([r.filename for r in dataset.records], frames, np.concatenate(clips, axis=0))


# -- scoring ------------------------------------------------------------------------------
def _clip_lengths(dataset: SedDataset, durations: Mapping[str, float] | None) -> dict[str, float] | None:
    return None if durations is None else {r.filename: float(durations[r.filename]) for r in dataset.records}


def selection_metrics(model: SedModel, normalizer: Normalizer, data: "SedDataModule", heads: Sequence[str],
                      batch_size: int, decode: DecodeConfig, metrics: SedMetricConfig,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Model selection of the DCASE 2019 baseline, on the internal valid parts only.

    Returns ``synthetic_event_f1`` (macro event F1 on ``synthetic_valid``),
    ``weak_clip_f1`` (macro clip F1 on ``weak_valid``) and their sum
    ``selection`` (an undefined part counts 0 in the sum). The real-domain
    validation split is never touched.
    """
    synth = data.source("synthetic_valid")
    weak = data.source("weak_valid")
    clip_seconds = data.cfg.features.clip_seconds
    s_scores = predict_scores(model, normalizer, synth, heads, batch_size, device)
    lengths = None if clip_seconds is None else {r.filename: float(clip_seconds) for r in synth.records}
    estimated = decode_batch(s_scores.frame_dict(), synth.classes, data.grid, decode, lengths)
    reference = {r.filename: r.events or () for r in synth.records}
    event_f1 = event_based_metrics(reference, estimated, synth.classes, metrics).macro.f_measure
    w_scores = predict_scores(model, normalizer, weak, heads, batch_size, device)
    tags = np.stack([encode_weak(r.clip_tags() or (), weak.classes) for r in weak.records])
    clip_f1 = clip_metrics_from_probabilities(tags, w_scores.clip, weak.classes, metrics).macro.f_measure
    total = sum(0.0 if not math.isfinite(v) else v for v in (event_f1, clip_f1))
    return {"synthetic_event_f1": event_f1, "weak_clip_f1": clip_f1, "selection": total}


def evaluate_scores(scores: SedScores, dataset: SedDataset, grid: FrameGrid, decode: DecodeConfig,
                    metrics: SedMetricConfig, durations: Mapping[str, float] | None = None,
                    psds: Mapping[str, "PsdsConfig"] | None = None,
                    inputs: Mapping[str, Any] | None = None) -> tuple[SedEvaluation, dict[str, list]]:
    """Decode ``scores`` and score them against the strong labels of ``dataset``.

    Parameters
    ----------
    scores: the output of :func:`predict_scores` on ``dataset``.
    dataset: strongly labelled clips (``events`` known for every record).
    grid: the output frame grid.
    decode, metrics: post-processing and metric settings.
    durations: clip lengths (seconds); they crop the scores, clip event
        offsets and define the segments and PSDS's total duration.
    psds: named PSDS scenarios to add to the report (needs ``durations``);
        a scenario that cannot be computed (e.g. a class without any
        reference event) is reported as ``None`` with a warning.
    inputs: provenance for the report.

    Returns
    -------
    The evaluation and the decoded events ``{filename: events}``.
    """
    if any(r.events is None for r in dataset.records):
        raise DataError(f"split '{dataset.name}' has clips without strong labels; cannot evaluate events")
    classes = dataset.classes
    lengths = _clip_lengths(dataset, durations)
    estimated = decode_batch(scores.frame_dict(), classes, grid, decode, lengths)
    reference = {r.filename: list(r.events or ()) for r in dataset.records}
    info = {"split": dataset.name, "decode": _decode_settings(decode, grid), **dict(inputs or {})}
    evaluation = evaluate_sed(reference, estimated, classes, metrics, lengths, info)
    if psds:
        from audioadapt.evaluation.psds import psds_scenarios

        if lengths is None:
            log.warning("%s: needs clip durations (a durations file or features.clip_seconds)", ", ".join(psds))
            evaluation.add_psds(psds, {})
        else:
            filtered, bounds = postprocessed_scores(scores.frame_dict(), grid, decode, lengths)
            evaluation.add_psds(psds, psds_scenarios(psds, filtered, bounds, classes, reference, lengths))
    return evaluation, estimated


def _decode_settings(decode: DecodeConfig, grid: FrameGrid) -> dict[str, Any]:
    from audioadapt.evaluation.decode_settings import decode_record

    return decode_record(decode, grid.output_hop_seconds)


def postprocessed_scores(frame_scores: Mapping[str, np.ndarray], grid: FrameGrid, decode: DecodeConfig,
                         durations: Mapping[str, float] | None = None
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Threshold-free scores of each clip and their frame boundaries.

    ``{name: (frame, class) scores}`` -> ``({name: cropped, median-filtered
    scores}, {name: frame + 1 boundaries in seconds})``, cut at each clip's
    duration when ``durations`` are given (see
    :func:`~audioadapt.evaluation.decoding.postprocess_scores`). Thresholding
    them (``score > threshold``) gives the events of the decoder; they are
    the input of PSDS, of score files and of threshold tuning.
    """
    filtered, bounds = {}, {}
    for name, frame in frame_scores.items():
        length = None if durations is None else durations[name]
        filtered[name] = postprocess_scores(frame, grid, decode, length)
        bounds[name] = frame_boundaries(len(filtered[name]), grid, length)
    return filtered, bounds


__all__ = [
    "SedPredictConfig",
    "SedScores",
    "evaluate_scores",
    "inference_model",
    "load_model",
    "model_networks",
    "postprocessed_scores",
    "predict_scores",
    "run_model",
    "selection_metrics",
]
