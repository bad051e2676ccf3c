"""The SED experiment configuration: presets, derived model fields, keys that would have no effect."""

from __future__ import annotations

import re

import pytest
import yaml

from audioadapt.config import from_dict, list_presets, to_dict
from audioadapt.adaptation.orthogonality import OrthogonalityConfig
from audioadapt.adaptation.pseudo_labels import PseudoLabelConfig
from audioadapt.adaptation.schedules import ScheduleConfig
from audioadapt.config.load import load_preset_dict, override_items, own_preset_dict
from audioadapt.config.sed import SedExperimentConfig, leaf_items, load_sed_config, override_sed_config
from audioadapt.errors import ConfigError

#: Preset -> (method kind, adversarial mode, tri-training): Park et al.'s Table 1 and the 2019 baseline.
ROWS = {
    "sed_baseline": ("tri_adv", "none", False),
    "sed_adv_whole": ("tri_adv", "whole", False),
    "sed_adv_time": ("tri_adv", "time", False),
    "sed_tri_training": ("tri_adv", "none", True),
    "sed_adv_whole_tri_training": ("tri_adv", "whole", True),
    "sed_adv_time_tri_training": ("tri_adv", "time", True),
    "sed_mean_teacher": ("mean_teacher", "none", False),
    "sed_adv_time_mean_teacher": ("mean_teacher", "time", False),
    "sed_paper_adv_whole": ("tri_adv", "whole", False),
    "sed_paper_adv_time": ("tri_adv", "time", False),
    "sed_paper_tri_training": ("tri_adv", "none", True),
    "sed_paper_adv_whole_tri_training": ("tri_adv", "whole", True),
    "sed_paper_adv_time_tri_training": ("tri_adv", "time", True),
    "sed_oracle": ("tri_adv", "time", True),
}
#: The six Table 1 presets (the working readings of sed_base.yaml).
TABLE1 = ("sed_baseline", "sed_adv_whole", "sed_adv_time", "sed_tri_training", "sed_adv_whole_tri_training",
          "sed_adv_time_tri_training")


def test_the_shipped_sed_presets_are_the_expected_ones():
    assert set(list_presets("sed_")) == set(ROWS) | {"sed_base", "sed_paper_base"}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_preset_loads_as_its_table_row(name):
    cfg = load_sed_config(name)
    m = cfg.method
    assert (m.kind, m.adversarial, m.tri_training) == ROWS[name]
    assert cfg.model.domain.mode == m.adversarial
    assert cfg.model.heads == (("f1", "f2", "ft") if m.tri_training else ("ft",))
    assert m.predict.heads == ("ft",)


@pytest.mark.parametrize("name", sorted(list_presets("sed_")))
def test_no_preset_key_is_unused(name):
    tree = load_preset_dict(name)
    cfg = from_dict(SedExperimentConfig, tree)  # unknown keys would raise here
    inactive = cfg.inactive_keys()
    for key in leaf_items(own_preset_dict(name)):  # what the file itself sets
        hits = [p for p in inactive if key == p or key.startswith(p + ".")]
        assert not hits, f"{name}: '{key}' has no effect ({inactive[hits[0]]})"
    # what it inherits but does not use is left at the default
    loaded = load_sed_config(name)
    assert loaded.ignored_keys(leaf_items(to_dict(loaded))) == {}


def test_the_table1_presets_share_the_working_readings():
    for name in TABLE1:
        cfg = load_sed_config(name)
        m = cfg.method
        labelers = m.uses_labelers
        assert cfg.model.head.labeler_hidden_dim == (128 if labelers else None)
        assert cfg.model.head.hidden_dim is None  # Ft keeps the baseline's head
        cosine = OrthogonalityConfig(weight=1.0, normalization="row", orientation="out", reduction="mean_abs")
        assert m.orthogonality == (cosine if labelers else OrthogonalityConfig())
        working = PseudoLabelConfig(threshold=0.5, negative_threshold=0.1, present_negatives="unknown")
        assert m.pseudo_labels == (working if labelers else PseudoLabelConfig())
        grl = ScheduleConfig(kind="sigmoid_ramp", end=0.1, warmup=0.3)
        assert m.grl_weight == (grl if m.adversarial != "none" else ScheduleConfig())
        if m.adversarial != "none":
            assert m.grl_weight.value(0.29) == 0.0 and m.grl_weight.value(1.0) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("row", ["adv_whole", "adv_time", "tri_training", "adv_whole_tri_training",
                                 "adv_time_tri_training"])
