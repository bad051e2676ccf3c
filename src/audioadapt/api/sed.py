"""Train and evaluate the SED system in two calls.

>>> from audioadapt.api.sed import train_sed, evaluate_sed_run
>>> result = train_sed("sed_baseline", ["train.epochs=5"], data_root="data/small", run_dir="runs/baseline")
>>> evaluation = evaluate_sed_run("runs/baseline")      # writes eval_validation.json / .md

A run directory holds, besides the Trainer's files (``config.yaml``,
``versions.json``, ``train.log``, ``metrics.csv``, ``last.pt``, ``best.pt``):
``data.json`` (dataset root, class list, clip counts actually used, the
internal valid file names), ``pseudo_labels.json`` (tri-training) and, after
evaluation, ``eval_<split>.json``, ``eval_<split>.md`` and
``predictions_<split>.tsv``; ``best.thresholds.json`` holds class thresholds
tuned by :func:`audioadapt.api.sed_thresholds.tune_sed_thresholds`, which
evaluation and prediction then apply. An evaluation on another dataset than the run's
(``data_root``, e.g. a second real-domain validation set drawn with the same
``--split-seed``) adds a tag to these names (default: that dataset's folder
name), so the run's own evaluation is kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audioadapt import __version__
from audioadapt.config.load import from_dict, to_dict
from audioadapt.config.sed import SedExperimentConfig, load_sed_config, override_sed_config
from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.api import SedEvaluation
from audioadapt.features.normalization import Normalizer
from audioadapt.training.experiment import DATA_FILE
from audioadapt.training.loop import FitResult
from audioadapt.training.method import Method

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.models.sed_model import SedModel

log = logging.getLogger(__name__)


def _resolve_config(preset_or_config: str | Path | SedExperimentConfig,
                    overrides: Iterable[str]) -> tuple[SedExperimentConfig, str]:
    if isinstance(preset_or_config, SedExperimentConfig):
        return override_sed_config(preset_or_config, overrides), "sed"
    return load_sed_config(preset_or_config, overrides), Path(str(preset_or_config)).stem


def build_normalizer(cfg: SedExperimentConfig, data: Any) -> Normalizer:
    """The configured normaliser, fitted on the training sources' features if its kind needs it."""
    normalizer = Normalizer(cfg.normalizer, cfg.features.n_mels)
    if normalizer.requires_fit:
        def items() -> Iterator[np.ndarray]:
            for name in data.train.source_names:
                ds = data.source(name)
                for i in range(len(ds)):
                    yield ds.features[i]

        normalizer.fit(items())
    return normalizer


def build_method(cfg: SedExperimentConfig, model: Any, normalizer: Normalizer, data: Any) -> Method:
    """The :class:`~audioadapt.training.method.Method` of ``cfg.method.kind``."""
    if cfg.method.kind == "mean_teacher":
        from audioadapt.training.sed_mean_teacher import SedMeanTeacherMethod

        return SedMeanTeacherMethod(cfg, model, normalizer, data)
    from audioadapt.training.sed_tri_adv import SedTriAdvMethod

    return SedTriAdvMethod(cfg, model, normalizer, data)


def checkpoint_meta(cfg: SedExperimentConfig, classes: Iterable[str], normalizer: Normalizer,
                    data_root: str | Path) -> dict[str, Any]:
    """What every checkpoint of a SED run carries to be used on its own."""
    return {
        "model_config": to_dict(cfg.model),
        "feature_config": to_dict(cfg.features),
        "normalizer": normalizer.state_dict(),
        "classes": list(classes),
        "audioadapt_version": __version__,
        "task": "sed",
        "method": cfg.method.kind,
        "experiment_config": to_dict(cfg),
        "data_root": str(Path(data_root).resolve()),
    }


def _data_root(data_root: str | Path | None, run_dir: Path) -> Path:
    if data_root is not None:
        return Path(data_root)
    saved = run_dir / DATA_FILE
    if saved.is_file():
        return Path(json.loads(saved.read_text(encoding="utf-8"))["root"])
    raise ConfigError(f"no dataset root given and {saved} does not exist (pass data_root / --data)")


