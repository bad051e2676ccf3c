"""Target-corpus evaluation protocols for cross-lingual SER.

A :class:`Split` says which target utterances the model may adapt on (their
labels unused) and which ones it is scored on. Three protocols:

* ``"paper"`` (reproduction of NNPM): EMO-DB by speaker (speaker 15 test,
  16 validation, the other 8 adaptation); every other corpus a stratified
  random split with ``paper_test_size`` = 0.33 (``ceil(0.33 n)`` test items,
  like scikit-learn's ``train_test_split``) and a recorded ``random_state``.
  The index selection is audioadapt's own, so the exact items differ from a
  scikit-learn split with the same seed.
* ``"transductive"``: adapt on all target utterances and score on the same
  ones (the common UDA-SER practice; optimistic).
* ``"held_out_speaker"``: adapt on some target speakers and score on the
  others; no speaker is on both sides. Speakers are chosen deterministically
  from the seed, among ``held_out_candidates`` random speaker orders, to put
  about ``held_out_test_size`` of the utterances on the test side with class
  proportions as close as possible to the whole corpus. Corpora without
  speaker ids (EKORPUS) fall back to a stratified split when
  ``speakerless_fallback`` is true; the split's ``method`` records it.

Every split also measures how far emotion is a function of speaker
(:func:`speaker_label_purity`: the share of utterances whose emotion is
their speaker's most frequent one). In a corpus where most speakers act one
emotion (URDU: 0.96), a model that learns the target's labels learns its
speakers: a held-out-speaker score then measures transfer to voices whose
emotions the adaptation side may never have shown, and a random split lets
speaker identity stand in for emotion. :func:`make_split` warns above
:data:`SPEAKER_CONFOUND_WARNING`.

Target labels are never used for model selection; the EMO-DB validation
speaker is only for reporting. Every split reports its class counts per side
(:meth:`Split.report`) so that the stratification can be checked and
published.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from audioadapt.data.utterances import EMOTIONS, Utterance, label_counts
from audioadapt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Protocol = Literal["paper", "transductive", "held_out_speaker"]

_PROTOCOLS = ("paper", "transductive", "held_out_speaker")

#: Speaker/label purity (:func:`speaker_label_purity`) above which a split warns of a speaker/emotion confound.
SPEAKER_CONFOUND_WARNING = 0.75


@dataclass(frozen=True)
class ProtocolConfig:
    """How the target corpus is split; the one home of the split defaults.

    Attributes
    ----------
    protocol: ``"paper"``, ``"transductive"`` or ``"held_out_speaker"``.
    random_state: seed of every random choice (recorded in the split).
    paper_test_size: test fraction of the paper's stratified random split.
    held_out_test_size: target test fraction (of utterances) for held-out speakers.
    held_out_candidates: random speaker orders tried by the held-out search.
    speakerless_fallback: for a corpus without speaker ids, make the held-out
        protocol a stratified split of ``held_out_test_size`` instead of failing.
    emodb_test_speakers, emodb_validation_speakers: the paper's EMO-DB split.
    """

    protocol: Protocol = "paper"
    random_state: int = 42
    paper_test_size: float = 0.33
    held_out_test_size: float = 0.2
    held_out_candidates: int = 256
    speakerless_fallback: bool = True
    emodb_test_speakers: tuple[str, ...] = ("15",)
    emodb_validation_speakers: tuple[str, ...] = ("16",)

    def __post_init__(self) -> None:
        if self.protocol not in _PROTOCOLS:
            raise ConfigError(f"protocol must be one of {list(_PROTOCOLS)}, got {self.protocol!r}")
        for name in ("paper_test_size", "held_out_test_size"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{name} must be in (0, 1), got {value}")
        if self.held_out_candidates < 1:
            raise ConfigError(f"held_out_candidates must be at least 1, got {self.held_out_candidates}")
        overlap = set(self.emodb_test_speakers) & set(self.emodb_validation_speakers)
        if overlap:
            raise ConfigError(f"EMO-DB speakers {sorted(overlap)} are both test and validation speakers")


@dataclass(frozen=True)
class Split:
    """Target utterances to adapt on, to score on, and (optionally) to report on.

    Attributes
    ----------
    protocol: the protocol that made the split.
    method: how it was made, in words (e.g. ``"stratified random, test_size=0.33"``).
    adapt: utterances used without labels for adaptation.
    test: utterances scored.
    validation: utterances only reported (EMO-DB speaker 16), never used to select.
    random_state: the seed, when randomness was involved.
    """

    protocol: str
    method: str
    adapt: tuple[Utterance, ...]
    test: tuple[Utterance, ...]
    validation: tuple[Utterance, ...] = ()
    random_state: int | None = None

    def sides(self) -> dict[str, tuple[Utterance, ...]]:
        """Non-empty sides by name: ``adapt``, ``test`` and ``validation``."""
        sides = {"adapt": self.adapt, "test": self.test, "validation": self.validation}
        return {k: v for k, v in sides.items() if v}

    def class_counts(self) -> dict[str, dict[str | None, int]]:
        """Per side, the number of utterances per label."""
        return {name: label_counts(utts) for name, utts in self.sides().items()}

    def speakers(self) -> dict[str, list[str]]:
        """Per side, the sorted speaker ids (speakerless utterances are left out)."""
        return {name: sorted({u.speaker for u in utts if u.speaker is not None}) for name, utts in self.sides().items()}

    def proportion_gap(self) -> float:
        """Largest difference in a class's share between the adapt and test sides."""
        return _proportion_gap(self.adapt, self.test)

    def speaker_label_purity(self) -> dict[str, float | None]:
        """:func:`speaker_label_purity` of the whole target set (``corpus``) and of each side."""
        whole = {u.key: u for utts in self.sides().values() for u in utts}.values()
        return {"corpus": speaker_label_purity(whole),
                **{name: speaker_label_purity(utts) for name, utts in self.sides().items()}}

    def report(self) -> str:
        """A small text table of class counts per side, for logs and papers."""
        counts = self.class_counts()
        labels = list(dict.fromkeys(k for c in counts.values() for k in c))
        head = f"{'side':<11}" + "".join(f"{str(lab):>9}" for lab in labels) + f"{'total':>9}{'speakers':>10}"
        lines = [f"protocol={self.protocol} method={self.method} random_state={self.random_state}", head]
        speakers = self.speakers()
        for side, c in counts.items():
            row = "".join(f"{c.get(lab, 0):>9}" for lab in labels)
            lines.append(f"{side:<11}{row}{sum(c.values()):>9}{len(speakers[side]):>10}")
        lines.append(f"largest class-share gap adapt vs test: {self.proportion_gap():.3f}")
        purity = self.speaker_label_purity()["corpus"]
        if purity is not None:
            lines.append(f"share of utterances with their speaker's most frequent emotion: {purity:.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: protocol, method, seed, counts, speakers and ids per side."""
        return {
            "protocol": self.protocol,
            "method": self.method,
            "random_state": self.random_state,
            "class_counts": {s: {str(k): v for k, v in c.items()} for s, c in self.class_counts().items()},
            "speakers": self.speakers(),
            "proportion_gap": self.proportion_gap(),
            "speaker_label_purity": self.speaker_label_purity(),
            "ids": {s: [u.utt_id for u in utts] for s, utts in self.sides().items()},
        }


def _ordered(utterances: Iterable[Utterance]) -> list[Utterance]:
    """Utterances in a canonical order, so that splits do not depend on input order."""
    utts = sorted(utterances, key=lambda u: (u.corpus, u.utt_id))
    dups = [k for k, c in Counter(u.key for u in utts).items() if c > 1]
    if dups:
        raise DataError(f"utterance(s) {dups[:5]} occur more than once; a split needs unique ids")
    if not utts:
        raise DataError("cannot split an empty set of utterances")
    return utts


def _shares(utts: Sequence[Utterance]) -> dict[str | None, float]:
    n = len(utts)
    return {k: v / n for k, v in label_counts(utts).items()} if n else {}


def _proportion_gap(a: Sequence[Utterance], b: Sequence[Utterance]) -> float:
    if not a or not b:
        return 0.0
    sa, sb = _shares(a), _shares(b)
    return max(abs(sa.get(k, 0.0) - sb.get(k, 0.0)) for k in set(sa) | set(sb))


def speaker_label_purity(utterances: Iterable[Utterance]) -> float | None:
    """Share of the labelled utterances with a speaker id whose label is their speaker's most frequent one.

    1.0 when every speaker has a single emotion; about the largest class share when every speaker has every
    emotion in the corpus's proportions. ``None`` when no utterance has both a speaker and a label.
    """
    per_speaker: dict[str, Counter[str]] = {}
    for u in utterances:
        if u.speaker is not None and u.label is not None:
            per_speaker.setdefault(u.speaker, Counter())[u.label] += 1
    total = sum(sum(c.values()) for c in per_speaker.values())
    if not total:
        return None
    return sum(c.most_common(1)[0][1] for c in per_speaker.values()) / total


def _class_order(label: str | None) -> int:
    return EMOTIONS.index(label) if label in EMOTIONS else len(EMOTIONS)


def transductive_split(utterances: Iterable[Utterance]) -> Split:
    """Adapt on every utterance and score on the same ones."""
    utts = tuple(_ordered(utterances))
    return Split("transductive", "all utterances on both sides", utts, utts)


def stratified_split(
    utterances: Iterable[Utterance], *, test_size: float, random_state: int, protocol: str = "paper"
) -> Split:
    """Random split with the same class proportions on both sides.

    ``ceil(test_size * n)`` utterances go to the test side. Each class gives
    its share, rounded so that the total is exact (largest remainders first);
    the members of each class are drawn with ``numpy.random.default_rng(random_state)``.
    Unlabelled utterances (``label=None``) form a class of their own.
    """
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"test_size must be in (0, 1), got {test_size}")
    utts = _ordered(utterances)
    n = len(utts)
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise DataError(f"cannot split {n} utterance(s) with test_size={test_size}: one side would be empty")
    by_class: dict[str | None, list[int]] = {}
    for i, u in enumerate(utts):
        by_class.setdefault(u.label, []).append(i)
    classes = sorted(by_class, key=_class_order)
    exact = {c: len(by_class[c]) * n_test / n for c in classes}
    take = {c: math.floor(exact[c]) for c in classes}
    by_remainder = sorted(classes, key=lambda c: (-(exact[c] - take[c]), -len(by_class[c]), _class_order(c)))
    for c in by_remainder[: n_test - sum(take.values())]:
        take[c] += 1
    rng = np.random.default_rng(random_state)
    test_idx: set[int] = set()
    for c in classes:
        members = np.asarray(by_class[c])
        test_idx.update(int(i) for i in rng.permutation(members)[: take[c]])
    adapt = tuple(u for i, u in enumerate(utts) if i not in test_idx)
    test = tuple(u for i, u in enumerate(utts) if i in test_idx)
    method = f"stratified random, test_size={test_size}"
    return Split(protocol, method, adapt, test, random_state=random_state)


