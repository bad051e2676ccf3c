"""A synthetic domain-shift SED dataset in the DCASE 2019 / DESED layout.

:func:`generate_sed_dataset` writes

* ``synthetic``: strongly labelled clips of the *synthetic* domain;
* ``weak``: weakly labelled clips of the *real* domain;
* ``unlabeled``: unlabelled clips of the real domain;
* ``validation``: strongly labelled clips of the real domain, with a
  durations file,

plus ``dataset.json`` (classes, sizes, seeds, versions, every domain setting).
Paths come from :class:`audioadapt.data.corpora.desed.DcaseLayout`. Apart
from that layout, ``metadata/truth/`` (:data:`TRUTH_DIR`) holds the true
events of the weak and unlabelled clips, for diagnostics only (scoring pseudo
labels, ``method.diagnostics.pseudo_label_truth``); training never reads them.

Events come from the ten procedural classes of
:mod:`audioadapt.data.synthetic.sources`, or from banks of real isolated
recordings (:mod:`audioadapt.data.event_bank`); backgrounds from each
domain's noise family or from a bank of background recordings. With banks,
every source recording (group) is used by one side only: the synthetic
split, the real training splits (weak + unlabeled) or the validation split.

Two seeds drive the generator. The *split seed* (``split_seed``, by default
the same as ``seed``) decides what each side holds: which source recordings
go to which side, each split's plan (empty clips, primary classes) and the
event sources of every clip (the labels, the procedural sources or the
recordings drawn). The *rendering seed* (``seed``) decides how they are
heard: the backgrounds drawn, rooms and microphones, event placement, SNRs
and levels. Keeping the split seed and changing the rendering seed or the
domain settings (backgrounds, SNR range, reverberation) thus gives a second
real-domain validation set of the same held-out sources, none of which a
model trained on the first dataset has heard.

Size presets: :data:`~audioadapt.data.synthetic.sizes.SIZE_PRESETS`
(tiny 24/12/12/12 clips, small 400/200/400/100, medium 2000/1000/3000/500
for synthetic/weak/unlabeled/validation).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from audioadapt.data.event_bank import BankItem, assign_groups, read_bank
from audioadapt.data.manifest import Event
from audioadapt.data.soundscape import SceneConfig, plan_clips, time_grid
from audioadapt.data.synthetic.domain import ChannelConfig, DomainConfig, NoiseConfig, blend_domains
from audioadapt.data.synthetic.sizes import SIZE_PRESETS, SizeOverrides, SplitSizes
from audioadapt.data.synthetic.render import (
    ClipJob,
    SplitContext,
    available_workers,
    plan_stream,
    run_jobs,
)
from audioadapt.data.synthetic.sources import CLASS_NAMES
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig

logger = logging.getLogger(__name__)

#: Bumped whenever the same config and seed would give different files.
GENERATOR_VERSION = 1

_FEATURES = FeatureConfig()

#: Each split's fixed entry in the spawn key of its random streams (part of
#: the seed contract: changing a key changes that split's files).
SPLIT_KEYS = {"synthetic": 0, "weak": 1, "unlabeled": 2, "validation": 3}
_GROUP_SPLIT_KEY = 100

#: Group-split side of each split: 0 synthetic, 1 real training, 2 validation.
_SIDE = {"synthetic": 0, "weak": 1, "unlabeled": 1, "validation": 2}
_SIDE_NAMES = ("synthetic", "real_train", "validation")

#: Where the true strong labels of the weak and unlabelled clips go, for diagnostics only
#: (``method.diagnostics.pseudo_label_truth`` scores pseudo labels with them); training never reads them.
TRUTH_DIR = "metadata/truth"
#: The splits whose true events are written there, as ``<split>.tsv`` (DCASE strong format).
TRUTH_SPLITS = ("weak", "unlabeled")
_TRUTH_README = """\
The true events of the weak and unlabelled clips (DCASE strong-label format), FOR DIAGNOSTICS ONLY.
Training never reads these files: a weakly labelled clip's only labels are its tags in
metadata/train/weak.tsv, and unlabelled clips have none. They let `method.diagnostics.pseudo_label_truth`
score the pseudo labels (frame precision and recall per class), a number that is logged and never fed back.
"""


#: The default real domain: a reverberant room, a coloured microphone, a
#: brown + hum + babble background, a lower SNR range, and sources that are
#: 1.5 semitones lower, 15 % faster in their modulations and 20 % longer.
REAL_DOMAIN = DomainConfig(
    channel=ChannelConfig(reverb=0.8, coloration=1.0),
    noise=NoiseConfig(brown=1.0, hum=0.4, babble=0.7),
    snr_db=(0.0, 24.0),
    pitch_semitones=-1.5,
    tempo_change=0.15,
    duration_change=0.2,
)


@dataclass(frozen=True)
class SedSynthConfig:
    """Settings of :func:`generate_sed_dataset`.

    Attributes
    ----------
    size: a key of :data:`SIZE_PRESETS`.
    sizes: clip counts that replace the preset's (``None`` keeps the preset's).
    seed: the dataset (rendering) seed; same seeds and settings give
        byte-identical files.
    split_seed: the seed of what each side holds (see the module docstring:
        the split of source recordings between the sides, the plans and the
        event sources of every clip); ``None`` uses ``seed``.
    sample_rate, clip_seconds: clip geometry; the defaults are those of the
        SED features.
    gap: how far the real domain moves from the synthetic one:
        ``blend_domains(synthetic_domain, real_domain, gap)``; 0 makes both
        domains alike, 1 (the most) uses ``real_domain`` as given.
    synthetic_domain, real_domain: the two recording domains (each effect
        strength 0 turns that effect off).
    scene: clip composition.
    group_split: share of source-recording groups (by recordings) for the
        synthetic split, the real training splits and the validation split,
        when events or backgrounds come from banks. A validation share of 0
        lets validation reuse the real training groups.
    """

    size: str = "small"
    sizes: SizeOverrides = SizeOverrides()
    seed: int = 0
    split_seed: int | None = None
    sample_rate: int = _FEATURES.sample_rate
    clip_seconds: float = _FEATURES.clip_seconds
    gap: float = 1.0
    synthetic_domain: DomainConfig = DomainConfig()
    real_domain: DomainConfig = REAL_DOMAIN
    scene: SceneConfig = SceneConfig()
    group_split: tuple[float, float, float] = (0.4, 0.4, 0.2)

    def __post_init__(self) -> None:
        if self.size not in SIZE_PRESETS:
            raise ConfigError(f"size '{self.size}' is not one of {', '.join(SIZE_PRESETS)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.split_seed is not None and self.split_seed < 0:
            raise ConfigError(f"split_seed must be >= 0 or null, got {self.split_seed}")
        if self.sample_rate <= 0 or self.clip_seconds <= 0:
            raise ConfigError("sample_rate and clip_seconds must be positive")
        if not 0 <= self.gap <= 1:
            raise ConfigError(f"gap must be in [0, 1], got {self.gap}")
        if min(self.group_split) < 0 or self.group_split[0] <= 0 or self.group_split[1] <= 0:
            raise ConfigError(f"group_split needs positive synthetic and real shares, got {self.group_split}")

    def effective_split_seed(self) -> int:
        """``split_seed``, or ``seed`` when it is ``None``."""
        return self.seed if self.split_seed is None else self.split_seed

    def split_sizes(self) -> SplitSizes:
        """The clip counts: the preset's, with ``sizes`` applied."""
        return self.sizes.apply(SIZE_PRESETS[self.size])

    def effective_real_domain(self) -> DomainConfig:
        """The real domain after applying ``gap``."""
        return blend_domains(self.synthetic_domain, self.real_domain, self.gap)