def test_paper_presets_are_their_rows_with_the_literal_readings(row):
    paper, working = load_sed_config(f"sed_paper_{row}"), load_sed_config(f"sed_{row}")
    defaults = SedExperimentConfig()
    assert paper.method.orthogonality == defaults.method.orthogonality  # stacked outputs, Frobenius, sum
    assert paper.method.pseudo_labels == defaults.method.pseudo_labels  # tau 0.5 for both
    assert paper.method.grl_weight == defaults.method.grl_weight  # ramp to 1 from the start
    assert paper.model.head == defaults.model.head  # labelers without a hidden layer
    literal = ["model.head.labeler_hidden_dim=null", "method.grl_weight.warmup=0.0", "method.grl_weight.end=1.0",
               "method.orthogonality.normalization=frobenius", "method.orthogonality.orientation=in",
               "method.orthogonality.reduction=sum_abs", "method.pseudo_labels.negative_threshold=null",
               "method.pseudo_labels.present_negatives=keep"]
    applicable = [o for o in literal if not working.ignored_keys(override_items([o]))]
    assert override_sed_config(working, applicable) == paper  # nothing else differs


def test_inherited_settings_a_row_does_not_use_keep_their_defaults(tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="audioadapt.config.sed"):
        base = load_sed_config("sed_baseline")
    assert "method.orthogonality" in caplog.text and "WARNING" not in caplog.text
    assert base.method.orthogonality == OrthogonalityConfig() and base.method.grl_weight == ScheduleConfig()
    from audioadapt.config import save_config

    for name in ("sed_baseline", "sed_adv_time", "sed_tri_training", "sed_mean_teacher", "sed_paper_adv_whole"):
        cfg = load_sed_config(name)
        assert load_sed_config(save_config(cfg, tmp_path / f"{name}.yaml")) == cfg
    # a switch turned on by an override makes the inherited readings count again
    tri = load_sed_config("sed_baseline", ["method.tri_training=true"])
    assert tri.model.head.labeler_hidden_dim == 128 and tri.method.pseudo_labels.negative_threshold == 0.1
    # and one turned off leaves them out, without a warning: the file did not set them itself
    caplog.clear()
    with caplog.at_level("WARNING", logger="audioadapt.config.sed"):
        off = load_sed_config("sed_adv_time_tri_training", ["method.tri_training=false", "method.adversarial=none",
                                                            "sampler.phase1.batch_sizes.unlabeled=0"])
    assert off.method.orthogonality == OrthogonalityConfig() and off.method.grl_weight == ScheduleConfig()
    assert off.model.head.labeler_hidden_dim is None and caplog.text == ""
    # a preset's own key without effect stays an error
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: sed_base\nmethod: {tri_training: false, pseudo_labels: {threshold: 0.6}}\n")
    with pytest.raises(ConfigError, match=r"mine.yaml.*method.pseudo_labels.threshold"):
        load_sed_config(mine)


def test_a_key_without_effect_is_rejected(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"extends": "sed_baseline", "method": {"orthogonality": {"weight": 0.5}}}))
    with pytest.raises(ConfigError, match=r"mine.yaml.*method.orthogonality.weight.*no tri-training"):
        load_sed_config(path)
    with pytest.raises(ConfigError, match=r"overrides.*method.grl_weight.end.*adversarial is none"):
        load_sed_config("sed_tri_training", ["method.grl_weight.end=0.5"])
    with pytest.raises(ConfigError, match="method.mean_teacher"):
        load_sed_config("sed_adv_time", ["method.mean_teacher.ema_decay=0.99"])
    with pytest.raises(ConfigError, match="psds.scenarios"):
        load_sed_config("sed_adv_time", ["psds.enabled=false", "psds.scenarios.psds1.dtc=0.5"])
    assert load_sed_config("sed_adv_time", ["psds.scenarios.psds1.dtc=0.5"]).psds.scenarios["psds1"].dtc == 0.5
    # restating the value the run uses anyway changes nothing and is accepted (a resolved config.yaml does it)
    same = load_sed_config("sed_baseline", ["method.orthogonality.weight=1.0", "model.heads=[ft]"])
    assert same.method.tri_training is False


def test_a_resolved_config_file_loads_as_a_preset(tmp_path):
    from audioadapt.config import save_config

    cfg = load_sed_config("sed_tri_training", ["train.epochs=3"])
    assert load_sed_config(save_config(cfg, tmp_path / "config.yaml")) == cfg


