"""Detect sound events in audio files with a trained SED run.

>>> from audioadapt.api.sed_predict import predict_sed
>>> events = predict_sed("runs/demo", ["clip.wav", "folder/", "files.txt"], plot_dir="plots")
>>> events["clip.wav"]                                   # [Event(onset, offset, label), ...]

Each file is read at the run's sample rate, turned into the run's log-mel
features (padded to ``features.clip_seconds`` like the training clips), run
through the heads of ``method.predict`` and decoded with the run's
``decode`` settings, events being cut at the file's end. Files longer than the
clip are scored in consecutive clip-length windows whose frame scores are
joined before decoding (see :mod:`audioadapt.training.sed_files`), so their
events cover the whole file and may span window boundaries.

Files are named as :func:`~audioadapt.audio.collect.collect_named_audio`
does: relative to the folder they were found in, as written in their list
file, or by their file name when given directly.

The decode settings are the run's, with the class thresholds tuned for the
checkpoint if any (``sed tune-thresholds``) and ``decode.*`` overrides on top
(see :mod:`audioadapt.api.sed_decode`). :func:`predict_sed_run` also returns
them, and with ``scores_dir`` writes each file's threshold-free frame scores
as a sed_scores_eval TSV (see :mod:`audioadapt.evaluation.score_files`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.api.sed_decode import RunDecode

log = logging.getLogger(__name__)


def plot_names(paths: Sequence[Path]) -> list[str]:
    """PNG file names from the audio stems: ``stem.png``, then ``stem-2.png``, ... when stems repeat."""
    taken: set[str] = set()
    out = []
    for path in paths:
        name, k = f"{path.stem}.png", 1
        while name.lower() in taken:
            k += 1
            name = f"{path.stem}-{k}.png"
        taken.add(name.lower())
        out.append(name)
    return out


@dataclass(frozen=True)
class SedPrediction:
    """What :func:`predict_sed_run` found and how.

    Attributes
    ----------
    events: per file its events sorted by onset (``[]`` without events).
    checkpoint: the checkpoint file used.
    decode: the decode settings, the overrides and where the thresholds came from.
    hop_seconds: the length of an output frame.
    score_files: per file its score file, when ``scores_dir`` was given.
    """

    events: dict[str, list[Event]]
    checkpoint: Path
    decode: "RunDecode"
    hop_seconds: float
    score_files: dict[str, Path] | None = None

    def record(self) -> dict[str, Any]:
        """A JSON-ready account of the prediction: checkpoint, decode settings, counts, score folder."""
        return {"checkpoint": str(self.checkpoint), **self.decode.inputs(self.hop_seconds), "files": len(self.events),
                "events": sum(map(len, self.events.values())),
                "score_files": None if self.score_files is None else len(self.score_files)}


def predict_sed(run_dir: str | Path, audio: Iterable[str | Path], checkpoint: str | Path = "best",
                batch_size: int | None = None, plot_dir: str | Path | None = None, *,
                overrides: Iterable[str] = (), use_tuned_thresholds: bool = True,
                scores_dir: str | Path | None = None, reference: str | Path | None = None,
                compile: bool | None = None) -> dict[str, list[Event]]:
    """Sound events of audio files with a trained run: ``{name: events sorted by onset}``.

    Parameters
    ----------
    run_dir: the training run.
    audio: audio files, folders (searched recursively) and list files
        (``.txt``, ``.lst``, ``.list``: one path per line, relative to the list).
    checkpoint: ``"best"`` (``best.pt``, else ``last.pt``), ``"last"`` or a path.
    batch_size: clip-length windows per inference batch (default: the run's
        ``method.predict.batch_size``).
    plot_dir: if given, one PNG per file there (see :func:`plot_names`): the
        log-mel spectrogram with the detected events and frame probabilities.
    overrides: ``decode.key=value`` changes of the run's decode settings.
    use_tuned_thresholds: apply the class thresholds tuned for the checkpoint, if any.
    scores_dir: if given, one score file per audio file there.
    reference: with ``plot_dir``, a DCASE strong TSV whose events of each file
        are drawn under its detections (:class:`~audioadapt.evaluation.sed_plot.PlotReference`).
    compile: run the network through ``torch.compile`` (default: the run's ``method.predict.compile``).

    Files without events map to ``[]``. Unreadable files raise
    :class:`~audioadapt.errors.AudioError` naming the file.
    """
    return predict_sed_run(run_dir, audio, checkpoint, batch_size, plot_dir, overrides=overrides,
                           use_tuned_thresholds=use_tuned_thresholds, scores_dir=scores_dir,
                           reference=reference, compile=compile).events


def predict_sed_run(run_dir: str | Path, audio: Iterable[str | Path], checkpoint: str | Path = "best",
                    batch_size: int | None = None, plot_dir: str | Path | None = None, *,
                    overrides: Iterable[str] = (), use_tuned_thresholds: bool = True,
                    scores_dir: str | Path | None = None, reference: str | Path | None = None,
                    compile: bool | None = None) -> SedPrediction:
    """:func:`predict_sed` with the settings it used (see :class:`SedPrediction`)."""
    from audioadapt.api.sed import load_sed_run, predicting_model
    from audioadapt.api.sed_decode import resolve_run_decode
    from audioadapt.audio.collect import collect_named_audio
    from audioadapt.evaluation.decoding import decode_batch, frame_boundaries, postprocess_scores
    from audioadapt.evaluation.score_files import check_score_folder, write_score_files
    from audioadapt.evaluation.sed_plot import PlotReference, plot_detections
    from audioadapt.features.frames import FrameGrid
    from audioadapt.training.distributed import resolve_device
    from audioadapt.training.sed_files import score_files

    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    ckpt, cfg, path = load_sed_run(run_dir, checkpoint)
    classes = tuple(ckpt["meta"]["classes"])
    run_decode = resolve_run_decode(cfg.decode, classes, path, overrides, use_tuned_thresholds)
    decode = run_decode.decode
    files = collect_named_audio(audio)
    refs = None if reference is None else PlotReference.read(reference, classes, f"the checkpoint {path}")
    score_paths = None if scores_dir is None else check_score_folder(scores_dir, files)
    model, normalizer = predicting_model(ckpt, cfg)
    device = resolve_device(cfg.train.device)
    model.to(device)
    normalizer.to(device)
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    plots = dict(zip(files, plot_names(list(files.values()))))
    heads = cfg.method.predict.heads
    out: dict[str, list[Event]] = {}
    filtered, bounds = {}, {}
    for scores in score_files(model, normalizer, files, classes, cfg.features, grid, heads,
                              batch_size or cfg.method.predict.batch_size, device,
                              cfg.method.predict.compile if compile is None else compile):
        events = decode_batch({scores.name: scores.frame}, classes, grid, decode,
                              {scores.name: scores.duration})[scores.name]
        out[scores.name] = events
        if scores_dir is not None:
            filtered[scores.name] = postprocess_scores(scores.frame, grid, decode, scores.duration)
            bounds[scores.name] = frame_boundaries(len(filtered[scores.name]), grid, scores.duration)
        if plot_dir is not None:
            plot_detections(Path(plot_dir) / plots[scores.name], scores.features, events, classes, grid,
                            scores.duration, scores.frame, decode.thresholds_for(classes), title=scores.name,
                            reference=None if refs is None else refs.of(scores.name))
    if scores_dir is not None:
        write_score_files(scores_dir, filtered, bounds, classes)
        log.info("wrote %d score file(s) to %s", len(filtered), scores_dir)
    log.info("%d event(s) in %d file(s) with %s", sum(map(len, out.values())), len(out), path)
    return SedPrediction(out, path, run_decode, grid.output_hop_seconds, score_paths)


__all__ = ["SedPrediction", "plot_names", "predict_sed", "predict_sed_run"]
