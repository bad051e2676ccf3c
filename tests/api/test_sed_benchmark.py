"""``audioadapt sed benchmark`` on the tiny generated dataset: rows x seeds -> table; profile rules."""

from __future__ import annotations

import json

import pytest

from audioadapt.api.benchmark import Profile
from audioadapt.api.sed_benchmark import (SED_ALL_ROWS, SED_BOUND_ROWS, SED_PAPER_ROWS, SED_ROWS, benchmark_sed,
                                         sed_row_overrides)
from audioadapt.cli.main import main
from audioadapt.config.sed import load_sed_config
from audioadapt.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

def test_every_row_is_a_valid_configuration_with_the_seed():
    prof = Profile({"method.phase2_epochs": 2, "train.epochs": 3})
    for row in SED_ROWS:
        overrides, skipped = sed_row_overrides(row, prof, 7)
        cfg = load_sed_config(row.preset, overrides)
        assert cfg.train.seed == 7 and cfg.train.epochs == 3
        if cfg.method.uses_labelers:
            assert cfg.method.phase2_epochs == 2 and not skipped
        else:
            assert "method.phase2_epochs" in skipped


def test_benchmark_runs_rows_and_seeds_and_writes_the_table(sed_tiny_dataset, sed_tiny_profile, tmp_path, capsys):
    profile = sed_tiny_profile
    out = tmp_path / "bench"
    args = ["sed", "benchmark", "--data", str(sed_tiny_dataset), "--out", str(out), "--seeds", "0", "1",
            "--rows", "baseline", "adv_time", "tri_training", "--profile", str(profile), "decode.median_filter_seconds=0.2"]
    assert main(args) == 0
    data = json.loads((out / "benchmark.json").read_text())
    assert list(data["results"]) == ["baseline", "adv_time", "tri_training"]
    for key, row in data["results"].items():
        assert row["seeds"] == [0, 1]
        event = row["metrics"]["event_macro_f1"]
        assert len(event["values"]) == 2 and all(0.0 <= v <= 1.0 for v in event["values"])
        run = out / "runs" / key / "seed1"
        assert (run / "eval_validation.json").is_file()
        cfg = load_sed_config(run / "config.yaml")
        assert cfg.train.seed == 1 and cfg.decode.median_filter_seconds == 0.2
    assert data["results"]["baseline"]["settings"]["common_settings_not_applied"] == {
        "method.phase2_epochs": "there is no tri-training (method.tri_training false or a mean teacher)",
        "model.domain.hidden": "method.adversarial is none",
        "sampler.phase2.batch_sizes.synthetic": "there is no tri-training (method.tri_training false or a mean "
                                                "teacher)",
        "sampler.phase2.batch_sizes.weak": "there is no tri-training (method.tri_training false or a mean teacher)",
        "sampler.phase2.batch_sizes.unlabeled": "there is no tri-training (method.tri_training false or a mean "
                                                "teacher)",
        "sampler.phase2.steps_per_epoch": "there is no tri-training (method.tri_training false or a mean teacher)",
    }
    assert load_sed_config(out / "runs" / "adv_time" / "seed0" / "config.yaml").sampler.phase1.batch_sizes[
        "unlabeled"] == 4
    paired = data["results"]["tri_training"]["paired_difference"]  # each row against the baseline, seed by seed
    values = data["results"]["tri_training"]["metrics"]["event_macro_f1"]["values"]
    base = data["results"]["baseline"]["metrics"]["event_macro_f1"]["values"]
    assert paired["reference"] == "baseline" and paired["event_macro_f1"]["n"] == 2
    assert paired["event_macro_f1"]["mean"] == pytest.approx((values[0] - base[0] + values[1] - base[1]) / 2)
    assert "Paired differences to Our baseline" in (out / "benchmark.md").read_text()
    printed = capsys.readouterr().out
    assert "| Adv.time |" in printed and (out / "benchmark.png").is_file()
    # A second call reuses every finished run: nothing trains, the table is the same.
    before = (out / "runs" / "baseline" / "seed0" / "last.pt").stat().st_mtime_ns
    table = benchmark_sed(sed_tiny_dataset, out, seeds=(0, 1), rows=["baseline", "adv_time", "tri_training"],
                          profile=profile, overrides=["decode.median_filter_seconds=0.2"])
    assert (out / "runs" / "baseline" / "seed0" / "last.pt").stat().st_mtime_ns == before
    assert table.rows[0].runs[1]["event_macro_f1"] == data["results"]["baseline"]["runs"]["1"]["event_macro_f1"]
    # Settings that change what a run learns must not reuse those runs; logging settings may change.
    with pytest.raises(ConfigError, match=r"3 finished run\(s\).*adv_time/seed0 \(decode.median_filter_seconds\)"):
        benchmark_sed(sed_tiny_dataset, out, seeds=(0,), rows=["baseline", "adv_time", "tri_training"],
                      profile=profile, overrides=["decode.median_filter_seconds=0.3"])
    benchmark_sed(sed_tiny_dataset, out, seeds=(0,), rows=["baseline"], profile=profile,
                  overrides=["decode.median_filter_seconds=0.2", "train.log_every=7"])
    assert (out / "runs" / "baseline" / "seed0" / "last.pt").stat().st_mtime_ns == before


