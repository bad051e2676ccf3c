"""The DESED / DCASE 2019 task 4 dataset layout and loading it into clip records.

:class:`DcaseLayout` is the one home of the relative paths; :class:`SedDataConfig`
says which splits to load and how strictly; :func:`load_dcase_dataset` reads
them with the TSV readers of :mod:`audioadapt.data.dcase` and reports how many
listed clips were actually usable per split (DCASE users lose clips to dead
links).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from audioadapt.data.dcase import OnError, _Read, _strong, _unlabeled, _weak, read_durations_tsv
from audioadapt.data.manifest import ClipRecord, Event, SkipReport
from audioadapt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


SED_SPLITS = ("synthetic", "weak", "unlabeled", "validation")
#: How a class list given in the configuration is named in messages.
CONFIG_CLASSES = "data.classes"
_SPLIT_KIND = {"synthetic": "strong", "weak": "weak", "unlabeled": "unlabeled", "validation": "strong"}


@dataclass(frozen=True)
class DcaseLayout:
    """Relative paths of the DESED 2019 layout under a dataset root.

    These defaults are the single definition of the layout; the generator of
    synthetic datasets writes to the same paths.
    """

    synthetic_tsv: str = "metadata/train/synthetic.tsv"
    synthetic_audio: str = "audio/train/synthetic"
    weak_tsv: str = "metadata/train/weak.tsv"
    weak_audio: str = "audio/train/weak"
    unlabeled_tsv: str = "metadata/train/unlabel_in_domain.tsv"
    unlabeled_audio: str = "audio/train/unlabel_in_domain"
    validation_tsv: str = "metadata/validation/validation.tsv"
    validation_audio: str = "audio/validation"
    validation_durations_tsv: str = "metadata/validation/validation_durations.tsv"
    dataset_json: str = "dataset.json"

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value:
                raise ConfigError(f"layout.{name} must not be empty")

    def tsv(self, split: str) -> str:
        """Metadata file of ``split`` (one of :data:`SED_SPLITS`)."""
        return getattr(self, f"{_check_split(split)}_tsv")

    def audio(self, split: str) -> str:
        """Audio folder of ``split``."""
        return getattr(self, f"{_check_split(split)}_audio")


def _check_split(split: str) -> str:
    if split not in SED_SPLITS:
        raise ConfigError(f"unknown SED split '{split}'; valid: {', '.join(SED_SPLITS)}")
    return split


@dataclass(frozen=True)
class SedDataConfig:
    """Where the SED data is and how strictly it is read.

    Attributes
    ----------
    layout: relative paths under the dataset root.
    classes: the class list; ``None`` takes the one of the dataset's
        ``dataset.json`` (written by ``audioadapt synth sed``) when it has one,
        else infers it as the sorted union of the labels of the training
        splits (synthetic and weak) loaded. A given or declared list makes
        any other label an error naming its file and line.
    splits: which splits to load.
    check_audio: require every listed audio file to exist (and every strong
        event to end within its audio).
    on_error: ``"raise"`` on the first bad row, or ``"skip"`` bad rows (e.g.
        clips lost to dead links) and report them; events past the end of
        their clip are then cut at the end.
    """

    layout: DcaseLayout = field(default_factory=DcaseLayout)
    classes: tuple[str, ...] | None = None
    splits: tuple[str, ...] = SED_SPLITS
    check_audio: bool = True
    on_error: OnError = "raise"

    def __post_init__(self) -> None:
        for split in self.splits:
            _check_split(split)
        if len(set(self.splits)) != len(self.splits):
            raise ConfigError(f"splits repeats a name: {list(self.splits)}")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"classes repeats a name: {list(self.classes)}")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")


@dataclass(frozen=True)
class SplitCounts:
    """How many clips a split's metadata listed, how many were kept, and what reading changed."""

    listed: int
    kept: int
    skipped_rows: int
    clipped_events: int = 0

    @property
    def lost(self) -> int:
        """Clips named in the metadata but not usable (e.g. missing audio)."""
        return self.listed - self.kept


@dataclass(frozen=True)
class SedSplit:
    """The clip records of one split and their counts."""

    name: str
    records: tuple[ClipRecord, ...]
    counts: SplitCounts