def speaker_split(
    utterances: Iterable[Utterance],
    *,
    test_speakers: Iterable[str],
    validation_speakers: Iterable[str] = (),
    protocol: str = "paper",
) -> Split:
    """Fixed speakers for test (and validation); every other speaker adapts."""
    utts = _ordered(utterances)
    test_set, val_set = set(test_speakers), set(validation_speakers)
    if test_set & val_set:
        raise ConfigError(f"speakers {sorted(test_set & val_set)} are both test and validation speakers")
    present = {u.speaker for u in utts}
    missing = sorted((test_set | val_set) - present)
    if missing:
        known = sorted(s for s in present if s is not None)
        raise DataError(f"speaker(s) {missing} not in the data; speakers present: {known}")
    test = tuple(u for u in utts if u.speaker in test_set)
    validation = tuple(u for u in utts if u.speaker in val_set)
    adapt = tuple(u for u in utts if u.speaker not in test_set | val_set)
    if not adapt:
        raise DataError("no speaker is left for adaptation")
    method = f"speakers test={sorted(test_set)} validation={sorted(val_set)}"
    return Split(protocol, method, adapt, test, validation)


def held_out_speaker_split(
    utterances: Iterable[Utterance],
    *,
    test_size: float,
    random_state: int,
    candidates: int,
    test_speakers: Iterable[str] | None = None,
) -> Split:
    """Adapt on some speakers and score on the others (no speaker on both sides).

    Unless ``test_speakers`` is given, ``candidates`` random speaker orders are
    drawn from ``random_state``; each takes speakers in order while that
    brings the test side closer to ``test_size`` of the utterances, and the
    order whose test side best matches both the size and the corpus's class
    proportions wins (sum of the size error and the largest class-share gap).
    """
    utts = _ordered(utterances)
    speakerless = sum(u.speaker is None for u in utts)
    if speakerless:
        raise DataError(
            f"{speakerless} of {len(utts)} utterances have no speaker id; a held-out-speaker split is impossible "
            "(use the paper split or the stratified fallback)"
        )
    speakers = sorted({u.speaker for u in utts if u.speaker is not None})
    if len(speakers) < 2:
        raise DataError(f"a held-out-speaker split needs at least 2 speakers, found {speakers}")
    if test_speakers is not None:
        split = speaker_split(utts, test_speakers=test_speakers, protocol="held_out_speaker")
        return Split("held_out_speaker", split.method, split.adapt, split.test)
    per_speaker = {s: [u for u in utts if u.speaker == s] for s in speakers}
    n = len(utts)
    target = test_size * n
    rng = np.random.default_rng(random_state)
    best: tuple[float, list[str]] | None = None
    for _ in range(candidates):
        order = [speakers[i] for i in rng.permutation(len(speakers))]
        chosen, count = [order[0]], len(per_speaker[order[0]])
        for s in order[1:-1]:
            if abs(count + len(per_speaker[s]) - target) >= abs(count - target):
                break
            chosen.append(s)
            count += len(per_speaker[s])
        test = [u for s in chosen for u in per_speaker[s]]
        score = abs(count / n - test_size) + _proportion_gap(utts, test)
        if best is None or score < best[0]:
            best = (score, chosen)
    assert best is not None
    chosen_set = set(best[1])
    adapt = tuple(u for u in utts if u.speaker not in chosen_set)
    test = tuple(u for u in utts if u.speaker in chosen_set)
    method = f"held-out speakers test={sorted(chosen_set)}, target test_size={test_size}"
    split = Split("held_out_speaker", method, adapt, test, random_state=random_state)
    missing = [c for c in EMOTIONS if label_counts(test)[c] == 0 and label_counts(adapt)[c] > 0]
    if missing:
        logger.warning("held-out-speaker split: no %s utterance on the test side (speaker/class confound)", missing)
    return split