def test_unknown_rows_are_refused(sed_tiny_dataset, tmp_path, capsys):
    assert main(["sed", "benchmark", "--data", str(sed_tiny_dataset), "--out", str(tmp_path),
                 "--rows", "adv_space"]) == 2
    assert "unknown benchmark row" in capsys.readouterr().err


def test_the_shipped_cpu_profile_is_valid_for_every_row(capsys):
    from audioadapt.api.benchmark import read_profile

    prof = read_profile("sed_cpu")
    for row in SED_ALL_ROWS:
        overrides, _ = sed_row_overrides(row, prof, 0)
        cfg = load_sed_config(row.preset, overrides)
        assert cfg.features.n_mels == 64 and cfg.sampler.phase1.steps_per_epoch == 100
        unlabeled = cfg.sampler.phase1.batch_sizes.get("unlabeled", 0)
        assert unlabeled == (8 if cfg.method.adversarial != "none" or cfg.method.kind == "mean_teacher" else 0)
        if cfg.method.kind == "mean_teacher":  # the profile's budget choice; the presets keep the 2019 settings
            assert cfg.method.synthetic_clip_loss and cfg.method.mean_teacher.ema_decay == 0.99
            preset = load_sed_config(row.preset)
            assert not preset.method.synthetic_clip_loss and preset.method.mean_teacher.ema_decay == 0.999
    assert main(["config", "list", "--profiles"]) == 0
    assert capsys.readouterr().out.split() == ["sed_cpu", "ser_cpu"]


def test_paper_literal_rows_are_extra_rows_of_their_own_presets():
    assert [r.key for r in SED_PAPER_ROWS] == ["paper_adv_whole", "paper_adv_time", "paper_tri_training",
                                              "paper_adv_whole_tri_training", "paper_adv_time_tri_training"]
    assert all(r.preset == f"sed_{r.key}" for r in SED_PAPER_ROWS)
    assert not set(SED_PAPER_ROWS) & set(SED_ROWS) and SED_ALL_ROWS == SED_ROWS + SED_PAPER_ROWS + SED_BOUND_ROWS
    # the oracle bound reads the real domain's labels: never among the rows run by default
    assert [r.key for r in SED_BOUND_ROWS] == ["oracle"] and not set(SED_BOUND_ROWS) & set(SED_ROWS)
    for row in SED_PAPER_ROWS:
        cfg = load_sed_config(row.preset)
        assert cfg.method.grl_weight.warmup == 0.0 and cfg.model.head.labeler_hidden_dim is None


def test_config_list_shows_the_paper_literal_presets(capsys):
    assert main(["config", "list", "sed_paper_"]) == 0
    assert capsys.readouterr().out.split() == sorted(["sed_paper_base"] + [r.preset for r in SED_PAPER_ROWS])


def test_a_paper_literal_row_runs_beside_its_working_row(sed_tiny_dataset, sed_tiny_profile, tmp_path):
    profile = tmp_path / "profile.yaml"  # the tiny profile, with the paper row's unlabelled share
    profile.write_text(sed_tiny_profile.read_text() + "  paper_adv_time: {sampler: {phase1: {batch_sizes: "
                                                      "{unlabeled: 4}}}}\n")
    out = tmp_path / "bench"
    table = benchmark_sed(sed_tiny_dataset, out, seeds=(0,), rows=["paper_adv_time", "adv_time"], profile=profile)
    assert [r.key for r in table.rows] == ["adv_time", "paper_adv_time"]  # table order
    data = json.loads((out / "benchmark.json").read_text())
    assert data["results"]["paper_adv_time"]["settings"]["preset"] == "sed_paper_adv_time"
    assert 0.0 <= data["results"]["paper_adv_time"]["runs"]["0"]["event_macro_f1"] <= 1.0
    paper = load_sed_config(out / "runs" / "paper_adv_time" / "seed0" / "config.yaml")
    working = load_sed_config(out / "runs" / "adv_time" / "seed0" / "config.yaml")
    assert (paper.method.grl_weight.end, working.method.grl_weight.end) == (1.0, 0.1)
    assert paper.sampler.phase1.batch_sizes["unlabeled"] == 4
    # without --rows the benchmark runs the Table 1 rows (and the mean teachers) only
    assert "paper_adv_time" not in [r.key for r in SED_ROWS]
