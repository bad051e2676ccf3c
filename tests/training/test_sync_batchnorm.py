"""Synchronised BatchNorm: the conversion, and two gloo ranks normalising like one BatchNorm on the whole batch."""

from __future__ import annotations

import sys
import textwrap

import torch
from torch import nn

from audioadapt.models.crnn import CRNN, CRNNConfig
from audioadapt.training.sync_batchnorm import AllReduceBatchNorm, convert_sync_batchnorm

from .ddp_helpers import launch

#: Each rank normalises its rows of one seeded float64 batch (3 and 5 rows: shares may differ), back-propagates
#: its part of ``sum(out * w)``, sums the parameter gradients over ranks as DDP does, then updates the running
#: statistics once more with a second batch.
_RANK_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from audioadapt.training.distributed import cleanup_distributed, init_distributed
    from audioadapt.training.sync_batchnorm import AllReduceBatchNorm

    dist = init_distributed("cpu")
    torch.manual_seed(0)
    x, w = torch.randn(8, 3, 4, 5, dtype=torch.float64), torch.randn(8, 3, 4, 5, dtype=torch.float64)
    bn = AllReduceBatchNorm(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1.0, 1.0)
    init = {k: v.clone() for k, v in bn.state_dict().items()}
    rows = slice(0, 3) if dist.rank == 0 else slice(3, 8)
    xr = x[rows].clone().requires_grad_()
    out = bn(xr)
    (out * w[rows]).sum().backward()
    for g in (bn.weight.grad, bn.bias.grad):
        torch.distributed.all_reduce(g)
    bn(2.0 * x[rows] + 1.0)
    torch.save({"x": x, "w": w, "init": init, "out": out.detach(), "x_grad": xr.grad, "weight_grad": bn.weight.grad,
                "bias_grad": bn.bias.grad, "state": bn.state_dict()}, f"{sys.argv[1]}.{dist.rank}")
    cleanup_distributed()
    """
)


def _crnn() -> CRNN:
    return CRNN(CRNNConfig(filters=(4, 8), kernel_sizes=(3, 3), pooling=((2, 2), (2, 2)), rnn_hidden=4,
                           rnn_layers=1, dropout=0.0), n_mels=8)


def test_conversion_keeps_parameters_buffers_and_modes():
    model = _crnn()
    model.cnn[1].norm.eval()
    params = {name: p for name, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert convert_sync_batchnorm([model], torch.device("cpu")) == 2
    assert all(isinstance(block.norm, AllReduceBatchNorm) for block in model.cnn)
    assert [block.norm.training for block in model.cnn] == [True, False]
    assert all(p is params[name] for name, p in model.named_parameters())  # an optimizer's references stay valid
    assert model.state_dict().keys() == state.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert convert_sync_batchnorm([model], torch.device("cpu")) == 0  # already converted


def test_a_layer_shared_by_two_networks_is_replaced_once():
    shared = nn.BatchNorm1d(3)
    a, b = nn.Sequential(shared), nn.Sequential(nn.Linear(3, 3), shared)
    assert convert_sync_batchnorm([a, b], torch.device("cpu")) == 1
    assert a[0] is b[1] and isinstance(a[0], AllReduceBatchNorm)
    assert convert_sync_batchnorm([nn.Sequential(nn.BatchNorm1d(3))], torch.device("cuda")) == 1  # PyTorch's on CUDA


def test_outside_a_process_group_it_is_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5)
    ref, bn = nn.BatchNorm1d(3, momentum=None), AllReduceBatchNorm(3, momentum=None)
    for mode in (True, True, False):
        ref.train(mode)
        bn.train(mode)
        torch.testing.assert_close(bn(x + mode), ref(x + mode))
    torch.testing.assert_close(bn.state_dict(), ref.state_dict())


def test_two_gloo_ranks_normalise_with_the_statistics_of_the_whole_batch(tmp_path):
    prefix = tmp_path / "rank"
    outputs = launch(lambda rank: [sys.executable, "-c", _RANK_SCRIPT, str(prefix)])
    assert all("Warning" not in out for out in outputs), outputs  # no deprecated collective, no tensor-to-scalar
    ranks = [torch.load(f"{prefix}.{r}", weights_only=True) for r in range(2)]
    x, w = ranks[0]["x"].clone().requires_grad_(), ranks[0]["w"]
    ref = nn.BatchNorm2d(3, momentum=0.3).double()
    ref.load_state_dict(ranks[0]["init"])
    out = ref(x)
    (out * w).sum().backward()
    ref(2.0 * x.detach() + 1.0)
    close = {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach(), **close)
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), x.grad, **close)
    for r in ranks:
        torch.testing.assert_close(r["weight_grad"], ref.weight.grad, **close)
        torch.testing.assert_close(r["bias_grad"], ref.bias.grad, **close)
        torch.testing.assert_close(r["state"], ref.state_dict(), **close)  # running statistics, 2 batches tracked
