"""Start a group of gloo processes the way torchrun does: one command per rank, settings in the environment."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_env(rank: int, world_size: int, port: int) -> dict[str, str]:
    """This environment plus torchrun's variables for ``rank`` and one intra-op thread."""
    return {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}


def launch(command: Callable[[int], Sequence[str]], world_size: int = 2, timeout: float = 120) -> list[str]:
    """Run ``command(rank)`` for every rank at once, wait for all; fail with a rank's output if it fails.

    Returns the output (stdout and stderr) of each rank.
    """
    port = free_port()
    procs = [subprocess.Popen(list(command(rank)), env=rank_env(rank, world_size, port), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in range(world_size)]
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        outputs.append(out)
    for rank, (proc, out) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{out}"
    return outputs
