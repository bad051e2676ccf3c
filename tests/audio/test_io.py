"""Audio I/O: decoding, mixdown, resampling, padding/cropping, errors, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audioadapt.audio import audio_info, choose_crop_start, load_audio, pad_or_crop, write_audio
from audioadapt.errors import AudioError, DataError


def _tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- reading -------------------------------------------------------------------
def test_load_mono_float_roundtrip(tmp_path):
    x = _tone(440, 16000, 0.5)
    sf.write(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "a.wav", 16000, mono=True)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_mono_mixdown_averages_channels(tmp_path):
    left = _tone(300, 8000, 0.25, 0.2)
    right = _tone(700, 8000, 0.25, 0.6)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    mono = load_audio(tmp_path / "st.wav", 8000)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    both = load_audio(tmp_path / "st.wav", 8000, mono=False)
    assert both.shape == (2, len(left))
    np.testing.assert_array_equal(both[1], right)


def test_resampling_keeps_frequency_and_length(tmp_path):
    src_rate, dst_rate, freq = 44100, 22050, 1000.0
    sf.write(tmp_path / "t.wav", _tone(freq, src_rate, 1.0), src_rate, subtype="PCM_16")
    y = load_audio(tmp_path / "t.wav", dst_rate)
    assert len(y) == dst_rate
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak_hz = np.argmax(spectrum) * dst_rate / len(y)
    assert abs(peak_hz - freq) <= 1.0
    # An HQ resampler keeps the amplitude of an in-band tone (away from the edges).
    assert abs(np.abs(y[2000:-2000]).max() - 0.5) < 0.01


def test_resampling_removes_content_above_new_nyquist(tmp_path):
    # 15 kHz cannot exist at 16 kHz; a naive decimation would alias it to 1 kHz.
    sf.write(tmp_path / "hi.wav", _tone(15000, 48000, 0.5), 48000, subtype="FLOAT")
    y = load_audio(tmp_path / "hi.wav", 16000)
    assert np.sqrt(np.mean(y[500:-500] ** 2)) < 1e-3


def test_load_pads_and_crops(tmp_path):
    x = np.arange(1, 101, dtype=np.float32) / 200
    sf.write(tmp_path / "r.wav", x, 1000, subtype="FLOAT")
    padded = load_audio(tmp_path / "r.wav", 1000, num_samples=150)
    np.testing.assert_array_equal(padded[:100], x)
    assert not padded[100:].any()
    cropped = load_audio(tmp_path / "r.wav", 1000, num_samples=40, crop="center")
    np.testing.assert_array_equal(cropped, x[30:70])


# -- errors --------------------------------------------------------------------
def _assert_audio_error(path, match):
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, 16000, mono=True)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError)


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    _assert_audio_error(path, "cannot decode")
    with pytest.raises(AudioError, match="notes.wav"):
        audio_info(path)


def test_zero_length_wav(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    _assert_audio_error(path, "no samples")


def test_nan_wav(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.full(256, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    _assert_audio_error(path, "NaN or infinite")


def test_inf_sample(tmp_path):
    path = tmp_path / "inf.wav"
    x = np.zeros(256, dtype=np.float32)
    x[17] = np.inf
    sf.write(path, x, 16000, subtype="FLOAT")
    _assert_audio_error(path, "1 NaN or infinite")


def test_missing_file(tmp_path):
    _assert_audio_error(tmp_path / "nowhere.wav", "not found")
    with pytest.raises(AudioError, match="not found"):
        audio_info(tmp_path / "nowhere.wav")


def test_directory(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    _assert_audio_error(path, "directory")


# -- info and writing ----------------------------------------------------------
def test_audio_info(tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros((3000, 2), dtype=np.float32), 12000)
    info = audio_info(tmp_path / "s.wav")
    assert (info.sample_rate, info.channels, info.frames) == (12000, 2, 3000)
    assert info.duration == pytest.approx(0.25)


def test_write_audio_pcm16_default_and_atomic(tmp_path):
    x = _tone(500, 16000, 0.2)
    path = write_audio(tmp_path / "sub" / "w.wav", x, 16000)
    assert sf.info(str(path)).subtype == "PCM_16"
    y, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(y, x, atol=1.0 / 32767)
    # No temporary file is left next to it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.wav"]


def test_write_audio_multichannel_and_clipping(tmp_path):
    x = np.stack([np.full(100, 2.0), np.full(100, -0.25)]).astype(np.float32)
    path = write_audio(tmp_path / "c.wav", x, 8000)
    y = load_audio(path, 8000, mono=False)
    assert y.shape == (2, 100)
    assert y[0].max() <= 1.0 and y[0].min() > 0.99  # clipped, not wrapped to negative
    np.testing.assert_allclose(y[1], -0.25, atol=1e-4)


def test_write_audio_rejects_nan(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "bad.wav", np.array([0.0, np.nan]), 8000)
    assert not (tmp_path / "bad.wav").exists()


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = write_audio(tmp_path / "keep.wav", np.zeros(50, dtype=np.float32), 8000)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(RuntimeError):
        write_audio(path, np.ones(50, dtype=np.float32) * 0.5, 8000)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


# -- pad / crop ----------------------------------------------------------------
def test_pad_or_crop_modes():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(pad_or_crop(x, 4, "start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(pad_or_crop(x, 4, "center"), [3, 4, 5, 6])
    np.testing.assert_array_equal(pad_or_crop(x, 13), list(range(10)) + [0, 0, 0])
    np.testing.assert_array_equal(pad_or_crop(x, 10, "random"), x)
    stereo = np.stack([x, -x])
    out = pad_or_crop(stereo, 12, "center")
    assert out.shape == (2, 12) and not out[:, 10:].any()


def test_random_crop_is_seeded_and_covers_all_starts():
    x = np.arange(8, dtype=np.float32)
    a = [pad_or_crop(x, 5, "random", np.random.default_rng(3))[0] for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(0)
    starts = {choose_crop_start(8, 5, "random", rng) for _ in range(200)}
    assert starts == {0, 1, 2, 3}


def test_bad_crop_mode():
    with pytest.raises(ValueError, match="crop mode"):
        pad_or_crop(np.zeros(5), 3, "middle")  # type: ignore[arg-type]
