"""The fused CPU kernel of the conv blocks' training tail gives the operator path's numbers and masks."""

from __future__ import annotations

import copy
import logging
import platform

import pytest
import torch

from audioadapt import cpus
from audioadapt.models import fused_tail
from audioadapt.models.blocks import ConvBlock
from audioadapt.models.crnn import CRNNConfig
from audioadapt.models.sed_model import SedModel, SedModelConfig

needs_kernel = pytest.mark.skipif(not fused_tail.fused_tail_available(), reason="no C compiler for the kernel")


def _pair(cin: int, cout: int, pool: tuple[int, int], p: float) -> tuple[ConvBlock, ConvBlock]:
    """Two identical blocks, the operator path and the fused one, with non-trivial BatchNorm and GLU."""
    torch.manual_seed(0)
    plain = ConvBlock(cin, cout, 3, pool, p, "glu", 1e-3, 0.99).to(memory_format=torch.channels_last)
    with torch.no_grad():
        plain.act.linear.weight.normal_(0.0, 0.3)
        plain.act.linear.bias.normal_(0.0, 0.1)
        plain.norm.weight.normal_(1.0, 0.2)
        plain.norm.bias.normal_(0.0, 0.2)
    fused = copy.deepcopy(plain)
    fused.fused_cpu = True
    return plain, fused


def _run(block: ConvBlock, x: torch.Tensor, grad: torch.Tensor, seed: int = 1):
    block.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    out = block(x)
    out.backward(grad)
    return out.detach(), x.grad, {n: p.grad for n, p in block.named_parameters()}


@needs_kernel
@pytest.mark.parametrize(
    ("cin", "cout", "pool", "p", "shape"),
    [
        (1, 16, (2, 2), 0.5, (4, 1, 64, 32)),  # the first block's shape family
        (16, 32, (2, 2), 0.5, (3, 16, 33, 31)),  # pooling drops a trailing frame and bin
        (8, 8, (1, 2), 0.0, (3, 8, 20, 16)),  # no dropout
        (4, 12, (2, 4), 0.25, (2, 4, 18, 40)),  # a channel count without a specialised kernel
        (8, 24, (2, 2), 0.5, (2, 8, 14, 18)),  # ... a multiple of the AVX2 vector width (the generic vector path)
        (32, 64, (1, 2), 0.5, (2, 32, 10, 8)),
    ],
)
def test_fused_tail_matches_the_operator_path(cin, cout, pool, p, shape):
    _check_against_the_operator_path(cin, cout, pool, p, shape)