def train_sed(preset_or_config: str | Path | SedExperimentConfig, overrides: Iterable[str] = (),
              data_root: str | Path | None = None, run_dir: str | Path | None = None,
              resume: bool = False) -> FitResult:
    """Train one SED system.

    Parameters
    ----------
    preset_or_config: a preset name (``sed_baseline``, ..., ``sed_mean_teacher``), a
        YAML path, or a :class:`SedExperimentConfig`.
    overrides: dotted ``key.path=value`` changes (checked like a preset).
    data_root: the dataset root (DESED 2019 layout); on resume it defaults to
        the one recorded in the run directory.
    run_dir: where the run is written; default ``runs/<preset>-<timestamp>``.
    resume: continue the run in ``run_dir`` from its ``last.pt`` (the Trainer
        repeats only the epoch that was cut short); the data must be the
        one recorded in its ``data.json``.
    """
    from audioadapt.models.sed_model import SedModel
    from audioadapt.training.distributed import init_distributed
    from audioadapt.training.experiment import check_resumable, default_run_name, record_data, start_experiment
    from audioadapt.training.loop import Trainer
    from audioadapt.training.sed_data import SedDataModule

    cfg, name = _resolve_config(preset_or_config, overrides)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / f"{name}-{default_run_name()}"
    if resume:
        check_resumable(run_dir)
    root = _data_root(data_root, run_dir) if resume else data_root
    if root is None:
        raise ConfigError("train_sed needs data_root (the dataset root)")
    dist = init_distributed(cfg.train.device)
    with start_experiment(run_dir, cfg, seed=cfg.train.seed, deterministic=cfg.train.deterministic,
                          resume=resume, rank=dist.rank) as exp:
        data = SedDataModule(root, cfg).setup(dist)
        if dist.is_main:
            record_data(run_dir, data.summary(), resumed=exp.resumed)
        normalizer = build_normalizer(cfg, data)
        model = SedModel(cfg.model, cfg.features.n_mels, len(data.classes))
        method = build_method(cfg, model, normalizer, data)
        trainer = Trainer(cfg.train, run_dir, meta=checkpoint_meta(cfg, data.classes, normalizer, root), dist=dist)
        result = trainer.fit(method, resume=resume)
    log.info("run %s done; best %s = %s at epoch %s", run_dir, result.best.get("metric"),
             result.best.get("value"), result.best.get("global_epoch"))
    return result


def _checkpoint_path(run_dir: Path, checkpoint: str | Path) -> Path:
    """The file of ``checkpoint`` (``best``, ``last`` or a path); ``best`` falls back to ``last.pt`` with a warning."""
    from audioadapt.training.checkpoint import BEST, LAST

    if checkpoint == "best":
        if (run_dir / BEST).is_file():
            return run_dir / BEST
        if (run_dir / LAST).is_file():
            log.warning("%s: no %s (no epoch was selected on the validation metrics); using %s, the latest "
                        "epoch, instead", run_dir, BEST, LAST)
        return run_dir / LAST
    if checkpoint == "last":
        return run_dir / LAST
    return Path(checkpoint)


def load_sed_run(run_dir: str | Path,
                 checkpoint: str | Path = "best") -> tuple[dict[str, Any], SedExperimentConfig, Path]:
    """A run's loaded checkpoint, its experiment configuration and the checkpoint's path.

    ``checkpoint`` is ``"best"`` (``best.pt``, else ``last.pt``), ``"last"`` or a path.
    """
    from audioadapt.training.allocator import configure_for_run
    from audioadapt.training.checkpoint import load_run_checkpoint

    path = _checkpoint_path(Path(run_dir), checkpoint)
    ckpt = load_run_checkpoint(path, "sed", run_dir if checkpoint in ("best", "last") else path)
    if "experiment_config" not in ckpt["meta"]:
        raise DataError("not a checkpoint of a SED run (no experiment_config in its meta)", path)
    cfg = from_dict(SedExperimentConfig, ckpt["meta"]["experiment_config"])
    configure_for_run(cfg.train.cpu_allocator)
    return ckpt, cfg, path


def predicting_model(ckpt: dict[str, Any], cfg: SedExperimentConfig) -> tuple[SedModel, Normalizer]:
    """The network that predicts (a mean-teacher run's teacher when it predicts with it) and its normaliser."""
    from audioadapt.training.sed_mean_teacher import TEACHER_PREFIX
    from audioadapt.training.sed_predict import load_model

    mt = cfg.method.kind == "mean_teacher" and cfg.method.mean_teacher.predict == "teacher"
    return load_model(ckpt, TEACHER_PREFIX if mt else "")


_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def eval_file_stem(split: str, tag: str | None = None) -> str:
    """The stem of an evaluation's files in a run: ``eval_<split>`` or ``eval_<split>_<tag>``."""
    return f"eval_{split}" if tag is None else f"eval_{split}_{tag}"


