"""``audioadapt sed|ser export``: ONNX graphs that onnxruntime runs to PyTorch's numbers, with their sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import audioadapt
from audioadapt.api.export import export_sed, export_ser
from audioadapt.cli.main import main
from audioadapt.errors import ConfigError

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")


def _logmel(sidecar: dict, signal: np.ndarray) -> np.ndarray:
    """The graph's input for ``signal`` (at the sidecar's rate), computed from the sidecar's feature settings."""
    from audioadapt.config.load import from_dict
    from audioadapt.features.config import FeatureConfig
    from audioadapt.features.logmel import LogMel

    with torch.inference_mode():
        return LogMel(from_dict(FeatureConfig, sidecar["features"]))(torch.from_numpy(signal)).numpy()


@pytest.fixture(scope="module")
def sed_export(sed_run, tmp_path_factory):
    return export_sed(sed_run, tmp_path_factory.mktemp("export") / "sed.onnx")


def test_sed_graph_reproduces_the_predictions(sed_run, sed_export, sed_tiny_dataset):
    from audioadapt.audio.io import load_audio

    assert sed_export.max_abs_diff is not None and sed_export.max_abs_diff <= 1e-4
    side = json.loads(sed_export.sidecar.read_text())
    det = audioadapt.load(sed_run)  # PyTorch, eval mode with the fused CPU kernel where it builds
    assert side["classes"] == list(det.classes) and side["task"] == "sed"
    assert side["frame_hop_seconds"] == pytest.approx(det.grid.output_hop_seconds)
    assert side["decode"]["class_thresholds"] == {c: pytest.approx(0.2) for c in det.classes}
    assert side["normalizer"]["kind"] == "instance_minmax" and side["normalizer"]["in_graph"]
    session = ort.InferenceSession(str(sed_export.model), providers=["CPUExecutionProvider"])
    clips = sorted((sed_tiny_dataset / "audio" / "validation").glob("*.wav"))[:2]
    signals = [load_audio(c, side["features"]["sample_rate"], num_samples=side["windows"]["clip_samples"])
               for c in clips]
    feats = np.stack([_logmel(side, s) for s in signals])
    frame, clip = session.run(["frame_probs", "clip_probs"], {"logmel": feats})
    for k, path in enumerate(clips):
        want = det.scores(path).probabilities
        assert frame.shape[1:] == want.shape
        assert np.abs(frame[k] - want).max() <= 1e-4
    # the frame axis is dynamic: half a clip
    half = feats[:, : feats.shape[1] // 2]
    graph_frame, _ = session.run(None, {"logmel": half})
    with torch.no_grad():
        out = det.model(det.normalizer(torch.from_numpy(half)), None, heads=["ft"], domain=False)
    assert np.abs(graph_frame - out["ft"].frame_probs.numpy()).max() <= 1e-4
    assert clip.shape == (2, len(det.classes)) and ((clip >= 0) & (clip <= 1)).all()


def _sidecar_frontend(side: dict, feats: np.ndarray) -> tuple[np.ndarray, int]:
    """The sidecar's front end on a ``(frame, mel)`` log-mel, written from its description alone."""
    fe, feat = side["frontend"], side["features"]
    x = np.maximum(np.exp(feats.astype(np.float64)) - feat["log_offset"], 0.0)
    energy = np.power(x, 2.0 / feat["power"]).sum(axis=1)
    db = 10 * np.log10(np.maximum(energy, 1e-30))
    loud = np.flatnonzero(db >= db.max() - fe["trim_db"])
    margin = round(fe["trim_margin_seconds"] / side["input_hop_seconds"])
    start, stop = max(loud[0] - margin, 0), min(loud[-1] + 1 + margin, len(feats))
    x, energy = x[start:stop], energy[start:stop]
    level = 10 * np.log10(energy.mean()) - fe["reference_energy_db"]
    gain = 10 ** ((fe["loudness_dbfs"] - level) / 10 * feat["power"] / 2)
    return np.log(x * gain + feat["log_offset"]).astype(np.float32), int(start)


def test_ser_graph_reproduces_the_windows(ser_run, ser_tiny_dataset, tmp_path):
    import soundfile as sf

    from audioadapt.audio.io import load_audio

    result = export_ser(ser_run, tmp_path / "ser.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    side = json.loads(result.sidecar.read_text())
    ser = audioadapt.load(ser_run)
    assert side["classes"] == list(ser.classes) and side["windows"]["crop_seconds"] == 1.0
    assert side["frontend"]["active"] and side["frontend"]["trim_db"] == 40.0
    session = ort.InferenceSession(str(result.model), providers=["CPUExecutionProvider"])
    # a quiet take with near-silence at both ends, so that trimming and the loudness gain both act
    rate = side["features"]["sample_rate"]
    source = sorted((ser_tiny_dataset / "target" / "audio").glob("*.wav"))[0]
    hiss = np.random.default_rng(0).standard_normal(rate // 2).astype(np.float32) * 1e-6
    signal = np.concatenate([hiss, 0.02 * load_audio(source, rate), hiss])
    path = tmp_path / "quiet.wav"
    sf.write(path, signal, rate, subtype="FLOAT")
    raw = _logmel(side, load_audio(path, rate))
    feats, offset = _sidecar_frontend(side, raw)
    assert offset > 0 and len(feats) < len(raw)
    crop, hop = side["windows"]["crop_frames"], round(side["windows"]["hop_seconds"] / side["input_hop_seconds"])
    scores = ser.scores(path)
    starts = np.round(scores.window_start / side["input_hop_seconds"]).astype(int) - offset  # on the file's axis
    assert len(starts) >= 2 and starts[0] == 0 and starts[1] == hop
    got = np.concatenate([session.run(None, {"logmel": feats[None, s: s + crop]})[0] for s in starts])
    assert np.abs(got - scores.window_probabilities).max() <= 1e-4
    assert np.abs(got.mean(axis=0) - scores.probabilities).max() <= 1e-4
    # the same windows of the untouched features give other numbers: the front end matters here
    untouched = np.concatenate([session.run(None, {"logmel": raw[None, s: s + crop]})[0] for s in starts])
    assert np.abs(untouched - scores.window_probabilities).max() > 1e-3


def test_export_commands(sed_run, ser_run, tmp_path, capsys):
    out = tmp_path / "models" / "sed.onnx"
    assert main(["sed", "export", str(sed_run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} and {out.with_suffix('.json')}; onnxruntime matches PyTorch to" in printed
    assert main(["ser", "export", str(ser_run), "--out", str(tmp_path / "ser.onnx")]) == 0
    assert (tmp_path / "ser.json").is_file()
    capsys.readouterr()
    assert main(["ser", "export", str(ser_run), "--out", str(tmp_path / "ser.bin")]) == 2
    assert f"{tmp_path / 'ser.bin'}: an ONNX graph file must end in .onnx" in capsys.readouterr().err
    assert main(["ser", "export", str(sed_run), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "this is a SED run, not a SER run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sed", "export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "JSON sidecar" in text and "decode settings" in text and "'export' extra" in text


def test_a_missing_exporter_names_the_extra(sed_run, tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'onnxscript'")

    monkeypatch.setattr(torch.onnx, "export", missing)
    with pytest.raises(ConfigError, match=r"needs the 'export' extra: pip install 'audioadapt\[export\]'"):
        export_sed(sed_run, tmp_path / "m.onnx")


def test_export_leaves_the_run_model_on_the_fused_path(sed_run):
    from audioadapt.models.blocks import ConvBlock
    from audioadapt.models.graphs import operator_path

    det = audioadapt.load(sed_run)
    copy = operator_path(det.model)
    assert [b.fused_cpu for b in copy.modules() if isinstance(b, ConvBlock)] == [False, False]
    assert [b.fused_cpu for b in det.model.modules() if isinstance(b, ConvBlock)] == [True, True]
    assert not copy.training


def test_unknown_format_is_refused(sed_run, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_sed(sed_run, Path(tmp_path / "m.onnx"), format="tflite")
