"""The main job: generate, describe, (train, evaluate) — reusing what is on disk."""

from __future__ import annotations

import json

import pytest

from audioadapt.api import demo
from audioadapt.cli.main import main


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    demo.run_sed_demo(out, size="tiny", seed=3, train=False, progress=False)
    return out


def test_describe_writes_stats_of_every_split(demo_out):
    stats = json.loads((demo_out / "data_stats.json").read_text())
    assert set(stats["splits"]) == {"synthetic", "weak", "unlabeled", "validation"}
    assert stats["splits"]["synthetic"]["clips"] == 24
    assert {"synthetic", "weak", "unlabeled"} <= set(stats["features"])
    # the two domains differ in feature space
    assert stats["domain_gap_db"] > 1.0
    md = (demo_out / "data_stats.md").read_text()
    assert "| **all clips** | 24 | 12 | 12 | 12 |" in md


def test_second_call_reuses_the_dataset(demo_out, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the dataset was generated again")

    monkeypatch.setattr("audioadapt.data.synthetic.sed.generate_sed_dataset", fail)
    demo.run_sed_demo(demo_out, size="tiny", seed=3, train=False, progress=False)


def test_other_seed_regenerates(tmp_path):
    root = tmp_path / "data"
    demo.prepare_demo_data(root, "tiny", 1, progress=False)
    assert demo._dataset_matches(root, "tiny", 1)
    assert not demo._dataset_matches(root, "tiny", 2)
    assert not demo._dataset_matches(root, "small", 1)


def test_cli_prints_dataset_table(demo_out, capsys):
    assert main(["sed", "demo", "--out", str(demo_out), "--size", "tiny", "--seed", "3", "--no-train",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "## Dataset" in out and "Domain gap" in out


def test_demo_trains_and_prints_the_results_table(demo_out, sed_tiny_profile, capsys, monkeypatch):
    assert main(["sed", "demo", "--out", str(demo_out), "--size", "tiny", "--seed", "3", "--no-progress",
                 "--profile", str(sed_tiny_profile)]) == 0
    out = capsys.readouterr().out
    assert "| Our baseline |" in out and "| Adv.time + Tri-training |" in out
    assert "Table 1 rows on the generated tiny dataset (seed 3)" in out
    data = json.loads((demo_out / "results" / "benchmark.json").read_text())
    assert list(data["results"]) == ["baseline", "adv_time_tri_training"]
    run = demo_out / "results" / "runs" / "adv_time_tri_training" / "seed0"
    assert (run / "eval_validation.md").is_file() and (run / "pseudo_labels.json").is_file()
    # A second call trains nothing: the finished runs are reused.
    monkeypatch.setattr("audioadapt.api.sed.train_sed", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert main(["sed", "demo", "--out", str(demo_out), "--size", "tiny", "--seed", "3", "--no-progress",
                 "--profile", str(sed_tiny_profile)]) == 0
