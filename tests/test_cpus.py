"""CPU count from affinity and cgroup quota, torch's thread count, and the OpenMP wait policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audioadapt import cpus


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path):
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/user.slice/job\n")
    root = tmp_path / "cg"
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "user.slice" / "cpu.max", "300000 100000\n")
    _write(root / "user.slice" / "job" / "cpu.max", "150000 100000\n")
    assert cpus.cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    _write(root / "user.slice" / "job" / "cpu.max", "max 100000\n")
    assert cpus.cgroup_cpu_quota(root, proc) == pytest.approx(3.0)


def test_cgroup_v1_quota(tmp_path):
    proc = tmp_path / "proc_cgroup"
    _write(proc, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    root = tmp_path / "cg"
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cpus.cgroup_cpu_quota(root, proc) == pytest.approx(2.0)


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpus.cgroup_cpu_quota(tmp_path / "none", tmp_path / "missing") is None
    _write(tmp_path / "proc", "garbage line\n0::/\n")
    _write(tmp_path / "cg" / "cpu.max", "nonsense\n")
    assert cpus.cgroup_cpu_quota(tmp_path / "cg", tmp_path / "proc") is None


def test_available_cpus_is_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: 2.5)
    assert cpus.available_cpus() == 3
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: 0.2)
    assert cpus.available_cpus() == 1
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: None)
    assert cpus.available_cpus() == 8


def test_local_ranks_share_the_cpus(monkeypatch):
    monkeypatch.setattr(cpus, "available_cpus", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert cpus.default_num_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert cpus.default_num_threads() == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert cpus.default_num_threads() == 8


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_configure_threads_caps_and_keeps_lower_counts(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpus, "default_num_threads", lambda: 1)
    torch.set_num_threads(2)
    assert cpus.configure_threads(None) == 1
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(cpus, "default_num_threads", lambda: 4)
    assert cpus.configure_threads(None) == 1  # a lower count chosen before stays
    assert cpus.configure_threads(2) == 2
    assert torch.get_num_threads() == 2


def test_configure_threads_leaves_omp_num_threads_alone(monkeypatch, restore_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(cpus, "default_num_threads", lambda: 1)
    torch.set_num_threads(2)
    assert cpus.configure_threads(None) == 2
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        cpus.configure_threads(0)


def test_prefer_passive_waiting_keeps_a_user_setting(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert cpus.prefer_passive_waiting() is False
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert cpus.prefer_passive_waiting() is False  # torch is imported in this process: too late
    assert os.environ["OMP_WAIT_POLICY"] == cpus.PASSIVE


def test_the_command_asks_for_passive_waiting_before_torch_is_loaded():
    code = (
        "import audioadapt.cpus as c, audioadapt.cli.main as m\n"
        "seen = []\n"
        "f = c.prefer_passive_waiting\n"
        "m.prefer_passive_waiting = lambda: seen.append(f())\n"
        "m.main(['config', 'list'])\n"
        "import os, sys\n"
        "print('RESULT', seen, os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RESULT [True] PASSIVE" in out.stdout


def test_machine_description_names_the_cpu_model_its_vector_units_and_the_cpus(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    block = "processor\t: {i}\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f amx_tile\n\n"
    info.write_text("".join(block.format(i=i) for i in range(2)))
    assert cpus.cpu_model(info) == ("Example CPU 9000", ["avx2", "avx512f", "amx_tile"])
    monkeypatch.setattr(cpus, "available_cpus", lambda: 2)
    text = cpus.machine_description(info)
    assert text.startswith("Example CPU 9000 (avx2, avx512f, amx_tile), 2 CPUs, ")
    assert cpus.cpu_model(tmp_path / "missing")[1] == []


def test_cpu_identity_keys_on_the_model_and_every_flag_line_but_not_on_per_core_lines(tmp_path, monkeypatch):
    def identity(blocks: str | bytes) -> str:
        info = tmp_path / "cpuinfo"
        info.write_bytes(blocks.encode() if isinstance(blocks, str) else blocks)
        return cpus.cpu_identity(info)

    block = "processor\t: {i}\ncpu MHz\t\t: {mhz}\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 {extra}\n\n"
    two = identity("".join(block.format(i=i, mhz=1000 + i, extra="avx2") for i in range(2)))
    assert two == "flags\t\t: fpu sse2 avx2|model name\t: Example CPU 9000"
    # the clock and the core count do not change the key; a flag, on any core, does
    assert identity(block.format(i=0, mhz=3000, extra="avx2")) == two
    assert identity(block.format(i=0, mhz=1000, extra="avx2") + block.format(i=1, mhz=1000, extra="avx512f")) != two
    # Arm names its core in "CPU part"; bytes that are not UTF-8 do not stop the read
    arm = identity(b"processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\nBogoMIPS\t: \xff\n")
    assert arm == "CPU part\t: 0xd0c|Features\t: fp asimd"
    monkeypatch.setattr(cpus.platform, "processor", lambda: "a processor")
    assert cpus.cpu_identity(tmp_path / "missing") == "a processor"
