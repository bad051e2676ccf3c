"""Speed and memory of the paper-size SED model on this CPU.

Synthetic data only. Measures, in one process and in this order:

1. the machine's float32 matrix-multiply peak (``torch.mm`` of square
   matrices, default thread count, best of several runs);
2. FLOPs per training step and per inference batch, counted with
   ``torch.utils.flop_counter.FlopCounterMode`` for the baseline (F + Ft) and
   the full phase-1 system (F, F1, F2, Ft, D with Adv.time);
3. training throughput of one full phase-1 step (normaliser, forward, the
   losses of ``SedTriAdvMethod.compute_losses``/``training_step``, backward,
   Adam step) and the inference real-time factor in eval mode under
   ``torch.inference_mode()``, from features and from raw 22.05 kHz audio
   through :class:`~audioadapt.features.logmel.LogMel`;
4. achieved FLOP/s as a fraction of the measured peak;
5. the peak resident memory of training.

The C allocator is set up as training sets it (``train.cpu_allocator``, default
``retain``; ``--cpu-allocator system`` leaves glibc's defaults, see
:mod:`audioadapt.training.allocator`).

Optional variants that need no package change (``--variants``): channels-last
memory format, bf16 autocast, ``torch.compile``, ``unfused`` (every conv block on
PyTorch operators, ``model.crnn.fused_cpu_max_channels=0``). Each is timed with the same
protocol as the plain run.

Usage::

    python benchmarks/sed_throughput.py                  # full run (about 5 minutes on 2 cores)
    python benchmarks/sed_throughput.py --quick          # smaller sizes, few iterations (smoke test)
    python benchmarks/sed_throughput.py --variants channels_last bf16 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from audioadapt import cpus
from audioadapt.adaptation.domain import DomainConfig
from audioadapt.adaptation.losses import clip_bce, domain_bce, frame_bce
from audioadapt.adaptation.orthogonality import OrthogonalityConfig, labeler_orthogonality
from audioadapt.config.sed import SedLossWeights
from audioadapt.features.config import FeatureConfig
from audioadapt.features.logmel import LogMel
from audioadapt.features.normalization import Normalizer, NormalizerConfig
from audioadapt.models.crnn import CRNNConfig
from audioadapt.models.sed_model import FINAL_HEAD, LABELER_HEADS, SedModel, SedModelConfig
from audioadapt.training.allocator import configure_cpu_allocator
from audioadapt.training.loop import TrainConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"
N_CLASSES = 10  # DESED classes
#: phase-1 batch composition of the sed_base preset (synthetic, weak, unlabeled)
BATCH_SPLIT = (16, 16, 32)
VARIANTS = ("channels_last", "bf16", "compile", "unfused")


# -- machine ------------------------------------------------------------------------------
def load_avg() -> list[float]:
    """1, 5 and 15 minute load averages (what ``uptime`` prints)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [float("nan")] * 3


#: CPU flags that decide which kernels oneDNN and ATen can use
ISA_FLAGS = ("fma", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
#: environment variables that restrict oneDNN / ATen to older instruction sets (emulating another CPU kind)
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def isa_class(flags: list[str]) -> str:
    """The widest matrix/vector extension among ``flags``: ``amx``, ``avx512``, ``avx2`` or ``sse``."""
    if "amx_tile" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "sse"


def cpu_kind(model: str, flags: list[str], limits: dict[str, str]) -> str:
    """A file-name-safe name of the CPU kind, e.g. ``amd-epyc-avx2`` or ``intel-xeon-amx``.

    A run restricted by :data:`ISA_LIMITS` is another kind (``intel-xeon-amx-as-avx2``), so that emulated
    numbers never overwrite measured ones.
    """
    import re

    words = re.sub(r"\((r|tm)\)|\bprocessor\b|\bcpu\b|@.*$|\d+-core", " ", model.lower())
    words = [w for w in re.split(r"[^a-z0-9]+", words) if w][:3]
    kind = "-".join([*words, isa_class(flags)]) or "unknown"
    if limits:
        kind += "-as-" + "-".join(sorted({v.lower() for v in limits.values()}))
    return kind


def machine_info() -> dict[str, Any]:
    cpu, flags = cpus.cpu_model(wanted=ISA_FLAGS)  # the ISA_FLAGS this CPU reports
    limits = {k: os.environ[k] for k in ISA_LIMITS if os.environ.get(k)}
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cpu_kind": cpu_kind(cpu, flags, limits),
        "isa_limits": limits,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_build": {"mkl": torch.backends.mkl.is_available(), "mkldnn": torch.backends.mkldnn.is_available(),
                        "openmp": torch.backends.openmp.is_available(), "cuda": torch.version.cuda},
        "numpy": np.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "platform": platform.platform(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
    }