def infer_classes(
    strong: Iterable[Mapping[str, Iterable[Event]]] = (),
    weak: Iterable[Mapping[str, Iterable[str]]] = (),
) -> tuple[str, ...]:
    """Sorted union of the labels of strong and weak label mappings."""
    labels: set[str] = set()
    for clips in strong:
        labels.update(ev.label for events in clips.values() for ev in events)
    for clips in weak:
        labels.update(tag for tags in clips.values() for tag in tags)
    return tuple(sorted(labels))


def dataset_description(root: str | Path, layout: DcaseLayout | None = None) -> dict | None:
    """The dataset's ``dataset.json`` (written by ``audioadapt synth sed``); ``None`` if there is no such file.

    A file that cannot be read is a :class:`DataError` naming it; one that holds no JSON object reads as ``{}``.
    """
    path = Path(root) / (layout or DcaseLayout()).dataset_json
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the dataset description ({exc}); fix or remove the file", path) from None
    return info if isinstance(info, dict) else {}


def dataset_classes(root: str | Path, layout: DcaseLayout | None = None) -> tuple[str, ...] | None:
    """The class list declared by the dataset's ``dataset.json``; ``None`` if it has no such file or list."""
    path = Path(root) / (layout or DcaseLayout()).dataset_json
    info = dataset_description(root, layout)
    classes = None if info is None else info.get("classes")
    if classes is None:
        return None
    if (not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise DataError("'classes' must be a list of distinct, non-empty class names", path)
    return tuple(classes)


def _read_split(root: Path, split: str, config: SedDataConfig, classes: Iterable[str] | None, report: SkipReport,
                *, classes_from: str | None = None, durations: Mapping[str, float] | None = None) -> _Read:
    layout = config.layout
    path = root / layout.tsv(split)
    audio_dir = root / layout.audio(split) if config.check_audio else None
    kind = _SPLIT_KIND[split]
    common = dict(audio_dir=audio_dir, on_error=config.on_error, report=report)
    if kind == "strong":
        return _strong(path, classes=classes, classes_from=classes_from, durations=durations, **common)
    if kind == "weak":
        return _weak(path, classes=classes, classes_from=classes_from, **common)
    return _unlabeled(path, **common)


def _records(root: Path, split: str, config: SedDataConfig, read: _Read, skipped: int) -> SedSplit:
    audio_root = root / config.layout.audio(split)
    kind = _SPLIT_KIND[split]
    if kind == "strong":
        recs = [ClipRecord(f, audio_root / f, split, events=ev) for f, ev in read.value.items()]
    elif kind == "weak":
        recs = [ClipRecord(f, audio_root / f, split, tags=tags) for f, tags in read.value.items()]
    else:
        recs = [ClipRecord(f, audio_root / f, split) for f in read.value]
    counts = SplitCounts(listed=len(read.listed), kept=len(recs), skipped_rows=skipped, clipped_events=read.clipped)
    return SedSplit(split, tuple(recs), counts)


def load_sed_split(
    root: str | Path,
    split: str,
    config: SedDataConfig | None = None,
    *,
    classes: Iterable[str] | None = None,
    classes_from: str | None = None,
    durations: Mapping[str, float] | None = None,
    report: SkipReport | None = None,
) -> SedSplit:
    """Clip records of one split of a DESED-layout dataset under ``root``.

    ``classes`` (or ``config.classes``) enables the unknown-label check;
    ``classes_from`` names where the list comes from. Strong events must end
    within their clip (``durations`` and, with ``config.check_audio``, the
    audio's length).
    """
    config = config or SedDataConfig()
    root = Path(root)
    if classes is None:
        classes, classes_from = config.classes, CONFIG_CLASSES
    local = SkipReport()
    read = _read_split(root, split, config, classes, local, classes_from=classes_from, durations=durations)
    if report is not None:
        report.skipped.extend(local.skipped)
    return _records(root, split, config, read, len(local))


@dataclass(frozen=True)
class DcaseDataset:
    """All loaded splits of a DESED-layout dataset.

    Attributes
    ----------
    root: the dataset root.
    classes: the class list (given, declared by ``dataset.json``, or inferred).
    classes_from: where the class list comes from.
    splits: split name -> its records and counts.
    durations: validation clip durations, or ``None`` without a durations file.
    skipped: the rows skipped while reading (skip mode) and ignored duplicates.
    """

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, SedSplit]
    durations: dict[str, float] | None
    skipped: SkipReport
    classes_from: str = ""

    def records(self, split: str) -> tuple[ClipRecord, ...]:
        """The records of ``split`` (an error if it was not loaded)."""
        if split not in self.splits:
            raise DataError(f"split '{split}' was not loaded (loaded: {', '.join(self.splits)})", self.root)
        return self.splits[split].records

    @property
    def counts(self) -> dict[str, SplitCounts]:
        """Clip counts per split."""
        return {name: s.counts for name, s in self.splits.items()}

    def summary(self) -> str:
        """One line per split: clips kept of clips listed."""
        lines = [f"{self.root}: {len(self.classes)} classes ({self.classes_from})"]
        for name, c in self.counts.items():
            lost = f", {c.lost} lost" if c.lost else ""
            cut = f", {c.clipped_events} event(s) cut at the clip's end" if c.clipped_events else ""
            lines.append(f"  {name}: {c.kept} of {c.listed} clips{lost}{cut}")
        return "\n".join(lines)


