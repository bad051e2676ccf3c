"""Intersection-based detection statistics (Bilen et al. 2020), exact over all thresholds.

A *detection* of class ``c`` at decision level ``u`` is a maximal run of frames
whose class-``c`` score is ``>= u``. Each detection is judged with the DCASE
intersection criteria, as defined in ``sed_scores_eval`` 0.0.4:

* **DTC**: the detection is relevant if its total intersection with the
  ground-truth events of its class is at least ``dtc`` times its length;
  otherwise it is a false positive;
* **GTC**: a ground-truth event is detected (true positive) if its total
  intersection with the *relevant* detections is at least ``gtc`` times its
  length;
* **CTTC**: a false positive is a cross-trigger with another class if its total
  intersection with that class's ground truth is at least ``cttc`` times its
  length (only for clips where that class has events).

Intersections are summed over events and compared after rounding to
``TIME_DECIMALS`` decimals, as sed_scores_eval does.

The statistics are computed for every distinct score at once. Every detection
at any level is the interval ``I(t)``: the largest run around frame ``t`` whose
scores are all ``>= score[t]``. It exists for levels ``u`` with
``max(neighbour scores) < u <= score[t]``, so its contribution enters at its
birth level and leaves at its death level. There are at most as many such
intervals as frames, and they are all found with vectorised nearest-smaller
searches. Sequences are processed in blocks to bound the memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from audioadapt.data.manifest import Event
from audioadapt.errors import DataError

#: Decimals to which intersections and criterion thresholds are rounded before comparing.
TIME_DECIMALS = 6


@dataclass(frozen=True)
class PackedInput:
    """Validated scores and ground truth laid out flat for vectorised evaluation.

    Clips are sorted by name. Scores form one flat array in (clip, class, frame)
    order where each (clip, class) *sequence* is preceded by a ``-inf`` sentinel,
    and one more sentinel ends the array. Sequence ``q`` is clip ``q // K``,
    class ``q % K``. Ground-truth events are sorted stably by (clip, class).
    """

    clips: tuple[str, ...]
    classes: tuple[str, ...]
    x: np.ndarray  # (position,) scores with -inf sentinels
    seq_of: np.ndarray  # (position,) sequence of each position (sentinel: the next one)
    seq_start: np.ndarray  # (sequence,) position of the first frame
    ts: np.ndarray  # concatenated frame boundaries of all clips
    ts_start: np.ndarray  # (clip,) offset of each clip's boundaries in ``ts``
    gt_on: np.ndarray  # (event,)
    gt_off: np.ndarray  # (event,)
    gt_cls: np.ndarray  # (event,)
    gt_seq_ptr: np.ndarray  # (sequence + 1,) events of sequence q: gt_seq_ptr[q]:gt_seq_ptr[q+1]
    gt_clip_ptr: np.ndarray  # (clip + 1,)
    n_ref: np.ndarray  # (class,) number of ground-truth events
    t_ref: np.ndarray  # (class,) total ground-truth duration in seconds

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def pack_inputs(
    scores: Mapping[str, np.ndarray],
    timestamps: Mapping[str, np.ndarray] | np.ndarray,
    classes: Sequence[str],
    ground_truth: Mapping[str, Sequence[Event]],
) -> PackedInput:
    """Validate the inputs and lay them out for the statistics functions.

    Parameters
    ----------
    scores: per clip a ``(frame, class)`` array of finite scores.
    timestamps: per clip the ``frame + 1`` increasing frame boundaries in
        seconds, or one array shared by all clips.
    classes: the class names, in score column order.
    ground_truth: per clip its events; every scored clip must be present
        (an empty sequence for a clip without events) and every class must
        have at least one event in the whole set.

    Raises
    ------
    DataError: on any inconsistency, naming the clip concerned.
    """
    classes = tuple(classes)
    K = len(classes)
    if K == 0 or len(set(classes)) != K:
        raise DataError(f"classes must be a non-empty list of distinct names, got {list(classes)}")
    if not scores:
        raise DataError("no scored clips")
    _check_same_clips(scores.keys(), ground_truth.keys(), "ground truth")
    if isinstance(timestamps, Mapping):
        _check_same_clips(scores.keys(), timestamps.keys(), "timestamps")
    clips = tuple(sorted(scores))
    class_index = {c: k for k, c in enumerate(classes)}

    x_parts, ts_parts, lengths = [], [], []
    for clip in clips:
        s = np.asarray(scores[clip], dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != K or s.shape[0] == 0:
            raise DataError(f"clip {clip!r}: scores must have shape (frame>0, {K}), got {s.shape}")
        if not np.isfinite(s).all():
            raise DataError(f"clip {clip!r}: scores contain NaN or infinite values")
        t = np.asarray(timestamps[clip] if isinstance(timestamps, Mapping) else timestamps, dtype=np.float64)
        if t.shape != (s.shape[0] + 1,):
            raise DataError(f"clip {clip!r}: expected {s.shape[0] + 1} frame boundaries, got shape {t.shape}")
        if not np.isfinite(t).all() or not (np.diff(t) > 0).all():
            raise DataError(f"clip {clip!r}: frame boundaries must be finite and strictly increasing")
        block = np.full((K, s.shape[0] + 1), -np.inf)
        block[:, 1:] = s.T
        x_parts.append(block.ravel())
        ts_parts.append(t)
        lengths.append(s.shape[0])
    x = np.concatenate(x_parts + [np.array([-np.inf])])
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    seq_len = np.repeat(lengths_arr + 1, K)  # sentinel + frames per sequence
    seq_of = np.concatenate([np.repeat(np.arange(len(seq_len)), seq_len), [len(seq_len)]])
    seq_start = np.cumsum(seq_len) - seq_len + 1
    ts_start = np.concatenate([[0], np.cumsum(lengths_arr + 1)[:-1]])

    clip_pos = {c: i for i, c in enumerate(clips)}
    rows: list[tuple[int, int, float, float]] = []
    n_ref = np.zeros(K, dtype=np.int64)
    t_ref = [0.0] * K
    for clip in ground_truth:  # the caller's order, for the duration sums
        for ev in ground_truth[clip]:
            try:
                onset, offset, label = (ev.onset, ev.offset, ev.label) if isinstance(ev, Event) else ev
            except (TypeError, ValueError):
                raise DataError(f"clip {clip!r}: expected an Event or (onset, offset, label), got {ev!r}") from None
            if label not in class_index:
                raise DataError(f"clip {clip!r}: event label {label!r} is not one of {list(classes)}")
            onset, offset = float(onset), float(offset)
            if not (np.isfinite(onset) and np.isfinite(offset) and 0.0 <= onset < offset):
                raise DataError(f"clip {clip!r}: event {label!r} needs 0 <= onset < offset, got ({onset}, {offset})")
            k = class_index[label]
            rows.append((clip_pos[clip], k, onset, offset))
            n_ref[k] += 1
            t_ref[k] += offset - onset
    missing = [c for c, count in zip(classes, n_ref) if count == 0]
    if missing:
        raise DataError(f"no ground-truth events for class(es) {missing}; every class needs at least one event")
    gt_clip = np.asarray([r[0] for r in rows], dtype=np.int64)
    gt_cls = np.asarray([r[1] for r in rows], dtype=np.int64)
    gt_on = np.asarray([r[2] for r in rows], dtype=np.float64)
    gt_off = np.asarray([r[3] for r in rows], dtype=np.float64)
    order = np.lexsort((gt_cls, gt_clip))  # stable: keeps the given order within (clip, class)
    gt_clip, gt_cls, gt_on, gt_off = gt_clip[order], gt_cls[order], gt_on[order], gt_off[order]
    seq = gt_clip * K + gt_cls
    _check_disjoint(seq, gt_on, gt_off, clips, classes)
    n_seq = len(clips) * K
    gt_seq_ptr = np.searchsorted(seq, np.arange(n_seq + 1), side="left")
    gt_clip_ptr = np.searchsorted(gt_clip, np.arange(len(clips) + 1), side="left")
    return PackedInput(
        clips, classes, x, seq_of, seq_start, np.concatenate(ts_parts), ts_start,
        gt_on, gt_off, gt_cls, gt_seq_ptr, gt_clip_ptr, n_ref, np.asarray(t_ref),
    )


def _check_same_clips(expected, given, what: str) -> None:
    expected, given = set(expected), set(given)
    if expected != given:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise DataError(
            f"{what} clips do not match the scored clips: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}"
        )


def _check_disjoint(seq, on, off, clips, classes) -> None:
    """Events of one class in one clip must neither overlap nor touch."""
    order = np.lexsort((on, seq))
    s, a, b = seq[order], on[order], off[order]
    bad = np.flatnonzero((s[1:] == s[:-1]) & (a[1:] <= b[:-1]))
    if bad.size:
        i = bad[0]
        K = len(classes)
        raise DataError(
            f"clip {clips[s[i] // K]!r}: overlapping or touching {classes[s[i] % K]!r} events "
            f"({a[i]}, {b[i]}) and ({a[i + 1]}, {b[i + 1]}); merge them first"
        )


# -- intervals ----------------------------------------------------------------
def _nearest_smaller(x: np.ndarray, step: int) -> np.ndarray:
    """For each frame, the nearest position in direction ``step`` with a strictly smaller score.

    Pointer jumping: ``p`` only ever skips positions whose scores are ``>=``
    the frame's own, so it converges to the answer; sentinels stop it.
    """
    p = np.arange(len(x)) + step
    idx = np.flatnonzero(x > -np.inf)
    while idx.size:
        pi = p[idx]
        more = x[pi] >= x[idx]
        idx = idx[more]
        p[idx] = p[pi[more]]
    return p


def component_intervals(P: PackedInput, lo: int = 0, hi: int | None = None):
    """All detections over all levels, in positions ``lo..hi`` (both sentinels).

    Returns
    -------
    levels: (level,) the distinct scores of the block, ascending.
    q, first, end: (detection,) sequence and frame range (end exclusive).
    birth, death: (detection,) indices into ``levels``: the detection exists
        for levels ``levels[death] < u <= levels[birth]``; ``death = -1``
        means it never merges into a larger one.
    """
    x = P.x[lo:(len(P.x) - 1 if hi is None else hi) + 1]
    frames = np.flatnonzero(x > -np.inf)
    levels, inverse = np.unique(x[frames], return_inverse=True)
    rank = np.full(len(x), -1, dtype=np.int64)
    rank[frames] = inverse
    left = _nearest_smaller(x, -1)[frames] + 1
    right = _nearest_smaller(x, 1)[frames]
    _, first = np.unique(left * len(x) + right, return_index=True)
    left, right, rep = left[first], right[first], frames[first]
    death = np.maximum(rank[left - 1], rank[right])
    q = P.seq_of[rep + lo]
    start = P.seq_start[q] - lo
    return levels, q, left - start, right - start, rank[rep], death


def _blocks(P: PackedInput, size: int):
    """Position ranges ``(lo, hi)`` of whole sequences, about ``size`` positions each."""
    sentinels = np.append(P.seq_start - 1, len(P.x) - 1)
    lo = 0
    while lo < len(P.x) - 1:
        at = np.searchsorted(sentinels, lo)  # lo is a sentinel
        last = max(np.searchsorted(sentinels, lo + size, side="right") - 1, at + 1)
        yield int(lo), int(sentinels[last])
        lo = int(sentinels[last])


def threshold_intervals(P: PackedInput, thresholds: np.ndarray):
    """Detections at one threshold per class (frames with score ``> threshold``): ``(seq, first, end)``."""
    active = P.x > thresholds[P.seq_of % P.num_classes]
    change = np.diff(active.astype(np.int8))
    starts = np.flatnonzero(change == 1) + 1
    ends = np.flatnonzero(change == -1) + 1
    q = P.seq_of[starts]
    return q, starts - P.seq_start[q], ends - P.seq_start[q]


def _expand(starts: np.ndarray, ends: np.ndarray):
    """All pairs ``(i, j)`` with ``starts[i] <= j < ends[i]``, grouped by ``i``."""
    counts = ends - starts
    i = np.repeat(np.arange(len(starts)), counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    return i, j


def _overlap(on, off, g_on, g_off):
    return np.maximum(np.minimum(off, g_off) - np.maximum(on, g_on), 0.0)


@dataclass(frozen=True)
class IntervalCriteria:
    """Criteria of a set of detections.

    Attributes
    ----------
    relevant: (detection,) DTC satisfied.
    cross: (detection, class) CTTC satisfied w.r.t. that other class, or None.
    pair_det, pair_gt, pair_overlap: (pair,) intersections of each detection with
        each ground-truth event of its own clip and class.
    """

    relevant: np.ndarray
    cross: np.ndarray | None
    pair_det: np.ndarray
    pair_gt: np.ndarray
    pair_overlap: np.ndarray


#: Detections judged at once; bounds the memory of the (detection, event) pairs.
_CHUNK = 1 << 17


def interval_criteria(P: PackedInput, q, first, end, dtc: float, cttc: float | None) -> IntervalCriteria:
    """Apply the DTC (and CTTC if given) to detections ``(seq, first, end)``."""
    parts = [
        _criteria_chunk(P, q[i:i + _CHUNK], first[i:i + _CHUNK], end[i:i + _CHUNK], dtc, cttc)
        for i in range(0, max(len(q), 1), _CHUNK)
    ]
    if len(parts) == 1:
        return parts[0]
    return IntervalCriteria(
        relevant=np.concatenate([c.relevant for c in parts]),
        cross=None if cttc is None else np.concatenate([c.cross for c in parts]),
        pair_det=np.concatenate([c.pair_det + i * _CHUNK for i, c in enumerate(parts)]),
        pair_gt=np.concatenate([c.pair_gt for c in parts]),
        pair_overlap=np.concatenate([c.pair_overlap for c in parts]),
    )


def _criteria_chunk(P: PackedInput, q, first, end, dtc: float, cttc: float | None) -> IntervalCriteria:
    K = P.num_classes
    clip, cls = q // K, q % K
    on = P.ts[P.ts_start[clip] + first]
    off = P.ts[P.ts_start[clip] + end]
    length = off - on
    n = len(q)
    det, gt = _expand(P.gt_seq_ptr[q], P.gt_seq_ptr[q + 1])
    ov = _overlap(on[det], off[det], P.gt_on[gt], P.gt_off[gt])
    inter = np.round(np.bincount(det, ov, minlength=n), TIME_DECIMALS)
    relevant = inter >= np.round(dtc * length, TIME_DECIMALS)
    cross = None
    if cttc is not None:
        d2, g2 = _expand(P.gt_clip_ptr[clip], P.gt_clip_ptr[clip + 1])
        other = P.gt_cls[g2] != cls[d2]
        d2, g2 = d2[other], g2[other]
        ov2 = _overlap(on[d2], off[d2], P.gt_on[g2], P.gt_off[g2]) * ~relevant[d2]
        pair_key, group = np.unique(d2 * K + P.gt_cls[g2], return_inverse=True)  # (detection, other class)
        total = np.round(np.bincount(group, ov2, minlength=len(pair_key)), TIME_DECIMALS)
        hit = total >= np.round(cttc * length, TIME_DECIMALS)[pair_key // K]
        cross = np.zeros((n, K), dtype=bool)
        cross.reshape(-1)[pair_key[hit]] = True
    return IntervalCriteria(relevant, cross, det, gt, ov)


def _gt_lengths_threshold(P: PackedInput, gtc: float) -> np.ndarray:
    return np.round(gtc * (P.gt_off - P.gt_on), TIME_DECIMALS)


# -- statistics -----------------------------------------------------------------
@dataclass(frozen=True)
class ClassStatistics:
    """Counts of one class as a function of the decision level.

    Row ``i`` holds the counts when frames with score ``>= levels[i]`` are
    active; the last level is ``inf`` (nothing detected, all counts zero).

    Attributes
    ----------
    levels: (level,) ascending change-point scores, ending with ``inf``.
    tps: (level,) detected ground-truth events.
    fps: (level,) detections failing the DTC.
    cts: (level, class) cross-triggers with each other class (own column zero),
        or None when no CTTC was given.
    """

    levels: np.ndarray
    tps: np.ndarray
    fps: np.ndarray
    cts: np.ndarray | None


#: Frames whose detections are counted at once in :func:`statistics_curve`.
_BLOCK_FRAMES = 1 << 18


def statistics_curve(P: PackedInput, dtc: float, gtc: float, cttc: float | None) -> list[ClassStatistics]:
    """Intersection-based counts of every class at every distinct score."""
    K = P.num_classes
    n_col = 2 + (K if cttc is not None else 0)  # columns: tp, fp, cross-triggers with each class
    parts = [_count_changes(P, lo, hi, dtc, gtc, cttc, n_col) for lo, hi in _blocks(P, _BLOCK_FRAMES)]
    cls, level, col, net = (np.concatenate(v) for v in zip(*parts))
    # a level counts for a class when some count of one of its clips changes there
    levels, rank = np.unique(level, return_inverse=True)
    n_lv = len(levels)
    rows, row_of = np.unique(cls.astype(np.int64) * n_lv + rank, return_inverse=True)
    table = np.zeros((len(rows), n_col), dtype=np.int64)
    np.add.at(table, (row_of, col), net)
    bounds = np.searchsorted(rows // n_lv, np.arange(K + 1))
    out = []
    for k in range(K):
        lo, hi = bounds[k], bounds[k + 1]
        acc = np.concatenate([np.cumsum(table[lo:hi][::-1], axis=0)[::-1], np.zeros((1, n_col), np.int64)])
        lv = np.append(levels[rows[lo:hi] % n_lv], np.inf)
        out.append(ClassStatistics(lv, acc[:, 0], acc[:, 1], acc[:, 2:] if cttc is not None else None))
    return out


def _count_changes(P: PackedInput, lo: int, hi: int, dtc: float, gtc: float, cttc: float | None, n_col: int):
    """Net count changes ``(class, level, column, delta)`` of the sequences in positions ``lo..hi``.

    Only (clip, class, level) where some count changes are kept, as
    sed_scores_eval's per-clip change points.
    """
    K = P.num_classes
    levels, q, first, end, birth, death = component_intervals(P, lo, hi)
    n_lv = len(levels)
    crit = interval_criteria(P, q, first, end, dtc, cttc)
    dies = death >= 0
    seq_e, lv_e, col_e, val_e = [], [], [], []

    def emit(det: np.ndarray, col, sign: int) -> None:
        """``det`` changes ``col`` by ``sign`` at its birth and back at its death."""
        gone = det[dies[det]]
        seq_e.extend([q[det], q[gone]])
        lv_e.extend([birth[det], death[gone]])
        col = np.broadcast_to(col, det.shape)
        col_e.extend([col, col[dies[det]]])
        val_e.extend([np.full(len(det), sign), np.full(len(gone), -sign)])

    emit(np.flatnonzero(~crit.relevant), 1, 1)
    if crit.cross is not None:
        det, other = np.nonzero(crit.cross)
        emit(det, 2 + other, 1)
    # tps: per ground-truth event, the length covered by relevant detections, level by level
    keep = crit.relevant[crit.pair_det] & (crit.pair_overlap > 0)
    det, gt, ov = crit.pair_det[keep], crit.pair_gt[keep], crit.pair_overlap[keep]
    d_dies = dies[det]
    ev_gt = np.concatenate([gt, gt[d_dies]])
    ev_lv = np.concatenate([birth[det], death[det][d_dies]])
    ev_val = np.concatenate([ov, -ov[d_dies]])
    order = np.argsort(ev_gt * n_lv + (n_lv - 1 - ev_lv), kind="stable")  # by event, level descending
    ev_gt, ev_lv, ev_val = ev_gt[order], ev_lv[order], ev_val[order]
    covered = _segmented_cumsum(ev_val, ev_gt)
    last = np.ones(len(ev_gt), dtype=bool)
    last[:-1] = (ev_gt[1:] != ev_gt[:-1]) | (ev_lv[1:] != ev_lv[:-1])
    ev_gt, ev_lv, covered = ev_gt[last], ev_lv[last], covered[last]
    hit = (np.round(covered, TIME_DECIMALS) >= _gt_lengths_threshold(P, gtc)[ev_gt]).astype(np.int64)
    prev = np.zeros_like(hit)
    same = ev_gt[1:] == ev_gt[:-1]
    prev[1:][same] = hit[:-1][same]
    nz = hit != prev
    gt_seq = np.repeat(np.arange(len(P.gt_seq_ptr) - 1), np.diff(P.gt_seq_ptr))
    seq_e.append(gt_seq[ev_gt[nz]])
    lv_e.append(ev_lv[nz])
    col_e.append(np.zeros(int(nz.sum()), dtype=np.int64))
    val_e.append((hit - prev)[nz])

    seq0 = int(P.seq_of[lo])
    seq_lv = (np.concatenate(seq_e) - seq0) * n_lv + np.concatenate(lv_e)
    key, net = _sum_by_key(seq_lv * n_col + np.concatenate(col_e), np.concatenate(val_e))
    key, net = key[net != 0], net[net != 0]
    seq_lv = key // n_col
    cls = ((seq_lv // n_lv + seq0) % K).astype(np.int32)
    return cls, levels[seq_lv % n_lv], (key % n_col).astype(np.int32), net.astype(np.int32)


def statistics_at(P: PackedInput, thresholds: np.ndarray, dtc: float, gtc: float, cttc: float | None):
    """Counts per class with frames of score ``> thresholds[class]`` active.

    Returns
    -------
    tps, fps: (class,) integer counts.
    cts: (class, other class) cross-trigger counts, or None without a CTTC.
    """
    K = P.num_classes
    q, first, end = threshold_intervals(P, np.asarray(thresholds, dtype=np.float64))
    crit = interval_criteria(P, q, first, end, dtc, cttc)
    fps = np.bincount(q[~crit.relevant] % K, minlength=K)
    covered = np.bincount(crit.pair_gt, crit.pair_overlap * crit.relevant[crit.pair_det], minlength=len(P.gt_on))
    hit = np.round(covered, TIME_DECIMALS) >= _gt_lengths_threshold(P, gtc)
    tps = np.bincount(P.gt_cls[hit], minlength=K)
    cts = None
    if crit.cross is not None:
        cts = np.zeros((K, K), dtype=np.int64)
        np.add.at(cts, q % K, crit.cross.astype(np.int64))
    return tps, fps, cts


def _sum_by_key(keys: np.ndarray, values: np.ndarray):
    """Unique sorted ``keys`` with the sum of their ``values``."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse, values, minlength=len(uniq)).astype(np.int64)


def _segmented_cumsum(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each new value of sorted ``segments``.

    A log-step scan: each sum only ever adds terms of its own segment, so the
    rounding error stays relative to the segment's own magnitudes.
    """
    out = values.astype(np.float64, copy=True)
    d = 1
    while d < len(out):
        same = segments[d:] == segments[:-d]
        if not same.any():
            break
        add = np.where(same, out[:-d], 0.0)
        out[d:] = out[d:] + add
        d *= 2
    return out
