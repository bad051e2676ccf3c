"""``audioadapt ser demo``: generate, describe, train SNSA-F and NNPM, print the table — reusing what is on disk."""

from __future__ import annotations

import json

import pytest

from audioadapt.api import ser_demo
from audioadapt.cli.main import main
from audioadapt.config.load import load_preset_dict
from audioadapt.config.ser import load_ser_config

pytestmark = pytest.mark.usefixtures("one_thread")

#: Shrinks the demo's rows to seconds on the tiny corpus.
FAST = ["features.n_mels=32", "model.encoder.conv_channels=[8,8]", "model.encoder.lstm_hidden=8",
        "model.encoder.attention_dim=8", "dataset.crop_seconds=2.0", "stage1.epochs=2", "stage2.epochs=1",
        "source_validation.kind=none", "train.device=cpu", "train.tensorboard=false", "cache.num_workers=0"]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("ser_demo")
    ser_demo.run_ser_demo(out, size="tiny", seed=5, train=False, workers=1, progress=False)
    return out


def test_the_demo_rows_get_the_ser_demo_presets_own_settings():
    overrides = ser_demo.demo_overrides()
    assert "stage2.epochs=5" in overrides and "model.encoder.lstm_hidden=32" in overrides
    assert all(not o.startswith("method.") for o in overrides)  # the row picks the system
    for preset in ("ser_snsa_f", "ser_nnpm"):
        cfg = load_ser_config(preset, [o for o in overrides if not (preset == "ser_snsa_f" and o.startswith("stage2"))])
        assert cfg.model.encoder.lstm_hidden == load_preset_dict("ser_demo")["model"]["encoder"]["lstm_hidden"]


def test_describe_counts_each_language(demo_out):
    stats = json.loads((demo_out / "data_stats.json").read_text())
    assert stats["source"]["utterances"] == stats["target"]["utterances"] == 32
    assert stats["target"]["per_class"] == {"angry": 8, "happy": 8, "sad": 8, "neutral": 8}
    assert "| source | 8 | 8 | 8 | 8 | 32 | 4 |" in (demo_out / "data_stats.md").read_text()


def test_a_second_call_reuses_the_corpus(demo_out, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the corpus was generated again")

    monkeypatch.setattr("audioadapt.data.synthetic.ser.generate_ser_dataset", fail)
    ser_demo.run_ser_demo(demo_out, size="tiny", seed=5, train=False, progress=False)


def test_the_demo_trains_and_prints_snsa_f_against_nnpm(demo_out, capsys, monkeypatch):
    args = ["ser", "demo", "--out", str(demo_out), "--size", "tiny", "--seed", "5", "--no-progress",
            "--protocol", "transductive", *FAST]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "## Corpus" in out and "| SNSA-F |" in out and "| NNPM |" in out
    data = json.loads((demo_out / "results" / "transductive" / "benchmark.json").read_text())
    assert list(data["results"]) == ["snsa_f", "nnpm"]
    assert data["results"]["nnpm"]["settings"]["stage1_from"] == "snsa_f"
    run = demo_out / "results" / "transductive" / "runs" / "nnpm" / "seed0"
    cfg = load_ser_config(run / "config.yaml")
    assert cfg.stage2.source_batch_size == 16 and cfg.model.encoder.lstm_hidden == 8  # the demo's, then FAST
    # A second call trains nothing: the finished runs are reused.
    monkeypatch.setattr("audioadapt.api.ser.train_ser", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert main(args) == 0
    assert "| NNPM |" in capsys.readouterr().out