def rss_peak_mib() -> float:
    """``ru_maxrss`` of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mib() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- timing -------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], warmup: int, iters: int) -> dict[str, Any]:
    """Run ``fn`` ``warmup`` times, then time ``iters`` calls; median and spread in seconds.

    Also the page faults and system CPU time per timed call (``getrusage``): the kernel's share of the work.
    """
    before = load_avg()
    for _ in range(warmup):
        fn()
    times = []
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "iters": iters,
            "warmup": warmup, "load_before": before, "load_after": load_avg(),
            "page_faults_per_call": (usage1.ru_minflt - usage0.ru_minflt) / iters,
            "system_s_per_call": (usage1.ru_stime - usage0.ru_stime) / iters}


def matmul_peak(sizes: tuple[int, ...], repeats: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Best ``torch.mm`` FLOP/s in ``dtype`` over square sizes, ``repeats`` runs each."""
    before = load_avg()
    per_size = {}
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        per_size[n] = 2.0 * n**3 / best
    return {"flops": max(per_size.values()), "per_size": per_size, "load_before": before, "load_after": load_avg()}


# -- model and step -------------------------------------------------------------------------
def build(system: str, n_mels: int, fused_cpu: bool = True) -> SedModel:
    """``baseline`` (F + Ft, no D) or ``full`` (F, F1, F2, Ft, D Adv.time): the package defaults otherwise.

    ``fused_cpu=False`` keeps every block on PyTorch operators (``model.crnn.fused_cpu_max_channels=0``):
    FlopCounterMode sees only PyTorch operators, so FLOPs are counted on that path (the same arithmetic).
    """
    crnn = CRNNConfig() if fused_cpu else CRNNConfig(fused_cpu_max_channels=0)
    if system == "baseline":
        cfg = SedModelConfig(crnn=crnn, heads=(FINAL_HEAD,), domain=DomainConfig(mode="none"))
    else:
        cfg = SedModelConfig(crnn=crnn)  # defaults: f1, f2, ft and Adv.time D
    return SedModel(cfg, n_mels, N_CLASSES)


