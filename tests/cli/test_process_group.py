"""The CLI leaves a torch.distributed process group it joined once a command has succeeded, and only then."""

from __future__ import annotations

import argparse

import pytest
import torch.distributed as dist

from audioadapt.cli.main import _run
from audioadapt.errors import ConfigError


@pytest.fixture
def one_rank_group(tmp_path):
    """A gloo group of one rank (a file store, no port); destroyed afterwards whatever the test did."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def _args(func) -> argparse.Namespace:
    return argparse.Namespace(func=func, verbose=False)


def test_a_successful_command_destroys_the_group(one_rank_group):
    assert _run(_args(lambda args: 0)) == 0
    assert not dist.is_initialized()


def test_a_failed_command_leaves_the_group_alone(one_rank_group):
    def fail(args):
        raise ConfigError("bad key")

    assert _run(_args(fail)) == 2
    assert dist.is_initialized()  # no barrier another rank might never reach


def test_without_a_group_nothing_happens():
    assert not dist.is_initialized()
    assert _run(_args(lambda args: 3)) == 3
