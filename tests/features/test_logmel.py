"""Log-mel front end: shapes, frame counts, buffers, devices, and agreement with librosa.

Tolerances (also stated in the ``audioadapt.features.logmel`` docstring):

* filterbank vs ``librosa.filters.mel`` (float64): 1e-9 absolute;
* log-mel vs ``librosa.feature.melspectrogram`` + the same log, float64 input:
  1e-5 dB everywhere (float32 rounding of the stored window/filterbank);
* float32 input: 1e-3 dB on bins within 60 dB of the clip's peak, 0.05 dB
  everywhere (float32 FFT rounding dominates far-down bins).

Natural-log outputs are converted to dB with ``10/ln 10`` (power mel).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from audioadapt.features.config import FeatureConfig
from audioadapt.features.logmel import LogMel, analysis_window, hz_to_mel, mel_filterbank, mel_to_hz

SED = FeatureConfig()
SER = FeatureConfig(
    sample_rate=16000,
    clip_seconds=7.5,
    n_fft=512,
    win_length=400,
    hop_length=160,
    window="hann",
    periodic_window=True,
    n_mels=80,
    power=2.0,
    log="log",
    log_offset=1e-6,
)
SLANEY = dataclasses.replace(
    SED, mel_scale="slaney", mel_norm="slaney", f_min=40.0, f_max=8000.0, power=2.0, window="hann"
)

TOL_FB = 1e-9
TOL_DB_F64 = 1e-5
TOL_DB_F32_TOP60 = 1e-3
TOL_DB_F32_ALL = 0.05


def _signals(cfg: FeatureConfig, seconds: float = 2.3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    n = int(cfg.sample_rate * seconds)
    t = np.arange(n) / cfg.sample_rate
    chirp = np.sin(2 * np.pi * (200 * t + 0.5 * 1500 * t**2))
    return {
        "noise": 0.1 * rng.standard_normal(n),
        "tones": 0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t),
        "chirp_quiet": 0.01 * chirp,
    }


# -- sizes, buffers, devices -------------------------------------------------
def test_ten_second_clip_gives_640_frames_at_defaults():
    lm = LogMel(SED)
    out = lm(torch.zeros(2, 220500))
    assert out.shape == (2, 640, 128)
    assert lm.num_frames(220500) == 640


def test_ser_clip_frames():
    out = LogMel(SER)(torch.randn(3, 120000) * 0.1)
    assert out.shape == (3, 751, 80)


def test_buffers_are_not_persistent_and_follow_dtype_device():
    lm = LogMel(SED)
    names = dict(lm.named_buffers())
    assert set(names) == {"window", "mel_fb"}
    assert names["mel_fb"].shape == (1025, 128) and names["window"].shape == (2048,)
    assert lm.state_dict() == {}


def test_batch_items_are_independent():
    lm = LogMel(SER)
    x = torch.randn(4, 16000) * 0.1
    batched = lm(x)
    single = torch.stack([lm(x[i]) for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-4)


def test_db_clamp_and_amin():
    lm = LogMel(SED)
    silent = lm(torch.zeros(1, 22050))
    assert torch.all(silent == SED.db_range[0])
    unclamped = LogMel(dataclasses.replace(SED, db_range=None))(torch.zeros(1, 22050))
    assert torch.allclose(unclamped, torch.tensor(20 * np.log10(SED.amin), dtype=torch.float32))
    loud = lm(torch.ones(1, 22050) * 1e4)
    assert loud.max() == SED.db_range[1]


def test_half_input_and_autocast_compute_in_float32():
    lm = LogMel(SER)
    x = (torch.randn(2, 8000) * 0.1).to(torch.bfloat16)
    ref = lm(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lm(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_too_short_input_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        LogMel(SED)(torch.zeros(1, 500))
    assert LogMel(dataclasses.replace(SED, pad_mode="constant"))(torch.zeros(1, 500)).shape == (1, 2, 128)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    lm = LogMel(SED)
    x = torch.randn(2, 44100) * 0.1
    cpu = lm(x)
    gpu = lm.to("cuda")(x.to("cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=2e-3)


# -- windows and mel scale (independent references) ----------------------------
@pytest.mark.parametrize("kind", ["hamming", "hann"])
@pytest.mark.parametrize("periodic", [True, False])
def test_window_matches_scipy(kind, periodic):
    signal = pytest.importorskip("scipy.signal")
    ours = analysis_window(kind, 400, periodic).numpy()
    ref = signal.get_window(kind, 400, fftbins=periodic)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_mel_scales_known_points_and_inverse():
    assert hz_to_mel(1000.0, "htk") == pytest.approx(1000.0, abs=0.1)
    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(200.0, "slaney") == pytest.approx(3.0)
    f = np.linspace(0, 11025, 57)
    for scale in ("htk", "slaney"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-6)


def test_filterbank_triangles_peak_at_centres():
    fb = mel_filterbank(22050, 2048, 128, 0.0, 11025.0, "htk", None)
    assert fb.shape == (128, 1025)
    assert fb.min() >= 0 and fb.max() <= 1
    # Every filter has some weight at this resolution, and peaks near its centre.
    assert (fb.sum(axis=1) > 0).all()
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(11025.0), 130)[1:-1])
    peaks = fb.argmax(axis=1) * 22050 / 2048
    assert np.abs(peaks - centres).max() <= 22050 / 2048


# -- librosa cross-checks ------------------------------------------------------
@pytest.mark.parametrize("cfg", [SED, SER, SLANEY], ids=["sed", "ser", "slaney"])
def test_filterbank_matches_librosa(cfg):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(
        cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.resolved_f_max, cfg.mel_scale, cfg.mel_norm
    )
    ref = librosa.filters.mel(
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.resolved_f_max,
        htk=cfg.mel_scale == "htk",
        norm=cfg.mel_norm,
        dtype=np.float64,
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL_FB)


def _librosa_logmel(librosa, y: np.ndarray, cfg: FeatureConfig, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel (frame, mel), level in dB (frame, mel)) computed by librosa + numpy."""
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=cfg.center,
        pad_mode=cfg.pad_mode,
        power=cfg.power,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.resolved_f_max,
        htk=cfg.mel_scale == "htk",
        norm=cfg.mel_norm,
        dtype=y.dtype,
    ).T
    level = 20.0 / cfg.power * np.log10(np.maximum(mel, 1e-30))
    if cfg.log == "db":
        out = 20.0 / cfg.power * np.log10(np.maximum(mel, cfg.amin))
        if cfg.db_range is not None:
            out = np.clip(out, *cfg.db_range)
    else:
        out = np.log(mel + cfg.log_offset)
    return out, level