def make_batch(batch: int, frames: int, n_mels: int, out_frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Features and labels of a phase-1 batch: S rows (strong + weak), W rows (weak), U rows (none)."""
    g = torch.Generator().manual_seed(seed)
    n_s, n_w, _ = (round(batch * k / sum(BATCH_SPLIT)) for k in BATCH_SPLIT)
    feats = torch.randn(batch, frames, n_mels, generator=g) * 10 - 20
    strong = torch.full((batch, out_frames, N_CLASSES), -1.0)
    strong[:n_s] = (torch.rand(n_s, out_frames, N_CLASSES, generator=g) < 0.1).float()
    weak = torch.full((batch, N_CLASSES), -1.0)
    weak[: n_s + n_w] = (torch.rand(n_s + n_w, N_CLASSES, generator=g) < 0.3).float()
    domain = torch.ones(batch, dtype=torch.long)
    domain[:n_s] = 0  # synthetic
    return {"features": feats, "strong": strong, "weak": weak, "domain": domain}


def step_loss(model: SedModel, normalizer: Normalizer, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """The phase-1 loss of ``SedTriAdvMethod.training_step`` for this model's heads and D."""
    heads = tuple(model.heads.keys())
    weights = SedLossWeights()
    adversarial = model.domain is not None
    out = model(normalizer(b["features"], None), None, heads=heads, domain=adversarial)
    loss = None
    if all(h in heads for h in LABELER_HEADS):
        loss = labeler_orthogonality(model.heads["f1"], model.heads["f2"], OrthogonalityConfig())
    for h in heads:
        term = getattr(weights, h) * (frame_bce(out[h].frame_logits, b["strong"], out.frame_mask)
                                      + clip_bce(out[h].clip_logits, b["weak"]))
        loss = term if loss is None else loss + term
    if adversarial:
        loss = loss + weights.domain * domain_bce(out.domain_logits, b["domain"], model.cfg.domain.balance,
                                                  out.frame_mask)
    return loss


class Runner:
    """Training step and inference call of one system under one set of variants."""

    def __init__(self, system: str, feat_cfg: FeatureConfig, batch: int, frames: int, variants: tuple[str, ...],
                 fused_cpu: bool = True):
        torch.manual_seed(0)
        self.variants = variants
        self.model = build(system, feat_cfg.n_mels, fused_cpu and "unfused" not in variants)
        self.normalizer = Normalizer(NormalizerConfig(), feat_cfg.n_mels)
        if "channels_last" in variants:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.set_grl_weight(1.0)
        self.forward_model: Callable[..., Any] = self.model
        self.loss_fn: Callable[..., torch.Tensor] = step_loss
        if "compile" in variants:
            self.loss_fn = torch.compile(step_loss)
            self.forward_model = torch.compile(self.model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        grid = self.model.frame_grid(feat_cfg)
        self.batch = make_batch(batch, frames, feat_cfg.n_mels, grid.num_output_frames(frames))

    def autocast(self):
        if "bf16" in self.variants:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self) -> float:
        self.model.train()
        with self.autocast():
            loss = self.loss_fn(self.model, self.normalizer, self.batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def infer(self, features: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode(), self.autocast():
            out = self.forward_model(self.normalizer(features, None), None, heads=(FINAL_HEAD,), domain=False)
            return out[FINAL_HEAD].frame_probs


#: FLOPs are counted on this many clips and scaled to the batch (every counted op is per clip)
FLOP_COUNT_BATCH = 2


def count_flops(system: str, feat_cfg: FeatureConfig, batch: int, frames: int) -> dict[str, float]:
    """FLOPs of one training step's forward + backward and one inference forward (ft only) at ``batch``.

    Counted at :data:`FLOP_COUNT_BATCH` and at twice that and extrapolated
    affinely (per-clip ops plus batch-independent ones such as the
    orthogonality term on the labelers' weights).
    """
    n = FLOP_COUNT_BATCH
    small = _count_flops(Runner(system, feat_cfg, n, frames, (), fused_cpu=False))
    double = _count_flops(Runner(system, feat_cfg, 2 * n, frames, (), fused_cpu=False))
    return {k: v + (double[k] - v) * (batch - n) / n for k, v in small.items()}


def _count_flops(runner: Runner) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    m = runner.model
    m.train()
    with FlopCounterMode(display=False) as fwd:
        loss = step_loss(m, runner.normalizer, runner.batch)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    m.zero_grad(set_to_none=True)
    m.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as inf:
        m(runner.normalizer(runner.batch["features"], None), None, heads=(FINAL_HEAD,), domain=False)
    return {"train_forward": fwd.get_total_flops(), "train_backward": bwd.get_total_flops(),
            "train_step": fwd.get_total_flops() + bwd.get_total_flops(), "inference": inf.get_total_flops()}


# -- report ----------------------------------------------------------------------------------
def fmt_g(x: float) -> str:
    return f"{x / 1e9:.1f}"


def render(res: dict[str, Any]) -> str:
    m, p = res["machine"], res["params"]
    peak = res["matmul_peak"]["flops"]
    lines = [
        "# SED throughput on CPU (paper-size model)",
        "",
        "Script: `benchmarks/sed_throughput.py` (synthetic data). Command: `" + m["command"] + "`",
        "",
        "## Machine",
        "",
        f"- CPU: `{m['cpu']}`, {m['cores']} cores, torch threads {m['torch_threads']}; {m['platform']}",
        f"- CPU kind `{m.get('cpu_kind', 'unknown')}`: flags {', '.join(m.get('cpu_flags', [])) or 'not recorded'}; "
        f"torch CPU capability {m.get('torch_cpu_capability', 'not recorded')}; torch build "
        f"{', '.join(k for k, v in m.get('torch_build', {}).items() if v and k != 'cuda') or 'not recorded'}.",
        *([f"- **Emulated**: restricted by {', '.join(f'{k}={v}' for k, v in m['isa_limits'].items())}; these "
           "numbers are this CPU running narrower code paths, not a CPU of that kind."] if m.get("isa_limits") else []),
        f"- Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}; date {m['date']}",
        f"- Load average (1/5/15 min) at start {res['load_start']}, at end {res['load_end']}. "
        "Other jobs shared the machine; each row lists the load before and after its measurement.",
        f"- Input: batch {p['batch']}, {p['frames']} frames x {p['n_mels']} mels "
        f"({p['clip_seconds']:g} s clips at {p['sample_rate']} Hz); warm-up {p['warmup']}, "
        f"median of {p['iters']} timed iterations; CPU allocator `{p.get('cpu_allocator', 'system')}`.",
        "",
        "## Matmul peak",
        "",
        "| size | GFLOP/s |",
        "|---:|---:|",
    ]
    for n, f in res["matmul_peak"]["per_size"].items():
        lines.append(f"| {n} | {fmt_g(f)} |")
    lines += ["", f"Peak (best): **{fmt_g(peak)} GFLOP/s**; load {res['matmul_peak']['load_before']} -> "
              f"{res['matmul_peak']['load_after']}.", "", "## FLOPs (FlopCounterMode)", "",
              f"Counted at batch {FLOP_COUNT_BATCH} and {2 * FLOP_COUNT_BATCH} (affine in the batch), extrapolated to "
              f"batch {p['batch']}.", "",
              "| system | train fwd GFLOP | train bwd GFLOP | train step GFLOP | inference GFLOP (ft only) |",
              "|---|---:|---:|---:|---:|"]
    for system, f in res["flops"].items():
        lines.append(f"| {system} | {fmt_g(f['train_forward'])} | {fmt_g(f['train_backward'])} | "
                     f"{fmt_g(f['train_step'])} | {fmt_g(f['inference'])} |")
    lines += ["", "## Throughput", "", render_table(res["runs"], peak), "",
              "- train: phase-1 step (normaliser, forward, losses, backward, Adam) at the batch above.",
              "- infer: eval mode, `torch.inference_mode()`, head ft, features given; `infer+logmel` adds "
              "the log-mel front end on raw audio. RTF = audio seconds per wall second; 1/RTF = wall seconds "
              "per audio second.",
              "- % peak = counted FLOPs / median time / float32 matmul peak (log-mel FLOPs are not counted).",
              "- page faults, system s: minor page faults and kernel CPU seconds per timed call (`getrusage`).",
              *_bf16_lines(res), "", "## Memory (training, full system)", ""]
    mem = res["memory"]
    lines += [f"- RSS before building the model: {mem['rss_before_mib']:.0f} MiB; peak RSS (`ru_maxrss`) after "
              f"the training measurements: **{mem['rss_peak_mib']:.0f} MiB**.",
              f"- torch CPU allocator statistics: {mem['torch_allocator']}.", ""]
    return "\n".join(lines)


def _bf16_lines(res: dict[str, Any]) -> list[str]:
    """The bf16 rows against the bf16 matmul peak (measured only when the bf16 variant runs)."""
    bf16_peak = res.get("matmul_peak_bf16")
    if not bf16_peak:
        return []
    runs = [r for r in res["runs"] if "bf16" in r["variants"]]
    share = ", ".join(f"{r['what']} {100 * r['flops_per_s'] / bf16_peak['flops']:.0f} %" for r in runs)
    return [f"- bf16 matmul peak (best of sizes {', '.join(map(str, bf16_peak['per_size']))}): "
            f"**{fmt_g(bf16_peak['flops'])} GFLOP/s**; the bf16 rows as a share of it: {share}."]


def render_table(runs: list[dict[str, Any]], peak: float) -> str:
    rows = ["| system | variants | what | median s | clips/s | RTF | 1/RTF | GFLOP/s | % peak | page faults | "
            "system s | load before -> after |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        rtf = f"{r['rtf']:.0f}" if "rtf" in r else ""
        inv = f"{1 / r['rtf']:.2e}" if "rtf" in r else ""
        rows.append(f"| {r['system']} | {'+'.join(r['variants']) or 'plain'} | {r['what']} | {r['median_s']:.3f} | "
                    f"{r['clips_per_s']:.1f} | {rtf} | {inv} | {fmt_g(r['flops_per_s'])} | "
                    f"{100 * r['flops_per_s'] / peak:.0f} % | {r.get('page_faults_per_call', float('nan')):.0f} | "
                    f"{r.get('system_s_per_call', float('nan')):.2f} | {r['load_before']} -> {r['load_after']} |")
    return "\n".join(rows)


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="batch 8, 2 s clips, few iterations (smoke test)")
    ap.add_argument("--batch", type=int, default=None, help="clips per batch (default 64, quick 8)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--variants", nargs="*", default=[], choices=VARIANTS,
                    help="extra runs of the full system with these options, one run per option")
    ap.add_argument("--systems", nargs="*", default=["full"], choices=["baseline", "full"],
                    help="systems to time (FLOPs are always counted for both)")
    ap.add_argument("--json", type=Path, default=None, help="JSON output (default results/sed_throughput_<cpu kind>.json)")
    ap.add_argument("--markdown", type=Path, default=None, help="Markdown output (default results/sed_throughput_<cpu kind>.md)")
    ap.add_argument("--cpu-allocator", choices=["retain", "system"], default=TrainConfig.cpu_allocator,
                    help="C allocator setting, as train.cpu_allocator (default %(default)s)")
    args = ap.parse_args(argv)
    configure_cpu_allocator(args.cpu_allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch or (8 if args.quick else 64)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    iters = args.iters or (2 if args.quick else 5)
    feat_cfg = FeatureConfig() if not args.quick else FeatureConfig(clip_seconds=2.0)
    frames = LogMel(feat_cfg).num_frames(round(feat_cfg.sample_rate * feat_cfg.clip_seconds))
    n_samples = round(feat_cfg.sample_rate * feat_cfg.clip_seconds)
    res: dict[str, Any] = {"machine": machine_info(), "load_start": load_avg(),
                           "params": {"batch": batch, "frames": frames, "n_mels": feat_cfg.n_mels, "warmup": warmup,
                                      "iters": iters, "clip_seconds": feat_cfg.clip_seconds,
                                      "sample_rate": feat_cfg.sample_rate, "quick": args.quick,
                                      "cpu_allocator": args.cpu_allocator}}
    print(f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, "
          f"{res['machine']['torch_threads']} threads, load {res['load_start']}", flush=True)

    res["matmul_peak"] = matmul_peak((1024, 2048) if args.quick else (2048, 3072, 4096), 3 if args.quick else 5)
    peak = res["matmul_peak"]["flops"]
    print(f"matmul peak: {fmt_g(peak)} GFLOP/s", flush=True)
    if "bf16" in args.variants:
        res["matmul_peak_bf16"] = matmul_peak((1024, 2048) if args.quick else (2048, 3072, 4096),
                                              3 if args.quick else 5, torch.bfloat16)
        print(f"bf16 matmul peak: {fmt_g(res['matmul_peak_bf16']['flops'])} GFLOP/s", flush=True)

    rss_before = rss_now_mib()
    runs: list[dict[str, Any]] = []
    res["flops"] = {}
    clip_s = feat_cfg.clip_seconds
    audio = torch.randn(batch, n_samples) * 0.1
    logmel = LogMel(feat_cfg)
    # the full system first, so that ru_maxrss after it is the training peak at this batch
    systems = sorted(args.systems, key=lambda s: s != "full")
    for system in ("full", "baseline"):
        res["flops"][system] = count_flops(system, feat_cfg, batch, frames)
        print(f"{system}: {fmt_g(res['flops'][system]['train_step'])} GFLOP per training step, "
              f"{fmt_g(res['flops'][system]['inference'])} GFLOP per inference batch", flush=True)
    configs = [(s, ()) for s in systems] + [("full", (v,)) for v in args.variants]
    for system, variants in configs:
        runner = Runner(system, feat_cfg, batch, frames, variants)
        flops = res["flops"][system]
        t = timed(runner.train_step, warmup, iters)
        runs.append({"system": system, "variants": list(variants), "what": "train", **t,
                     "clips_per_s": batch / t["median_s"], "flops_per_s": flops["train_step"] / t["median_s"]})
        print(render_table(runs[-1:], peak).splitlines()[-1], flush=True)
        if system == "full" and not variants:
            res["memory"] = {"rss_before_mib": rss_before, "rss_peak_mib": rss_peak_mib(),
                             "torch_allocator": "not available (torch exposes no CPU allocator statistics)"}
        feats = runner.batch["features"]
        infer = runner.infer
        for what, fn in (("infer", lambda: infer(feats)),
                         ("infer+logmel", lambda: infer(logmel(audio)))):
            if what == "infer+logmel":
                with torch.inference_mode():
                    assert logmel(audio[:1]).shape[1] == frames
            t = timed(fn, warmup, iters)
            runs.append({"system": system, "variants": list(variants), "what": what, **t,
                         "clips_per_s": batch / t["median_s"], "rtf": batch * clip_s / t["median_s"],
                         "flops_per_s": flops["inference"] / t["median_s"]})
            print(render_table(runs[-1:], peak).splitlines()[-1], flush=True)
        del runner
    res["runs"] = runs
    if "memory" not in res:
        res["memory"] = {"rss_before_mib": rss_before, "rss_peak_mib": rss_peak_mib(),
                         "torch_allocator": "not available (torch exposes no CPU allocator statistics)"}
    res["load_end"] = load_avg()
    print()
    print(render_table(runs, peak))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # one results file per CPU kind: a run on another kind never overwrites these
    stem = f"sed_throughput_{res['machine']['cpu_kind']}"
    json_path = args.json or RESULTS_DIR / f"{stem}.json"
    md_path = args.markdown or RESULTS_DIR / f"{stem}.md"
    json_path.write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render(res), encoding="utf-8")
    print(f"\nwrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
