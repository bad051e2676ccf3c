import math

import pytest

from audioadapt.adaptation.schedules import ScheduleConfig, constant, linear_ramp, sigmoid_ramp


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
