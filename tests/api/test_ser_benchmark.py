"""``audioadapt ser benchmark`` on the tiny generated corpus: systems x seeds x protocols, shared stage 1."""

from __future__ import annotations

import json

import pytest

from audioadapt.api.benchmark import Profile
from audioadapt.api.ser_benchmark import SER_ROWS, ablation_rows, ser_row_overrides
from audioadapt.cli.main import main
from audioadapt.config.ser import load_ser_config
from audioadapt.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

PROFILE = """\
features: {n_mels: 32}
model: {encoder: {conv_channels: [16, 16], lstm_hidden: 16, lstm_layers: 1, attention_dim: 16, dropout: 0.0}}
dataset: {crop_seconds: 3.0, pad_to_crop: false}
source_validation: {kind: none}
stage1: {epochs: 4, lr: 1.0e-2, batch_size: 8}
stage2: {epochs: 1, lr: 1.0e-3, source_batch_size: 8, target_batch_size: 8}
train: {device: cpu, progress_bar: false, tensorboard: false}
cache: {num_workers: 0, progress: false}
rows:
  dann: {model: {domain: {hidden: [16]}}}
"""


def test_rows_get_seed_protocol_and_the_shared_stage1(tmp_path):
    prof = Profile({"stage2.epochs": 3, "memory.rate_end": 0.3})
    for row in SER_ROWS + tuple(ablation_rows([0], [0.5])):
        overrides, skipped = ser_row_overrides(row, prof, 4, "held_out_speaker", tmp_path / "stage1")
        cfg = load_ser_config(row.preset, overrides)
        assert cfg.train.seed == 4 and cfg.protocol.protocol == "held_out_speaker"
        if cfg.method.has_stage2:
            assert cfg.stage2.init_from == str(tmp_path / "stage1") and cfg.stage2.epochs == 3
        else:
            assert "stage2.epochs" in skipped
        assert ("memory.rate_end" in skipped) == (not cfg.method.uses_memory)
    freeze, theta = ablation_rows([0], [0.5])
    assert load_ser_config(freeze.preset, freeze.overrides).stage2.freeze_conv == 0
    assert load_ser_config(theta.preset, theta.overrides).pseudo_multilabel.threshold == 0.5
    with pytest.raises(ConfigError, match="thresholds"):
        ablation_rows([], [1.5])


def test_benchmark_runs_systems_for_each_protocol(ser_tiny_dataset, tmp_path, capsys):
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "bench"
    args = ["ser", "benchmark", "--source", str(ser_tiny_dataset), "--target", str(ser_tiny_dataset), "--out",
            str(out), "--profile", str(profile), "--rows", "snsa_f", "nnpm", "--freeze", "0",
            "--protocols", "transductive", "held_out_speaker", "--seeds", "0"]
    assert main(args) == 0
    for protocol in ("transductive", "held_out_speaker"):
        data = json.loads((out / protocol / "benchmark.json").read_text())
        assert list(data["results"]) == ["snsa_f", "nnpm", "nnpm_freeze0"]
        for key, row in data["results"].items():
            assert row["seeds"] == [0]
            assert 0.0 <= row["metrics"]["ua"]["values"][0] <= 1.0
            cfg = load_ser_config(out / protocol / "runs" / key / "seed0" / "config.yaml")
            assert cfg.protocol.protocol == protocol
            if key != "snsa_f":  # stage 2 started from the same seed's SNSA-F run
                assert cfg.stage2.init_from == str(out / protocol / "runs" / "snsa_f" / "seed0")
        assert data["results"]["nnpm"]["settings"]["stage1_from"] == "snsa_f"
        paired = data["results"]["nnpm"]["paired_difference"]  # every system against SNSA-F, seed by seed
        assert paired["reference"] == "snsa_f" and paired["ua"]["n"] == 1
        ua = data["results"]["nnpm"]["metrics"]["ua"]["values"][0] - data["results"]["snsa_f"]["metrics"]["ua"]["values"][0]
        assert paired["ua"]["mean"] == pytest.approx(ua)
        assert data["settings"]["protocol"] == protocol
        record = json.loads((out / protocol / "runs" / "nnpm" / "seed0" / "data.json").read_text())
        purity = record["target_split"]["speaker_label_purity"]["corpus"]
        assert 0.0 < purity <= 1.0 and data["settings"]["target_speaker_label_purity"] == purity
        # the profile has no source validation side, so no row has a source UA
        assert all(v is None or v != v for r in data["results"].values() for v in r["metrics"]["source_ua"]["values"])
    summary = (out / "benchmark.md").read_text()
    assert "transductive protocol" in summary and "held_out_speaker protocol" in summary
    assert "| NNPM, freeze 0 |" in capsys.readouterr().out
    # A second call with the same settings (a moved feature cache aside) trains nothing; other settings are refused.
    stamp = (out / "transductive" / "runs" / "nnpm" / "seed0" / "last.pt").stat().st_mtime_ns
    assert main([*args[:2], f"cache.directory={tmp_path / 'elsewhere'}", *args[2:]]) == 0
    assert (out / "transductive" / "runs" / "nnpm" / "seed0" / "last.pt").stat().st_mtime_ns == stamp
    assert main([*args[:2], "stage2.lr=0.5", *args[2:]]) == 2
    err = capsys.readouterr().err
    assert "trained with other settings" in err and "nnpm/seed0 (stage2.lr)" in err and "--rerun" in err