@dataclass(frozen=True)
class SedDatasetInfo:
    """What :func:`generate_sed_dataset` wrote.

    Attributes
    ----------
    root: the dataset root.
    classes: the class list.
    clips: split -> number of clips.
    events: split -> number of events (also for the unlabeled split, whose
        labels are not written).
    """

    root: Path
    classes: tuple[str, ...]
    clips: dict[str, int]
    events: dict[str, int]


def load_sed_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SedSynthConfig:
    """Settings from an optional YAML file and ``key.path=value`` overrides.

    The YAML changes only what it names: a nested setting such as
    ``real_domain.channel.reverb`` keeps every other real-domain value of
    :data:`REAL_DOMAIN`. Unknown keys are errors.
    """
    from audioadapt.config.load import load_config

    return load_config(SedSynthConfig, path, overrides)


# --------------------------------------------------------------------------- banks
def _split_banks(
    split_seed: int, fractions: Sequence[float], events: Sequence[BankItem] | None,
    backgrounds: Sequence[BankItem] | None, sides_needed: set[int],
) -> tuple[dict[int, dict[str, list[BankItem]]] | None, dict[int, list[BankItem]] | None, dict]:
    """Per side: event recordings by label, background recordings, and a summary.

    The summary gives per side the recordings and groups per class and the
    sorted ids of every group sent there (``group_ids``).
    """
    import numpy as np

    strata: dict[str, list[str]] = defaultdict(list)
    for item in events or ():
        strata[f"events/{item.label}"].append(item.group)
    for item in backgrounds or ():
        strata[f"backgrounds/{item.label}"].append(item.group)
    rng = np.random.default_rng(np.random.SeedSequence(split_seed, spawn_key=(_GROUP_SPLIT_KEY,)))
    side_of = assign_groups(strata, fractions, rng)
    problems = []
    ev_sides = bg_sides = None
    if events is not None:
        ev_sides = {s: defaultdict(list) for s in sides_needed}
        for item in events:
            if side_of[item.group] in ev_sides:
                ev_sides[side_of[item.group]][item.label].append(item)
        for label in sorted({i.label for i in events}):
            lacking = [_SIDE_NAMES[s] for s in sorted(sides_needed) if not ev_sides[s].get(label)]
            if lacking:
                n_groups = len({i.group for i in events if i.label == label})
                problems.append(f"class '{label}' ({n_groups} source group(s)) has none for: {', '.join(lacking)}")
    if backgrounds is not None:
        bg_sides = {s: [i for i in backgrounds if side_of[i.group] == s] for s in sides_needed}
        lacking = [_SIDE_NAMES[s] for s in sorted(sides_needed) if not bg_sides[s]]
        if lacking:
            problems.append(f"backgrounds have no source group for: {', '.join(lacking)}")
    if problems:
        raise DataError(
            "cannot keep the domains apart by source recording: " + "; ".join(problems)
            + ". Every class needs at least one source group per side (add recordings or groups, "
            "or set group_split's validation share to 0)."
        )
    summary = {}
    for s in sorted(sides_needed):
        entry = {}
        if ev_sides is not None:
            entry["events"] = {lab: {"recordings": len(v), "groups": len({i.group for i in v})}
                               for lab, v in sorted(ev_sides[s].items())}
        if bg_sides is not None:
            entry["backgrounds"] = {"recordings": len(bg_sides[s]), "groups": len({i.group for i in bg_sides[s]})}
        entry["group_ids"] = sorted(g for g, side in side_of.items() if side == s)
        summary[_SIDE_NAMES[s]] = entry
    return ev_sides, bg_sides, summary