def _evaluation_tag(tag: str | None, root: Path, trained_on: Path) -> str | None:
    """``tag`` if given (checked), else ``None`` on the run's own dataset, else the dataset folder's name."""
    if tag is None:
        if root.resolve() == trained_on.resolve():
            return None
        tag = re.sub(r"[^A-Za-z0-9._-]+", "_", root.resolve().name).lstrip("._-") or "data"
    if not _TAG.fullmatch(tag):
        raise ConfigError(f"evaluation tag {tag!r} must be letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    return tag


def _dataset_description(root: Path) -> dict[str, Any]:
    """The generator's ``dataset.json`` of ``root`` (``{}`` when there is none or it cannot be read)."""
    from audioadapt.data.corpora.desed import dataset_description

    try:
        return dataset_description(root) or {}
    except DataError:
        return {}


def _check_dataset_classes(root: Path, classes: Iterable[str], checkpoint: Path) -> None:
    """A dataset whose ``dataset.json`` declares other classes than the checkpoint's is an error naming both."""
    from audioadapt.data.corpora.desed import DcaseLayout, dataset_classes

    declared = dataset_classes(root)
    if declared is None or set(declared) == set(classes):
        return
    missing, extra = sorted(set(classes) - set(declared)), sorted(set(declared) - set(classes))
    diff = "; ".join(part for part in (f"lacks {', '.join(missing)}" if missing else "",
                                       f"adds {', '.join(extra)}" if extra else "") if part)
    raise DataError(f"the dataset's class list differs from the one of the checkpoint {checkpoint} ({diff}); "
                    "a run can only be scored on data of its own classes", root / DcaseLayout().dataset_json)


def _held_out_check(root: Path, trained_on: Path) -> dict[str, Any]:
    """Seeds of the evaluated dataset and, for banks, how many of its validation groups the training saw.

    Source-recording groups come from ``dataset.json`` (``banks.<side>.group_ids``,
    written by ``audioadapt synth sed`` with banks); a shared group is logged as a warning.
    """
    info, trained = _dataset_description(root), _dataset_description(trained_on)
    out: dict[str, Any] = {k: info[k] for k in ("seed", "split_seed") if k in info}
    held_out = set(((info.get("banks") or {}).get("validation") or {}).get("group_ids") or ())
    train_banks = trained.get("banks") or {}
    seen = {g for side in ("synthetic", "real_train") for g in (train_banks.get(side) or {}).get("group_ids") or ()}
    if held_out and seen:
        shared = sorted(held_out & seen)
        out["validation_groups_seen_in_training"] = len(shared)
        if shared:
            log.warning("%d of the %d source-recording groups of %s's validation split were in the training data "
                        "of this run (e.g. %s): generate it with the run's dataset's split seed (%s)", len(shared),
                        len(held_out), root, shared[0], trained.get("split_seed", trained.get("seed")))
    return out


@dataclass
class SedRun:
    """A run's checkpoint, opened to predict on a dataset (see :func:`open_sed_run`).

    Attributes
    ----------
    run_dir: the run directory.
    checkpoint: the loaded checkpoint.
    cfg: the run's experiment configuration.
    path: the checkpoint file.
    root: the dataset root to predict on.
    trained_on: the dataset root the run was trained on.
    """

    run_dir: Path
    checkpoint: dict[str, Any]
    cfg: SedExperimentConfig
    path: Path
    root: Path
    trained_on: Path

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.checkpoint["meta"]["classes"])

    def split(self, split: str) -> tuple[Any, Any, dict[str, float] | None]:
        """``(data module, dataset, durations)`` of a strongly labelled split of :attr:`root`."""
        from audioadapt.training.sed_data import SedDataModule

        known = dataclasses.replace(self.cfg.data, classes=self.classes)
        data = SedDataModule(self.root, dataclasses.replace(self.cfg, data=known),
                             classes_from=f"the checkpoint {self.path}")
        if split == "synthetic_valid":
            data.setup()
        dataset, durations = data.eval_dataset(split)
        return data, dataset, durations

    def predict(self, dataset: Any) -> Any:
        """:func:`~audioadapt.training.sed_predict.predict_scores` of the predicting heads on ``dataset``."""
        from audioadapt.training.distributed import resolve_device
        from audioadapt.training.sed_predict import predict_scores

        model, normalizer = predicting_model(self.checkpoint, self.cfg)
        device = resolve_device(self.cfg.train.device)
        model.to(device)
        normalizer.to(device)
        p = self.cfg.method.predict
        return predict_scores(model, normalizer, dataset, p.heads, p.batch_size, device, compile=p.compile)


def open_sed_run(run_dir: str | Path, checkpoint: str | Path = "best",
                 data_root: str | Path | None = None) -> SedRun:
    """Load a run's checkpoint to predict on ``data_root`` (default: the dataset it was trained on).

    Another dataset must have the checkpoint's classes (its ``dataset.json``
    declaring others is a :class:`DataError`).
    """
    run_dir = Path(run_dir)
    ckpt, cfg, path = load_sed_run(run_dir, checkpoint)
    trained_on = Path(ckpt["meta"]["data_root"])
    root = Path(data_root) if data_root is not None else trained_on
    _check_dataset_classes(root, ckpt["meta"]["classes"], path)
    return SedRun(run_dir, ckpt, cfg, path, root, trained_on)


