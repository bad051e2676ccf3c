"""A procedural cross-"language" speech-emotion dataset with a tunable domain gap.

:func:`generate_ser_dataset` writes two corpora, one per domain, each in the
generic CSV-manifest layout read by
:func:`~audioadapt.data.corpora.csv_manifest.prepare_csv`::

    OUT/dataset.json                 settings, counts, speakers, mean cues per emotion
    OUT/<domain>/manifest.csv        path,label,speaker,gender,seconds
    OUT/<domain>/audio/<id>.wav      16-bit mono WAV

The settings live in :mod:`~audioadapt.data.synthetic.ser_config`, the size
presets in :mod:`~audioadapt.data.synthetic.sizes` and the speakers and the
synthesiser in :mod:`~audioadapt.data.synthetic.ser_voice`; this module
writes the dataset and re-exports their public names.

**Speech.** Utterances are made by a small source-filter synthesiser:
phrases of words of syllables ((C)(C)V(C)), vowels as a harmonic glottal
source with aspiration noise through a cascade of formant resonators,
fricatives and plosive bursts as band-passed noise, nasals and liquids as
weak voiced resonances; an F0 contour of declination, pitch accents on
stressed syllables and (optionally) lexical tones; pauses between phrases.

**Domains ("languages").** :class:`LanguageConfig` sets the vowel inventory
(formant sets), the consonants, syllable structure, stress position,
speaking rate, intonation and how strongly emotions are expressed; the
recording side reuses :class:`~audioadapt.data.synthetic.domain.DomainConfig`:
room and microphone, background noise, SNR, and the systematic pitch
register (``pitch_semitones``, F0 only), speaking-rate
(``tempo_change``) and utterance-length (``duration_change``) shifts.

**Emotions** (:class:`EmotionProfile`, after the vocal-affect literature,
e.g. Scherer 2003; Juslin & Laukka 2003): angry is loud, raised in pitch,
fast and tense (bright spectrum); happy has a high, wide-ranging pitch and
a fast rate; sad is quiet, low and flat in pitch, slow, breathy and dark;
neutral is the reference. Each utterance expresses its emotion with a random
intensity and random deviations, and every synthetic speaker has a base
pitch, vocal-tract length, rate, loudness, voice quality and
expressiveness of its own, so the classes overlap. The background noise is
set against the speaker's *neutral* level, so loud emotions also have a
higher SNR.

**Recording.** Each speaker is recorded in one room through one microphone
(a session) drawn from the domain's channel settings; the background noise
is drawn per utterance.

**Determinism.** Speaker ``k`` of a domain draws its voice from
``SeedSequence(seed, spawn_key=(domain key, 0, k))`` and its room and
microphone from ``(domain key, 2, k)``; utterance ``i`` draws from
``SeedSequence(seed, spawn_key=(domain key, 1, i))`` (split into independent
plan, voice and background streams). The files are byte-identical for a
seed and settings, whatever ``workers`` is, and an utterance depends only on
the seed, the settings, its index, speaker and emotion, never on the other
utterances.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioadapt.data.synthetic.ser_config import (
    CONSONANTS,
    DOMAIN_KEYS,
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    EmotionProfile,
    EmotionProfiles,
    LanguageConfig,
    SerDomainConfig,
    SerSynthConfig,
    SpeakerConfig,
    VariationConfig,
    load_ser_config,
)
from audioadapt.data.synthetic.ser_voice import SpeakerVoice, UtteranceContext, draw_speaker, render_utterance
from audioadapt.data.synthetic.sizes import SER_SIZE_PRESETS, SerSizeOverrides, SerSizes
from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import DataError

#: Bumped whenever the same config and seed would give different files.
GENERATOR_VERSION = 1

_UTTERANCES_PER_WORKER = 64


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True, eq=False)
class _DomainContext:
    """Everything needed to render and write any utterance of one domain."""

    utterance: UtteranceContext
    audio_dir: Path


@dataclass(frozen=True)
class _Job:
    domain: str
    index: int
    utt_id: str
    voice: SpeakerVoice
    emotion: str


_CONTEXTS: dict[str, _DomainContext] = {}


def _init_worker(contexts: dict[str, _DomainContext]) -> None:
    _CONTEXTS.clear()
    _CONTEXTS.update(contexts)


def _write(ctx: _DomainContext, job: _Job) -> dict[str, float]:
    from audioadapt.audio.io import write_audio

    audio, cues = render_utterance(ctx.utterance, job.voice, job.emotion, job.index)
    write_audio(ctx.audio_dir / f"{job.utt_id}.wav", audio, ctx.utterance.sample_rate, subtype="PCM_16")
    return cues


def _run_job(job: _Job) -> dict[str, float]:
    return _write(_CONTEXTS[job.domain], job)


def _run_jobs(contexts: dict[str, _DomainContext], jobs: list[_Job], workers: int) -> Iterator[dict[str, float]]:
    """Write every utterance, yielding its cues in job order."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _write(contexts[job.domain], job)
        return
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    mp = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker, initargs=(contexts,)) as pool:
        yield from pool.map(_run_job, jobs, chunksize=chunk)


# --------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class SerDatasetInfo:
    """What :func:`generate_ser_dataset` wrote.

    Attributes
    ----------
    root: the dataset root.
    manifests: domain role (``source``/``target``) -> its ``manifest.csv``.
    utterances: domain role -> number of utterances.
    seconds: domain role -> total audio duration.
    """

    root: Path
    manifests: dict[str, Path]
    utterances: dict[str, int]
    seconds: dict[str, float]