def paper_split(utterances: Iterable[Utterance], config: ProtocolConfig) -> Split:
    """The NNPM paper's split: EMO-DB by speaker, other corpora stratified 67/33."""
    utts = _ordered(utterances)
    corpora = sorted({u.corpus for u in utts})
    if len(corpora) != 1:
        raise DataError(f"the paper split is defined per corpus; got utterances from {corpora}")
    if corpora[0] == "emodb":
        return speaker_split(
            utts,
            test_speakers=config.emodb_test_speakers,
            validation_speakers=config.emodb_validation_speakers,
        )
    return stratified_split(utts, test_size=config.paper_test_size, random_state=config.random_state)


def make_split(utterances: Iterable[Utterance], config: ProtocolConfig) -> Split:
    """The split that ``config.protocol`` asks for; logs its class counts."""
    utts = _ordered(utterances)
    if config.protocol == "transductive":
        split = transductive_split(utts)
    elif config.protocol == "paper":
        split = paper_split(utts, config)
    elif any(u.speaker is None for u in utts) and config.speakerless_fallback:
        fallback = stratified_split(
            utts, test_size=config.held_out_test_size, random_state=config.random_state, protocol="held_out_speaker"
        )
        split = Split(
            "held_out_speaker",
            f"no speaker ids: {fallback.method}",
            fallback.adapt,
            fallback.test,
            random_state=config.random_state,
        )
    else:
        split = held_out_speaker_split(
            utts,
            test_size=config.held_out_test_size,
            random_state=config.random_state,
            candidates=config.held_out_candidates,
        )
    logger.info("target split\n%s", split.report())
    purity = split.speaker_label_purity()["corpus"]
    if purity is not None and purity > SPEAKER_CONFOUND_WARNING:
        logger.warning(
            "%.0f %% of the target utterances carry their speaker's most frequent emotion: emotion and speaker are "
            "confounded, so labels learnt on some speakers teach their voices (a held-out-speaker score measures "
            "transfer to new voices, a random split lets speaker identity stand in for emotion)", 100 * purity)
    return split
