"""Rendering clips of one dataset split, in this process or in a pool of processes.

Every clip has its own random streams, ``SeedSequence(s, spawn_key=(split
key, 1, clip index))`` split into four independent sub-streams for the event
sources, the background, the channel and the mixing. The event-source stream
comes from the *split seed* ``s = split_seed`` (which source recordings, or
which procedural sources, a clip holds), the other three from the *rendering
seed* ``s = seed`` (background draw, room and microphone, placement, SNR and
level); with ``split_seed == seed`` all four are the sub-streams of one
sequence. A clip therefore depends only on the seeds, its split, its index
and its plan, never on which process renders it or on the other splits'
sizes; changing, say, the background family leaves the events and their
positions as they were, and changing only the rendering seed keeps every
clip's sources and re-renders them.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioadapt.data.event_bank import BankItem, load_item
from audioadapt.data.manifest import Event
from audioadapt.data.soundscape import (
    ClipPlan,
    EventAudio,
    SceneConfig,
    Soundscape,
    draw_labels,
    fill_background,
    mix_soundscape,
)
from audioadapt.data.synthetic.domain import DomainConfig, make_noise, rms, sample_channel
from audioadapt.data.synthetic.sources import get_event_class

#: Upper bound on background recordings joined into one clip.
_MAX_BACKGROUND_PIECES = 64


@dataclass(frozen=True, eq=False)
class SplitContext:
    """Everything needed to render any clip of one split.

    Attributes
    ----------
    split: split name.
    split_key: the split's fixed entry in the seed's spawn key.
    seed: the rendering seed (background, channel, mixing).
    audio_dir: where the split's WAV files go.
    sample_rate, num_samples: clip geometry.
    classes: the class list.
    domain: recording domain of the split.
    scene: clip composition settings.
    events: label -> recordings of that class, or ``None`` for procedural events.
    backgrounds: background recordings, or ``None`` for procedural noise.
    split_seed: the seed of the event sources (``None``: ``seed``).
    """

    split: str
    split_key: int
    seed: int
    audio_dir: Path
    sample_rate: int
    num_samples: int
    classes: tuple[str, ...]
    domain: DomainConfig
    scene: SceneConfig
    events: Mapping[str, Sequence[BankItem]] | None = None
    backgrounds: Sequence[BankItem] | None = None
    split_seed: int | None = None


@dataclass(frozen=True)
class ClipJob:
    """One clip to render: its split, index, file name and plan."""

    split: str
    index: int
    filename: str
    plan: ClipPlan


def clip_streams(seed: int, split_key: int, index: int, split_seed: int | None = None) -> list[np.random.Generator]:
    """The four independent generators (sources, background, channel, mix) of one clip.

    The sources' generator comes from ``split_seed`` (``None``: ``seed``), the
    others from ``seed``.
    """
    def streams(s: int) -> list[np.random.SeedSequence]:
        return np.random.SeedSequence(s, spawn_key=(split_key, 1, index)).spawn(4)

    sources = streams(seed if split_seed is None else split_seed)[0]
    return [np.random.default_rng(s) for s in (sources, *streams(seed)[1:])]


def plan_stream(seed: int, split_key: int) -> np.random.Generator:
    """The generator that plans a whole split (empty clips and primary classes)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_key, 0)))


def _event_audio(rng: np.random.Generator, ctx: SplitContext, label: str) -> np.ndarray:
    if ctx.events is None:
        return get_event_class(label).generate(rng, ctx.sample_rate, ctx.domain.source_shift())
    pool = ctx.events[label]
    return load_item(pool[int(rng.integers(len(pool)))], ctx.sample_rate)


def _background(rng: np.random.Generator, ctx: SplitContext) -> np.ndarray:
    n = ctx.num_samples
    if ctx.backgrounds is not None:
        pieces, total, drawn = [], 0, 0
        while total < n and drawn < _MAX_BACKGROUND_PIECES:
            drawn += 1
            piece = load_item(ctx.backgrounds[int(rng.integers(len(ctx.backgrounds)))], ctx.sample_rate)
            level = rms(piece)
            if level > 0:  # equal levels, so joins do not step in loudness
                pieces.append(piece / level)
                total += piece.size
        if pieces:
            background = fill_background(rng, pieces, n, ctx.sample_rate, ctx.scene)
            if rms(background) > 0:
                return background
    return make_noise(rng, n, ctx.sample_rate, ctx.domain.noise)


def _draw_sources(rng: np.random.Generator, ctx: SplitContext, job: ClipJob) -> list[EventAudio]:
    labels = draw_labels(rng, job.plan, ctx.classes, ctx.scene)
    return [EventAudio(label, _event_audio(rng, ctx, label)) for label in labels]


def clip_sources(ctx: SplitContext, job: ClipJob) -> list[EventAudio]:
    """The dry event sources of one clip, before trimming and mixing (set by the split seed alone)."""
    return _draw_sources(clip_streams(ctx.seed, ctx.split_key, job.index, ctx.split_seed)[0], ctx, job)


def render_clip(ctx: SplitContext, job: ClipJob) -> Soundscape:
    """Draw and mix one clip (no file is written)."""
    source_rng, background_rng, channel_rng, mix_rng = clip_streams(ctx.seed, ctx.split_key, job.index,
                                                                    ctx.split_seed)
    events = _draw_sources(source_rng, ctx, job)
    background = _background(background_rng, ctx)
    channel = sample_channel(channel_rng, ctx.domain.channel, ctx.sample_rate)
    return mix_soundscape(
        mix_rng,
        background,
        events,
        sample_rate=ctx.sample_rate,
        snr_db=ctx.domain.snr_db,
        channel=channel,
        cfg=ctx.scene,
    )


def write_clip(ctx: SplitContext, job: ClipJob) -> tuple[Event, ...]:
    """Render one clip, write it as 16-bit PCM WAV and return its events."""
    from audioadapt.audio.io import write_audio

    scape = render_clip(ctx, job)
    write_audio(ctx.audio_dir / job.filename, scape.audio, ctx.sample_rate, subtype="PCM_16")
    return scape.events


# --------------------------------------------------------------------------- process pool
_CONTEXTS: dict[str, SplitContext] = {}


def _init_worker(contexts: dict[str, SplitContext]) -> None:
    _CONTEXTS.clear()
    _CONTEXTS.update(contexts)


def _run_job(job: ClipJob) -> tuple[Event, ...]:
    return write_clip(_CONTEXTS[job.split], job)


def available_workers() -> int:
    """CPUs this process may use (affinity mask and cgroup quota)."""
    from audioadapt.cpus import available_cpus

    return available_cpus()


def run_jobs(
    contexts: Mapping[str, SplitContext], jobs: Sequence[ClipJob], workers: int
) -> Iterator[tuple[ClipJob, tuple[Event, ...]]]:
    """Write every clip and yield ``(job, events)`` in job order.

    With ``workers > 1`` the clips are rendered by that many processes
    (started with ``spawn``); the files are the same either way.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, write_clip(contexts[job.split], job)
        return
    ctx = multiprocessing.get_context("spawn")
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(dict(contexts),)) as pool:
        yield from zip(jobs, pool.map(_run_job, jobs, chunksize=chunk))


__all__ = [
    "ClipJob",
    "SplitContext",
    "available_workers",
    "clip_sources",
    "clip_streams",
    "plan_stream",
    "render_clip",
    "run_jobs",
    "write_clip",
]
