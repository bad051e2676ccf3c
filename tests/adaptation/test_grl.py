import math

import pytest
import torch

from audioadapt.adaptation.grl import GradientReversal, grad_reverse


@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_forward_is_identity_and_backward_scales_by_minus_coeff(coeff):
    torch.manual_seed(0)
    x = torch.randn(4, 5, requires_grad=True)
    upstream = torch.randn(4, 5)
    y = grad_reverse(x, coeff)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -(upstream * coeff))


def test_reversal_flips_the_gradient_of_a_downstream_loss():
    torch.manual_seed(0)
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(5, 3)
    (grad_reverse(x * w, 1.0) ** 2).sum().backward()
    reversed_grad = w.grad.clone()
    w.grad = None
    ((x * w) ** 2).sum().backward()
    torch.testing.assert_close(reversed_grad, -w.grad)


def test_module_coefficient_can_change_each_step():
    layer = GradientReversal()
    x = torch.ones(3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.tolist() == [-1.0, -1.0, -1.0]  # plain reversal until scheduled
    for coeff in (0.25, 0.75):
        x.grad = None
        layer.set_coeff(coeff)
        layer(x).sum().backward()
        assert x.grad.tolist() == [-coeff] * 3
    assert "0.75" in repr(layer)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_invalid_coefficients_rejected(bad):
    with pytest.raises(ValueError):
        GradientReversal(bad)
    with pytest.raises(ValueError):
        grad_reverse(torch.zeros(1), bad)
