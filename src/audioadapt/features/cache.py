"""On-disk log-mel cache: one memory-mapped array per dataset split.

Layout of a cache directory::

    meta.json      key, feature config, held paths, skipped files, shapes
    features.f32   all frames of all items, float32 (total_frame, mel), C order
    offsets.npy    int64 (item + 1,): item i is frames offsets[i]:offsets[i+1]

Items may differ in length (ragged); fixed-length clips
(``FeatureConfig.clip_seconds`` set) are the special case where every item
has the same number of frames. The cache is keyed by a hash of the feature
config and of the file list (resolved path, size and modification time of
every file, in order): :meth:`FeatureCache.build` reuses a cache whose key
matches and rebuilds it otherwise. Files are known by their resolved path
(absolute, symbolic links followed), so any spelling of the same files
(``d/x.wav``, ``./d/x.wav``, ``/abs/d/x.wav``, a link to ``d``) finds the same
items; :meth:`FeatureCache.positions` maps paths of any spelling to items.

A build writes into a temporary sibling directory and renames it into place
when complete, so a killed build never leaves a directory that looks like a
valid cache (leftovers of dead builds are removed by the next build).
Decoding and resampling run in a process pool (``spawn`` start method, so
scripts that build a cache need the usual ``if __name__ == "__main__":``
guard); the log-mel is computed in the main process in batches of clips of
equal length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np

from audioadapt.audio.io import load_audio
from audioadapt.cpus import affinity_cpus
from audioadapt.data.manifest import SkipReport
from audioadapt.errors import AudioError, DataError
from audioadapt.features.config import FeatureConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.store import resolve_path

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]

#: Bumped whenever the on-disk layout, the key or the feature computation changes.
CACHE_FORMAT_VERSION = 2

_META = "meta.json"
_DATA = "features.f32"
_OFFSETS = "offsets.npy"
_DTYPE = np.float32


# -- keys --------------------------------------------------------------------
def _fingerprint(path: str | Path) -> list[Any]:
    """``[resolved path, size, mtime_ns]``; size and mtime are ``None`` if unreadable."""
    resolved = resolve_path(path)
    try:
        st = os.stat(resolved)
    except OSError:
        return [resolved, None, None]
    return [resolved, int(st.st_size), int(st.st_mtime_ns)]


def cache_key(paths: Sequence[str | Path], cfg: FeatureConfig) -> str:
    """Hex digest identifying a feature config and an ordered file list."""
    from audioadapt.config.load import to_dict

    payload = {
        "format": CACHE_FORMAT_VERSION,
        "features": to_dict(cfg),
        "files": [_fingerprint(p) for p in paths],
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- decoding ----------------------------------------------------------------
def _decode(task: tuple[int, str, int, int | None]) -> tuple[int, np.ndarray | None, str | None]:
    """Worker: ``(index, signal, None)`` or ``(index, None, reason)``."""
    index, path, sample_rate, num_samples = task
    try:
        return index, load_audio(path, sample_rate, num_samples=num_samples), None
    except AudioError as exc:
        return index, None, exc.reason


def _decoded(tasks: list, num_workers: int, window: int) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """Decode ``tasks`` in order with at most ``window`` results in flight."""
    if num_workers <= 1:
        for task in tasks:
            yield _decode(task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    executor = ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        todo = iter(tasks)
        pending = deque(executor.submit(_decode, t) for t in islice(todo, window))
        while pending:
            result = pending.popleft().result()
            for task in islice(todo, 1):
                pending.append(executor.submit(_decode, task))
            yield result
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# -- directory handling --------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(final: Path) -> None:
    """Delete temporary directories of builds whose process is gone."""
    if not final.parent.is_dir():
        return
    for entry in final.parent.glob(f".{final.name}.*-*-*"):
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _read_meta(directory: Path) -> dict | None:
    """The metadata of a complete cache, or ``None`` if there is none or it is damaged."""
    try:
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if meta.get("format") != CACHE_FORMAT_VERSION:
            return None
        offsets = np.load(directory / _OFFSETS, allow_pickle=False)
        total, n_mels = int(meta["total_frames"]), int(meta["n_mels"])
        expected = total * n_mels * np.dtype(_DTYPE).itemsize
        if (directory / _DATA).stat().st_size != expected:
            return None
        if len(offsets) != len(meta["paths"]) + 1 or int(offsets[-1]) != total:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


class FeatureCache(Sequence):
    """Log-mel features of a list of audio files, memory-mapped from disk.

    ``cache[i]`` is a read-only ``(frame, mel)`` float32 view of the i-th
    held file; ``cache.paths[i]`` names it. Build with :meth:`build`, reopen
    with :meth:`open`.
    """

    def __init__(self, directory: str | Path, meta: dict):
        self.directory = Path(directory)
        self._meta = meta
        self._offsets = np.load(self.directory / _OFFSETS, allow_pickle=False)
        self._data: np.ndarray | None = None

    # -- construction ------------------------------------------------------
    @classmethod
    def build(
        cls,
        paths: Sequence[str | Path],
        cfg: FeatureConfig,
        cache_dir: str | Path,
        *,
        num_workers: int | None = None,
        progress: bool = True,
        on_error: OnError = "raise",
        batch_size: int = 16,
    ) -> "FeatureCache":
        """Open the cache in ``cache_dir`` if it matches, else (re)build it.

        Parameters
        ----------
        paths: audio files, in item order.
        cfg: feature settings; clips are padded/cropped (from the start) to
            ``cfg.clip_seconds`` when it is set.
        cache_dir: the directory of this split's cache.
        num_workers: decoding processes (default: the available cores; 0 or
            1 decodes in this process).
        progress: show a tqdm progress bar.
        on_error: ``"raise"`` stops at the first unusable file with an
            :class:`AudioError`; ``"skip"`` leaves it out, logs a summary and
            records it in :attr:`skipped`.
        batch_size: clips per log-mel batch.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        paths = [str(p) for p in paths]
        if not paths:
            raise DataError("no audio files to cache", cache_dir)
        final = Path(cache_dir)
        key = cache_key(paths, cfg)
        meta = _read_meta(final)
        if meta is not None and meta["key"] == key and (on_error == "skip" or not meta["skipped"]):
            logger.info("%s: reusing feature cache of %d item(s)", final, len(meta["paths"]))
            return cls(final, meta)
        _remove_stale(final)
        tmp = final.with_name(f".{final.name}.build-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            _write(tmp, final, paths, cfg, key, num_workers, progress, on_error, batch_size)
            _publish(tmp, final, key)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"cannot write the feature cache ({exc.strerror or exc}); set cache.directory to a "
                            "writable folder", final) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        meta = _read_meta(final)
        if meta is None:  # pragma: no cover - only if the directory vanished meanwhile
            raise DataError("feature cache disappeared right after it was built", final)
        return cls(final, meta)

    @classmethod
    def open(
        cls,
        cache_dir: str | Path,
        cfg: FeatureConfig | None = None,
        paths: Sequence[str | Path] | None = None,
    ) -> "FeatureCache":
        """Open an existing cache; with ``cfg`` and ``paths``, check that it is current.

        Raises
        ------
        DataError
            If there is no complete cache in ``cache_dir``, or it was built
            from another config or file list (or the files changed since).
        """
        directory = Path(cache_dir)
        meta = _read_meta(directory)
        if meta is None:
            raise DataError("no complete feature cache here (build it first)", directory)
        if (cfg is None) != (paths is None):
            raise ValueError("give both cfg and paths to check the cache, or neither")
        if cfg is not None and meta["key"] != cache_key([str(p) for p in paths], cfg):
            raise DataError("feature cache is stale: the feature config or the audio files changed", directory)
        return cls(directory, meta)

    # -- sequence interface --------------------------------------------------
    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _index(self, i: int) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"cache indices must be integers, got {type(i).__name__}")
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"item {i} out of range for a cache of {n} item(s)")
        return j

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        j = self._index(i)
        return self.data[self._offsets[j] : self._offsets[j + 1]]

    def num_frames(self, i: int) -> int:
        """Frames of item ``i``."""
        j = self._index(i)
        return int(self._offsets[j + 1] - self._offsets[j])

    # -- properties -------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """All frames, ``(total_frame, mel)``, memory-mapped read-only."""
        if self._data is None:
            shape = (int(self._meta["total_frames"]), int(self._meta["n_mels"]))
            self._data = np.memmap(self.directory / _DATA, dtype=_DTYPE, mode="r", shape=shape)
        return self._data

    @property
    def offsets(self) -> np.ndarray:
        """``(item + 1,)`` start frame of each item, then the total."""
        return self._offsets

    @property
    def frame_counts(self) -> np.ndarray:
        """``(item,)`` frames per item."""
        return np.diff(self._offsets)

    @property
    def paths(self) -> tuple[str, ...]:
        """The resolved paths of the files held, in item order (skipped files left out)."""
        return tuple(self._meta["paths"])

    def positions(self, paths: Iterable[str | Path]) -> list[int | None]:
        """The item of each file in ``paths`` (any spelling of its path); ``None`` where the cache has none."""
        items = {p: i for i, p in enumerate(self._meta["paths"])}
        return [items.get(resolve_path(p)) for p in paths]

    @property
    def skipped(self) -> SkipReport:
        """Files left out by ``on_error="skip"`` (resolved paths), with the reason."""
        report = SkipReport()
        for path, reason in self._meta["skipped"]:
            report.add(path, None, reason)
        return report

    @property
    def key(self) -> str:
        return self._meta["key"]

    @property
    def n_mels(self) -> int:
        return int(self._meta["n_mels"])

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature settings the cache was built with."""
        from audioadapt.config.load import from_dict

        return from_dict(FeatureConfig, self._meta["features"])

    def as_array(self) -> np.ndarray:
        """``(item, frame, mel)`` view when all items have the same length."""
        counts = self.frame_counts
        if len(counts) and not (counts == counts[0]).all():
            raise ValueError("items differ in length; index them one by one")
        frames = int(counts[0]) if len(counts) else 0
        return self.data.reshape(len(self), frames, self.n_mels)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = None  # reopened lazily instead of pickling the frames
        return state

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.directory)!r}, items={len(self)}, frames={int(self._offsets[-1])})"


def _logmel_in_order(logmel: Any, signals: list[np.ndarray]) -> list[np.ndarray]:
    """float32 ``(frame, mel)`` features of each signal; equal lengths share a batch."""
    import torch

    out: list[np.ndarray] = [np.empty(0)] * len(signals)
    groups: dict[int, list[int]] = {}
    for k, signal in enumerate(signals):
        groups.setdefault(len(signal), []).append(k)
    with torch.inference_mode():
        for members in groups.values():
            feats = logmel(torch.from_numpy(np.stack([signals[k] for k in members]))).numpy()
            for k, f in zip(members, feats):
                out[k] = np.ascontiguousarray(f, dtype=_DTYPE)
    return out


def _write(
    tmp: Path,
    final: Path,
    paths: list[str],
    cfg: FeatureConfig,
    key: str,
    num_workers: int | None,
    progress: bool,
    on_error: OnError,
    batch_size: int,
) -> dict:
    """Compute every item into ``tmp`` (to become ``final``) and write its metadata last."""
    from contextlib import closing

    from tqdm.auto import tqdm

    from audioadapt import __version__
    from audioadapt.config.load import to_dict
    from audioadapt.features.logmel import LogMel

    logmel = LogMel(cfg)
    grid = FrameGrid.from_features(cfg)
    num_samples = None if cfg.clip_seconds is None else grid.seconds_to_samples(cfg.clip_seconds)
    workers = affinity_cpus() if num_workers is None else num_workers
    workers = min(workers, len(paths))
    tasks = [(i, p, cfg.sample_rate, num_samples) for i, p in enumerate(paths)]
    held: list[str] = []
    skipped: list[tuple[str, str]] = []
    offsets = [0]
    batch: list[tuple[int, np.ndarray]] = []

    def write(batch: list[tuple[int, np.ndarray]]) -> None:
        for (index, _), feats in zip(batch, _logmel_in_order(logmel, [s for _, s in batch])):
            out.write(feats.tobytes())
            offsets.append(offsets[-1] + feats.shape[0])
            held.append(resolve_path(paths[index]))
        bar.update(len(batch))
        batch.clear()

    bar = tqdm(total=len(paths), disable=not progress, desc=f"log-mel {final.name}", unit="file")
    results = _decoded(tasks, workers, window=batch_size + 2 * workers)
    with open(tmp / _DATA, "wb") as out, bar, closing(results):
        for index, signal, reason in results:
            if signal is not None and signal.shape[-1] < logmel.min_num_samples:
                reason = f"too short for the STFT ({signal.shape[-1]} samples at {cfg.sample_rate} Hz)"
                signal = None
            if signal is None:
                if on_error == "raise":
                    raise AudioError(reason or "unreadable", paths[index])
                skipped.append((resolve_path(paths[index]), reason or "unreadable"))
                bar.update(1)
                continue
            batch.append((index, signal))
            if len(batch) >= batch_size:
                write(batch)
        write(batch)
        out.flush()
        os.fsync(out.fileno())
    if not held:
        raise DataError(f"none of the {len(paths)} audio file(s) could be read", final)
    if skipped:
        report = SkipReport()
        for path, reason in skipped:
            report.add(path, None, reason)
        logger.warning("feature cache: %s", report.summary())
    np.save(tmp / _OFFSETS, np.asarray(offsets, dtype=np.int64))
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "key": key,
        "features": to_dict(cfg),
        "n_mels": cfg.n_mels,
        "total_frames": offsets[-1],
        "paths": held,
        "skipped": skipped,
        "requested": len(paths),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "audioadapt_version": __version__,
    }
    # meta.json is written last: a directory without it is never taken for a cache.
    (tmp / _META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def _publish(tmp: Path, final: Path, key: str) -> None:
    """Move the finished build in ``tmp`` to ``final``, replacing an old cache."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process published the same directory first: keep theirs if current.
        meta = _read_meta(final)
        if meta is None or meta["key"] != key:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["CACHE_FORMAT_VERSION", "FeatureCache", "OnError", "cache_key"]