def test_the_shipped_cpu_profile_is_valid_for_every_row():
    from audioadapt.api.benchmark import read_profile

    prof = read_profile("ser_cpu")
    for row in SER_ROWS + tuple(ablation_rows([0, 1, 2], [0.4, 0.9])):
        overrides, _ = ser_row_overrides(row, prof, 0, "transductive")
        cfg = load_ser_config(row.preset, overrides)
        assert cfg.source_validation.kind == "held_out_speakers" and cfg.stage1.epochs == 30
        assert cfg.stage2.epochs == 50 or not cfg.method.has_stage2


def test_the_oracle_row_is_the_bound_and_reads_the_target_truth():
    from audioadapt.api.ser_benchmark import SER_BOUND_ROWS

    rows = {r.key: r for r in SER_ROWS}
    assert list(rows)[-1] == "oracle" and SER_BOUND_ROWS == ("oracle",)
    assert "bound" in rows["oracle"].label
    cfg = load_ser_config(rows["oracle"].preset)
    assert cfg.pseudo_multilabel.rule == "oracle" and cfg.reads_target_truth
    assert not any(load_ser_config(rows[k].preset).reads_target_truth for k in rows if k != "oracle")


def test_source_ua_is_the_stage1_selection_value_and_only_that(tmp_path):
    from audioadapt.api.ser_benchmark import source_ua

    def summary(**record):
        (tmp_path / "summary.json").write_text(json.dumps(record))
        return source_ua(tmp_path)

    assert source_ua(tmp_path) is None  # no summary yet
    selected = {"metric": "selection", "value": 0.6875, "global_epoch": 26}
    assert summary(selection=selected, phases=["stage1"]) == pytest.approx(0.6875)
    assert summary(selection=selected, phases=["stage1", "stage2"]) is None  # stage 2 trained on every source clip
    assert summary(selection=selected, phases=["stage2"]) is None
    assert summary(selection={**selected, "metric": "train/loss"}, phases=["stage1"]) is None
    assert summary(selection=None, phases=["stage1"]) is None
    (tmp_path / "summary.json").write_text("{not json")
    assert source_ua(tmp_path) is None


def test_a_confounded_target_is_named_in_the_table_note(tmp_path):
    from audioadapt.api.ser_benchmark import _confound_note, target_speaker_purity

    assert target_speaker_purity(tmp_path) is None  # no data.json
    (tmp_path / "data.json").write_text(json.dumps({"target_split": {"speaker_label_purity": {"corpus": 0.96}}}))
    assert target_speaker_purity(tmp_path) == pytest.approx(0.96)
    assert "96 % of its utterances" in _confound_note(0.96)
    assert _confound_note(0.3) == _confound_note(None) == ""
    (tmp_path / "data.json").write_text(json.dumps({"target_split": {}}))  # a run recorded before the statistic
    assert target_speaker_purity(tmp_path) is None