# --------------------------------------------------------------------------- output folder
def _prepare_root(root: Path, overwrite: bool) -> None:
    from audioadapt.data.corpora.desed import DcaseLayout

    layout = DcaseLayout()
    tops = sorted({Path(path).parts[0] for path in vars(layout).values()})  # audio, dataset.json, metadata
    existing = [root / top for top in tops if (root / top).exists()]
    if existing and not overwrite:
        raise DataError(f"output folder already holds a dataset ({', '.join(tops)}); "
                        "choose another folder or overwrite it", root)
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _filenames(split: str, count: int) -> list[str]:
    width = max(5, len(str(max(count - 1, 0))))
    return [f"{split}_{i:0{width}d}.wav" for i in range(count)]


def _write_metadata(root: Path, results: Mapping[str, Mapping[str, tuple[Event, ...]]], seconds: float) -> None:
    """The four label files and the validation durations, in the DESED layout, and the true events of the
    weak and unlabelled clips under :data:`TRUTH_DIR` (for diagnostics only)."""
    from audioadapt.data import dcase
    from audioadapt.data.corpora import desed

    layout = desed.DcaseLayout()
    dcase.write_strong_tsv(root / layout.tsv("synthetic"), results["synthetic"])
    dcase.write_weak_tsv(root / layout.tsv("weak"), {f: {e.label for e in evs} for f, evs in results["weak"].items()})
    dcase.write_unlabeled_tsv(root / layout.tsv("unlabeled"), list(results["unlabeled"]))
    dcase.write_strong_tsv(root / layout.tsv("validation"), results["validation"])
    dcase.write_durations_tsv(root / layout.validation_durations_tsv, {f: seconds for f in results["validation"]})
    for split in TRUTH_SPLITS:
        dcase.write_strong_tsv(root / TRUTH_DIR / f"{split}.tsv", results[split])
    (root / TRUTH_DIR / "README.txt").write_text(_TRUTH_README, encoding="utf-8")