def _prepare_root(root: Path, names: Sequence[str], overwrite: bool) -> None:
    ours = [root / "dataset.json", *(root / n for n in names)]
    existing = [p for p in ours if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(p.name for p in existing)
        raise DataError(f"output folder already holds a dataset ({shown}); choose another folder or overwrite it",
                        root)
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _cue_summary(rows: list[tuple[_Job, dict[str, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for emotion in EMOTIONS:
        cues = [c for job, c in rows if job.emotion == emotion]
        out[emotion] = {k: round(float(np.mean([c[k] for c in cues])), 3) for k in cues[0]} if cues else {}
    return out


def generate_ser_dataset(
    out_dir: str | Path,
    cfg: SerSynthConfig | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> SerDatasetInfo:
    """Write the two-domain speech-emotion dataset under ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir: the dataset root (created if needed).
    cfg: settings; ``SerSynthConfig()`` when ``None``.
    workers: processes rendering utterances; ``None`` uses the available
        cores, at most one per 64 utterances. The files do not depend on it.
    progress: show a progress bar.
    overwrite: replace an existing dataset in ``out_dir``.

    Raises
    ------
    DataError
        If ``out_dir`` already holds a dataset and ``overwrite`` is false.
    """
    from tqdm import tqdm

    from audioadapt import __version__
    from audioadapt.config.load import to_dict
    from audioadapt.data.synthetic.render import available_workers

    cfg = cfg or SerSynthConfig()
    root = Path(out_dir)
    sizes = cfg.split_sizes()
    domains = dict(zip(DOMAIN_KEYS, cfg.domains()))
    _prepare_root(root, [d.name for d in domains.values()], overwrite)
    contexts: dict[str, _DomainContext] = {}
    jobs: list[_Job] = []
    speakers: dict[str, list[SpeakerVoice]] = {}
    for role, dom in domains.items():
        audio_dir = root / dom.name / "audio"
        audio_dir.mkdir(parents=True)
        utterance = UtteranceContext(DOMAIN_KEYS[role], cfg.seed, cfg.sample_rate, cfg.duration_range,
                                     cfg.level_dbfs, dom.language, dom.recording, cfg.emotions, cfg.variation)
        contexts[role] = _DomainContext(utterance, audio_dir)
        n_spk, per_class = getattr(sizes, f"{role}_speakers"), getattr(sizes, f"{role}_per_class")
        speakers[role] = [draw_speaker(cfg.seed, role, dom.name, k, cfg.speakers) for k in range(n_spk)]
        width = max(5, len(str(n_spk * per_class * len(EMOTIONS))))
        for k, voice in enumerate(speakers[role]):
            for rep in range(per_class):
                for e, emotion in enumerate(EMOTIONS):
                    index = (k * per_class + rep) * len(EMOTIONS) + e
                    jobs.append(_Job(role, index, f"{dom.name}_{index:0{width}d}", voice, emotion))

    if workers is None:  # a process pool only pays off for larger datasets
        workers = min(available_workers(), max(1, len(jobs) // _UTTERANCES_PER_WORKER))
    workers = max(1, int(workers))
    rows: dict[str, list[tuple[_Job, dict[str, float]]]] = {role: [] for role in domains}
    with tqdm(total=len(jobs), desc="synth ser", unit="utt", disable=not progress) as bar:
        for job, cues in zip(jobs, _run_jobs(contexts, jobs, workers)):
            rows[job.domain].append((job, cues))
            bar.update(1)

    summary = {}
    for role, dom in domains.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["path", "label", "speaker", "gender", "seconds"])
        for job, cues in rows[role]:
            writer.writerow([f"audio/{job.utt_id}.wav", job.emotion, job.voice.speaker_id, job.voice.gender,
                             f"{cues['seconds']:.4f}"])
        (root / dom.name / "manifest.csv").write_text(text.getvalue(), encoding="utf-8")
        seconds = [c["seconds"] for _, c in rows[role]]
        summary[role] = {
            "name": dom.name,
            "manifest": f"{dom.name}/manifest.csv",
            "utterances": len(rows[role]),
            "per_class": {e: sum(1 for j, _ in rows[role] if j.emotion == e) for e in EMOTIONS},
            "seconds": {"total": round(sum(seconds), 3), "min": round(min(seconds), 3),
                        "max": round(max(seconds), 3)},
            "speakers": [to_dict(v) for v in speakers[role]],
            "cues": _cue_summary(rows[role]),
        }
    info = {
        "generator": "audioadapt synth ser",
        "generator_version": GENERATOR_VERSION,
        "audioadapt_version": __version__,
        "seed": cfg.seed,
        "sample_rate": cfg.sample_rate,
        "emotions": list(EMOTIONS),
        "sizes": to_dict(sizes),
        "domains": summary,
        "config": to_dict(cfg),
        "effective_target": to_dict(domains["target"]),
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return SerDatasetInfo(
        root=root,
        manifests={role: root / s["manifest"] for role, s in summary.items()},
        utterances={role: s["utterances"] for role, s in summary.items()},
        seconds={role: s["seconds"]["total"] for role, s in summary.items()},
    )


__all__ = [
    "CONSONANTS",
    "DOMAIN_KEYS",
    "EmotionProfile",
    "EmotionProfiles",
    "GENERATOR_VERSION",
    "LanguageConfig",
    "SER_SIZE_PRESETS",
    "SOURCE_DOMAIN",
    "SerDatasetInfo",
    "SerDomainConfig",
    "SerSizeOverrides",
    "SerSizes",
    "SerSynthConfig",
    "SpeakerConfig",
    "SpeakerVoice",
    "TARGET_DOMAIN",
    "VariationConfig",
    "draw_speaker",
    "generate_ser_dataset",
    "load_ser_config",
]