def evaluate_sed_run(run_dir: str | Path, split: str = "validation", data_root: str | Path | None = None,
                     checkpoint: str | Path = "best", write: bool = True, tag: str | None = None, *,
                     overrides: Iterable[str] = (), use_tuned_thresholds: bool = True,
                     allow_tuned_split: bool = False, scores_dir: str | Path | None = None) -> SedEvaluation:
    """Evaluate a trained run on a strongly labelled split; writes JSON + Markdown + predictions.

    Parameters
    ----------
    run_dir: the run directory.
    split: ``"validation"`` (the real-domain strong split; PSDS1/2 included
        when ``psds.enabled``) or ``"synthetic_valid"`` (the internal held-out
        synthetic clips).
    data_root: dataset root; default: the one the run was trained on. Another
        dataset must have the checkpoint's classes (its ``dataset.json``
        declaring others is a :class:`DataError`).
    checkpoint: ``"best"`` (``best.pt``, else ``last.pt``), ``"last"`` or a path.
    write: write ``eval_<split>.json``, ``eval_<split>.md`` and
        ``predictions_<split>.tsv`` into ``run_dir`` (with ``_<tag>`` after
        ``<split>`` when there is a tag).
    tag: names the files of this evaluation; default none on the run's own
        dataset, else the evaluated dataset's folder name. The report's
        inputs record it, with the resolved ``data_root``, the dataset the
        run was trained on and the evaluated dataset's seeds.
    overrides: ``decode.key=value`` changes of the run's decode settings
        (see :mod:`audioadapt.evaluation.decode_settings`).
    use_tuned_thresholds: apply the class thresholds tuned for the
        checkpoint (``<checkpoint stem>.thresholds.json``) when there are
        some and no override sets the thresholds.
    allow_tuned_split: report the split the applied thresholds were tuned on
        (refused otherwise); the report then says so.
    scores_dir: also write the threshold-free frame scores of every clip
        there, one sed_scores_eval TSV per clip (see
        :mod:`audioadapt.evaluation.score_files`).

    The report's inputs record the decode settings, the overrides and where
    the thresholds came from.
    """
    from audioadapt.api.sed_decode import check_tuned_split, resolve_run_decode
    from audioadapt.data.dcase import write_strong_tsv
    from audioadapt.evaluation.report import write_report
    from audioadapt.evaluation.score_files import check_score_folder, write_score_files
    from audioadapt.training.checkpoint import checkpoint_inputs
    from audioadapt.training.sed_predict import evaluate_scores, postprocessed_scores

    run = open_sed_run(run_dir, checkpoint, data_root)
    cfg, root = run.cfg, run.root
    tag = _evaluation_tag(tag, root, run.trained_on)
    run_decode = resolve_run_decode(cfg.decode, run.classes, run.path, overrides, use_tuned_thresholds)
    run_decode = check_tuned_split(run_decode, split, root, allow_tuned_split)
    data, dataset, durations = run.split(split)
    if scores_dir is not None:
        check_score_folder(scores_dir, [r.filename for r in dataset.records])
    scores = run.predict(dataset)
    inputs = {"run_dir": str(run.run_dir), **checkpoint_inputs(run.path, run.checkpoint),
              "data_root": str(root.resolve()), "trained_on": str(run.trained_on),
              "dataset": _held_out_check(root, run.trained_on), "tag": tag, "clips": len(dataset),
              "predict_heads": list(cfg.method.predict.heads), **run_decode.inputs(data.grid.output_hop_seconds),
              "scores_dir": None if scores_dir is None else str(scores_dir)}
    decode = run_decode.decode
    evaluation, events = evaluate_scores(scores, dataset, data.grid, decode, cfg.metrics, durations,
                                         cfg.psds.scenarios if cfg.psds.enabled else None, inputs)
    if scores_dir is not None:
        filtered, bounds = postprocessed_scores(scores.frame_dict(), data.grid, decode, durations)
        write_score_files(scores_dir, filtered, bounds, run.classes)
        log.info("wrote %d score file(s) to %s", len(filtered), scores_dir)
    if write:
        stem = eval_file_stem(split, tag)
        json_path, md_path = write_report(evaluation.report(), run.run_dir / f"{stem}.json")
        write_strong_tsv(run.run_dir / f"predictions_{stem[len('eval_'):]}.tsv",
                         {r.filename: events.get(r.filename, []) for r in dataset.records})
        log.info("wrote %s and %s", json_path, md_path)
    return evaluation


__all__ = ["DATA_FILE", "SedRun", "build_method", "build_normalizer", "checkpoint_meta", "eval_file_stem",
           "evaluate_sed_run", "load_sed_run", "open_sed_run", "predicting_model", "train_sed"]
