"""``audioadapt synth ser``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audioadapt.cli.main import build_parser, main
from audioadapt.data.corpora import load_corpus
from audioadapt.data.synthetic.sizes import SER_SIZE_PRESETS
from audioadapt.data.utterances import EMOTIONS

FAST = ["--set", "sizes.source_speakers=1", "--set", "sizes.source_per_class=1", "--set", "sizes.target_speakers=1",
        "--set", "sizes.target_per_class=1", "--workers", "1", "--no-progress"]


def test_writes_both_corpora_with_size_seed_and_overrides(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "ser", str(out), "--size", "tiny", "--seed", "7", "--set", "gap=0.5", *FAST]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == 7 and meta["config"]["size"] == "tiny" and meta["config"]["gap"] == 0.5
    for role in ("source", "target"):
        utts = load_corpus("csv", out / role / "manifest.csv")
        assert sorted(u.label for u in utts) == sorted(EMOTIONS)
    printed = capsys.readouterr().out
    assert printed.startswith("wrote") and "source 4" in printed and "target 4" in printed


def test_yaml_config_file(tmp_path):
    cfg = tmp_path / "ser.yaml"
    cfg.write_text("seed: 3\ntarget:\n  recording:\n    snr_db: [0, 5]\n")
    out = tmp_path / "ds"
    assert main(["synth", "ser", str(out), "--config", str(cfg), *FAST]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == 3 and meta["config"]["target"]["recording"]["snr_db"] == [0.0, 5.0]
    assert meta["config"]["target"]["language"]["stress"] == "final"  # the rest of the target is kept


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "target.recording.snr=3"], "unknown config key"),
        (["--set", "size=huge"], "size 'huge'"),
        (["--set", "gap=-1"], "gap"),
        (["--workers", "0"], "--workers"),
        (["--config", "/nonexistent/ser.yaml"], "no preset or config file"),
    ],
)
def test_bad_input_is_a_short_error(tmp_path, capsys, extra, message):
    assert main(["synth", "ser", str(tmp_path / "ds"), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audioadapt: error:") and message in err and "Traceback" not in err


def test_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "ser", str(out), *FAST]) == 0
    assert main(["synth", "ser", str(out), *FAST]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert main(["synth", "ser", str(out), *FAST, "--overwrite"]) == 0


def test_size_choices_come_from_the_presets():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "ser", "out", "--size", "huge"])
    for name in SER_SIZE_PRESETS:
        args = parser.parse_args(["synth", "ser", "out", "--size", name])
        assert args.size == name and args.workers is None and args.seed is None


def test_help_names_every_size_with_its_counts():
    parser = build_parser()
    ser = parser._subparsers._group_actions[0].choices["synth"]._subparsers._group_actions[0].choices["ser"]
    text = ser.format_help()
    for name, sizes in SER_SIZE_PRESETS.items():
        source = sizes.source_speakers * sizes.source_per_class * len(EMOTIONS)
        target = sizes.target_speakers * sizes.target_per_class * len(EMOTIONS)
        assert name in text and f"{name} {source}+{target}" in " ".join(text.split())


def test_building_the_parser_does_not_import_the_generator():
    code = ("import sys; from audioadapt.cli.main import build_parser; build_parser(); "
            "print('audioadapt.data.synthetic.ser' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_out_that_is_a_file_is_a_short_error(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("x")
    for extra in ([], ["--overwrite"]):
        assert main(["synth", "ser", str(out), *FAST, *extra]) == 2
        assert capsys.readouterr().err == f"audioadapt: error: {out}: cannot write the dataset: this is a file, " \
                                          "not a folder\n"
    assert out.read_text() == "x"
