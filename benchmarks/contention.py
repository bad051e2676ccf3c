"""Wall and CPU time of a training job on a quiet machine and with CPU-bound competitors.

Runs one training job (by default the demo's baseline row: ``audioadapt sed
benchmark --profile sed_cpu --rows baseline --seeds 0`` on the demo's
generated ``small`` dataset) once per setting, each time from scratch, while
``k`` competing processes spin on the CPU (``python -c "while True: pass"``,
one core each), and records the job's wall time and the CPU time of the job's
process tree (``os.wait4``), as ratios to the quiet run of the same wait policy.

Wait policies (``--policies``):

* ``passive``: what the ``audioadapt`` command does by default
  (``OMP_WAIT_POLICY=PASSIVE``, :mod:`audioadapt.cpus`);
* ``openmp-default``: GNU OpenMP's own default (idle threads spin before they
  sleep), the behaviour before the command chose a policy. The variable is set
  to an empty string, which the command keeps and OpenMP ignores.

The dataset and its feature cache are built before the first timed run, so
every timed run trains and evaluates only.

Usage::

    python benchmarks/contention.py                                # passive, 0 1 3 competitors
    python benchmarks/contention.py --policies passive openmp-default --competitors 0 3
    python benchmarks/contention.py --quick                        # a short job (smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sed_throughput  # noqa: E402  (machine description shared with the throughput benchmark)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POLICIES = {"passive": "PASSIVE", "openmp-default": ""}
#: The demo's dataset (``audioadapt sed demo``: size small, seed 0).
DATA_SIZE, DATA_SEED = "small", 0
#: A short job for --quick: the same row with a tenth of the profile's updates.
QUICK_OVERRIDES = ("train.epochs=2",)


def _audioadapt() -> list[str]:
    return [sys.executable, "-m", "audioadapt.cli.main"]


def prepare_data(root: Path) -> None:
    """Generate the demo's dataset at ``root`` unless it is there."""
    if (root / "dataset.json").is_file():
        return
    subprocess.run([*_audioadapt(), "synth", "sed", str(root), "--size", DATA_SIZE, "--seed", str(DATA_SEED)],
                   check=True)


def job_command(data: Path, out: Path, overrides: list[str]) -> list[str]:
    return [*_audioadapt(), "sed", "benchmark", "train.progress_bar=false", *overrides, "--data", str(data),
            "--out", str(out), "--profile", "sed_cpu", "--rows", "baseline", "--seeds", "0"]


def start_competitors(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def run_job(command: list[str], policy: str, competitors: int, log_path: Path) -> dict[str, Any]:
    """One timed run of ``command``: wall seconds, CPU seconds of its process tree, exit status."""
    env = dict(os.environ, OMP_WAIT_POLICY=POLICIES[policy])
    env.pop("OMP_NUM_THREADS", None)
    rivals = start_competitors(competitors)
    try:
        time.sleep(1.0)  # let the competitors reach full speed
        load = sed_throughput.load_avg()
        with open(log_path, "w") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        stop(rivals)
    return {"policy": policy, "competitors": competitors, "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "user_s": round(usage.ru_utime, 1),
            "sys_s": round(usage.ru_stime, 1), "load_before": load, "exit_code": proc.returncode,
            "log": str(log_path)}


def with_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    quiet = {r["policy"]: r for r in runs if r["competitors"] == 0}
    for r in runs:
        q = quiet.get(r["policy"])
        if q is not None:
            r["wall_ratio"] = round(r["wall_s"] / q["wall_s"], 2)
            r["cpu_ratio"] = round(r["cpu_s"] / q["cpu_s"], 2)
    return runs


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Training under CPU contention",
        "",
        f"Job: `{result['job']}` (a fresh run each time; dataset and feature cache built beforehand).",
        "Competitors: CPU-bound processes (`python -c \"while True: pass\"`), one core each.",
        f"Machine: {m['cpu']}, {m['cores']} cores, python {m['python']}, torch {m['torch']}, {m['platform']}.",
        f"Date: {m['date']}. Command: `{m['command']}`.",
        "",
        "| wait policy | competitors | wall s | x quiet | CPU s (user + sys) | x quiet | load before |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        lines.append(f"| {r['policy']} | {r['competitors']} | {r['wall_s']} | {r.get('wall_ratio', '')} | "
                     f"{r['cpu_s']} ({r['user_s']} + {r['sys_s']}) | {r.get('cpu_ratio', '')} | "
                     f"{', '.join(str(x) for x in r['load_before'])} |")
    failed = [r for r in result["runs"] if r["exit_code"] != 0]
    if failed:
        lines += ["", f"{len(failed)} run(s) failed; see their logs."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="dataset root (default: generated under the work folder)")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary folder)")
    ap.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 3])
    ap.add_argument("--policies", nargs="+", choices=list(POLICIES), default=["passive"])
    ap.add_argument("--quick", action="store_true", help="a short job: " + " ".join(QUICK_OVERRIDES))
    ap.add_argument("--name", default="sed_contention", help="results file stem under benchmarks/results/")
    ap.add_argument("overrides", nargs="*", metavar="key.path=value", help="extra settings of the job")
    args = ap.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="audioadapt-contention-"))
    data = args.data or work / "data"
    prepare_data(data)
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    # Untimed: builds the feature cache and compiles the CPU kernel once.
    warm = work / "warmup"
    subprocess.run(job_command(data, warm, [*overrides, "train.epochs=1"]), check=True,
                   stdout=subprocess.DEVNULL)
    runs = []
    for policy in args.policies:
        for k in args.competitors:
            out = work / f"{policy}-{k}"
            shutil.rmtree(out, ignore_errors=True)
            run = run_job(job_command(data, out, overrides), policy, k, work / f"{policy}-{k}.log")
            print(json.dumps(run), flush=True)
            runs.append(run)
    machine = sed_throughput.machine_info()
    result = {"machine": machine, "job": " ".join(job_command(Path("DATA"), Path("OUT"), overrides)[1:]),
              "runs": with_ratios(runs)}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (RESULTS_DIR / f"{args.name}.md").write_text(render(result), encoding="utf-8")
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
