"""How one NNPM adaptation step scales with the number of memory slots.

Synthetic data only. Each configuration runs in a fresh subprocess so that
its peak resident memory (``ru_maxrss``) is its own.

Two step kinds:

``memory``
    Everything of a step that depends on the memory size, around a small
    trainable projection standing in for the encoder: target similarities
    ``f_hat M^T``, the pseudo multilabel (eq. 4) and its statistics, source
    cross-entropy + hard-negative target loss (eqs. 5-9), backward, an Adam
    step, and the memory write of the source features (eq. 3).
``model``
    The same with the real SNSA encoder (default config, 80 mels) on 32 source
    + 32 target utterances of 751 frames (7.5 s at hop 160), conv layers frozen
    as in the paper.

Usage::

    python benchmarks/ser_memory_scaling.py --kind memory --slots 1000 5531 10000 30000 100000
    python benchmarks/ser_memory_scaling.py --kind model --slots 5531 100000 --steps 3
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


#: spread of the synthetic features around their emotion centre
SPREAD = 0.3


def _rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; NaN if unreadable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    """Release freed heap pages and reset the kernel's peak-RSS mark (VmHWM); Linux only."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_one(kind: str, slots: int, batch: int, steps: int, warmup: int, threads: int, seed: int) -> dict:
    """One configuration in this process; returns timings and memory."""
    import torch
    from torch.nn import functional as F

    from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
    from audioadapt.adaptation.nnpm_losses import NnpmLossConfig, nnpm_loss
    from audioadapt.adaptation.pseudo_multilabel import (
        PseudoMultilabelConfig,
        pseudo_multilabel,
        pseudo_multilabel_stats,
    )
    from audioadapt.models.ser_model import SerModel, SerModelConfig

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_mels, frames = 80, 751
    model_cfg = SerModelConfig()
    dim = model_cfg.encoder.output_dim
    n_classes = model_cfg.n_classes
    # clustered synthetic features with low-rank spread around 4 emotion
    # centres: about 0.3 % of the slots lie above theta = 0.9 of a target
    centres = F.normalize(torch.randn(n_classes, dim), dim=1)
    basis = F.normalize(torch.randn(8, dim), dim=1)

    def clustered(labels: torch.Tensor) -> torch.Tensor:
        return centres[labels] + SPREAD * torch.randn(labels.shape[0], basis.shape[0]) @ basis

    if kind == "model":
        model = SerModel(model_cfg, n_mels)
        model.freeze_conv(2)
        model.train()
        source_x = torch.randn(batch, frames, n_mels)
        target_x = torch.randn(batch, frames, n_mels)

        def encode():
            src = model(source_x)
            tgt = model(target_x)
            return src.feature, src.logits, tgt.feature_hat

        params = [p for p in model.parameters() if p.requires_grad]
    else:
        proj = torch.nn.Linear(64, dim)
        with torch.no_grad():
            proj.weight.mul_(0.05)
            proj.bias.zero_()
        head = torch.nn.Linear(dim, n_classes)
        source_x = torch.randn(batch, 64)
        target_x = torch.randn(batch, 64)
        source_base = clustered(torch.randint(0, n_classes, (batch,)))
        target_base = clustered(torch.randint(0, n_classes, (batch,)))

        def encode():
            src = source_base + proj(source_x)
            return src, head(src), F.normalize(target_base + proj(target_x), dim=1)

        params = list(proj.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    source_labels = torch.randint(0, n_classes, (batch,))
    rss_before_bank = _rss_mib()

    mem_cfg = MemoryConfig()
    bank = MemoryBank(slots, dim, n_classes, mem_cfg)
    labels = torch.randint(0, n_classes, (slots,))
    bank.initialize(clustered(labels), labels)
    rss_after_init = _rss_mib()
    peak_reset = _reset_peak()
    rss_steady = _status_mib("VmRSS")
    pml_cfg = PseudoMultilabelConfig()
    loss_cfg = NnpmLossConfig()

    times = []
    sizes = []
    for step in range(warmup + steps):
        indices = torch.randint(0, slots, (batch,))
        t0 = time.perf_counter()
        src_feature, src_logits, tgt_hat = encode()
        sim = bank.similarity(tgt_hat)
        pml = pseudo_multilabel(sim, pml_cfg)
        stats = pseudo_multilabel_stats(pml, bank.labels, n_classes)
        loss = nnpm_loss(src_logits, source_labels, sim, pml.positives, loss_cfg)
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()
        bank.write(indices, src_feature.detach(), mem_cfg.rate(step / (warmup + steps)))
        t1 = time.perf_counter()
        if step >= warmup:
            times.append(t1 - t0)
            sizes.append(stats.mean_size)
    return {
        "kind": kind,
        "slots": slots,
        "batch": batch,
        "dim": dim,
        "steps": steps,
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "max_ms": 1000 * max(times),
        "rss_before_bank_mib": rss_before_bank,
        "peak_rss_after_init_mib": rss_after_init,
        "peak_rss_mib": _rss_mib(),
        "rss_before_steps_mib": rss_steady,
        "step_peak_rss_mib": _status_mib("VmHWM") if peak_reset else float("nan"),
        "memory_buffer_mib": slots * dim * 4 / 2**20,
        "similarity_mib": batch * slots * 4 / 2**20,
        "mean_positive_set_size": statistics.mean(sizes),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("memory", "model"), default="memory")
    parser.add_argument("--slots", type=int, nargs="+", default=[1000, 5531, 10000, 30000, 100000])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_one(args.kind, args.slots[0], args.batch, args.steps, args.warmup, args.threads,
                                 args.seed)))
        return

    import torch

    rows = []
    for slots in args.slots:
        cmd = [sys.executable, __file__, "--child", "--kind", args.kind, "--slots", str(slots), "--batch",
               str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
               str(args.threads), "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        return
    print(f"# kind={args.kind} batch={args.batch} steps={args.steps} warmup={args.warmup} threads={args.threads}")
    print(f"# python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}")
    print("| slots | median ms/step | min | max | memory buffer MiB | (batch, slot) similarity MiB "
          "| RSS before bank | peak RSS incl. initialize | RSS before steps | peak RSS during steps "
          "| step transient | mean P_t size |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['slots']:,} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['max_ms']:.2f} "
              f"| {r['memory_buffer_mib']:.1f} | {r['similarity_mib']:.1f} | {r['rss_before_bank_mib']:.0f} "
              f"| {r['peak_rss_after_init_mib']:.0f} | {r['rss_before_steps_mib']:.0f} "
              f"| {r['step_peak_rss_mib']:.0f} | {r['step_peak_rss_mib'] - r['rss_before_steps_mib']:.0f} "
              f"| {r['mean_positive_set_size']:.1f} |")


if __name__ == "__main__":
    main()
