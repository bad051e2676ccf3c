"""Target split protocols: transductive, paper (stratified / EMO-DB speakers), held-out speakers."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audioadapt.config.load import from_dict
from audioadapt.data.protocols import (
    ProtocolConfig,
    held_out_speaker_split,
    make_split,
    paper_split,
    speaker_label_purity,
    speaker_split,
    stratified_split,
    transductive_split,
)
from audioadapt.data.utterances import EMOTIONS, Utterance, label_counts
from audioadapt.errors import ConfigError, DataError


def corpus(counts: dict[str, dict[str, int]], name: str = "urdu") -> list[Utterance]:
    """Utterances with ``counts[speaker][label]`` items each (speaker '' means none)."""
    utts = []
    for speaker, per_label in counts.items():
        for label, n in per_label.items():
            for i in range(n):
                utt_id = f"{speaker or 'x'}_{label}_{i}"
                utts.append(Utterance(f"/d/{utt_id}.wav", label, speaker or None, name, utt_id))
    return utts


BALANCED = corpus({f"s{k}": {e: 3 + (k % 3) for e in EMOTIONS} for k in range(10)})


def ids(utts) -> list[str]:
    return [u.utt_id for u in utts]


def test_transductive_uses_everything_on_both_sides() -> None:
    split = transductive_split(BALANCED)
    assert sorted(ids(split.adapt)) == sorted(ids(BALANCED)) == sorted(ids(split.test))
    assert split.validation == () and split.proportion_gap() == 0.0


def test_stratified_sizes_and_proportions() -> None:
    utts = corpus({"": {"angry": 50, "happy": 7, "sad": 20, "neutral": 23}})
    split = stratified_split(utts, test_size=0.33, random_state=3)
    n = len(utts)
    assert len(split.test) == math.ceil(0.33 * n) and len(split.adapt) + len(split.test) == n
    assert not set(ids(split.adapt)) & set(ids(split.test))
    total, test = label_counts(utts), label_counts(split.test)
    for label in EMOTIONS:
        assert abs(test[label] - total[label] * len(split.test) / n) < 1.0, label
    assert split.random_state == 3 and "0.33" in split.method


def test_stratified_is_deterministic_and_order_free() -> None:
    a = stratified_split(BALANCED, test_size=0.33, random_state=7)
    shuffled = list(BALANCED)
    random.Random(0).shuffle(shuffled)
    b = stratified_split(shuffled, test_size=0.33, random_state=7)
    assert ids(a.test) == ids(b.test)
    c = stratified_split(BALANCED, test_size=0.33, random_state=8)
    assert set(ids(a.test)) != set(ids(c.test))


def test_stratified_unlabelled_class_and_too_small() -> None:
    utts = corpus({"": {"angry": 4}}) + [Utterance("/d/n.wav", None, None, "urdu", f"n{i}") for i in range(6)]
    split = stratified_split(utts, test_size=0.5, random_state=0)
    assert label_counts(split.test)[None] == 3 and label_counts(split.test)["angry"] == 2
    with pytest.raises(DataError, match="one side would be empty"):
        stratified_split(utts[:1], test_size=0.5, random_state=0)
    with pytest.raises(DataError, match="more than once"):
        stratified_split(utts + utts[:1], test_size=0.5, random_state=0)


def test_paper_split_emodb_speakers() -> None:
    utts = corpus({s: {"angry": 2, "sad": 1} for s in ("03", "08", "15", "16")}, name="emodb")
    split = paper_split(utts, ProtocolConfig())
    assert {u.speaker for u in split.test} == {"15"}
    assert {u.speaker for u in split.validation} == {"16"}
    assert {u.speaker for u in split.adapt} == {"03", "08"}
    assert "validation" in split.report()
    with pytest.raises(DataError, match=r"speaker\(s\) \['15'\] not in the data"):
        paper_split([u for u in utts if u.speaker != "15"], ProtocolConfig())


def test_paper_split_other_corpora_is_stratified_67_33() -> None:
    split = paper_split(BALANCED, ProtocolConfig(random_state=11))
    assert len(split.test) == math.ceil(0.33 * len(BALANCED))
    assert split.random_state == 11 and split.protocol == "paper"
    with pytest.raises(DataError, match="per corpus"):
        paper_split(BALANCED + corpus({"z": {"sad": 2}}, name="shemo"), ProtocolConfig())


def test_held_out_speakers_never_on_both_sides() -> None:
    split = held_out_speaker_split(BALANCED, test_size=0.2, random_state=1, candidates=64)
    adapt_spk, test_spk = {u.speaker for u in split.adapt}, {u.speaker for u in split.test}
    assert adapt_spk and test_spk and not adapt_spk & test_spk
    assert adapt_spk | test_spk == {u.speaker for u in BALANCED}
    assert abs(len(split.test) / len(BALANCED) - 0.2) < 0.1
    again = held_out_speaker_split(BALANCED, test_size=0.2, random_state=1, candidates=64)
    assert ids(again.test) == ids(split.test)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.lists(st.integers(0, 4), min_size=4, max_size=4), min_size=2, max_size=8),
    seed=st.integers(0, 2**16),
    test_size=st.floats(0.1, 0.6),
)
def test_held_out_property(sizes: list[list[int]], seed: int, test_size: float) -> None:
    # every speaker has at least one angry utterance, so no speaker is empty
    counts = {f"s{i}": {e: max(n, int(e == "angry")) for e, n in zip(EMOTIONS, row)} for i, row in enumerate(sizes)}
    utts = corpus(counts)
    split = held_out_speaker_split(utts, test_size=test_size, random_state=seed, candidates=8)
    assert not {u.speaker for u in split.adapt} & {u.speaker for u in split.test}
    assert split.adapt and split.test and len(split.adapt) + len(split.test) == len(utts)
    # the search keeps the best of its candidates, so it never does worse than its first candidate alone
    first = held_out_speaker_split(utts, test_size=test_size, random_state=seed, candidates=1)

    def score(s) -> float:
        return abs(len(s.test) / len(utts) - test_size) + held_gap(utts, s.test)

    assert score(split) <= score(first) + 1e-12


def held_gap(all_utts, test) -> float:
    a, t = label_counts(all_utts), label_counts(test)
    return max(abs(a[k] / len(all_utts) - t.get(k, 0) / len(test)) for k in a)


def test_held_out_balances_classes_against_a_confound() -> None:
    # speakers a-d each hold one emotion only; e-h hold all four: a balanced test side needs e-h speakers
    confounded = {s: {e: 12} for s, e in zip("abcd", EMOTIONS)}
    mixed = {s: {e: 3 for e in EMOTIONS} for s in "efgh"}
    utts = corpus({**confounded, **mixed})
    split = held_out_speaker_split(utts, test_size=0.2, random_state=0, candidates=256)
    assert split.proportion_gap() < 0.1
    assert {u.speaker for u in split.test} <= set("efgh")


def test_speaker_label_purity_measures_the_confound(caplog) -> None:
    assert speaker_label_purity(BALANCED) == pytest.approx(0.25)  # every speaker acts the four emotions equally
    one_each = corpus({s: {e: 5} for s, e in zip("abcdefgh", EMOTIONS * 2)})
    assert speaker_label_purity(one_each) == 1.0
    # 10 utterances: speaker a 3 angry + 1 sad, b 2 happy + 2 sad + 1 unlabelled, c 2 without a speaker
    mixed = corpus({"a": {"angry": 3, "sad": 1}, "b": {"happy": 2, "sad": 2}, "": {"sad": 2}})
    mixed.append(Utterance("/d/b_none.wav", None, "b", "urdu", "b_none"))
    assert speaker_label_purity(mixed) == pytest.approx((3 + 2) / 8)
    assert speaker_label_purity(corpus({"": {"sad": 3}})) is None
    caplog.set_level("WARNING", logger="audioadapt.data.protocols")
    confounded = corpus({f"s{k}": {EMOTIONS[k % 4]: 6} for k in range(12)})
    split = make_split(confounded, ProtocolConfig(protocol="held_out_speaker"))
    record = split.to_dict()["speaker_label_purity"]
    assert record == {"corpus": 1.0, "adapt": 1.0, "test": 1.0}
    assert "confounded" in caplog.text and "share of utterances with their speaker" in split.report()
    caplog.clear()
    make_split(BALANCED, ProtocolConfig(protocol="held_out_speaker"))
    assert "confounded" not in caplog.text


def test_held_out_explicit_speakers_and_errors() -> None:
    split = held_out_speaker_split(BALANCED, test_size=0.2, random_state=0, candidates=4, test_speakers=["s1", "s2"])
    assert {u.speaker for u in split.test} == {"s1", "s2"} and split.protocol == "held_out_speaker"
    with pytest.raises(DataError, match="no speaker id"):
        held_out_speaker_split(corpus({"": {"sad": 3}}), test_size=0.2, random_state=0, candidates=4)
    with pytest.raises(DataError, match="at least 2 speakers"):
        held_out_speaker_split(corpus({"s": {"sad": 3}}), test_size=0.2, random_state=0, candidates=4)


def test_make_split_dispatch_and_speakerless_fallback() -> None:
    assert make_split(BALANCED, ProtocolConfig(protocol="transductive")).protocol == "transductive"
    held = make_split(BALANCED, ProtocolConfig(protocol="held_out_speaker"))
    assert not {u.speaker for u in held.adapt} & {u.speaker for u in held.test}
    ekorpus = corpus({"": {e: 10 for e in EMOTIONS}}, name="ekorpus")
    fallback = make_split(ekorpus, ProtocolConfig(protocol="held_out_speaker"))
    assert fallback.method.startswith("no speaker ids") and len(fallback.test) == math.ceil(0.2 * len(ekorpus))
    with pytest.raises(DataError, match="no speaker id"):
        make_split(ekorpus, ProtocolConfig(protocol="held_out_speaker", speakerless_fallback=False))


def test_report_and_record() -> None:
    split = make_split(BALANCED, ProtocolConfig(random_state=5))
    record = json.loads(json.dumps(split.to_dict()))
    assert record["random_state"] == 5 and record["protocol"] == "paper"
    assert record["class_counts"]["test"] == {k: v for k, v in label_counts(split.test).items()}
    assert sorted(record["ids"]["adapt"] + record["ids"]["test"]) == sorted(ids(BALANCED))
    text = split.report()
    assert "random_state=5" in text and all(e in text for e in EMOTIONS)


def test_config_validation_and_yaml_loading() -> None:
    cfg = from_dict(ProtocolConfig, {"protocol": "held_out_speaker", "emodb_test_speakers": ["03"]})
    assert cfg.emodb_test_speakers == ("03",)
    with pytest.raises(ConfigError):
        ProtocolConfig(protocol="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="paper_test_size"):
        ProtocolConfig(paper_test_size=1.0)
    with pytest.raises(ConfigError, match="both test and validation"):
        ProtocolConfig(emodb_validation_speakers=("15",))
    with pytest.raises(ConfigError, match="both test and validation"):
        speaker_split(BALANCED, test_speakers=["s1"], validation_speakers=["s1"])
