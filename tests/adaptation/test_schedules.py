import math

import pytest

from audioadapt.adaptation.schedules import ScheduleConfig, constant, linear_ramp, sigmoid_ramp, warmed_up


def test_sigmoid_ramp_values():
    # 2 / (1 + exp(-x)) - 1 == tanh(x / 2)
    assert sigmoid_ramp(0.0, 1.0, 10.0) == 0.0
    assert sigmoid_ramp(0.5, 1.0, 10.0) == pytest.approx(math.tanh(2.5))
    assert sigmoid_ramp(1.0, 2.0, 10.0) == pytest.approx(2 * 0.9999092042625951)
    values = [sigmoid_ramp(p / 20, 1.0, 10.0) for p in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_linear_and_constant():
    assert linear_ramp(0.25, 0.0, 0.4) == pytest.approx(0.1)
    assert linear_ramp(1.0, 0.0, 0.4) == pytest.approx(0.4)
    assert linear_ramp(0.5, 1.0, 0.0) == pytest.approx(0.5)
    assert constant(0.7, 3.0) == 3.0


@pytest.mark.parametrize("p", [-0.01, 1.01, math.nan])
def test_progress_outside_unit_interval_rejected(p):
    for fn in (lambda: sigmoid_ramp(p, 1.0, 10.0), lambda: linear_ramp(p, 0.0, 1.0), lambda: constant(p, 1.0)):
        with pytest.raises(ValueError):
            fn()


def test_config_dispatch_and_defaults():
    assert ScheduleConfig().value(0.5) == pytest.approx(math.tanh(2.5))
    assert ScheduleConfig(kind="constant", end=0.3).value(0.0) == 0.3
    assert ScheduleConfig(kind="linear", start=0.0, end=0.4).value(0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        ScheduleConfig(steepness=0.0)


def test_warmup_holds_zero_then_runs_the_schedule_over_the_rest():
    cfg = ScheduleConfig(warmup=0.3, end=0.1)  # the SED presets' GRL weight
    assert [cfg.value(p) for p in (0.0, 0.1, 0.29)] == [0.0, 0.0, 0.0]
    assert cfg.value(0.3) == 0.0  # the ramp starts at 0
    assert cfg.value(0.65) == pytest.approx(sigmoid_ramp(0.5, 0.1, 10.0))
    assert cfg.value(1.0) == pytest.approx(0.1 * 0.9999092042625951)
    values = [cfg.value(p / 100) for p in range(30, 101)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert max(values) <= 0.1
    assert ScheduleConfig(kind="constant", end=0.5, warmup=0.5).value(0.49) == 0.0
    assert ScheduleConfig(kind="constant", end=0.5, warmup=0.5).value(0.5) == 0.5
    assert ScheduleConfig(kind="linear", start=0.2, end=0.4, warmup=0.5).value(0.75) == pytest.approx(0.3)
    assert warmed_up(0.2, 0.3) is None and warmed_up(0.3, 0.3) == 0.0 and warmed_up(1.0, 0.3) == 1.0


@pytest.mark.parametrize("kind", ["sigmoid_ramp", "constant", "linear"])
def test_without_warmup_every_schedule_is_unchanged(kind):
    """The default (no warm-up) is what SER's schedules and the paper-literal SED rows use."""
    plain = {"sigmoid_ramp": lambda p: sigmoid_ramp(p, 0.8, 10.0), "constant": lambda p: constant(p, 0.8),
             "linear": lambda p: linear_ramp(p, 0.1, 0.8)}[kind]
    cfg = ScheduleConfig(kind=kind, start=0.1, end=0.8)
    assert cfg.warmup == 0.0
    for p in (0.0, 0.3, 1.0):
        assert cfg.value(p) == plain(p)


@pytest.mark.parametrize("warmup", [-0.1, 1.0, math.inf])
def test_warmup_outside_its_range_is_rejected(warmup):
    with pytest.raises(ValueError, match="warmup"):
        ScheduleConfig(warmup=warmup)
    with pytest.raises(ValueError, match="warmup"):
        warmed_up(0.5, warmup)
