"""Speech-emotion utterances and the emotion label set shared by all corpora.

Every corpus loader (:mod:`audioadapt.data.corpora`) maps its native labels
onto :data:`EMOTIONS`. ``label=None`` means the utterance has no label in the
shared set: either it is unlabelled, or its native label (kept in
``native_label``) has no counterpart, such as IEMOCAP ``fru`` or EMO-DB ``L``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioadapt.errors import DataError

#: The four emotions shared by the source and every target corpus, in class-index order.
EMOTIONS: tuple[str, ...] = ("angry", "happy", "sad", "neutral")

#: Allowed values of :attr:`Utterance.gender`.
GENDERS: tuple[str, ...] = ("female", "male")

_GENDER_ALIASES = {"f": "female", "female": "female", "m": "male", "male": "male"}


class FrozenDict(dict):
    """A read-only dict that pickles (``MappingProxyType`` does not, and loaders' records cross processes)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Utterance.extra is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        return (FrozenDict, (dict(self),))


def normalize_gender(value: str | None) -> str | None:
    """Map ``F``/``M``/``female``/``male`` (any case) to ``"female"``/``"male"``.

    Empty strings and ``None`` give ``None``; anything else raises ``ValueError``.
    """
    if value is None or not value.strip():
        return None
    key = value.strip().lower()
    if key not in _GENDER_ALIASES:
        raise ValueError(f"unknown gender {value!r}; expected one of F, M, female, male")
    return _GENDER_ALIASES[key]


@dataclass(frozen=True)
class Utterance:
    """One labelled (or unlabelled) speech recording.

    Attributes
    ----------
    path: the audio file on disk (not decoded by the loaders).
    label: one of :data:`EMOTIONS`, or ``None`` when there is none.
    speaker: the corpus's own speaker id, or ``None`` when the corpus has none.
    corpus: short corpus name, e.g. ``"iemocap"``.
    utt_id: identifier that is unique within the corpus (usually the file stem).
    gender: ``"female"``, ``"male"`` or ``None``.
    native_label: the corpus's own label code (``"exc"``, ``"W"``, ``"joy"``), if any.
    extra: further corpus-specific fields (read-only; not part of equality).
    """

    path: Path
    label: str | None
    speaker: str | None
    corpus: str
    utt_id: str
    gender: str | None = None
    native_label: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.label is not None and self.label not in EMOTIONS:
            raise DataError(f"label {self.label!r} of utterance {self.utt_id!r} is not one of {list(EMOTIONS)}")
        if self.gender is not None and self.gender not in GENDERS:
            raise DataError(f"gender {self.gender!r} of utterance {self.utt_id!r} is not one of {list(GENDERS)}")
        if not self.utt_id:
            raise DataError(f"utterance at {self.path} has an empty id")
        object.__setattr__(self, "extra", FrozenDict(self.extra))

    @property
    def label_index(self) -> int | None:
        """Position of :attr:`label` in :data:`EMOTIONS`, or ``None``."""
        return None if self.label is None else EMOTIONS.index(self.label)

    @property
    def key(self) -> str:
        """``corpus/utt_id``: unique across corpora."""
        return f"{self.corpus}/{self.utt_id}"


def label_counts(utterances: Iterable[Utterance]) -> dict[str | None, int]:
    """Number of utterances per label, in :data:`EMOTIONS` order.

    ``None`` (no shared label) is listed last and only when it occurs.
    """
    counts: dict[str | None, int] = {e: 0 for e in EMOTIONS}
    for utt in utterances:
        counts[utt.label] = counts.get(utt.label, 0) + 1
    return counts


def speaker_counts(utterances: Iterable[Utterance]) -> dict[str | None, int]:
    """Number of utterances per speaker id, sorted by speaker (``None`` last)."""
    counts: dict[str | None, int] = {}
    for utt in utterances:
        counts[utt.speaker] = counts.get(utt.speaker, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))
