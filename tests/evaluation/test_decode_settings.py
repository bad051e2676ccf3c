"""decode.* overrides at evaluation and prediction time, and the report's Decoding table."""

from __future__ import annotations

import pytest

from audioadapt.errors import ConfigError
from audioadapt.evaluation.decode_settings import (
    apply_decode_overrides,
    decode_record,
    decode_table,
    sets_thresholds,
)
from audioadapt.evaluation.decoding import DecodeConfig

CLASSES = ["Alarm_bell_ringing", "Dog", "Speech"]


def test_overrides_change_the_named_settings_only():
    base = DecodeConfig(threshold=0.5, median_filter_seconds=0.45)
    out = apply_decode_overrides(base, ["decode.threshold=0.3", "decode.class_thresholds.Dog=0.7",
                                        "decode.median_filter_seconds=0"], CLASSES)
    assert out == DecodeConfig(threshold=0.3, class_thresholds={"Dog": 0.7}, median_filter_seconds=0.0)
    flow = apply_decode_overrides(base, ["decode.class_thresholds={Dog: 0.2, Speech: 0.4}"], CLASSES)
    assert flow.class_thresholds == {"Dog": 0.2, "Speech": 0.4} and flow.threshold == 0.5
    assert apply_decode_overrides(base, []) == base


@pytest.mark.parametrize("override, message", [
    ("decode.treshold=0.3", "unknown config key 'decode.treshold' in override 'decode.treshold=0.3'. "
                            "Did you mean 'threshold'?"),
    ("train.lr=0.1", "override 'train.lr=0.1': only decode.* settings can be changed here (e.g. "
                     "decode.threshold=0.3); the run's other settings come from its training"),
    ("decode.threshold=high", "decode.threshold: expected a number, got 'high'"),
    ("decode.median_filter_seconds=-1", "median_filter_seconds must be >= 0, got -1.0"),
    ("decode.filter_order=first", "decode.filter_order: 'first' is not one of"),
    ("decode.threshold", "override 'decode.threshold' is not of the form key.path=value"),
    ("decode.class_thresholds.Dgo=0.3", "decode.class_thresholds names unknown class(es) Dgo. Did you mean 'Dog'? "
                                        "The classes are Alarm_bell_ringing, Dog, Speech."),
])
def test_bad_overrides_are_rejected_with_a_clear_message(override, message):
    with pytest.raises(ConfigError) as err:
        apply_decode_overrides(DecodeConfig(), [override], CLASSES)
    assert message in str(err.value)


def test_which_overrides_set_the_thresholds():
    assert sets_thresholds(["decode.threshold=0.2"])
    assert sets_thresholds(["decode.median_filter_seconds=0", "decode.class_thresholds.Dog=0.2"])
    assert sets_thresholds(["decode.class_thresholds=null"])
    assert not sets_thresholds(["decode.median_filter_seconds=0", "decode.merge_gap_seconds=0.1"])
    assert not sets_thresholds([])


def test_the_decoding_table_shows_settings_source_and_overrides():
    decode = DecodeConfig(threshold=0.3, class_thresholds={"Dog": 0.25})
    inputs = {"decode": decode_record(decode, 0.0625), "decode_overrides": ["decode.threshold=0.3"],
              "thresholds": {"source": "tuned", "split": "synthetic_valid", "objective": "event",
                             "file": "run/best.thresholds.json", "tuned_on_evaluated_split": True}}
    table = decode_table(inputs)
    markdown = table.to_markdown()
    assert "| threshold | 0.3 |" in markdown
    assert "| class thresholds | Dog 0.25 |" in markdown
    assert "| median filter | 0.45 s (7 frames) |" in markdown
    assert "| thresholds from | tuned on the synthetic_valid split for event F1 (`run/best.thresholds.json`) |" \
        in markdown
    assert "| overrides | `decode.threshold=0.3` |" in markdown
    assert "tuned on this very split (synthetic_valid)" in markdown
    assert decode_table({}) is None
    plain = decode_table({"decode": decode_record(DecodeConfig(), None)}).to_markdown()
    assert "| median filter | 0.45 s |" in plain and "| overrides | none |" in plain and "very split" not in plain
