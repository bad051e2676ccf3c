"""Banks of isolated real recordings (sound events or backgrounds) and their source groups.

A bank lists audio files, each with a class ``label`` and a ``group``: the
id of the source recording it was cut from. Takes of one recording are near
duplicates, so a group must never appear on both sides of a split;
:func:`assign_groups` splits by group.

A bank is given in one of three forms:

* **a folder**: ``DIR/<label>/<file>`` (each file is its own group) or
  ``DIR/<label>/<group>/<file>`` (files in one sub-folder share a group; the
  same sub-folder name under two labels is the same group). Background
  banks may also hold files directly in ``DIR`` (label ``""``).
* **a CSV manifest** (``.csv``) with a header ``path,label[,group]``; paths
  are relative to the CSV file; an empty or missing group makes each file
  its own group.
* **a YAML bank spec** (``.yaml``/``.yml``) that selects and relabels rows
  of existing manifests with other column names::

      root: ../data                  # relative to this file; ~ and $VARS expand
      sources:
        - manifest: kitchen20/manifest.csv   # relative to root; paths inside
          name: kitchen20                    #   are relative to the manifest
          path_column: path
          label_column: category
          group_column: source_id            # omitted: each file its own group
          group_strip: '\\(1\\)$'           # regex removed from group ids
          labels: {blender: blender, juicer: blender}   # others are dropped;
                                                        # '*' maps any label
          exclude: [audio/a-duplicate.flac]  # path-column values to drop

Group ids are namespaced by source (``name``, default: the manifest path as
written) so that equal ids from two corpora stay apart, and never contain
absolute paths, so a split does not depend on where the data lives.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioadapt.errors import ConfigError, DataError

#: File extensions read from bank folders.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64", ".mp3"})


@dataclass(frozen=True)
class BankItem:
    """One isolated recording: its file, class label and source-recording group."""

    path: Path
    label: str
    group: str


@dataclass(frozen=True)
class BankSource:
    """One manifest inside a YAML bank spec (see the module docstring)."""

    manifest: str
    name: str | None = None
    path_column: str = "path"
    label_column: str = "label"
    group_column: str | None = None
    group_strip: str | None = None
    labels: dict[str, str] | None = None
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.manifest:
            raise ValueError("manifest must not be empty")
        if self.group_strip is not None:
            try:
                re.compile(self.group_strip)
            except re.error as exc:
                raise ValueError(f"group_strip is not a valid regular expression: {exc}") from None


@dataclass(frozen=True)
class BankSpec:
    """A YAML bank spec: a root folder and the manifests to read under it."""

    root: str = "."
    sources: tuple[BankSource, ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a bank spec needs at least one entry under 'sources'")


# --------------------------------------------------------------------------- reading
def _is_audio(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in AUDIO_EXTENSIONS


def _read_folder(root: Path, require_labels: bool) -> list[BankItem]:
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not _is_audio(path):
                continue
            rel = path.relative_to(root)
            parts = rel.parts
            if len(parts) == 1:
                if require_labels:
                    raise DataError("event recordings must sit in class sub-folders (DIR/<label>/...)", path)
                items.append(BankItem(path, "", rel.as_posix()))
            elif len(parts) == 2:
                items.append(BankItem(path, parts[0], rel.as_posix()))
            else:
                items.append(BankItem(path, parts[0], parts[1]))
    if not items:
        raise DataError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found", root)
    return items


def _read_manifest(csv_path: Path, source: BankSource, group_prefix: str, require_labels: bool) -> list[BankItem]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            required = [source.path_column] + ([source.label_column] if require_labels else [])
            if source.group_column is not None:
                required.append(source.group_column)
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"missing column(s) {', '.join(missing)} (header: {', '.join(header)})", csv_path, 1)
            group_column = source.group_column or ("group" if "group" in header else None)
            strip = re.compile(source.group_strip) if source.group_strip else None
            exclude = set(source.exclude)
            items = []
            for row in reader:
                line = reader.line_num
                rel = (row.get(source.path_column) or "").strip()
                if not rel:
                    raise DataError(f"empty '{source.path_column}'", csv_path, line)
                if rel in exclude:
                    continue
                raw_label = (row.get(source.label_column) or "").strip()
                label = _map_label(raw_label, source.labels)
                if label is None:
                    continue
                if require_labels and not label:
                    raise DataError(f"empty '{source.label_column}'", csv_path, line)
                path = csv_path.parent / rel
                if not path.is_file():
                    raise DataError(f"audio file not found: {path}", csv_path, line)
                group = (row.get(group_column) or "").strip() if group_column else ""
                if strip is not None:
                    group = strip.sub("", group)
                items.append(BankItem(path, label, f"{group_prefix}{group or rel}"))
    except FileNotFoundError:
        raise DataError("manifest not found", csv_path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest is not UTF-8 text ({exc.reason})", csv_path) from None
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", csv_path) from None
    return items


def _map_label(label: str, mapping: Mapping[str, str] | None) -> str | None:
    if mapping is None:
        return label
    if label in mapping:
        return mapping[label]
    return mapping.get("*")


def _read_spec(path: Path, require_labels: bool) -> list[BankItem]:
    import yaml

    from audioadapt.config.load import StrictLoader, from_dict

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
    except FileNotFoundError:
        raise DataError("bank spec not found", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path,
                        None if mark is None else mark.line + 1) from None
    if not isinstance(data, Mapping):
        raise DataError("a bank spec must be a mapping with 'sources'", path)
    try:
        spec = from_dict(BankSpec, data)
    except ConfigError as exc:
        raise DataError(f"invalid bank spec: {exc}", path) from None
    root = path.parent / os.path.expandvars(os.path.expanduser(spec.root))
    items = []
    for source in spec.sources:
        manifest = root / os.path.expandvars(os.path.expanduser(source.manifest))
        prefix = f"{source.name or source.manifest}:"
        items.extend(_read_manifest(manifest, source, prefix, require_labels))
    return items


def read_bank(source: str | Path, *, require_labels: bool = True) -> tuple[BankItem, ...]:
    """Read a bank from a folder, a CSV manifest or a YAML bank spec.

    Parameters
    ----------
    source: the folder or file (the module docstring describes the formats).
    require_labels: every item must have a non-empty label (event banks);
        background banks pass ``False``.

    Raises
    ------
    DataError
        Naming the file (and 1-based line) of a missing file, a missing
        column, an empty label or a file listed twice.
    """
    source = Path(source)
    if source.is_dir():
        items = _read_folder(source, require_labels)
    elif not source.exists():
        raise DataError("bank folder or manifest not found", source)
    elif source.suffix.lower() == ".csv":
        items = _read_manifest(source, BankSource(manifest=source.name), "", require_labels)
    elif source.suffix.lower() in (".yaml", ".yml"):
        items = _read_spec(source, require_labels)
    else:
        raise DataError("expected a folder, a .csv manifest or a .yaml bank spec", source)
    if not items:
        raise DataError("the bank holds no recording (check the label mapping)", source)
    seen: dict[Path, BankItem] = {}
    for item in items:
        key = item.path.resolve()
        if key in seen:
            raise DataError(f"recording listed twice: {item.path}", source)
        seen[key] = item
    return tuple(items)


def load_item(item: BankItem, sample_rate: int) -> np.ndarray:
    """Decode one recording as float64 mono ``(sample,)`` at ``sample_rate``.

    Raises :class:`~audioadapt.errors.AudioError` naming the file.
    """
    from audioadapt.audio.io import load_audio

    return load_audio(item.path, sample_rate, mono=True).astype(np.float64)


# --------------------------------------------------------------------------- group split
def assign_groups(
    strata: Mapping[str, Sequence[str]], fractions: Sequence[float], rng: np.random.Generator
) -> dict[str, int]:
    """Send every group to one side so that each stratum is split near ``fractions``.

    Parameters
    ----------
    strata: stratum (e.g. a class) -> the group of each of its items; a
        group may occur in several strata and is still sent to one side.
    fractions: target share of items per side (non-negative).
    rng: decides the order in which groups are dealt out.

    Returns
    -------
    Group -> side index. Strata with the fewest groups are dealt first; in
    each, every side with a positive fraction first receives one group (while
    groups remain), then each group goes to the side furthest below its
    target item count.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.ndim != 1 or fractions.size == 0 or (fractions < 0).any() or fractions.sum() <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    counts = {name: Counter(groups) for name, groups in strata.items()}
    all_groups = sorted({g for c in counts.values() for g in c})
    rank = {g: int(r) for g, r in zip(all_groups, rng.permutation(len(all_groups)))}
    positive = [s for s in range(fractions.size) if fractions[s] > 0]
    assigned: dict[str, int] = {}
    for name in sorted(counts, key=lambda n: (len(counts[n]), n)):
        c = counts[name]
        total = sum(c.values())
        have = np.zeros(fractions.size)
        used = np.zeros(fractions.size, dtype=int)
        for g, n in c.items():
            if g in assigned:
                have[assigned[g]] += n
                used[assigned[g]] += 1
        for g in sorted((g for g in c if g not in assigned), key=rank.__getitem__):
            missing = [s for s in positive if used[s] == 0]
            if missing:
                side = max(missing, key=lambda s: (fractions[s], -s))
            else:
                side = max(positive, key=lambda s: (fractions[s] * total - have[s], -s))
            assigned[g] = side
            have[side] += c[g]
            used[side] += 1
    return assigned


__all__ = [
    "AUDIO_EXTENSIONS",
    "BankItem",
    "BankSource",
    "BankSpec",
    "assign_groups",
    "load_item",
    "read_bank",
]
