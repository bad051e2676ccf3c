"""Background noise families."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from audioadapt.data.synthetic.noise import NoiseConfig, harmonic_sum, make_noise, rms
from audioadapt.errors import ConfigError

SR = 16000


def _slope_db_per_octave(x: np.ndarray, lo: float = 100.0, hi: float = 6000.0) -> float:
    freqs, psd = signal.welch(x, SR, nperseg=4096)
    band = (freqs >= lo) & (freqs <= hi)
    return float(np.polyfit(np.log2(freqs[band]), 10 * np.log10(psd[band]), 1)[0])


@pytest.mark.parametrize("kind, expected", [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_stationary_noise_has_its_spectral_slope(kind, expected):
    x = make_noise(np.random.default_rng(0), 4 * SR, SR, NoiseConfig(**{kind: 1.0}))
    assert rms(x) == pytest.approx(1.0, rel=1e-6)
    assert _slope_db_per_octave(x) == pytest.approx(expected, abs=1.0)


def test_hum_sits_on_mains_harmonics():
    cfg = NoiseConfig(hum=1.0, hum_frequencies=(50.0,))
    x = make_noise(np.random.default_rng(1), 2 * SR, SR, cfg)
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    on = sum(spec[np.abs(freqs - 50.0 * k) < 1.0].sum() for k in range(1, cfg.hum_harmonics + 1))
    assert on / spec.sum() > 0.95


def test_babble_fluctuates_more_than_stationary_noise():
    def level_spread(x):
        frames = x[: x.size // 800 * 800].reshape(-1, 800)
        return np.std(10 * np.log10(np.mean(frames**2, axis=1)))

    babble = make_noise(np.random.default_rng(2), 6 * SR, SR, NoiseConfig(babble=1.0))
    white = make_noise(np.random.default_rng(2), 6 * SR, SR, NoiseConfig(white=1.0))
    assert level_spread(babble) > 3 * level_spread(white)


def test_noise_is_deterministic_per_generator():
    cfg = NoiseConfig(white=0.3, pink=1.0, babble=0.5)
    a = make_noise(np.random.default_rng(5), SR, SR, cfg)
    b = make_noise(np.random.default_rng(5), SR, SR, cfg)
    c = make_noise(np.random.default_rng(6), SR, SR, cfg)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_harmonic_sum_matches_direct_sines():
    phase = np.linspace(0, 40 * np.pi, 5000)
    amps = np.array([1.0, 0.0, 0.5, 0.25, 0.1])
    direct = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps))
    np.testing.assert_allclose(harmonic_sum(phase, amps), direct, atol=1e-9)


@pytest.mark.parametrize(
    "changes",
    [{}, {"white": -1.0}, {"pink": 1.0, "hum_frequencies": ()}, {"pink": 1.0, "babble_rate_hz": 0.0}],
)
def test_invalid_noise_settings_are_config_errors(changes):
    with pytest.raises(ConfigError):
        NoiseConfig(**changes)
