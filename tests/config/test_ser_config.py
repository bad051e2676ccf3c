"""SER experiment configuration: presets, paper values, derived switches, rejected no-op settings."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml

from audioadapt.config.load import from_dict, list_presets, load_preset_dict, save_config, to_dict
from audioadapt.config.ser import (
    METHOD_KINDS,
    SerCorpusConfig,
    SerExperimentConfig,
    load_ser_config,
    loader_options,
    parse_corpus_spec,
    stored_ser_config,
    with_corpora,
)
from audioadapt.errors import ConfigError

#: Presets that train a system (ser_features only holds the front end).
TRAIN_PRESETS = [p for p in list_presets("ser_") if p != "ser_features"]


def test_every_ser_preset_is_shipped_and_loads():
    expected = {"ser_base", "ser_nnpm", "ser_snsa_f", "ser_snsa_wo_sl", "ser_snsa_wo_hl", "ser_dann", "ser_demo"}
    assert expected <= set(TRAIN_PRESETS)
    for name in TRAIN_PRESETS:
        cfg = load_ser_config(name)
        assert cfg.method.kind in METHOD_KINDS
    # the kind presets name their kind
    for kind in ("nnpm", "snsa_f", "snsa_wo_sl", "snsa_wo_hl", "dann"):
        assert load_ser_config(f"ser_{kind}").method.kind == kind


@pytest.mark.parametrize("name", ["ser_nnpm", "ser_snsa_f", "ser_snsa_wo_sl", "ser_snsa_wo_hl", "ser_dann"])
def test_paper_presets_hold_the_papers_settings(name):
    cfg = load_ser_config(name)
    f = cfg.features
    geometry = (f.sample_rate, f.win_length, f.window, f.n_fft, f.hop_length, f.n_mels)
    assert geometry == (16000, 400, "hann", 512, 160, 80)
    assert f.log == "log" and f.log_offset == pytest.approx(1e-6) and f.clip_seconds is None
    assert cfg.normalizer.kind == "instance_meanstd"
    assert cfg.dataset.crop_seconds == 7.5 and cfg.dataset.train_crop == "random" and cfg.dataset.eval_crop == "start"
    assert (cfg.stage1.lr, cfg.stage1.batch_size, cfg.stage1.epochs) == (1e-3, 32, 50)
    s2 = cfg.stage2
    assert (s2.lr, s2.epochs, s2.source_batch_size, s2.target_batch_size, s2.freeze_conv) == (1e-4, 50, 32, 32, 2)
    assert (cfg.memory.rate_start, cfg.memory.rate_end) == (0.0, 0.4)
    assert cfg.pseudo_multilabel.threshold == 0.9
    assert cfg.source_validation.kind == "speakers" and set(cfg.source_validation.speakers) == {"Ses05F", "Ses05M"}
    assert cfg.protocol.protocol == "paper"
    assert cfg.model.encoder.lstm_layers == 2 and cfg.model.encoder.dropout == 0.5


def test_defaults_without_a_preset_are_the_speech_features_and_the_notes_choices():
    cfg = SerExperimentConfig()
    front = load_preset_dict("ser_features")
    assert cfg.features.sample_rate == front["features"]["sample_rate"] == 16000
    assert cfg.normalizer.kind == front["normalizer"]["kind"]
    assert cfg.method.kind == "nnpm" and cfg.method.mask_padding
    l = cfg.losses
    assert (l.delta, l.hard_negative_ratio, l.negative_target, l.target_weight) == (1.0, 0.01, -1.0, 1.0)
    assert cfg.pseudo_multilabel.empty_policy == "skip" and cfg.memory.rate_weights == "old"
    # the working choices (docs/conventions.md), each with the earlier behaviour one setting away
    assert (l.negatives, l.hard_negative_count) == ("other_emotions", "slots")
    assert (cfg.memory.encoder_mode, cfg.memory.rate_reaches_end) == ("eval", "last_epoch")
    assert cfg.stage2.epoch_length == "longer" and cfg.stage2.epochs == 50
    assert cfg.pseudo_multilabel.rule == "threshold" and not cfg.diagnostics.target_truth


def test_stage2_epoch_length_and_source_validation_kinds_are_checked():
    assert load_ser_config("ser_nnpm", ["stage2.epoch_length=source"]).stage2.epoch_length == "source"
    with pytest.raises(ConfigError, match="stage2.epoch_length: 'both' is not one of \\['longer', 'source', 'target'"):
        load_ser_config("ser_nnpm", ["stage2.epoch_length=both"])
    cfg = load_ser_config("ser_nnpm", ["source_validation.kind=held_out_speakers"])
    assert cfg.source_validation.candidates == 256
    with pytest.raises(ConfigError, match="source_validation.kind: 'speaker' is not one of"):
        load_ser_config("ser_nnpm", ["source_validation.kind=speaker"])
    with pytest.raises(ConfigError, match="source_validation.candidates must be at least 1"):
        load_ser_config("ser_nnpm", ["source_validation.candidates=0"])


@pytest.mark.parametrize("kind, target_loss, source_loss", [
    ("nnpm", "hard_negative", True), ("snsa_wo_sl", "hard_negative", False), ("snsa_wo_hl", "all_negatives", True)])
def test_loss_switches_follow_the_kind_from_any_preset(kind, target_loss, source_loss):
    for preset in ("ser_nnpm", "ser_snsa_wo_sl", "ser_snsa_wo_hl"):
        cfg = load_ser_config(preset, [f"method.kind={kind}"])
        assert (cfg.losses.target_loss, cfg.losses.source_loss) == (target_loss, source_loss)


def test_contradicting_loss_switches_are_rejected():
    with pytest.raises(ConfigError, match="contradicts method.kind 'nnpm'"):
        load_ser_config("ser_nnpm", ["losses.source_loss=false"])
    with pytest.raises(ConfigError, match="target_loss"):
        load_ser_config("ser_snsa_wo_sl", ["losses={target_loss: mse_all}"])
    with pytest.raises(ConfigError, match="contradicts method.kind 'snsa_wo_hl' \\(which takes 'all_negatives' or "
                                          "'mse_all'\\)"):
        load_ser_config("ser_snsa_wo_hl", ["losses.target_loss=hard_negative"])
    # restating the kind's own value is fine, and SNSA-wo-HL's earlier reading (eq. 6) stays reachable
    assert load_ser_config("ser_snsa_wo_hl", ["losses.target_loss=all_negatives"]).losses.target_loss == \
        "all_negatives"
    eq6 = load_ser_config("ser_snsa_wo_hl", ["losses.target_loss=mse_all"])
    assert eq6.losses.target_loss == "mse_all" and load_ser_config(save_config(eq6, _tmp_yaml())) == eq6


def _tmp_yaml():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp()) / "config.yaml"


@pytest.mark.parametrize("overrides, inactive", [
    (["method.kind=snsa_wo_hl"], {"losses.hard_negative_ratio", "losses.hard_negative_count"}),
    (["method.kind=snsa_wo_hl", "losses.target_loss=mse_all"],
     {"losses.delta", "losses.hard_negative_ratio", "losses.hard_negative_count", "losses.negatives",
      "losses.negative_target"}),
    (["pseudo_multilabel.rule=oracle"], {"pseudo_multilabel.threshold", "pseudo_multilabel.empty_policy"}),
    (["method.kind=snsa_f"], {"memory", "pseudo_multilabel", "losses", "diagnostics.target_truth",
                              "diagnostics.gradient_every", "stage2"}),
])
def test_inactive_keys_follow_the_loss_and_the_label_rule(overrides, inactive):
    keys = set(load_ser_config("ser_nnpm", overrides).inactive_keys())
    assert inactive <= keys and not {"losses.delta", "pseudo_multilabel.threshold"} & (keys - inactive)


@pytest.mark.parametrize("preset, override, key", [
    ("ser_snsa_f", "stage2.freeze_conv=1", "stage2"),
    ("ser_snsa_f", "memory.rate_end=0.3", "memory"),
    ("ser_dann", "pseudo_multilabel.threshold=0.8", "pseudo_multilabel"),
    ("ser_nnpm", "dann.domain_weight=0.5", "dann"),
    ("ser_snsa_wo_hl", "losses.hard_negative_ratio=0.05", "losses.hard_negative_ratio"),
    ("ser_nnpm", "losses.negatives=all", None),
    ("ser_oracle", "pseudo_multilabel.threshold=0.5", "pseudo_multilabel.threshold"),
    ("ser_dann", "diagnostics.target_truth=true", "diagnostics.target_truth"),
    ("ser_dann", "diagnostics.gradient_every=5", None),
    ("ser_snsa_f", "diagnostics.gradient_every=5", "diagnostics.gradient_every"),
    ("ser_nnpm", "train.epochs=3", "train.epochs"),
    ("ser_nnpm", "train.lr=0.1", "train.lr"),
])
def test_settings_the_kind_ignores_are_rejected(preset, override, key):
    if key is None:  # used by this kind
        load_ser_config(preset, [override])
        return
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_ser_config(preset, [override])


@pytest.mark.parametrize("value", ["-1", "true"])
def test_gradient_every_is_off_or_a_positive_step_count(value):
    assert load_ser_config("ser_nnpm").diagnostics.gradient_every == 0
    assert load_ser_config("ser_nnpm", ["diagnostics.gradient_every=10"]).diagnostics.gradient_every == 10
    with pytest.raises(ConfigError, match="diagnostics.gradient_every"):
        load_ser_config("ser_nnpm", [f"diagnostics.gradient_every={value}"])


def test_a_stored_config_keeps_ignored_keys_at_the_values_it_was_saved_with(tmp_path):
    # a run saved when an ignored key had another default (snsa_f stores the pseudo_multilabel section too)
    tree = to_dict(load_ser_config("ser_snsa_f"))
    tree["pseudo_multilabel"]["empty_policy"] = "negatives_only"
    with pytest.raises(ConfigError, match="'pseudo_multilabel'"):
        from_dict(SerExperimentConfig, tree)  # as a user's setting it would change nothing: refused
    stored = stored_ser_config(tree)  # as a finished run's record it is read, the ignored key at its default
    assert stored == load_ser_config("ser_snsa_f") and stored.method.kind == "snsa_f"
    assert dataclasses.replace(stored, target=SerCorpusConfig("urdu", "/t")).target.corpus == "urdu"
    oracle = to_dict(load_ser_config("ser_oracle"))
    oracle["pseudo_multilabel"]["empty_policy"] = "negatives_only"
    oracle["pseudo_multilabel"]["threshold"] = 0.5
    assert stored_ser_config(oracle) == load_ser_config("ser_oracle")  # one key of a section the rule ignores
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    assert stored_ser_config(path) == stored
    tree["stage1"]["epochs"] = 0  # every other check still holds
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    with pytest.raises(ConfigError, match="config.yaml.*stage1.epochs=0"):
        stored_ser_config(path)
    SerExperimentConfig()  # the context is left: the check is back
    with pytest.raises(ConfigError, match="no effect"):
        load_ser_config("ser_snsa_f", ["pseudo_multilabel.threshold=0.5"])


def test_init_from_skips_stage1():
    cfg = load_ser_config("ser_demo", ["stage2.init_from=/x/best.pt"])
    assert not cfg.runs_stage1 and cfg.stage2.init_from == "/x/best.pt"
    assert load_ser_config("ser_demo").runs_stage1


def test_domain_classifier_only_with_dann():
    with pytest.raises(ConfigError, match="needs a domain classifier"):
        load_ser_config("ser_nnpm", ["method.kind=dann"])
    with pytest.raises(ConfigError, match="only used by method.kind 'dann'"):
        load_ser_config("ser_dann", ["method.kind=nnpm"])
    assert load_ser_config("ser_dann", ["method.kind=nnpm", "model.domain.mode=none"]).method.kind == "nnpm"
    assert load_ser_config("ser_dann", ["model.domain.mode=time"]).model.domain.mode == "time"


def test_bad_values_and_keys_are_config_errors():
    for override in ("method.kind=mmcl", "stage2.freeze_conv=3", "stage1.lr=0", "source_validation.fraction=1.5",
                     "stage2.target_batch_size=0", "memroy.rate_end=0.3"):
        with pytest.raises(ConfigError):
            load_ser_config("ser_nnpm", [override])
    with pytest.raises(ConfigError, match="Did you mean 'memory'"):
        load_ser_config("ser_nnpm", ["memroy.rate_end=0.3"])


def test_corpus_specs(tmp_path):
    assert parse_corpus_spec("emodb:/data/emodb") == SerCorpusConfig("emodb", "/data/emodb")
    assert parse_corpus_spec("IEMOCAP:/d/IEMOCAP_full_release").corpus == "iemocap"
    assert parse_corpus_spec("csv:/x/manifest.csv") == SerCorpusConfig("csv", "/x/manifest.csv")
    generated = tmp_path / "synth"
    generated.mkdir()
    (generated / "dataset.json").write_text(json.dumps({"domains": {}}))
    assert parse_corpus_spec(str(generated)) == SerCorpusConfig("generated", str(generated))
    manifest = tmp_path / "m" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,label\n")
    assert parse_corpus_spec(str(manifest.parent)).corpus == "csv"
    assert parse_corpus_spec(str(manifest)).corpus == "csv"
    assert parse_corpus_spec("ravdess:/data/ravdess") == SerCorpusConfig("ravdess", "/data/ravdess")
    with pytest.raises(ConfigError, match="unknown corpus 'ravdes'"):
        parse_corpus_spec("ravdes:/data/ravdess")
    with pytest.raises(ConfigError, match="cannot tell which corpus"):
        parse_corpus_spec(str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="no path"):
        parse_corpus_spec("emodb:")
    with pytest.raises(ConfigError, match="both a name and a root"):
        SerCorpusConfig("emodb", None)


def test_with_corpora_and_round_trip_through_the_saved_yaml(tmp_path):
    cfg = with_corpora(load_ser_config("ser_demo"), source="iemocap:/s", target=SerCorpusConfig("urdu", "/t"))
    assert (cfg.source.corpus, cfg.source.root, cfg.target.corpus) == ("iemocap", "/s", "urdu")
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load_ser_config(path) == cfg
    wo_hl = load_ser_config("ser_snsa_wo_hl")
    assert load_ser_config(save_config(wo_hl, tmp_path / "wo_hl.yaml")) == wo_hl


def test_corpus_loader_options_are_checked_and_survive_a_new_path():
    cfg = load_ser_config("ser_nnpm", ["source.corpus=ravdess", "source.root=/r", "source.options.calm=neutral"])
    assert cfg.source.options == {"calm": "neutral"}
    moved = with_corpora(cfg, source="ravdess:/elsewhere")
    assert (moved.source.root, moved.source.options) == ("/elsewhere", {"calm": "neutral"})
    with pytest.raises(ConfigError, match="unknown option 'calm' of the emodb corpus loader. Its options: "
                                          "keep_unmapped, check_audio"):
        with_corpora(cfg, source="emodb:/e")
    with pytest.raises(ConfigError, match="unknown option 'clam' of the ravdess corpus loader. Did you mean 'calm'"):
        load_ser_config("ser_nnpm", ["source.corpus=ravdess", "source.root=/r", "source.options.clam=neutral"])
    with pytest.raises(ConfigError, match="unknown option 'on_error'"):  # a setting of its own
        SerCorpusConfig("ravdess", "/r", options={"on_error": "skip"})
    assert loader_options("csv")[-1] == "id_column" and loader_options("generated") == ()


def test_every_section_rejects_a_scalar_or_a_list(ser_section, nested_yaml, first_key_inside):
    """``ser_section`` runs over every nested dataclass of SerExperimentConfig (tests/config/conftest.py)."""
    expected = f"{ser_section}: expected a section (key: value mapping), got "
    inside = first_key_inside(SerExperimentConfig(), ser_section)
    for value, shown in (("abc", "'abc'"), ("[1, 2]", "[1, 2]")):
        with pytest.raises(ConfigError, match=re.escape(expected + shown)):
            load_ser_config(None, [f"{ser_section}={value}", f"{ser_section}.{inside}=1"])
    path = nested_yaml(ser_section, "abc")
    line = ser_section.count(".") + 1
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}: {expected}'abc'")):
        load_ser_config(path)


def test_every_float_setting_rejects_non_finite_values(ser_float_key):
    """``ser_float_key`` runs over every float setting of SerExperimentConfig."""
    for value, shown in (("inf", "inf"), ("-.inf", "-inf"), ("nan", "nan")):
        with pytest.raises(ConfigError, match=re.escape(f"{ser_float_key}: expected a finite number, got {shown}")):
            load_ser_config(None, [f"{ser_float_key}={value}"])


def test_a_non_finite_value_in_a_preset_names_its_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: ser_demo\nstage1:\n  lr: nan\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3: stage1.lr: expected a finite number, got nan")):
        load_ser_config(path)


@pytest.mark.parametrize("preset, override, message", [
    ("ser_snsa_f", "stage1.epochs=0", "stage1.epochs=0 trains nothing (method.kind 'snsa_f' has only stage 1)"),
    ("ser_nnpm", "stage2.epochs=0", "stage2.epochs=0 leaves stage 2 (the adaptation of method.kind 'nnpm') "
                                    "without epochs"),
    ("ser_dann", "stage2.epochs=0", "stage2.epochs=0 leaves stage 2"),
    ("ser_nnpm", "train.epochs=0", "'train.epochs' (stage1.epochs and stage2.epochs set the epochs)"),
])
def test_epochs_that_train_nothing_are_rejected(preset, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_ser_config(preset, [override])


def test_stage2_may_start_from_an_untrained_network():
    assert load_ser_config("ser_dann", ["stage1.epochs=0"]).stage1.epochs == 0


def test_a_negative_reversal_weight_is_rejected():
    with pytest.raises(ConfigError, match=re.escape("dann.grl_weight.end must be >= 0")):
        load_ser_config("ser_dann", ["dann.grl_weight.end=-1"])
