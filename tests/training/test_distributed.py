"""Data-parallel training: two gloo processes follow the loss curve of one process."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from audioadapt.errors import ConfigError
from audioadapt.training.distributed import DistInfo, init_distributed, reduce_means, resolve_device, wrap_step
from audioadapt.training.logging import read_metrics

from . import toy
from .ddp_helpers import launch

#: float64 toy model: one process and two processes differ only by the
#: summation order of the gradient average, so values agree to ~1e-12.
RTOL, ATOL = 1e-9, 1e-11


def _launch(run_dir: Path, tmp_path: Path, world_size: int = 2) -> list[Path]:
    """Start ``world_size`` toy ranks as torchrun would (environment variables), wait for all."""
    dumps = [tmp_path / f"rank{r}.pt" for r in range(world_size)]
    outputs = launch(lambda rank: [sys.executable, toy.__file__, "--run-dir", str(run_dir), "--no-augment",
                                   "--tensorboard", "--dump", str(dumps[rank])], world_size)
    for out in outputs:  # DDP is built without deprecated arguments: no FutureWarning from our own calls
        assert "Warning" not in out, out
    return dumps


def _numbers(rows: list[dict[str, str]]) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if k != "phase"} for row in rows]


def test_two_gloo_processes_match_one_process(tmp_path):
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    method, _ = toy.train(one_dir, augment=False)
    dumps = _launch(two_dir, tmp_path)

    single = _numbers(read_metrics(one_dir / "metrics.csv"))
    double = _numbers(read_metrics(two_dir / "metrics.csv"))
    assert len(double) == len(single) == sum(method.epochs)  # one row per epoch: only rank 0 wrote
    for a, b in zip(single, double):
        assert a.keys() == b.keys()
        for key in a:
            assert math.isclose(a[key], b[key], rel_tol=RTOL, abs_tol=ATOL), (key, a[key], b[key])
    # the loss curve is a real curve, not a constant
    losses = [row["train/loss"] for row in single]
    assert losses[-1] < losses[0]

    rank0, rank1 = (torch.load(p, weights_only=True) for p in dumps)
    for net, module in method.networks().items():  # the EMA teacher included
        for key, want in module.state_dict().items():
            torch.testing.assert_close(rank0[net][key], want, rtol=RTOL, atol=ATOL)
            assert torch.equal(rank0[net][key], rank1[net][key]), f"ranks disagree on {net}.{key}"
    # only rank 0 writes: one TensorBoard event file, checkpoints present
    assert len(list(two_dir.glob("events.out.tfevents.*"))) == 1
    assert (two_dir / "last.pt").is_file() and (two_dir / "best.pt").is_file()
    # all_gather with a different first dimension per rank, in rank order
    assert rank0["_gathered"].tolist() == rank1["_gathered"].tolist() == [0, 0, 1]


def test_single_process_collectives_are_identities():
    info = DistInfo()
    t = torch.arange(3.0)
    assert not info.enabled and info.is_main
    assert info.all_gather(t) is t
    assert torch.equal(info.all_reduce_mean(t), t)
    assert info.broadcast_object({"a": 1}) == {"a": 1}
    assert info.gather_objects(5) == [5]
    info.barrier()


def test_reduce_means_pools_sums_and_counts():
    assert reduce_means({"loss": 3.0, "x": 1.0}, {"loss": 2, "x": 4}, DistInfo()) == {"loss": 1.5, "x": 0.25}


def test_init_distributed_without_env_is_one_process():
    info = init_distributed("cpu", env={})
    assert (info.rank, info.world_size, info.device) == (0, 1, torch.device("cpu"))


@pytest.mark.parametrize(
    "env, match",
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two'"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2"),
        ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR and MASTER_PORT"),
    ],
)
def test_init_distributed_reports_bad_environment(env, match):
    with pytest.raises(ConfigError, match=match):
        init_distributed("cpu", env=env)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_wrap_step_refuses_networks_without_trainable_parameters():
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameter"):
        wrap_step(lambda batch, ctx: None, {"f": frozen}, DistInfo())


def test_step_module_checks_the_return_type():
    step = wrap_step(lambda batch, ctx: 1.0, {"f": torch.nn.Linear(2, 2)}, DistInfo())
    with pytest.raises(TypeError, match="StepOutput"):
        step(None, None)