def _check_against_the_operator_path(cin: int, cout: int, pool: tuple[int, int], p: float,
                                     shape: tuple[int, ...]) -> None:
    """One training forward and backward of a fused block against the operator path (outputs, gradients, statistics)."""
    plain, fused = _pair(cin, cout, pool, p)
    x = torch.randn(*shape).mul(1.5).add(0.3).contiguous(memory_format=torch.channels_last)
    assert fused.fusable(x) and not plain.fusable(x)
    n, _, t, f = shape
    grad = torch.randn(n, cout, t // pool[0], f // pool[1])
    out_plain, dx_plain, grads_plain = _run(plain, x, grad)
    out_fused, dx_fused, grads_fused = _run(fused, x, grad)
    assert out_fused.is_contiguous(memory_format=torch.channels_last)
    # float rounding only (same dropout masks): both paths sum in different orders
    torch.testing.assert_close(out_fused, out_plain, rtol=1e-4, atol=1e-5 * float(out_plain.abs().max()))
    torch.testing.assert_close(dx_fused, dx_plain, rtol=1e-4, atol=1e-5 * float(dx_plain.abs().max()))
    for name, want in grads_plain.items():
        # the conv bias feeds BatchNorm: its true gradient is 0, both paths give rounding noise
        scale = float(grads_plain["conv.weight"].abs().max()) if name == "conv.bias" else float(want.abs().max())
        torch.testing.assert_close(grads_fused[name], want, rtol=1e-4, atol=1e-5 * scale, msg=lambda m, name=name: f"{name}: {m}")
    for buf in ("running_mean", "running_var"):
        torch.testing.assert_close(getattr(fused.norm, buf), getattr(plain.norm, buf), rtol=1e-5, atol=1e-6)
    assert int(fused.norm.num_batches_tracked) == int(plain.norm.num_batches_tracked) == 1


@needs_kernel
@pytest.mark.parametrize("momentum", [0.99, 0.1, None])
def test_running_statistics_follow_the_configured_momentum_over_steps(momentum):
    """``model.crnn.bn_momentum`` reaches the kernel: several steps give the operator path's running statistics."""
    plain, fused = _pair(8, 16, (2, 2), 0.5)
    for block in (plain, fused):
        block.norm.momentum = momentum
    torch.manual_seed(4)
    batches = [torch.randn(3, 8, 12, 10).mul(1 + k).add(k).contiguous(memory_format=torch.channels_last)
               for k in range(3)]
    for k, x in enumerate(batches):
        grad = torch.randn(3, 16, 6, 5)
        _run(plain, x, grad, seed=k)
        _run(fused, x, grad, seed=k)
    for buf in ("running_mean", "running_var"):
        torch.testing.assert_close(getattr(fused.norm, buf), getattr(plain.norm, buf), rtol=1e-5, atol=1e-6)
    assert int(fused.norm.num_batches_tracked) == int(plain.norm.num_batches_tracked) == 3


@needs_kernel
def test_batch_statistics_are_accurate_on_a_large_batch():
    # float64 reference: the fused pass accumulates in double
    plain, fused = _pair(1, 16, (2, 2), 0.0)
    fused.norm.momentum = 1.0
    x = torch.randn(16, 1, 320, 128).mul(2.0).add(0.5).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = fused.conv(x).double()
    fused(x)
    want = y.var(dim=(0, 2, 3), unbiased=True)
    torch.testing.assert_close(fused.norm.running_var.double(), want, rtol=1e-6, atol=0.0)


@needs_kernel
def test_fusable_only_where_the_kernel_computes_the_same_thing():
    from audioadapt.training.sync_batchnorm import AllReduceBatchNorm

    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    _, fused = _pair(4, 8, (2, 2), 0.5)
    assert fused.fusable(x)
    assert not fused.fusable(x.contiguous())  # not channels-last
    assert not fused.fusable(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused.fusable(x)
    assert not _pair(4, 8, (2, 2), 0.1)[1].fusable(x)  # 16-bit dropout draws
    relu = ConvBlock(4, 8, 3, (2, 2), 0.5, "relu", 1e-3, 0.99, fused_cpu=True)
    assert not relu.fused_cpu
    synced = copy.deepcopy(fused)
    synced.norm = AllReduceBatchNorm(8)
    assert not synced.fusable(x)  # DDP's synchronised BatchNorm keeps the operator path



@needs_kernel
@pytest.mark.parametrize(("cin", "cout", "pool", "shape"),
                         [(1, 16, (2, 2), (3, 1, 40, 32)), (16, 32, (2, 2), (2, 16, 21, 18)), (8, 12, (1, 2), (2, 8, 9, 8))])
def test_eval_mode_without_autograd_takes_the_kernel_with_the_running_statistics(cin, cout, pool, shape):
    plain, fused = _pair(cin, cout, pool, 0.5)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    for block in (plain, fused):  # the same running statistics, away from their initial values
        torch.manual_seed(3)
        block.train()(x * 2 + 0.5)
        block.eval()
    calls = []
    original = fused._fused_forward
    fused._fused_forward = lambda inp: calls.append(1) or original(inp)  # type: ignore[method-assign]
    want = plain(x).detach()
    with torch.inference_mode():
        got = fused(x)
    assert calls == [1]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    fused(x)  # autograd on: the operator path (the kernel has no backward for eval mode)
    assert calls == [1]


@needs_kernel
def test_sed_model_trains_the_same_with_and_without_the_kernel():
    def step(max_channels: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        crnn = CRNNConfig(filters=(8, 16, 32), kernel_sizes=(3, 3, 3), pooling=((2, 2), (2, 2), (1, 2)),
                          rnn_hidden=8, rnn_layers=1, fused_cpu_max_channels=max_channels)
        model = SedModel(SedModelConfig(crnn=crnn), 32, 3).train()
        feats = torch.randn(4, 40, 32)
        torch.manual_seed(7)
        out = model(feats, None)
        loss = sum(out[h].frame_probs.square().mean() + out[h].clip_probs.mean() for h in ("f1", "f2", "ft"))
        loss = loss + out.domain_logits.square().mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_plain, grads_plain = step(0)
    loss_fused, grads_fused = step(64)
    torch.testing.assert_close(loss_fused, loss_plain, rtol=1e-5, atol=1e-6)
    assert grads_fused.keys() == grads_plain.keys()
    largest = max(float(g.abs().max()) for g in grads_plain.values())
    for name, want in grads_plain.items():
        if name.endswith("conv.bias"):
            continue  # rounding noise on both paths (see above)
        torch.testing.assert_close(grads_fused[name], want, rtol=1e-3, atol=1e-5 * largest,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_without_a_compiler_the_blocks_keep_the_operator_path(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    fused_tail._library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="audioadapt.models.fused_tail"):
            assert not fused_tail.fused_tail_available()
        assert "building fused_tail.c failed" in caplog.text
        _, fused = _pair(1, 8, (2, 2), 0.5)
        x = torch.randn(2, 1, 8, 8).contiguous(memory_format=torch.channels_last)
        assert not fused.fusable(x)
        assert fused.train()(x).shape == (2, 8, 4, 4)
    finally:
        fused_tail._library.cache_clear()


@needs_kernel
def test_loading_the_kernel_leaves_subnormal_floats_alone():
    # a library linked with -ffast-math would switch the process to flush-to-zero
    fused_tail._library()
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal
    assert float(tiny * 1.0) != 0.0
    assert float(torch.tensor(1e-39) / 2) > 0.0


@needs_kernel
def test_a_compiler_without_gcc_options_gets_the_portable_flags(monkeypatch, tmp_path):
    import shutil
    import stat

    real = shutil.which("cc") or shutil.which("gcc")
    wrapper = tmp_path / "strict-cc"
    wrapper.write_text(f'#!/bin/sh\nfor a in "$@"; do case "$a" in --param*) echo "unknown: $a" >&2; exit 1;; '
                       f'esac; done\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(wrapper))
    fused_tail._library.cache_clear()
    try:
        assert fused_tail.fused_tail_available()
        plain, fused = _pair(1, 16, (2, 2), 0.5)
        x = torch.randn(2, 1, 16, 8).contiguous(memory_format=torch.channels_last)
        grad = torch.randn(2, 16, 8, 4)
        torch.testing.assert_close(_run(fused, x, grad)[0], _run(plain, x, grad)[0], rtol=1e-4, atol=1e-5)
    finally:
        fused_tail._library.cache_clear()


def _cpu_flags() -> set[str]:
    """The x86 vector flags these tests look at, as /proc/cpuinfo reports them (none elsewhere)."""
    return set(cpus.cpu_model(wanted=("sse2", "avx", "avx2", "avx512f"))[1])


needs_x86_linux = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _cpu_flags(),
                                     reason="x86 vector widths, read from /proc/cpuinfo")


@needs_kernel
@needs_x86_linux
def test_the_kernels_use_the_vector_width_of_this_cpu():
    # 64-byte vectors on an AVX2 CPU are split into pieces kept in memory: the kernels were 1.5-3x slower
    # than PyTorch's operators there instead of 1.2-2.5x faster
    flags = _cpu_flags()
    want = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    assert fused_tail.vector_width() == want


#: (-march, floats per vector, the CPU flag it needs): the kernel's vector paths that this machine can run
_ISA_BUILDS = [("x86-64", 4, "sse2"), ("x86-64-v3", 8, "avx2"), ("x86-64-v4", 16, "avx512f")]


@needs_kernel
@needs_x86_linux
@pytest.mark.parametrize(("march", "width", "flag"), _ISA_BUILDS, ids=[b[0] for b in _ISA_BUILDS])
def test_every_vector_width_gives_the_operator_paths_numbers(monkeypatch, tmp_path, march, width, flag):
    if flag not in _cpu_flags():
        pytest.skip(f"this CPU has no {flag}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fused_tail, "_FLAGS", tuple(f"-march={march}" if f == "-march=native" else f
                                                    for f in fused_tail._FLAGS))
    fused_tail._library.cache_clear()
    try:
        assert fused_tail.vector_width() == width
        for cin, cout, pool, shape in [(1, 8, (2, 2), (2, 1, 12, 16)), (1, 16, (2, 2), (2, 1, 12, 20)),
                                       (16, 32, (2, 2), (2, 16, 9, 14)), (32, 64, (1, 2), (2, 32, 6, 12)),
                                       (4, 12, (2, 4), (2, 4, 8, 16)), (8, 24, (2, 2), (2, 8, 10, 12))]:
            _check_against_the_operator_path(cin, cout, pool, 0.5, shape)
    finally:
        fused_tail._library.cache_clear()


@needs_kernel
def test_a_forked_child_runs_the_kernel_on_its_own_threads():
    import multiprocessing

    _, fused = _pair(1, 8, (2, 2), 0.5)
    x = torch.randn(2, 1, 16, 8).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child runs one thread too: the same pool size, the pool the parent made
    try:
        fused(x)  # the parent's kernel thread exists now
    finally:
        torch.set_num_threads(threads)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        shape = pool.apply_async(_child_forward, (fused, x)).get(timeout=60)
    assert shape == (2, 8, 8, 4)


def _child_forward(block: ConvBlock, x: torch.Tensor) -> tuple[int, ...]:
    # one thread, as in a DataLoader worker: GNU OpenMP cannot run parallel regions in a child forked
    # from a parent that used them (the convolution would hang, whatever the kernel does)
    torch.set_num_threads(1)
    return tuple(block(x).shape)


def _eval_block(cin: int = 1, cout: int = 16) -> tuple[ConvBlock, ConvBlock, torch.Tensor]:
    plain, fused = _pair(cin, cout, (2, 2), 0.5)
    x = torch.randn(2, cin, 12, 16).contiguous(memory_format=torch.channels_last)
    for block in (plain, fused):
        torch.manual_seed(3)
        block.train()(x * 2 + 0.5)
        block.eval()
    return plain, fused, x


@needs_kernel
def test_the_kernels_are_operators_with_consistent_fake_versions():
    _, fused, x = _eval_block()
    scale, shift = fused.running_affine()
    weight, bias = fused.act.linear.weight.detach(), fused.act.linear.bias.detach()
    y = fused.conv(x).detach().contiguous(memory_format=torch.channels_last)
    ops = torch.ops.audioadapt
    torch.library.opcheck(ops.fused_tail_eval.default, (y, scale.detach(), shift.detach(), weight, bias, [2, 2]))
    torch.library.opcheck(ops.fused_tail_stats.default, (y,))
    gamma, beta = fused.norm.weight.detach().clone().requires_grad_(), fused.norm.bias.detach().clone()
    mean, invstd = y.mean(dim=(0, 2, 3)), torch.rsqrt(y.var(dim=(0, 2, 3)) + 1e-3)
    args = (y.clone().requires_grad_(), gamma, beta, weight, bias, mean, invstd, None, -(2**15), 1.0, [2, 2])
    torch.library.opcheck(ops.fused_tail_train.default, args, test_utils=("test_schema", "test_faketensor",
                                                                          "test_autograd_registration"))


@needs_kernel
def test_tracing_records_the_kernel_as_one_operator():
    # tracing used to fail inside ctypes ("undefined symbol: tail_forward_tensor(16)")
    plain, fused, x = _eval_block()
    with torch.no_grad():
        want = plain(x)
        traced = torch.jit.trace(fused, (x,))
        assert "audioadapt::fused_tail_eval" in str(traced.graph)
        torch.testing.assert_close(traced(x * 0.5), plain(x * 0.5), rtol=1e-4, atol=1e-5)
        exported = torch.export.export(fused, (x,))
        assert "audioadapt.fused_tail_eval" in str(exported.graph)
        torch.testing.assert_close(exported.module()(x), want, rtol=1e-4, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("p", [0.0, 0.5], ids=["whole-graph", "dropout-draws-eager"])
def test_torch_compile_trains_through_the_kernel(p):
    # dynamo has no rule for MaskDropout's in-place random_ draw: with dropout, the draw breaks the graph
    torch._dynamo.reset()
    plain, fused = _pair(1, 16, (2, 2), p)
    x = torch.randn(2, 1, 12, 16).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 16, 6, 8)
    compiled = copy.deepcopy(fused)
    compiled_block = torch.compile(compiled, backend="aot_eager", fullgraph=p == 0.0)
    out_eager, dx_eager, grads_eager = _run(fused, x, grad)
    out_plain, _, _ = _run(plain, x, grad)
    calls = []
    original = fused_tail._pooled_forward
    try:
        fused_tail._pooled_forward = lambda *a: calls.append(1) or original(*a)
        out_c, dx_c, grads_c = _run(compiled_block, x, grad)
    finally:
        fused_tail._pooled_forward = original
        torch._dynamo.reset()
    assert calls == [1]  # the compiled module ran the kernel
    torch.testing.assert_close(out_c, out_eager)  # the same kernel, the same dropout draws
    torch.testing.assert_close(dx_c, dx_eager)
    for name, want in grads_eager.items():
        torch.testing.assert_close(grads_c[f"_orig_mod.{name}"], want, msg=lambda m, name=name: f"{name}: {m}")
    torch.testing.assert_close(out_c, out_plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled.norm.running_mean, fused.norm.running_mean)
