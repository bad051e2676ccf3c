"""``audioadapt.load``: SED and SER runs from Python, the README's example, and a process left as it was."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audioadapt
from audioadapt.errors import AudioError, CheckpointError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def clip(sed_tiny_dataset) -> Path:
    return sed_tiny_dataset / "audio" / "validation" / "validation_00000.wav"


@pytest.fixture(scope="module")
def speech(ser_tiny_dataset, tmp_path_factory) -> Path:
    """Three utterances of the target corpus joined: several seconds, several 1 s windows."""
    from audioadapt.audio.io import load_audio, write_audio

    files = sorted((ser_tiny_dataset / "target" / "audio").glob("*.wav"))[:3]
    joined = np.concatenate([load_audio(f, 16000) for f in files])
    return write_audio(tmp_path_factory.mktemp("speech") / "speech.wav", joined, 16000)


def test_import_stays_light_and_exports_the_api():
    code = ("import sys, audioadapt; print('torch' in sys.modules, 'numpy' in sys.modules); "
            "print(all(getattr(audioadapt, n) is not None for n in audioadapt.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        audioadapt.nothing  # noqa: B018


def test_the_readme_example_runs(sed_run, ser_run, clip, speech, tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 8 <= len(code.strip().splitlines()) <= 16
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(sed_run)
    (tmp_path / "runs" / "nnpm").symlink_to(ser_run)
    (tmp_path / "clip.wav").symlink_to(clip)
    (tmp_path / "speech.wav").symlink_to(speech)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert isinstance(scope["det"], audioadapt.SedSystem) and isinstance(scope["ser"], audioadapt.SerSystem)
    events, table = scope["events"], scope["table"]
    assert isinstance(events, pd.DataFrame) and list(events.columns) == ["onset", "offset", "label"]
    assert len(events) > 0 and (events.onset < events.offset).all()
    assert list(table.columns) == ["time", *scope["det"].classes] and len(table) == 40  # 10 s at 4 frames/s
    emotion = scope["emotion"]
    assert emotion.label in emotion.probabilities and len(emotion.windows) >= 3


def test_load_tells_sed_from_ser(sed_run, ser_run, tmp_path):
    det = audioadapt.load(sed_run)
    assert det.task == "sed" and det.checkpoint.name in ("best.pt", "last.pt") and det.run_dir == sed_run
    assert audioadapt.load(sed_run / "last.pt").checkpoint == sed_run / "last.pt"
    ser = audioadapt.load(ser_run, device="cpu")
    assert ser.task == "ser" and ser.checkpoint == ser_run / "last.pt" and ser.memory is not None
    with pytest.raises(CheckpointError, match=f"{tmp_path}: not a run directory"):
        audioadapt.load(tmp_path)


def test_sed_system_predicts_as_the_command_does(sed_run, clip):
    from audioadapt.api.sed_predict import predict_sed

    det = audioadapt.load(sed_run)
    want = predict_sed(sed_run, [clip])[clip.name]
    assert det.predict(clip) == want and len(want) > 0
    scores = det.scores(clip)
    np.testing.assert_allclose(np.diff(scores.times), scores.frame_seconds)
    assert scores.probabilities.shape == (len(scores.times), len(det.classes)) and scores.times[0] == 0.0
    # the same samples as a waveform, at the file's rate and as a two-channel torch tensor
    import torch

    y, rate = sf.read(str(clip), dtype="float32")
    assert det.predict(y, sample_rate=rate) == want
    stereo = torch.from_numpy(np.stack([y, y]))
    np.testing.assert_allclose(det.scores(stereo, sample_rate=rate).probabilities, scores.probabilities)
    long = det.scores(np.concatenate([y, y, y[: rate * 5]]), sample_rate=rate)
    assert long.duration == pytest.approx(25.0) and len(long.times) == 100


def test_ser_system_predicts_as_the_command_does(ser_run, speech):
    from audioadapt.api.ser import predict_ser

    ser = audioadapt.load(ser_run)
    (row,) = predict_ser(ser_run, [speech])
    got = ser.predict(speech)
    assert got.label == row["label"] and got.memory_label == row["memory_label"] and got.windows is None
    np.testing.assert_allclose([got.probabilities[c] for c in ser.classes], [row[c] for c in ser.classes],
                               rtol=1e-6)
    y, rate = sf.read(str(speech), dtype="float32")
    detailed = ser.predict(y, sample_rate=rate, windows=True)
    assert len(detailed.windows) == row["windows"] and detailed.probabilities == got.probabilities
    scores = ser.scores(speech, hop_seconds=0.5)
    assert len(scores.window_start) > row["windows"]
    np.testing.assert_allclose(scores.probabilities, scores.window_probabilities.mean(axis=0), rtol=1e-6)
    vector = ser.embed(speech)  # the mean of the windows' unit-length features: the memory's nearest slot is got's
    assert vector.shape == (ser.memory.features.shape[1],) and 0.0 < np.linalg.norm(vector) <= 1.0 + 1e-6
    nearest = int((ser.memory.features @ torch.from_numpy(vector).to(ser.memory.features.dtype)).argmax())
    assert ser.classes[int(ser.memory.labels[nearest])] == got.memory_label


def test_bad_inputs_are_named(sed_run, clip):
    det = audioadapt.load(sed_run)
    with pytest.raises(ConfigError, match=r"a waveform needs its sample_rate"):
        det.predict(np.zeros(22050, dtype=np.float32))
    with pytest.raises(ConfigError, match=f"{clip}: sample_rate is for waveforms"):
        det.predict(clip, sample_rate=22050)
    with pytest.raises(AudioError, match=r"has more channels than samples: pass \(channel, sample\)"):
        det.predict(np.zeros((22050, 2), dtype=np.float32), sample_rate=22050)
    with pytest.raises(AudioError, match="<waveform>: the waveform holds 1 NaN or infinite sample"):
        det.predict(np.r_[np.zeros(4000), np.nan].astype(np.float32), sample_rate=22050)
    with pytest.raises(AudioError, match=f"{clip.with_name('missing.wav')}: audio file not found"):
        det.predict(clip.with_name("missing.wav"))


_PROCESS = textwrap.dedent(
    """
    import os, sys
    import torch
    import audioadapt
    from audioadapt.training import allocator

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    env, threads = dict(os.environ), (torch.get_num_threads(), torch.get_num_interop_threads())
    run, wav, how = sys.argv[1:]
    if how == "library":
        audioadapt.load(run).predict(wav)
    else:
        from audioadapt.cli.main import main
        assert main(["sed", "predict", run, wav]) == 0
    base = rss_mib()
    x = torch.ones(256 * 2**20 // 4)  # 256 MiB, written
    del x
    print(dict(os.environ) == env, (torch.get_num_threads(), torch.get_num_interop_threads()) == threads,
          allocator.applied_mode(), round(rss_mib() - base))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_loading_leaves_the_process_as_it_was_and_the_command_claims_it(sed_run, clip):
    import platform

    def run(how: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", _PROCESS, str(sed_run), str(clip), how], capture_output=True,
                             text=True, check=True)
        return out.stdout.split()[-4:]

    env_same, threads_same, mode, kept = run("library")
    assert (env_same, threads_same, mode) == ("True", "True", "None")
    glibc = platform.libc_ver()[0] == "glibc"
    if glibc:
        assert int(kept) < 50  # freed memory went back to the system: no mallopt
    _, _, mode, kept = run("command")
    if glibc:
        assert mode == "retain" and int(kept) > 200  # the command applied the run's train.cpu_allocator


def test_sed_system_decodes_with_the_tuned_thresholds(sed_run, clip, tmp_path):
    import shutil

    from audioadapt.api.sed_predict import predict_sed
    from audioadapt.cli.main import main

    run = shutil.copytree(sed_run, tmp_path / "run")
    before = audioadapt.load(run).decode
    assert main(["sed", "tune-thresholds", str(run)]) == 0
    det = audioadapt.load(run)
    tuned = dict(det.decode.class_thresholds or {})
    assert sorted(tuned) == sorted(det.classes) and tuned != dict(before.class_thresholds or {})
    assert det.predict(clip) == predict_sed(run, [clip])[clip.name]
