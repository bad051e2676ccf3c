"""Export a trained run's network for another runtime: an ONNX graph and a JSON sidecar.

>>> from audioadapt.api.export import export_sed, export_ser
>>> result = export_sed("runs/demo", "sed.onnx")     # writes sed.onnx and sed.json
>>> result.max_abs_diff                               # onnxruntime against PyTorch on an example input

The graph (:mod:`audioadapt.models.graphs`) maps log-mel features, as
:class:`~audioadapt.features.logmel.LogMel` computes them with the sidecar's
``features`` settings, to frame and clip probabilities (SED) or class
probabilities (SER); the normaliser is inside the graph, with its settings and
statistics in the sidecar too. The batch and frame axes are dynamic. The conv
blocks are exported with PyTorch's standard operators (the fused CPU kernel
is a custom operator no other runtime has). The sidecar holds what the rest of
a prediction needs: classes, feature settings, normaliser, frame hop, how
long inputs are cut into windows and, for SED, the decode settings
(thresholds per class, tuned ones where ``sed tune-thresholds`` stored them, median filter, ...),
for SER the utterance front end (silence trimming and loudness normalisation, applied
to the features before the graph).

Needs the ``export`` extra (``pip install 'audioadapt[export]'``: onnx,
onnxruntime).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audioadapt import __version__
from audioadapt.config.load import to_dict
from audioadapt.errors import ConfigError
from audioadapt.features.frames import FrameGrid
from audioadapt.features.normalization import Normalizer

log = logging.getLogger(__name__)

#: Formats :func:`export_sed` and :func:`export_ser` write.
EXPORT_FORMATS = ("onnx",)
#: ``format`` of every sidecar, and the version of its layout.
SIDECAR_FORMAT, SIDECAR_VERSION = "audioadapt-export", 1
_EXTRA = "ONNX export needs the 'export' extra: pip install 'audioadapt[export]' (onnx, onnxruntime)"
#: The ONNX opset of exported graphs.
ONNX_OPSET = 17


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    model: the graph file.
    sidecar: the JSON sidecar beside it.
    max_abs_diff: the largest difference between onnxruntime's and PyTorch's
        outputs on the example input, or ``None`` when onnxruntime is missing.
    """

    model: Path
    sidecar: Path
    max_abs_diff: float | None


def sidecar_path(model_path: str | Path) -> Path:
    """The sidecar of a graph file: the same name with ``.json``."""
    return Path(model_path).with_suffix(".json")


def _normalizer_record(normalizer: Normalizer) -> dict[str, Any]:
    stats = None
    if normalizer.requires_fit:
        stats = {"mean": normalizer.mean.tolist(), "std": normalizer.std.tolist()}
    return {**normalizer.settings(), "statistics": stats, "in_graph": True}


def _check(fmt: str, out: Path) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"{out}: an ONNX graph file must end in .onnx (its sidecar is {sidecar_path(out).name})")


def write_onnx(graph: nn.Module, example: torch.Tensor, out: Path, outputs: list[str]) -> None:
    """Write ``graph`` (input ``logmel``, outputs named ``outputs``) as ONNX with dynamic batch and frame axes.

    The TorchScript-based exporter is used: torch 2.13's torch.export-based one
    cannot decompose a GRU whose sequence length is a pooled dynamic axis (it
    fails with a size mismatch inside ``aten.gru``), while this one writes ONNX's
    own GRU and LSTM operators.
    """
    axes = {"logmel": {0: "batch", 1: "frame"}}
    axes.update({name: {0: "batch", **({1: "out_frame"} if name == "frame_probs" else {})} for name in outputs})
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(legacy TorchScript-based ONNX export|batch_size other "
                                                      "than 1|is deprecated).*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # the networks' shape checks
            torch.onnx.export(graph, (example,), str(out), dynamo=False, input_names=["logmel"],
                              output_names=outputs, dynamic_axes=axes, opset_version=ONNX_OPSET)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{_EXTRA} ({exc})") from None


def _verify(graph: nn.Module, example: torch.Tensor, out: Path) -> float | None:
    """Largest difference between onnxruntime and PyTorch on ``example`` (``None`` without onnxruntime)."""
    try:
        import onnxruntime
    except ImportError:
        log.info("onnxruntime is not installed: the exported graph was not checked (%s)", _EXTRA)
        return None
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"logmel": example.numpy()})
    with torch.no_grad():
        want = graph(example)
    want = want if isinstance(want, tuple) else (want,)
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))


def _write(graph: nn.Module, example: torch.Tensor, out: Path, outputs: list[str],
           sidecar: dict[str, Any]) -> ExportResult:
    write_onnx(graph, example, out, outputs)
    side = sidecar_path(out)
    side.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    diff = _verify(graph, example, out)
    log.info("exported %s and %s%s", out, side, "" if diff is None else f" (max |onnxruntime - torch| {diff:.2e})")
    return ExportResult(out, side, diff)


def _common(task: str, run_dir: Path, path: Path, classes: list[str], features: Any, normalizer: Normalizer,
            n_mels: int) -> dict[str, Any]:
    return {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "task": task,
            "audioadapt_version": __version__, "run_dir": str(run_dir), "checkpoint": str(path),
            "classes": classes,
            "input": {"name": "logmel", "shape": ["batch", "frame", n_mels],
                      "description": "log-mel features computed with 'features' (audioadapt LogMel), one window per "
                                     "row, every frame real; not normalised: the graph applies 'normalizer'"},
            "features": to_dict(features), "normalizer": _normalizer_record(normalizer)}


