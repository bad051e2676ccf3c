"""Tune a run's class thresholds on a labelled split and store them beside its checkpoint.

>>> from audioadapt.api.sed_thresholds import tune_sed_thresholds
>>> tuned, result = tune_sed_thresholds("runs/baseline")          # synthetic_valid, event F1
>>> tuned.thresholds                                              # {"Alarm_bell_ringing": 0.37, ...}

The default split is ``synthetic_valid``, the internal held-out synthetic
clips that already select the model, never the real-domain validation split
that evaluations report (tuning there is possible only when asked, and
``sed evaluate`` then refuses to report that split unless told to). The
thresholds start from the run's ``decode`` config (never from earlier tuned
thresholds) and are tuned with its other decode settings. ``sed predict`` and
``sed evaluate`` apply them from then on (see :mod:`audioadapt.api.sed_decode`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from audioadapt.errors import ConfigError, DataError
from audioadapt.evaluation.threshold_tuning import OBJECTIVES, ThresholdTuningConfig, TuningResult
from audioadapt.evaluation.tuned_thresholds import TunedThresholds

log = logging.getLogger(__name__)

#: The split thresholds are tuned on unless another is asked for.
DEFAULT_TUNING_SPLIT = "synthetic_valid"


def tune_sed_thresholds(run_dir: str | Path, split: str = DEFAULT_TUNING_SPLIT, objective: str = "event",
                        checkpoint: str | Path = "best",
                        step: float | None = None) -> tuple[TunedThresholds, TuningResult]:
    """Tune one threshold per class on ``split`` and write ``<checkpoint stem>.thresholds.json``.

    Parameters
    ----------
    run_dir: the run directory (its own dataset is used).
    split: ``"synthetic_valid"`` (default) or ``"validation"``.
    objective: ``"event"`` (collar-based F1) or ``"segment"`` (1 s segments).
    checkpoint: ``"best"`` (``best.pt``, else ``last.pt``), ``"last"`` or a path.
    step: spacing of the candidate thresholds (default
        :class:`~audioadapt.evaluation.threshold_tuning.ThresholdTuningConfig`'s).

    Returns the stored thresholds and the tuning result (F1 per class before
    and after).
    """
    from audioadapt.api.sed import open_sed_run
    from audioadapt.evaluation.decode_settings import decode_record
    from audioadapt.evaluation.threshold_tuning import tune_thresholds
    from audioadapt.evaluation.tuned_thresholds import file_sha256, thresholds_path
    from audioadapt.training.sed_predict import postprocessed_scores

    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    tuning = ThresholdTuningConfig(objective=objective) if step is None else \
        ThresholdTuningConfig(objective=objective, step=step)
    run = open_sed_run(run_dir, checkpoint)
    target = thresholds_path(run.path)
    if not os.access(target.parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise DataError("cannot write the tuned thresholds: the checkpoint's folder or the file is not writable",
                        target)
    if split == "validation":
        log.warning("tuning thresholds on the real-domain validation split: 'sed evaluate' will refuse to report "
                    "that split with them unless given --allow-tuned-split")
    data, dataset, durations = run.split(split)
    if any(r.events is None for r in dataset.records):
        raise ConfigError(f"split '{split}' has clips without strong labels; thresholds need a strongly labelled "
                          "split")
    decode = run.cfg.decode
    scores = run.predict(dataset)
    filtered, bounds = postprocessed_scores(scores.frame_dict(), data.grid, decode, durations)
    reference = {r.filename: list(r.events or ()) for r in dataset.records}
    result = tune_thresholds(filtered, bounds, reference, run.classes, decode, run.cfg.metrics, durations, tuning)
    record = decode_record(decode, data.grid.output_hop_seconds)
    tuned = TunedThresholds(result.thresholds, split, str(run.root.resolve()), objective, str(run.path),
                            file_sha256(run.path), {k: v for k, v in record.items() if "threshold" not in k},
                            {"clips": len(dataset), **result.to_dict()})
    path = tuned.save(target)
    log.info("wrote %s: %s macro F1 on %s %.4f -> %.4f", path, objective, split, result.macro_before,
             result.macro_after)
    return tuned, result


__all__ = ["DEFAULT_TUNING_SPLIT", "tune_sed_thresholds"]
