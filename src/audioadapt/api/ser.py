"""Train, evaluate and apply the cross-lingual SER systems in one call each.

>>> from audioadapt.api.ser import train_ser, evaluate_ser_run, predict_ser
>>> result = train_ser("ser_demo", source="data/synth", target="data/synth", run_dir="runs/demo")
>>> metrics = evaluate_ser_run("runs/demo")              # {"test": SerMetrics, ...}; writes reports
>>> rows = predict_ser("runs/demo", ["clip.wav", "folder/"])

A run directory holds, besides the Trainer's files (``config.yaml``,
``versions.json``, ``train.log``, ``metrics.csv``, ``last.pt``, ``best.pt``
when the source has a validation part): ``data.json`` (corpora, the target
split with its class counts and ids, the source validation ids, utterance
counts) and, after evaluation, per target side (``test``, and ``validation``
for EMO-DB's speaker 16) ``eval_<side>.json``, ``eval_<side>.md``,
``confusion_<side>.png`` and ``predictions_<side>.csv``.

``last.pt`` is the result of every method: the stage-1 epoch selected on the
source validation UA for ``snsa_f``, the last stage-2 epoch otherwise.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audioadapt import __version__
from audioadapt.audio.collect import AUDIO_EXTENSIONS, LIST_EXTENSIONS, collect_audio
from audioadapt.config.load import apply_overrides, to_dict
from audioadapt.config.ser import (SerCorpusConfig, SerExperimentConfig, load_ser_config, stored_ser_config,
                                   with_corpora)
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.normalization import Normalizer
from audioadapt.training.loop import FitResult

log = logging.getLogger(__name__)

# -- configuration ------------------------------------------------------------------
def _absolute(corpus: SerCorpusConfig) -> SerCorpusConfig:
    return corpus if not corpus.given else dataclasses.replace(corpus, root=os.path.abspath(str(corpus.root)))


def resolve_ser_config(preset_or_config: str | Path | SerExperimentConfig, overrides: Iterable[str] = (),
                       source: str | Path | SerCorpusConfig | None = None,
                       target: str | Path | SerCorpusConfig | None = None,
                       saved: Path | None = None) -> tuple[SerExperimentConfig, str]:
    """The run's configuration and a name for its default run directory.

    Corpora missing from the preset and the arguments are taken from the
    ``saved`` config (a resumed run's ``config.yaml``); roots become absolute.
    """
    if isinstance(preset_or_config, SerExperimentConfig):
        cfg, name = apply_overrides(preset_or_config, list(overrides)), "ser"
    else:
        cfg, name = load_ser_config(preset_or_config, overrides), Path(str(preset_or_config)).stem
    if saved is not None and saved.is_file() and (source is None or target is None):
        previous = stored_ser_config(saved)
        source = source if source is not None or cfg.source.given else previous.source
        target = target if target is not None or cfg.target.given else previous.target
    cfg = with_corpora(cfg, source, target)
    return dataclasses.replace(cfg, source=_absolute(cfg.source), target=_absolute(cfg.target)), name


def build_normalizer(cfg: SerExperimentConfig, data: Any) -> Normalizer:
    """The configured normaliser, fitted on the stage-1 source training features if its kind needs it.

    With ``stage2.init_from`` it is the stage-1 checkpoint's (same settings required).
    """
    from audioadapt.training.ser_nnpm import load_stage1_checkpoint

    normalizer = Normalizer(cfg.normalizer, cfg.features.n_mels)
    if not cfg.runs_stage1:
        normalizer.load_state_dict(load_stage1_checkpoint(str(cfg.stage2.init_from))[1]["meta"]["normalizer"])
    elif normalizer.requires_fit:
        ds = data.source_train
        normalizer.fit(ds.features[i] for i in range(len(ds)))
    return normalizer


def checkpoint_meta(cfg: SerExperimentConfig, normalizer: Normalizer, classes: Sequence[str]) -> dict[str, Any]:
    """What every checkpoint of a SER run carries to be used on its own."""
    return {
        "model_config": to_dict(cfg.model),
        "feature_config": to_dict(cfg.features),
        "dataset_config": to_dict(cfg.dataset),
        "normalizer": normalizer.state_dict(),
        "classes": list(classes),
        "audioadapt_version": __version__,
        "task": "ser",
        "method": cfg.method.kind,
        "mask_padding": cfg.method.mask_padding,
        "predict_batch_size": cfg.method.predict_batch_size,
        "experiment_config": to_dict(cfg),
    }


# -- training ---------------------------------------------------------------------------
def train_ser(preset_or_config: str | Path | SerExperimentConfig, overrides: Iterable[str] = (), *,
              source: str | Path | SerCorpusConfig | None = None,
              target: str | Path | SerCorpusConfig | None = None, run_dir: str | Path | None = None,
              resume: bool = False) -> FitResult:
    """Train one SER system (``snsa_f``, ``nnpm``, ``snsa_wo_sl``, ``snsa_wo_hl`` or ``dann``).

    Parameters
    ----------
    preset_or_config: a preset name (``ser_nnpm``, ..., ``ser_demo``), a YAML
        path, or a :class:`SerExperimentConfig`.
    overrides: dotted ``key.path=value`` changes (checked like a preset).
    source, target: ``CORPUS:PATH`` (``iemocap:/data/IEMOCAP_full_release``,
        ``csv:/x/manifest.csv``, ...) or a folder written by ``audioadapt synth
        ser``; on resume they default to the run's.
    run_dir: where the run is written; default ``runs/<preset>-<timestamp>``.
    resume: continue the run in ``run_dir`` from its ``last.pt``; the data
        must be the one recorded in its ``data.json``.
    """
    from audioadapt.models.ser_model import SerModel
    from audioadapt.training.distributed import init_distributed
    from audioadapt.training.experiment import (
        CONFIG_FILE,
        check_resumable,
        default_run_name,
        record_data,
        start_experiment,
    )
    from audioadapt.training.loop import Trainer
    from audioadapt.training.ser_data import SerDataModule
    from audioadapt.training.ser_nnpm import SerNnpmMethod

    if resume and run_dir is None:
        raise ConfigError("resume needs the run directory to continue")
    if resume:
        check_resumable(run_dir)
    saved = Path(run_dir) / CONFIG_FILE if resume and run_dir is not None else None
    cfg, name = resolve_ser_config(preset_or_config, overrides, source, target, saved)
    for role in ("source", "target"):
        if not getattr(cfg, role).given:
            raise ConfigError(f"no {role} corpus: give --{role} CORPUS:PATH (or {role}.corpus and {role}.root)")
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / f"{name}-{default_run_name()}"
    dist = init_distributed(cfg.train.device)
    with start_experiment(run_dir, cfg, seed=cfg.train.seed, deterministic=cfg.train.deterministic,
                          resume=resume, rank=dist.rank) as exp:
        data = SerDataModule(cfg).setup(dist)
        if dist.is_main:
            record_data(run_dir, data.summary(), resumed=exp.resumed)
        normalizer = build_normalizer(cfg, data)
        model = SerModel(cfg.model, cfg.features.n_mels)
        method = SerNnpmMethod(cfg, model, normalizer, data)
        trainer = Trainer(cfg.train, run_dir, meta=checkpoint_meta(cfg, normalizer, data.classes), dist=dist)
        result = trainer.fit(method, resume=resume)
    log.info("run %s (%s) done", run_dir, cfg.method.kind)
    return result


# -- evaluation ---------------------------------------------------------------------------
def checkpoint_path(run_dir: str | Path, checkpoint: str | Path = "last") -> Path:
    """``last`` (the run's result), ``best`` (the selected stage-1 epoch) or a path."""
    from audioadapt.training.checkpoint import BEST, LAST

    run_dir = Path(run_dir)
    if checkpoint == "last":
        return run_dir / LAST
    if checkpoint == "best":
        return run_dir / BEST
    return Path(checkpoint)


def load_ser_run(run_dir: str | Path,
                 checkpoint: str | Path = "last") -> tuple[dict[str, Any], SerExperimentConfig, Path]:
    """A run's loaded checkpoint, its experiment configuration and the checkpoint's path (see :func:`checkpoint_path`).

    The checkpoint's ``meta`` is read as the run was trained
    (:func:`~audioadapt.training.ser_predict.read_meta`: a run saved before
    ``dataset.frontend`` existed has no front end).
    """
    from audioadapt.training.allocator import configure_for_run
    from audioadapt.training.checkpoint import load_run_checkpoint
    from audioadapt.training.ser_predict import read_meta

    path = checkpoint_path(run_dir, checkpoint)
    ckpt = load_run_checkpoint(path, "ser", run_dir if checkpoint in ("best", "last") else path)
    meta = ckpt["meta"]
    if "experiment_config" not in meta or "dataset_config" not in meta:
        raise DataError("not a checkpoint of a SER run (no experiment_config in its meta)", path)
    ckpt["meta"] = meta = read_meta(ckpt)
    cfg = stored_ser_config(meta["experiment_config"])
    configure_for_run(cfg.train.cpu_allocator)
    return ckpt, cfg, path


def _write_predictions(path: Path, dataset: Any, pred: Any, classes: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        memory = pred.memory_labels is not None
        writer.writerow(["utt_id", "path", "true", "predicted", *classes, *(["memory"] if memory else [])])
        for i, utt in enumerate(dataset.utterances):
            row = [utt.utt_id, str(utt.path), utt.label or "", classes[pred.labels[i]],
                   *(f"{p:.6f}" for p in pred.probabilities[i])]
            if memory:
                row.append(classes[pred.memory_labels[i]])
            writer.writerow(row)


def evaluate_ser_run(run_dir: str | Path, checkpoint: str | Path = "last", write: bool = True,
                     target: str | Path | SerCorpusConfig | None = None) -> dict[str, Any]:
    """Score a trained run on the target test side (and EMO-DB's validation side, reported only).

    The target corpus and its split are the run's (``target`` points to the
    same corpus elsewhere, e.g. after moving it). Returns ``{side: SerMetrics}``. With ``write``, each side gets
    ``eval_<side>.json`` / ``.md`` (UA, WA, per-class recall, confusion
    matrix, and the nearest-memory-slot predictor's UA, WA and agreement with
    the head when the run has a memory), ``confusion_<side>.png`` and
    ``predictions_<side>.csv`` in ``run_dir``. Utterances without a label in
    the shared set are predicted but not scored.
    """
    from audioadapt.evaluation.report import write_report
    from audioadapt.evaluation.ser_metrics import per_speaker, plot_confusion_matrix, ser_metrics
    from audioadapt.training.checkpoint import checkpoint_inputs
    from audioadapt.training.distributed import resolve_device
    from audioadapt.training.ser_data import SerDataModule
    from audioadapt.training.ser_predict import load_memory, load_ser_model, predict_dataset

    run_dir = Path(run_dir)
    ckpt, cfg, path = load_ser_run(run_dir, checkpoint)
    cfg = dataclasses.replace(cfg, target=_absolute(with_corpora(cfg, target=target).target))
    classes = tuple(ckpt["meta"]["classes"])
    device = resolve_device(cfg.train.device)
    model, normalizer = load_ser_model(ckpt)
    model.to(device)
    normalizer.to(device)
    memory = load_memory(ckpt)
    data = SerDataModule(cfg).setup(source=False)
    results: dict[str, Any] = {}
    for side, dataset in (("test", data.target_test), ("validation", data.target_validation)):
        if dataset is None:
            continue
        pred = predict_dataset(model, normalizer, dataset, cfg.method.predict_batch_size, device, memory=memory,
                               mask_padding=cfg.method.mask_padding)
        known = dataset.labels >= 0
        if not known.any():
            raise DataError(f"no target {side} utterance has an emotion label to score", cfg.target.root)
        metrics = ser_metrics(dataset.labels[known], pred.labels[known], classes,
                              probabilities=pred.probabilities[known])
        results[side] = metrics
        if not write:
            continue
        inputs = {"run_dir": str(run_dir), **checkpoint_inputs(path, ckpt), "method": cfg.method.kind,
                  "side": side, "target": cfg.target.describe(),
                  "protocol": data.split.protocol if data.split else None,
                  "split_method": data.split.method if data.split else None,
                  "utterances": len(dataset), "scored": int(known.sum())}
        report = metrics.report(settings={"classes": list(classes), "dataset": to_dict(cfg.dataset)},
                                inputs=inputs)
        if pred.memory_labels is not None:
            mem = ser_metrics(dataset.labels[known], pred.memory_labels[known], classes)
            report.add_entry("memory_predictor_ua", mem.ua)
            report.add_entry("memory_predictor_wa", mem.wa)
            report.add_entry("memory_head_agreement", pred.memory_agreement)
            report.results["memory_predictor"] = mem.to_dict()
        scored = [u for u, k in zip(dataset.utterances, known) if k]
        if any(u.speaker is not None for u in scored):
            report.results["per_speaker"], table = per_speaker(
                [u.speaker for u in scored], dataset.labels[known], pred.labels[known], classes)
            report.tables.append(table)
        write_report(report, run_dir / f"eval_{side}.json")
        plot_confusion_matrix(metrics, run_dir / f"confusion_{side}.png",
                              title=f"{cfg.method.kind}, target {side}: UA {100 * metrics.ua:.2f} %, "
                                    f"WA {100 * metrics.wa:.2f} %")
        _write_predictions(run_dir / f"predictions_{side}.csv", dataset, pred, classes)
        log.info("%s: UA %.4f WA %.4f on %d utterances", side, metrics.ua, metrics.wa, metrics.n_utterances)
    return results


# -- prediction ---------------------------------------------------------------------------------
def prediction_rows(names: Sequence[str], pred: Any, classes: Sequence[str], windows: bool = False
                    ) -> list[dict[str, Any]]:
    """Rows of :class:`~audioadapt.training.ser_predict.SerFilePredictions`, one per file named in ``names``.

    A file's row holds ``path``, ``label`` (argmax of the mean of its
    windows' probabilities), one probability per class, ``memory_label``
    when the run has a memory, and ``windows``, the number of windows scored.
    With ``windows`` each file row (``window`` ``"mean"``) is followed by one row
    per window (``window`` 0, 1, ...), all with ``start`` and ``end`` in seconds
    instead of the window count.
    """
    w = pred.windows

    def row(name: str, where: dict[str, Any], probs: np.ndarray, label: int,
            memory: np.ndarray | None, k: int) -> dict[str, Any]:
        out: dict[str, Any] = {"path": name, **where, "label": classes[int(label)]}
        out.update({c: float(p) for c, p in zip(classes, np.asarray(probs))})
        if memory is not None:
            out["memory_label"] = classes[int(memory[k])]
        return out

    rows = []
    for i, name in enumerate(names):
        mine = np.flatnonzero(w.file == i)
        where = {"window": "mean", "start": 0.0, "end": float(pred.durations[i])} if windows else {}
        rows.append(row(name, where, pred.probabilities[i], pred.labels[i], pred.memory_labels, i))
        if not windows:
            rows[-1]["windows"] = len(mine)
            continue
        for k, j in enumerate(mine):
            where = {"window": k, "start": float(w.start[j]), "end": float(w.end[j])}
            rows.append(row(name, where, w.probabilities[j], w.labels[j], w.memory_labels, j))
    return rows


def predict_ser(run_dir: str | Path, audio: Iterable[str | Path], checkpoint: str | Path = "last",
                batch_size: int | None = None, windows: bool = False,
                hop_seconds: float | None = None) -> list[dict[str, Any]]:
    """Emotion of audio files with a trained run: one row per file (see :func:`prediction_rows`).

    Files of any length are scored whole, in windows of the run's
    ``dataset.crop_seconds`` every ``hop_seconds`` (default: the crop length),
    and a file's probabilities are the mean of its windows'
    (:func:`~audioadapt.training.ser_predict.predict_features`). ``windows``
    adds one row per window after each file's row.
    """
    from audioadapt.training.distributed import resolve_device
    from audioadapt.training.ser_predict import predict_files

    ckpt, cfg, _ = load_ser_run(run_dir, checkpoint)
    classes = tuple(ckpt["meta"]["classes"])
    paths = collect_audio(audio)
    pred = predict_files(ckpt, paths, batch_size=batch_size, device=resolve_device(cfg.train.device),
                         hop_seconds=hop_seconds)
    return prediction_rows([str(p) for p in paths], pred, classes, windows)


__all__ = [
    "AUDIO_EXTENSIONS",
    "LIST_EXTENSIONS",
    "build_normalizer",
    "checkpoint_meta",
    "checkpoint_path",
    "collect_audio",
    "evaluate_ser_run",
    "load_ser_run",
    "predict_ser",
    "prediction_rows",
    "resolve_ser_config",
    "train_ser",
]
