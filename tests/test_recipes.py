"""The cross-lingual SER recipes pass their settings to ``audioadapt ser benchmark`` in the order it parses.

A stand-in for the ``audioadapt`` command records its arguments and writes the tables the recipe copies, so the
recipes run in a second without corpora or training.
"""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROTOCOLS = ("held_out_speaker", "transductive")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the recipes are bash scripts")

FAKE = """#!/usr/bin/env bash
echo "$@" > "{log}"
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out=$a; prev=$a; done
for p in {protocols}; do
    mkdir -p "$out/$p"
    for ext in md json png; do echo "$p $ext" > "$out/$p/benchmark.$ext"; done
done
"""


def _run(recipe: str, tmp_path: Path, *args: str) -> tuple[list[str], Path]:
    log = tmp_path / "args.txt"
    fake = tmp_path / "audioadapt"
    fake.write_text(FAKE.format(log=log, protocols=" ".join(PROTOCOLS)), encoding="utf-8")
    fake.chmod(0o755)
    results = tmp_path / "results"
    env = {"PATH": "/usr/bin:/bin", "AUDIOADAPT": str(fake), "AUDIOADAPT_RESULTS": str(results),
           "AUDIOADAPT_SHARED_DATA": str(tmp_path / "data"), "PYTHON": sys.executable, "SEEDS": "0 1",
           "PROTOCOLS": " ".join(PROTOCOLS)}
    proc = subprocess.run(["bash", str(REPO / recipe), str(tmp_path / "work"), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return log.read_text(encoding="utf-8").split(), results


def test_ravdess_recipe_puts_overrides_before_the_list_options_and_copies_the_tables(tmp_path):
    argv, results = _run("recipes/ravdess_urdu/run.sh", tmp_path, "stage2.epochs=3", "--rows", "snsa_f", "nnpm")
    assert argv[:2] == ["ser", "benchmark"]
    first_option = next(i for i, a in enumerate(argv) if a.startswith("--"))
    overrides = argv[2:first_option]
    assert overrides == [f"cache.directory={tmp_path / 'work' / 'cache'}", "diagnostics.target_truth=true",
                         "normalizer.kind=dataset_meanstd", "stage2.epochs=3"]
    assert argv[argv.index("--source") + 1] == f"ravdess:{tmp_path / 'data' / 'ravdess'}"
    assert argv[argv.index("--target") + 1] == f"urdu:{tmp_path / 'data' / 'urdu'}"
    assert argv[argv.index("--seeds") + 1:argv.index("--protocols")] == ["0", "1"]
    assert argv[-3:] == ["--rows", "snsa_f", "nnpm"]  # the caller's options come last, after the recipe's lists
    for protocol in PROTOCOLS:
        for ext in ("md", "json", "png"):
            copied = results / f"ser_ravdess_urdu_{protocol}.{ext}"
            assert copied.read_text(encoding="utf-8").split() == [protocol, ext]


def test_emodb_recipe_writes_the_four_emotion_manifest_and_reads_it(tmp_path):
    root = tmp_path / "data" / "emodb"
    (root / "audio").mkdir(parents=True)
    rows = [("audio/03a01Fa.flac", "happiness", "happy", "03"), ("audio/03a01Lb.flac", "boredom", "", "03"),
            ("audio/08a02Wc.flac", "anger", "angry", "08")]
    with open(root / "manifest.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "emotion7", "emotion4", "speaker"])
        writer.writerows(rows)
    argv, results = _run("recipes/emodb_urdu/run.sh", tmp_path)
    manifest = tmp_path / "work" / "emodb4.csv"
    assert argv[argv.index("--source") + 1] == f"csv:{manifest}"
    assert "normalizer.kind=dataset_meanstd" not in argv  # EMO-DB runs the package default
    with open(manifest, encoding="utf-8", newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [(r["label"], r["speaker"]) for r in written] == [("happy", "03"), ("angry", "08")]
    assert written[0]["path"] == str((root / "audio/03a01Fa.flac").resolve())
    assert (results / "ser_emodb_urdu_transductive.md").is_file()