# --------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class SedDatasetPlan:
    """Everything :func:`generate_sed_dataset` renders, decided before any audio is made.

    Attributes
    ----------
    classes: the class list.
    contexts: split -> what rendering any of its clips needs.
    jobs: every clip to render, split by split.
    banks: per side, the recordings and groups of the banks (``None`` without banks).
    real_domain: the real domain after applying ``gap``.
    """

    classes: tuple[str, ...]
    contexts: dict[str, SplitContext]
    jobs: tuple[ClipJob, ...]
    banks: dict | None
    real_domain: DomainConfig


def plan_sed_dataset(
    out_dir: str | Path,
    cfg: SedSynthConfig | None = None,
    *,
    events: str | Path | None = None,
    backgrounds: str | Path | None = None,
) -> SedDatasetPlan:
    """Read the banks, split them between the sides and plan every clip (nothing is written).

    :func:`~audioadapt.data.synthetic.render.clip_sources` gives a planned
    clip's dry sources; they depend on the split seed only. Parameters and
    errors as :func:`generate_sed_dataset`'s.
    """
    from audioadapt.data.corpora.desed import DcaseLayout

    cfg = cfg or SedSynthConfig()
    root = Path(out_dir)
    layout = DcaseLayout()
    sizes = cfg.split_sizes().as_dict()
    real = cfg.effective_real_domain()
    split_seed = cfg.effective_split_seed()
    ev_items = read_bank(events, require_labels=True) if events is not None else None
    bg_items = read_bank(backgrounds, require_labels=False) if backgrounds is not None else None
    classes = tuple(sorted({i.label for i in ev_items})) if ev_items is not None else CLASS_NAMES

    own_validation = cfg.group_split[2] > 0 and sizes["validation"] > 0
    side_of_split = {s: 1 if s == "validation" and not own_validation else _SIDE[s] for s in sizes}
    ev_sides = bg_sides = bank_summary = None
    if ev_items is not None or bg_items is not None:
        fractions = cfg.group_split if own_validation else (*cfg.group_split[:2], 0.0)
        needed = {side_of_split[s] for s, n in sizes.items() if n}
        ev_sides, bg_sides, bank_summary = _split_banks(split_seed, fractions, ev_items, bg_items, needed)

    num_samples = time_grid(cfg.sample_rate).seconds_to_samples(cfg.clip_seconds)
    contexts: dict[str, SplitContext] = {}
    jobs: list[ClipJob] = []
    for split, count in sizes.items():
        side = side_of_split[split]
        contexts[split] = SplitContext(
            split=split,
            split_key=SPLIT_KEYS[split],
            seed=cfg.seed,
            audio_dir=root / layout.audio(split),
            sample_rate=cfg.sample_rate,
            num_samples=num_samples,
            classes=classes,
            domain=cfg.synthetic_domain if split == "synthetic" else real,
            scene=cfg.scene,
            events=None if ev_sides is None else {k: tuple(v) for k, v in ev_sides.get(side, {}).items()},
            backgrounds=None if bg_sides is None else tuple(bg_sides.get(side, ())),
            split_seed=split_seed,
        )
        plans = plan_clips(plan_stream(split_seed, SPLIT_KEYS[split]), count, classes, cfg.scene)
        names = _filenames(split, count)
        jobs.extend(ClipJob(split, i, name, plan) for i, (name, plan) in enumerate(zip(names, plans)))
    return SedDatasetPlan(classes, contexts, tuple(jobs), bank_summary, real)


