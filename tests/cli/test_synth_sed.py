"""``audioadapt synth sed``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audioadapt.cli.main import build_parser, main
from audioadapt.data.dcase import read_strong_tsv
from audioadapt.data.corpora.desed import DcaseLayout

LAYOUT = DcaseLayout()
FAST = ["--set", "clip_seconds=2.0", "--set", "sizes.synthetic=3", "--set", "sizes.weak=2",
        "--set", "sizes.unlabeled=1", "--set", "sizes.validation=2", "--workers", "1", "--no-progress"]


def test_writes_a_dataset_with_size_seed_and_overrides(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "sed", str(out), "--size", "tiny", "--seed", "7", *FAST]) == 0
    meta = json.loads((out / LAYOUT.dataset_json).read_text())
    assert meta["seed"] == 7 and meta["config"]["size"] == "tiny"
    assert meta["sizes"] == {"synthetic": 3, "weak": 2, "unlabeled": 1, "validation": 2}
    assert len(read_strong_tsv(out / LAYOUT.tsv("synthetic"))) == 3
    assert sf.info(next((out / LAYOUT.audio("validation")).glob("*.wav"))).duration == pytest.approx(2.0)
    assert "wrote" in capsys.readouterr().out


def test_split_seed_is_its_own_option(tmp_path):
    out = tmp_path / "ds"
    assert main(["synth", "sed", str(out), "--size", "tiny", "--seed", "7", "--split-seed", "2", *FAST]) == 0
    meta = json.loads((out / LAYOUT.dataset_json).read_text())
    assert (meta["seed"], meta["split_seed"], meta["config"]["split_seed"]) == (7, 2, 2)
    validation_only = ["--set", "sizes.synthetic=0", "--set", "sizes.weak=0", "--set", "sizes.unlabeled=0"]
    other = tmp_path / "other"
    assert main(["synth", "sed", str(other), "--seed", "8", "--split-seed", "2", "--set", "real_domain.snr_db=[-6,12]",
                 *FAST, *validation_only]) == 0
    meta = json.loads((other / LAYOUT.dataset_json).read_text())
    assert meta["sizes"] == {"synthetic": 0, "weak": 0, "unlabeled": 0, "validation": 2}
    assert meta["effective_real_domain"]["snr_db"] == [-6.0, 12.0]
    assert sorted(read_strong_tsv(other / LAYOUT.tsv("validation"))) == sorted(read_strong_tsv(
        out / LAYOUT.tsv("validation")))  # the same validation clip names


def test_yaml_config_file(tmp_path):
    cfg = tmp_path / "synth.yaml"
    cfg.write_text("seed: 3\ngap: 0.0\n")
    out = tmp_path / "ds"
    assert main(["synth", "sed", str(out), "--config", str(cfg), *FAST]) == 0
    meta = json.loads((out / LAYOUT.dataset_json).read_text())
    assert meta["seed"] == 3 and meta["config"]["gap"] == 0.0
    assert meta["effective_real_domain"] == meta["config"]["synthetic_domain"]


def test_real_recordings_from_a_manifest(tmp_path):
    bank = tmp_path / "bank"
    rows = []
    for label in ("knock", "ring"):
        for g in range(3):
            path = bank / f"{label}{g}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, 0.3 * np.sin(np.arange(6000) * (0.2 + g * 0.05)), 16000)
            rows.append(f"{path.name},{label},src{g}{label}\n")
    (bank / "events.csv").write_text("path,label,group\n" + "".join(rows))
    out = tmp_path / "ds"
    assert main(["synth", "sed", str(out), "--events", str(bank / "events.csv"), *FAST]) == 0
    meta = json.loads((out / LAYOUT.dataset_json).read_text())
    assert meta["classes"] == ["knock", "ring"] and meta["event_source"].endswith("events.csv")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "real_domain.chanel.reverb=0"], "unknown config key"),
        (["--set", "gap=-1"], "gap"),
        (["--workers", "0"], "--workers"),
        (["--events", "/nonexistent/bank"], "not found"),
    ],
)
def test_bad_input_is_a_short_error(tmp_path, capsys, extra, message):
    assert main(["synth", "sed", str(tmp_path / "ds"), *FAST, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audioadapt: error:") and message in err and "Traceback" not in err


def test_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "sed", str(out), *FAST]) == 0
    assert main(["synth", "sed", str(out), *FAST]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert main(["synth", "sed", str(out), *FAST, "--overwrite"]) == 0


def test_size_choices_come_from_the_presets():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "sed", "out", "--size", "enormous"])
    args = parser.parse_args(["synth", "sed", "out", "--size", "medium"])
    assert args.size == "medium" and args.workers is None and args.seed is None


def test_out_that_is_a_file_is_a_short_error(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("x")
    for extra in ([], ["--overwrite"]):
        assert main(["synth", "sed", str(out), *FAST, *extra]) == 2
        assert capsys.readouterr().err == f"audioadapt: error: {out}: cannot write the dataset: this is a file, " \
                                          "not a folder\n"
    assert out.read_text() == "x"
