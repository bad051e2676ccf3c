"""The Utterance record and the shared emotion label set."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.data.utterances import EMOTIONS, Utterance, label_counts, normalize_gender, speaker_counts
from audioadapt.errors import DataError


def utt(label: str | None, speaker: str | None = "s1", utt_id: str = "u1", **kw) -> Utterance:
    return Utterance(path=f"/x/{utt_id}.wav", label=label, speaker=speaker, corpus="c", utt_id=utt_id, **kw)


def test_the_shared_label_set() -> None:
    assert EMOTIONS == ("angry", "happy", "sad", "neutral")


def test_record_fields_and_validation() -> None:
    u = utt("sad", gender="female", native_label="T", extra={"text_id": "a01"})
    assert u.path == Path("/x/u1.wav") and isinstance(u.path, Path)
    assert u.label_index == EMOTIONS.index("sad") and utt(None).label_index is None
    assert u.key == "c/u1"
    assert u.extra["text_id"] == "a01"
    with pytest.raises(TypeError):
        u.extra["text_id"] = "b02"  # type: ignore[index]
    with pytest.raises(DataError, match="'excited'"):
        utt("excited")
    with pytest.raises(DataError, match="gender 'F'"):
        utt("sad", gender="F")
    with pytest.raises(DataError, match="empty id"):
        utt("sad", utt_id="")


def test_pickles_with_its_extra_fields() -> None:
    import copy
    import pickle

    u = utt("neutral", gender="male", extra={"vad": (2.5, 3.0, 3.5), "session": 1})
    back = pickle.loads(pickle.dumps(u))
    assert back == u and dict(back.extra) == {"vad": (2.5, 3.0, 3.5), "session": 1}
    assert copy.deepcopy(u).extra["session"] == 1
    with pytest.raises(TypeError):
        back.extra.update(session=2)  # type: ignore[attr-defined]


def test_equality_ignores_extra_and_records_hash() -> None:
    a, b = utt("happy", extra={"x": 1}), utt("happy", extra={"x": 2})
    assert a == b and hash(a) == hash(b)
    assert a != utt("angry")
    assert len({a, b, utt("happy", utt_id="u2")}) == 2


def test_normalize_gender() -> None:
    assert [normalize_gender(g) for g in ("F", "m", "Female", " male ", "", None)] == [
        "female",
        "male",
        "female",
        "male",
        None,
        None,
    ]
    with pytest.raises(ValueError, match="unknown gender"):
        normalize_gender("x")


def test_counts() -> None:
    utts = [utt("sad", "b", "1"), utt("angry", "a", "2"), utt("sad", None, "3"), utt(None, "a", "4")]
    counts = label_counts(utts)
    assert counts == {"angry": 1, "happy": 0, "sad": 2, "neutral": 0, None: 1}
    assert list(counts) == [*EMOTIONS, None]
    assert None not in label_counts(utts[:3])
    assert speaker_counts(utts) == {"a": 2, "b": 1, None: 1} and list(speaker_counts(utts)) == ["a", "b", None]
