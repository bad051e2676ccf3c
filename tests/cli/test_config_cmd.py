"""``audioadapt config show``: the resolved configuration of a preset with overrides."""

from __future__ import annotations

import pytest
import yaml

from audioadapt.cli.main import main
from audioadapt.config.load import to_dict
from audioadapt.config.sed import load_sed_config
from audioadapt.config.ser import load_ser_config


def test_show_prints_the_configuration_a_training_would_save(capsys):
    assert main(["config", "show", "sed_adv_time", "train.lr=5e-4", "method.grl_weight.end=0.2"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    expected = load_sed_config("sed_adv_time", ["train.lr=5e-4", "method.grl_weight.end=0.2"])
    assert shown == to_dict(expected)
    assert shown["train"]["lr"] == 5e-4 and shown["method"]["grl_weight"]["end"] == 0.2
    assert shown["train"]["epochs"] == expected.train.epochs  # defaults included


def test_show_resolves_ser_presets_and_files_by_their_keys(capsys, tmp_path):
    assert main(["config", "show", "ser_demo"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(load_ser_config("ser_demo"))
    own = tmp_path / "mine.yaml"
    own.write_text("extends: ser_nnpm\nstage2: {epochs: 3}\n")
    assert main(["config", "show", str(own)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["stage2"]["epochs"] == 3
    # the printed YAML loads again as a preset
    again = tmp_path / "again.yaml"
    assert main(["config", "show", "sed_baseline"]) == 0
    again.write_text(capsys.readouterr().out)
    assert load_sed_config(again) == load_sed_config("sed_baseline")


@pytest.mark.parametrize("args, message", [
    (["sed_baseline", "train.lrr=1"], "unknown config key 'train.lrr'"),
    (["sed_baseline", "method.orthogonality.weight=0.5"], "no effect"),
    (["sed_nope"], "no preset or config file 'sed_nope'"),
])
def test_show_reports_bad_input_like_train(args, message, capsys):
    assert main(["config", "show", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_file_that_fits_neither_task_asks_for_task(capsys, tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("train: {lr: 1.0e-4}\n")  # a key both configurations have
    assert main(["config", "show", str(both)]) == 2
    assert f"{both}: cannot tell whether this is a SED or a SER configuration; give --task" in capsys.readouterr().err
    assert main(["config", "show", str(both), "--task", "sed"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["lr"] == 1e-4