def _to_db(diff: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    return diff if cfg.log == "db" else diff * (20.0 / cfg.power) / np.log(10)


@pytest.mark.parametrize("cfg", [SED, SER, SLANEY], ids=["sed", "ser", "slaney"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logmel_matches_librosa(cfg, dtype):
    librosa = pytest.importorskip("librosa")
    lm = LogMel(cfg)
    window = lm.window.numpy().astype(dtype)
    for name, signal in _signals(cfg).items():
        y = signal.astype(dtype)
        ours = lm(torch.from_numpy(y)).numpy()
        ref, level = _librosa_logmel(librosa, y, cfg, window)
        assert ours.shape == ref.shape, name
        err = np.abs(_to_db(ours.astype(np.float64) - ref, cfg))
        if dtype == np.float64:
            assert err.max() <= TOL_DB_F64, (name, err.max())
        else:
            top = level > level.max() - 60
            assert err[top].max() <= TOL_DB_F32_TOP60, (name, err[top].max())
            assert err.max() <= TOL_DB_F32_ALL, (name, err.max())


def test_logmel_differs_from_librosa_when_settings_differ():
    """The comparison above is sharp: a symmetric vs periodic window is caught."""
    librosa = pytest.importorskip("librosa")
    cfg = SER
    y = _signals(cfg)["noise"]
    ours = LogMel(dataclasses.replace(cfg, periodic_window=False))(torch.from_numpy(y)).numpy()
    ref, _ = _librosa_logmel(librosa, y, cfg, LogMel(cfg).window.numpy().astype(np.float64))
    assert np.abs(_to_db(ours - ref, cfg)).max() > 10 * TOL_DB_F32_TOP60