def _frontend_record(frontend: Any, features: Any) -> dict[str, Any]:
    """The SER front end (:mod:`audioadapt.data.ser_frontend`) as settings plus what re-implementing it needs."""
    from audioadapt.data.ser_frontend import reference_energy_db

    record: dict[str, Any] = {**to_dict(frontend), "active": frontend.active}
    if frontend.active:
        record["reference_energy_db"] = reference_energy_db(features)
        record["description"] = (
            "applied to the whole input's log-mel before windowing, outside the graph: x = max(exp(y) - "
            "features.log_offset, 0); frame energy e_t = sum over mels of x^(2 / features.power); frames more than "
            "trim_db below the loudest are silence, the leading and trailing runs of it dropped except "
            "trim_margin_seconds on each side; then one gain brings 10 log10(mean e_t) - reference_energy_db "
            "(dBFS of RMS) to loudness_dbfs, x scaled by the gain's power^(power / 2), y = log(x + log_offset)")
    return record


def export_sed(run_dir: str | Path, out: str | Path, format: str = "onnx", checkpoint: str | Path = "best",
               example_batch: int = 2) -> ExportResult:
    """Export a SED run's predicting network (:class:`~audioadapt.models.graphs.SedGraph`) and its sidecar.

    Outputs ``frame_probs (batch, out_frame, class)`` and ``clip_probs (batch, class)``;
    ``checkpoint`` is ``"best"`` (else ``last``), ``"last"`` or a path.
    """
    from audioadapt.api.sed import load_sed_run, predicting_model
    from audioadapt.api.sed_decode import resolve_run_decode
    from audioadapt.models.graphs import SedGraph, operator_path
    from audioadapt.training.sed_files import WindowPlan

    out = Path(out)
    _check(format, out)
    ckpt, cfg, path = load_sed_run(run_dir, checkpoint)
    model, normalizer = predicting_model(ckpt, cfg)
    classes = list(ckpt["meta"]["classes"])
    heads = list(cfg.method.predict.heads)
    decode = resolve_run_decode(cfg.decode, classes, path).decode  # with the checkpoint's tuned thresholds
    graph = SedGraph(operator_path(model), normalizer.eval(), heads).eval()
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    seconds = cfg.features.clip_seconds or 10.0
    frames = grid.num_input_frames(grid.seconds_to_samples(seconds))
    example = torch.randn(example_batch, frames, cfg.features.n_mels, generator=torch.Generator().manual_seed(0))
    plan = WindowPlan.from_features(cfg.features, grid)
    sidecar = _common("sed", Path(run_dir), path, classes, cfg.features, normalizer, cfg.features.n_mels)
    sidecar.update({
        "outputs": {"frame_probs": ["batch", "out_frame", "class"], "clip_probs": ["batch", "class"]},
        "heads": heads, "time_pooling": list(grid.time_pooling), "frame_hop_seconds": grid.output_hop_seconds,
        "windows": {"clip_samples": plan.clip_samples, "step_samples": plan.step_samples,
                    "step_frames": plan.step_frames,
                    "description": "files longer than a clip: a window every step_samples, the first step_frames "
                                   "output frames of each kept (the last window's all), joined, then decoded"},
        "decode": {**to_dict(decode), "median_filter_frames": decode.median_filter_frames(grid),
                   "class_thresholds": dict(zip(classes, map(float, decode.thresholds_for(classes))))},
    })
    return _write(graph, example, out, ["frame_probs", "clip_probs"], sidecar)


def export_ser(run_dir: str | Path, out: str | Path, format: str = "onnx", checkpoint: str | Path = "last",
               example_batch: int = 2) -> ExportResult:
    """Export a SER run's network (:class:`~audioadapt.models.graphs.SerGraph`) and its sidecar.

    Outputs ``probabilities (batch, class)``; ``checkpoint`` is ``"last"``, ``"best"`` or a path.
    """
    from audioadapt.api.ser import load_ser_run
    from audioadapt.models.graphs import SerGraph, operator_path
    from audioadapt.training.ser_predict import load_ser_model

    out = Path(out)
    _check(format, out)
    ckpt, cfg, path = load_ser_run(run_dir, checkpoint)
    model, normalizer = load_ser_model(ckpt)
    classes = list(ckpt["meta"]["classes"])
    graph = SerGraph(operator_path(model), normalizer).eval()
    grid = FrameGrid.from_features(cfg.features, model.time_pooling)
    crop = cfg.dataset.crop_seconds
    frames = grid.num_input_frames(grid.seconds_to_samples(crop or 4.0))
    example = torch.randn(example_batch, frames, cfg.features.n_mels, generator=torch.Generator().manual_seed(0))
    sidecar = _common("ser", Path(run_dir), path, classes, cfg.features, normalizer, cfg.features.n_mels)
    sidecar.update({
        "outputs": {"probabilities": ["batch", "class"]},
        "time_pooling": list(grid.time_pooling), "input_hop_seconds": grid.input_hop_seconds,
        "windows": {"crop_seconds": crop, "crop_frames": None if crop is None else frames, "hop_seconds": crop,
                    "description": "inputs longer than a crop: windows of crop_frames every hop_seconds, the last "
                                   "one ending at the input's end; the prediction is the mean of their probabilities"},
        "frontend": _frontend_record(cfg.dataset.frontend, cfg.features),
    })
    return _write(graph, example, out, ["probabilities"], sidecar)


__all__ = ["EXPORT_FORMATS", "ONNX_OPSET", "ExportResult", "export_sed", "export_ser", "sidecar_path", "write_onnx"]
