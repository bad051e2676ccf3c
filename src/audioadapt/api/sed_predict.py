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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from audioadapt.data.manifest import Event
from audioadapt.errors import ConfigError

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


def predict_sed(run_dir: str | Path, audio: Iterable[str | Path], checkpoint: str | Path = "best",
                batch_size: int | None = None, plot_dir: str | Path | None = None) -> dict[str, list[Event]]:
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

    Files without events map to ``[]``. Unreadable files raise
    :class:`~audioadapt.errors.AudioError` naming the file.
    """
    from audioadapt.api.sed import load_sed_run, predicting_model
    from audioadapt.audio.collect import collect_named_audio
    from audioadapt.evaluation.decoding import decode_batch
    from audioadapt.evaluation.sed_plot import plot_detections
    from audioadapt.features.frames import FrameGrid
    from audioadapt.training.distributed import resolve_device
    from audioadapt.training.sed_files import score_files

    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    ckpt, cfg, path = load_sed_run(run_dir, checkpoint)
    classes = tuple(ckpt["meta"]["classes"])
    files = collect_named_audio(audio)
    model, normalizer = predicting_model(ckpt, cfg)
    device = resolve_device(cfg.train.device)
    model.to(device)
    normalizer.to(device)
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    plots = dict(zip(files, plot_names(list(files.values()))))
    heads = cfg.method.predict.heads
    out: dict[str, list[Event]] = {}
    for scores in score_files(model, normalizer, files, classes, cfg.features, grid, heads,
                              batch_size or cfg.method.predict.batch_size, device):
        events = decode_batch({scores.name: scores.frame}, classes, grid, cfg.decode,
                              {scores.name: scores.duration})[scores.name]
        out[scores.name] = events
        if plot_dir is not None:
            plot_detections(Path(plot_dir) / plots[scores.name], scores.features, events, classes, grid,
                            scores.duration, scores.frame, cfg.decode.thresholds_for(classes), title=scores.name)
    log.info("%d event(s) in %d file(s) with %s", sum(map(len, out.values())), len(out), path)
    return out


__all__ = ["plot_names", "predict_sed"]
