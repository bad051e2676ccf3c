"""Inference speed of the paper-size SED model: onnxruntime against PyTorch eager, on this CPU.

Synthetic weights and inputs (the numbers do not depend on training). The
network is the default CRNN (7 conv blocks, 2-layer BiGRU 128) with one head,
on 640 x 128 log-mel inputs (10 s clips), as exported by ``audioadapt sed
export`` (:class:`~audioadapt.models.graphs.SedGraph`: normaliser, network,
frame and clip probabilities). Timed, each as the median of ``--iterations``
batches after ``--warmup`` untimed ones, under ``torch.inference_mode()``:

* ``torch``: PyTorch eager with the fused CPU kernel where it builds (what
  ``audioadapt sed predict`` runs);
* ``torch-operators``: PyTorch eager on standard operators only (the exported graph);
* ``onnxruntime``: the exported graph on onnxruntime's CPU provider with as
  many intra-op threads as torch uses.

The outputs of onnxruntime and PyTorch are compared too. Needs the ``export``
extra. Run by hand (the full size takes minutes on 2 cores)::

    python benchmarks/onnx_speed.py                          # batch 64, 5 iterations
    python benchmarks/onnx_speed.py --batch 1 --iterations 1 --warmup 0    # smoke test
    python benchmarks/onnx_speed.py --json results/onnx_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from audioadapt.api.export import write_onnx
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.normalization import Normalizer, NormalizerConfig
from audioadapt.models.graphs import SedGraph, operator_path
from audioadapt.models.sed_model import FINAL_HEAD, SedModel, SedModelConfig


def _median_seconds(run: Callable[[], object], iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="clips per batch (default 64)")
    parser.add_argument("--classes", type=int, default=10, help="event classes (default 10)")
    parser.add_argument("--iterations", type=int, default=5, help="timed batches (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    import onnxruntime

    features = FeatureConfig()  # 22.05 kHz, hop 345, 128 mels: 640 frames per 10 s clip
    torch.manual_seed(0)
    model = SedModel(SedModelConfig(heads=(FINAL_HEAD,)), features.n_mels, args.classes).eval()
    normalizer = Normalizer(NormalizerConfig(), features.n_mels).eval()
    grid = FrameGrid.from_features(features)
    frames = grid.num_input_frames(grid.seconds_to_samples(features.clip_seconds))
    x = torch.randn(args.batch, frames, features.n_mels) * 20 - 30
    fused = SedGraph(model, normalizer, [FINAL_HEAD]).eval()
    plain = SedGraph(operator_path(model), normalizer, [FINAL_HEAD]).eval()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sed.onnx"
        write_onnx(plain, x[:2], path, ["frame_probs", "clip_probs"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"logmel": x.numpy()}
        with torch.inference_mode():
            want = fused(x)[0].numpy()
            results = {name: _median_seconds(run, args.iterations, args.warmup) for name, run in
                       (("torch", lambda: fused(x)), ("torch-operators", lambda: plain(x)),
                        ("onnxruntime", lambda: session.run(None, feed)))}
        diff = float(np.abs(session.run(None, feed)[0] - want).max())
    audio = args.batch * features.clip_seconds
    record = {"command": " ".join(["python", *sys.argv]), "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "threads": threads,
              "batch": args.batch, "input": [frames, features.n_mels], "iterations": args.iterations,
              "seconds_per_batch": results, "real_time_factor": {k: audio / v for k, v in results.items()},
              "max_abs_diff_onnxruntime_torch": diff}
    print(f"paper-size SED model, batch {args.batch} x {frames} x {features.n_mels}, {threads} thread(s)")
    print("| runtime | s / batch | real-time factor |\n|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.3f} | {audio / seconds:.0f} |")
    print(f"max |onnxruntime - torch| = {diff:.2e}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