def test_preset_keys_that_only_an_override_disables_are_logged(caplog, tmp_path):
    preset = tmp_path / "short.yaml"
    preset.write_text("extends: sed_adv_time_tri_training\nmethod: {phase2_epochs: 5}\n")
    with caplog.at_level("WARNING", logger="audioadapt.config.sed"):
        cfg = load_sed_config(preset, ["method.tri_training=false"])
    assert cfg.model.heads == ("ft",)
    assert "'method.phase2_epochs' is ignored after the overrides" in caplog.text


def test_model_heads_and_domain_follow_the_method_switches():
    cfg = load_sed_config("sed_adv_time_tri_training", ["method.adversarial=whole", "method.tri_training=false"])
    assert (cfg.model.domain.mode, cfg.model.heads) == ("whole", ("ft",))
    back = override_sed_config(cfg, ["method.tri_training=true"])
    assert back.model.heads == ("f1", "f2", "ft")
    for override in ("model.heads=[ft]", "model.domain.mode=none"):
        with pytest.raises(ConfigError, match="follows method"):
            load_sed_config("sed_adv_time_tri_training", [override])
    assert load_sed_config("sed_adv_time", ["model.domain.hidden=[64]"]).model.domain.hidden == (64,)


def test_inconsistent_switches_are_errors():
    with pytest.raises(ConfigError, match="unlabeled must be 0 without a domain classifier"):
        load_sed_config("sed_adv_time", ["method.adversarial=none"])
    with pytest.raises(ConfigError, match="mean_teacher.*needs"):
        load_sed_config("sed_adv_time_tri_training", ["method.kind=mean_teacher"])
    with pytest.raises(ConfigError, match=r"predict.heads \['f1'\]"):
        load_sed_config("sed_baseline", ["method.predict.heads=[f1]"])
    with pytest.raises(ConfigError, match="unknown sources"):
        load_sed_config("sed_adv_time", ["sampler.phase1.batch_sizes.strong=4"])
    with pytest.raises(ConfigError, match="synthetic must be positive"):
        load_sed_config("sed_adv_time", ["sampler.phase1.batch_sizes.synthetic=0"])
    assert load_sed_config("sed_tri_training", ["method.predict.heads=[f1,f2,ft]"]).method.predict.heads == (
        "f1", "f2", "ft")


def test_predict_compile_is_a_checked_switch_off_by_default():
    assert load_sed_config("sed_baseline").method.predict.compile is False
    assert load_sed_config("sed_baseline", ["method.predict.compile=true"]).method.predict.compile is True
    with pytest.raises(ConfigError, match="method.predict.compile: expected true/false, got 'maybe'"):
        load_sed_config("sed_baseline", ["method.predict.compile=maybe"])


def test_defaults_epochs_and_sources():
    cfg = load_sed_config("sed_adv_time_tri_training", ["train.epochs=7"])
    assert cfg.phase2_epochs() == 7
    assert load_sed_config("sed_adv_time_tri_training", ["method.phase2_epochs=3"]).phase2_epochs() == 3
    assert load_sed_config("sed_baseline").needed_sources() == ("synthetic", "weak")
    assert load_sed_config("sed_adv_whole").needed_sources() == ("synthetic", "weak", "unlabeled")
    assert load_sed_config("sed_tri_training").needed_sources() == ("synthetic", "weak", "unlabeled")
    assert load_sed_config("sed_mean_teacher").method.synthetic_clip_loss is False
    base = load_sed_config("sed_base")
    assert (base.features.hop_length, base.features.n_mels, base.train.lr) == (345, 128, 1e-3)
    assert base.sampler.phase1.batch_sizes == {"synthetic": 16, "weak": 16, "unlabeled": 32}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_resolved_config_round_trips_through_yaml(name):
    cfg = load_sed_config(name)
    again = from_dict(SedExperimentConfig, yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    assert again == cfg


def test_every_section_rejects_a_scalar_or_a_list(sed_section, nested_yaml, first_key_inside):
    """``sed_section`` runs over every nested dataclass of SedExperimentConfig (tests/config/conftest.py)."""
    expected = f"{sed_section}: expected a section (key: value mapping), got "
    inside = first_key_inside(SedExperimentConfig(), sed_section)
    for value, shown in (("abc", "'abc'"), ("[1, 2]", "[1, 2]")):
        # a later override of a key inside the section must not turn the scalar into a fresh default section
        with pytest.raises(ConfigError, match=re.escape(expected + shown)):
            load_sed_config(None, [f"{sed_section}={value}", f"{sed_section}.{inside}=1"])
    path = nested_yaml(sed_section, "abc")
    line = sed_section.count(".") + 1
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}: {expected}'abc'")):
        load_sed_config(path)