def generate_sed_dataset(
    out_dir: str | Path,
    cfg: SedSynthConfig | None = None,
    *,
    events: str | Path | None = None,
    backgrounds: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> SedDatasetInfo:
    """Write a domain-shift SED dataset in the DESED 2019 layout under ``out_dir``.

    Parameters
    ----------
    out_dir: the dataset root (created if needed).
    cfg: settings; ``SedSynthConfig()`` when ``None``.
    events: a bank of isolated event recordings (folder, CSV manifest or YAML
        bank spec); ``None`` uses the procedural classes.
    backgrounds: a bank of background recordings; ``None`` uses each domain's
        noise family.
    workers: processes rendering clips; ``None`` uses every available core.
        The files do not depend on it.
    progress: show a progress bar.
    overwrite: replace an existing dataset in ``out_dir``.

    Raises
    ------
    DataError
        For an unusable bank, a class without source groups for a side, or an
        occupied output folder.
    """
    from tqdm import tqdm

    from audioadapt import __version__
    from audioadapt.config.load import to_dict
    from audioadapt.data.corpora.desed import DcaseLayout

    cfg = cfg or SedSynthConfig()
    root = Path(out_dir)
    layout = DcaseLayout()
    sizes = cfg.split_sizes().as_dict()
    plan = plan_sed_dataset(root, cfg, events=events, backgrounds=backgrounds)
    classes, contexts, jobs = plan.classes, plan.contexts, plan.jobs

    _prepare_root(root, overwrite)
    for split in sizes:
        (root / layout.audio(split)).mkdir(parents=True, exist_ok=True)

    workers = available_workers() if workers is None else max(1, int(workers))
    results: dict[str, dict[str, tuple[Event, ...]]] = {split: {} for split in sizes}
    with tqdm(total=len(jobs), desc="synth sed", unit="clip", disable=not progress) as bar:
        for job, clip_events in run_jobs(contexts, jobs, workers):
            results[job.split][job.filename] = clip_events
            bar.update(1)

    grid = time_grid(cfg.sample_rate)
    seconds = grid.samples_to_seconds(grid.seconds_to_samples(cfg.clip_seconds))
    _write_metadata(root, results, seconds)
    n_events = {split: sum(len(v) for v in clips.values()) for split, clips in results.items()}
    info = {
        "generator": "audioadapt synth sed",
        "generator_version": GENERATOR_VERSION,
        "audioadapt_version": __version__,
        "seed": cfg.seed,
        "split_seed": cfg.effective_split_seed(),
        "classes": list(classes),
        "sample_rate": cfg.sample_rate,
        "clip_seconds": seconds,
        "sizes": sizes,
        "events": n_events,
        "events_per_class": {split: dict(sorted(Counter(e.label for v in clips.values() for e in v).items()))
                             for split, clips in results.items()},
        "empty_clips": {split: sum(1 for v in clips.values() if not v) for split, clips in results.items()},
        "domains": {"synthetic": ["synthetic"], "real": ["weak", "unlabeled", "validation"]},
        "event_source": "procedural" if events is None else str(events),
        "background_source": "procedural" if backgrounds is None else str(backgrounds),
        "banks": plan.banks,
        "truth": {"folder": TRUTH_DIR, "splits": list(TRUTH_SPLITS),
                  "use": "true events of the weak and unlabelled clips, for diagnostics only; never read by training"},
        "config": to_dict(cfg),
        "effective_real_domain": to_dict(plan.real_domain),
    }
    (root / layout.dataset_json).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.debug("wrote %s: %s clips, %s events", root, sizes, n_events)
    return SedDatasetInfo(root, classes, sizes, n_events)


__all__ = [
    "GENERATOR_VERSION",
    "REAL_DOMAIN",
    "SIZE_PRESETS",
    "SPLIT_KEYS",
    "SedDatasetInfo",
    "SedDatasetPlan",
    "SedSynthConfig",
    "TRUTH_DIR",
    "TRUTH_SPLITS",
    "SizeOverrides",
    "SplitSizes",
    "generate_sed_dataset",
    "load_sed_config",
    "plan_sed_dataset",
]
