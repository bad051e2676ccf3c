"""The CPU allocator setting: validated, applied once, and it keeps freed memory (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from audioadapt.training.allocator import configure_cpu_allocator

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the setting acts on glibc only"
)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown CPU allocator mode"):
        configure_cpu_allocator("fast")  # type: ignore[arg-type]


def test_system_changes_nothing():
    assert configure_cpu_allocator("system") is False


_RSS_AFTER_FREE = textwrap.dedent(
    """
    import sys
    import torch
    from audioadapt.training.allocator import configure_cpu_allocator

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    applied = configure_cpu_allocator(sys.argv[1])
    again = configure_cpu_allocator(sys.argv[1])
    base = rss_mib()
    x = torch.ones(256 * 2**20 // 4)  # 256 MiB, written
    del x
    print(applied, again, round(rss_mib() - base))
    """
)


@glibc
@pytest.mark.parametrize("mode", ["retain", "system"])
def test_retain_keeps_freed_memory_and_system_returns_it(mode):
    out = subprocess.run([sys.executable, "-c", _RSS_AFTER_FREE, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    applied, again, kept_mib = out[0] == "True", out[1] == "True", int(out[2])
    if mode == "retain":
        assert applied and not again  # once per process
        assert kept_mib > 200  # the 256 MiB stay resident for reuse
    else:
        assert not applied and not again
        assert kept_mib < 50  # glibc unmapped the block on free


_OPT_IN = textwrap.dedent(
    """
    from audioadapt.training import allocator

    before = allocator.configure_for_run("retain"), allocator.applied_mode()
    allocator.claim_process()
    after = allocator.configure_for_run("retain"), allocator.applied_mode()
    print(*before, *after)
    """
)


@glibc
def test_a_loaded_run_sets_the_allocator_only_in_a_claimed_process():
    out = subprocess.run([sys.executable, "-c", _OPT_IN], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "None", "True", "retain"]


def test_a_loaded_run_mode_is_checked_even_unclaimed():
    from audioadapt.training.allocator import configure_for_run

    with pytest.raises(ValueError, match="unknown CPU allocator mode 'fast'"):
        configure_for_run("fast")  # type: ignore[arg-type]