def known_classes(root: str | Path, config: SedDataConfig) -> tuple[tuple[str, ...] | None, str]:
    """The class list known before reading any label, and where it comes from.

    ``config.classes`` when given, else the list of the dataset's
    ``dataset.json``, else ``(None, "")`` (to be inferred from the labels).
    """
    if config.classes is not None:
        return tuple(config.classes), CONFIG_CLASSES
    declared = dataset_classes(root, config.layout)
    if declared is not None:
        return declared, str(Path(root) / config.layout.dataset_json)
    return None, ""


def load_dcase_dataset(root: str | Path, config: SedDataConfig | None = None) -> DcaseDataset:
    """Load every configured split of a DESED 2019-layout dataset.

    The classes are ``config.classes``, else those the dataset's
    ``dataset.json`` declares, else the sorted union of the training labels
    (synthetic events and weak tags); in the first two cases any other label
    is an error, in the last the validation split is checked against them,
    so a typo there is an error, not a new class. The clip counts actually
    found are logged and returned.
    """
    config = config or SedDataConfig()
    root = Path(root)
    report = SkipReport()
    reads: dict[str, tuple[_Read, int]] = {}
    classes, classes_from = known_classes(root, config)
    durations = None
    dur_path = root / config.layout.validation_durations_tsv
    if "validation" in config.splits and dur_path.is_file():
        audio_dir = root / config.layout.validation_audio if config.check_audio else None
        durations = read_durations_tsv(dur_path, audio_dir=audio_dir, on_error=config.on_error, report=report)

    def read(split: str) -> None:
        before = len(report)
        result = _read_split(root, split, config, classes, report, classes_from=classes_from,
                             durations=durations if split == "validation" else None)
        reads[split] = (result, len(report) - before)

    def infer(names: Iterable[str]) -> tuple[str, ...]:
        names = list(names)
        return infer_classes(
            [reads[s][0].value for s in names if _SPLIT_KIND[s] == "strong"],
            [reads[s][0].value for s in names if _SPLIT_KIND[s] == "weak"],
        )

    train = [s for s in config.splits if s in ("synthetic", "weak")]
    for split in train:
        read(split)
    if classes is None and train:
        classes = infer(train)
        classes_from = "the labels of " + " and ".join(str(root / config.layout.tsv(s)) for s in train)
    for split in config.splits:
        if split not in reads:
            read(split)
    if classes is None:
        classes = infer(config.splits)
        classes_from = "the labels of " + " and ".join(str(root / config.layout.tsv(s)) for s in config.splits)
    splits = {s: _records(root, s, config, reads[s][0], reads[s][1]) for s in config.splits}
    dataset = DcaseDataset(root, tuple(classes), splits, durations, report, classes_from)
    logger.info("%s", dataset.summary())
    return dataset


__all__ = [
    "CONFIG_CLASSES",
    "SED_SPLITS",
    "DcaseDataset",
    "DcaseLayout",
    "SedDataConfig",
    "SedSplit",
    "SplitCounts",
    "dataset_classes",
    "dataset_description",
    "infer_classes",
    "known_classes",
    "load_dcase_dataset",
    "load_sed_split",
]