def test_every_float_setting_rejects_non_finite_values(sed_float_key):
    """``sed_float_key`` runs over every float setting of SedExperimentConfig."""
    for value, shown in (("inf", "inf"), ("-.inf", "-inf"), ("nan", "nan")):
        with pytest.raises(ConfigError, match=re.escape(f"{sed_float_key}: expected a finite number, got {shown}")):
            load_sed_config(None, [f"{sed_float_key}={value}"])


def test_a_non_finite_value_in_a_preset_names_its_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: sed_baseline\n# a learning rate\ntrain:\n  epochs: 3\n  lr: .inf\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:5: train.lr: expected a finite number, got inf")):
        load_sed_config(path)


@pytest.mark.parametrize("preset, overrides, message", [
    ("sed_baseline", ["train.epochs=0"], "train.epochs=0 trains nothing"),
    ("sed_mean_teacher", ["train.epochs=0"], "train.epochs=0 trains nothing"),
    ("sed_tri_training", ["train.epochs=0", "method.phase2_epochs=5"], "train.epochs=0 trains nothing"),
    ("sed_tri_training", ["method.phase2_epochs=0"],
     "phase 2 (training on the pseudo labels) gets 0 epoch(s) (method.phase2_epochs) for 1 pseudo-labelling round(s)"),
    ("sed_adv_time_tri_training", ["method.phase2_epochs=2", "method.pseudo_label_rounds=3"],
     "gets 2 epoch(s) (method.phase2_epochs) for 3 pseudo-labelling round(s): each round needs at least one"),
    ("sed_tri_training", ["train.epochs=1", "method.pseudo_label_rounds=2"],
     "gets 1 epoch(s) (train.epochs, as method.phase2_epochs is null) for 2 pseudo-labelling round(s)"),
])
def test_epochs_that_train_nothing_are_rejected(preset, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_sed_config(preset, overrides)


def test_the_fewest_epochs_that_train_every_phase_are_accepted():
    assert load_sed_config("sed_baseline", ["train.epochs=1"]).train.epochs == 1
    cfg = load_sed_config("sed_tri_training", ["train.epochs=1", "method.phase2_epochs=2",
                                               "method.pseudo_label_rounds=2"])
    assert cfg.phase2_epochs() == 2


@pytest.mark.parametrize("preset, override, message", [
    ("sed_baseline", "features.power=0", "features: power must be positive, got 0.0"),
    ("sed_baseline", "features.amin=0", "features: amin must be positive, got 0.0"),
    ("sed_baseline", "features.log_offset=-1", "features: log_offset must be positive, got -1.0"),
    ("sed_adv_time", "method.grl_weight.end=-0.5", "method.grl_weight.end must be >= 0"),
    ("sed_adv_time", "method.grl_weight={kind: linear, start: -1}", "method.grl_weight.start must be >= 0"),
])
def test_values_that_break_the_features_or_the_reversal_are_rejected(preset, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_sed_config(preset, [override])


def test_the_mean_teacher_takes_a_domain_classifier_with_the_park_rows_settings():
    cfg = load_sed_config("sed_adv_time", ["method.kind=mean_teacher"])
    assert (cfg.model.domain.mode, cfg.model.heads) == ("time", ("ft",))
    adv = load_sed_config("sed_adv_time_mean_teacher", ["method.loss_weights.domain=0.5",
                                                         "method.grl_weight.end=0.1", "method.grl_progress=phase"])
    assert adv.method.loss_weights.domain == 0.5 and adv.method.grl_weight.end == 0.1
    assert adv.method.synthetic_clip_loss is False  # the rest is the mean-teacher preset
    park = load_sed_config("sed_adv_time").method  # the same alpha schedule and domain weight as Adv.time
    default = load_sed_config("sed_adv_time_mean_teacher").method
    assert (default.grl_weight, default.grl_progress, default.loss_weights.domain) == (
        park.grl_weight, park.grl_progress, park.loss_weights.domain)
    with pytest.raises(ConfigError, match="loss_weights.ft.*mean teacher weighs"):
        load_sed_config("sed_adv_time_mean_teacher", ["method.loss_weights.ft=2"])
    with pytest.raises(ConfigError, match="loss_weights.domain.*adversarial is none"):
        load_sed_config("sed_mean_teacher", ["method.loss_weights.domain=2"])
