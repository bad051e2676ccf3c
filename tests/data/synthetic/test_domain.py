"""Domain effects: reverberation, coloration, blending, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import signal

from audioadapt.data.synthetic.domain import (
    ChannelConfig,
    DomainConfig,
    NoiseConfig,
    blend_domains,
    sample_channel,
)
from audioadapt.errors import ConfigError

SR = 16000


def _decay_energy(channel, delay_s: float) -> float:
    """Energy of a click's response later than ``delay_s``, relative to the whole response."""
    click = np.zeros(2 * SR)
    click[100] = 1.0
    y = channel.reverberate(click)
    return float(np.sum(y[100 + int(delay_s * SR) :] ** 2) / np.sum(y**2))


def test_reverb_adds_a_decaying_tail_of_the_drawn_length():
    rng = np.random.default_rng(3)
    dry = sample_channel(rng, ChannelConfig(reverb=0.0), SR)
    wet = sample_channel(rng, ChannelConfig(reverb=1.0, rt60_range=(0.6, 0.6), reverb_jitter=0.0), SR)
    assert dry.impulse_response is None
    assert _decay_energy(dry, 0.05) == 0.0
    # reverb=1: the tail carries as much energy as the direct sound
    assert _decay_energy(wet, 0.001) == pytest.approx(0.5, abs=0.02)
    # it is still audible after 300 ms (about -40 dB with an RT60 of 0.6 s) ...
    assert 1e-5 < _decay_energy(wet, 0.3) < 1e-2
    # ... and gone once RT60 (plus the pre-delay) has passed
    assert _decay_energy(wet, 0.62) < 1e-20
    # later parts of the tail are darker (high band decays faster)
    ir = wet.impulse_response[1:]
    early, late = ir[: int(0.1 * SR)], ir[int(0.3 * SR) :]

    def hf_share(x):
        f, p = signal.welch(x, SR, nperseg=512)
        return p[f > 4000].sum() / p.sum()

    assert hf_share(late) < hf_share(early)


def test_coloration_off_is_identity_and_on_changes_the_spectrum():
    rng = np.random.default_rng(4)
    x = np.random.default_rng(0).standard_normal(2 * SR)
    flat = sample_channel(rng, ChannelConfig(coloration=0.0), SR)
    assert flat.sos is None
    assert np.array_equal(flat.apply(x), x)
    colored = sample_channel(rng, ChannelConfig(coloration=1.0, lowpass_drop_range=(0.5, 0.5)), SR)
    y = colored.apply(x)
    assert y.shape == x.shape
    f, px = signal.welch(x, SR, nperseg=1024)
    _, py = signal.welch(y, SR, nperseg=1024)
    # the low-pass at half of Nyquist removes most of the top band
    top = f > 0.8 * SR / 2
    mid = (f > 500) & (f < 2000)
    assert (py[top].sum() / px[top].sum()) < 0.01 * (py[mid].sum() / px[mid].sum())


def test_turning_reverb_off_keeps_the_microphone_draw():
    cfg_on = ChannelConfig(reverb=1.0, coloration=1.0)
    cfg_off = ChannelConfig(reverb=0.0, coloration=1.0)
    a = sample_channel(np.random.default_rng(9), cfg_on, SR)
    b = sample_channel(np.random.default_rng(9), cfg_off, SR)
    np.testing.assert_array_equal(a.sos, b.sos)


def test_blend_domains_interpolates_and_switches():
    clean = DomainConfig()
    shifted = DomainConfig(
        channel=ChannelConfig(reverb=0.8, coloration=1.0),
        noise=NoiseConfig(brown=1.0),
        snr_db=(0.0, 20.0),
        pitch_semitones=-2.0,
    )
    assert blend_domains(clean, shifted, 0.0) == clean
    assert blend_domains(clean, shifted, 1.0) == shifted
    half = blend_domains(clean, shifted, 0.5)
    assert half.channel.reverb == pytest.approx(0.4)
    assert half.snr_db == pytest.approx((3.0, 25.0))
    assert half.pitch_semitones == pytest.approx(-1.0)
    assert half.noise.brown == pytest.approx(0.5) and half.noise.pink == pytest.approx(0.5)
    assert half.source_shift().pitch == pytest.approx(2 ** (-1 / 12))
    same_noise = dataclasses.replace(shifted, noise=clean.noise)
    assert blend_domains(clean, same_noise, 1.5).channel.reverb == pytest.approx(1.2)  # extrapolates
    with pytest.raises(ConfigError):  # the pink weight (1 -> 0) would fall below zero
        blend_domains(clean, shifted, 1.5)
    with pytest.raises(ConfigError):
        blend_domains(clean, shifted, -0.1)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: ChannelConfig(reverb=-0.1),
        lambda: ChannelConfig(rt60_range=(1.0, 0.5)),
        lambda: ChannelConfig(lowpass_drop_range=(0.5, 1.0)),
        lambda: DomainConfig(snr_db=(10.0, 0.0)),
        lambda: DomainConfig(duration_change=-1.0),
    ],
)
def test_invalid_domain_settings_are_config_errors(factory):
    with pytest.raises(ConfigError):
        factory()
