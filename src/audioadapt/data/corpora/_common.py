"""Helpers shared by the corpus loaders: error policy, audio checks, layout hints."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from audioadapt.data.manifest import SkipReport
from audioadapt.data.utterances import Utterance
from audioadapt.errors import AudioError, ConfigError, DataError

logger = logging.getLogger("audioadapt.data.corpora")

OnError = Literal["raise", "skip"]

#: Audio file extensions the loaders accept (lower case), in order of preference.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")

_ON_ERROR = ("raise", "skip")


class Problems:
    """Apply the ``on_error`` policy: raise the first problem or record it.

    Parameters
    ----------
    corpus: corpus name used in the log summary.
    on_error: ``"raise"`` raises :class:`DataError` at once; ``"skip"`` adds the
        problem to ``report`` and goes on.
    report: where skipped items are recorded (a new one when ``None``).
    """

    def __init__(self, corpus: str, on_error: str, report: SkipReport | None) -> None:
        if on_error not in _ON_ERROR:
            raise ConfigError(f"on_error must be one of {list(_ON_ERROR)}, got {on_error!r}")
        self.corpus = corpus
        self.on_error = on_error
        self.report = report if report is not None else SkipReport()
        self._start = len(self.report)

    @property
    def raising(self) -> bool:
        return self.on_error == "raise"

    def __call__(self, message: str, path: str | Path, line: int | None = None) -> None:
        """Raise or record one problem about ``path`` (and its 1-based ``line``)."""
        self.record(DataError(message, path, line))

    def record(self, error: DataError) -> None:
        """Raise ``error`` or record it, per the policy."""
        if self.raising:
            raise error
        self.report.add(error.path if error.path is not None else "", error.line, error.reason)

    @property
    def recorded(self) -> int:
        """Problems recorded (skipped) by this call so far."""
        return len(self.report) - self._start

    def finish(self, utterances: list[Utterance]) -> list[Utterance]:
        """Log what was skipped in this call and return ``utterances`` sorted by id."""
        if self.recorded:
            part = SkipReport(self.report.skipped[self._start :])
            logger.warning("%s: %s", self.corpus, part.summary())
        return sorted(utterances, key=lambda u: u.utt_id)


def layout_error(title: str, loader: str, root: Path, expected: str) -> DataError:
    """A wrong-layout error: what was expected, what was found, and which loader fits.

    ``title`` is the corpus's display name, ``loader`` its registry name.
    """
    return DataError(
        f"this is not {title} folder in its published layout. Expected {expected}. {describe(root)}"
        f"{layout_hint(root, loader)}",
        root,
    )


def layout_hint(root: Path, loader: str) -> str:
    """`` It looks like ...`` naming the loaders whose layout ``root`` has (other than ``loader``)."""
    if not root.is_dir():
        return ""
    names = {p.name.lower() for p in root.iterdir() if not is_hidden(p)}
    signs = {
        "iemocap": "session1" in names or "iemocap_full_release" in names,
        "emodb": "wav" in names,
        "shemo": "shemo.json" in names or {"female", "male"} <= names,
        "urdu": {"angry", "happy", "neutral", "sad"} <= names,
        "ekorpus": any(n.endswith(".textgrid") for n in names),
        "ravdess": any(n.startswith("actor_") for n in names),
        "csv": "manifest.csv" in names,
    }
    fits = [name for name, ok in signs.items() if ok and name != loader]
    if not fits:
        return ""
    return f" It looks like a layout for the {' or '.join(repr(f) for f in fits)} loader."


def describe(root: Path, limit: int = 8) -> str:
    """``Found: a/, b/, c.txt`` for the first ``limit`` visible entries of ``root``."""
    if not root.exists():
        return "The folder does not exist."
    if not root.is_dir():
        return "It is a file, not a folder."
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        return "The folder is empty."
    shown = ", ".join(entries[:limit])
    more = f", ... ({len(entries)} entries)" if len(entries) > limit else ""
    return f"Found: {shown}{more}."


def is_hidden(path: Path) -> bool:
    """Dot files and macOS resource forks (``._name``)."""
    return path.name.startswith(".")


def is_audio(path: Path) -> bool:
    """A visible regular file with an accepted audio extension."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and not is_hidden(path) and path.is_file()


def audio_files(folder: Path) -> list[Path]:
    """Audio files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if is_audio(p))


def find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/stem.wav`` or ``folder/stem.flac`` (first that exists), else ``None``."""
    for ext in AUDIO_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def check_audio_file(audio: Path, check_audio: bool) -> dict[str, Any]:
    """Check that ``audio`` is usable without decoding it.

    Always checks that it is a non-empty regular file. With ``check_audio``
    the header is read with soundfile and ``sample_rate``, ``channels`` and
    ``frames`` are returned (for :attr:`Utterance.extra`).

    Raises
    ------
    AudioError
        Naming ``audio`` when it is missing, a folder, empty or unreadable.
    """
    if not audio.exists():
        raise AudioError("audio file not found", audio)
    if not audio.is_file():
        raise AudioError("expected an audio file, found a folder", audio)
    if audio.stat().st_size == 0:
        raise AudioError("audio file is empty (0 bytes)", audio)
    if not check_audio:
        return {}
    import soundfile as sf

    try:
        info = sf.info(str(audio))
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read audio header: {exc}", audio) from exc
    if info.frames <= 0:
        raise AudioError("audio file holds no samples", audio)
    return {"sample_rate": int(info.samplerate), "channels": int(info.channels), "frames": int(info.frames)}


def referenced_audio(
    audio: Path | None, expected: Path, meta: Path, line: int | None, check_audio: bool, *, exact: bool = False
) -> dict[str, Any]:
    """Check audio named by a metadata file; errors name the metadata file and line.

    ``audio`` is the file found on disk (``None`` when none was), ``expected``
    the path the layout prescribes (shown when the file is missing); ``exact``
    says that no other extension was tried.
    """
    if audio is None:
        alt = " (or .flac)" if expected.suffix == ".wav" and exact is False else ""
        raise DataError(f"audio file not found: {expected}{alt}", meta, line)
    try:
        return check_audio_file(audio, check_audio)
    except AudioError as exc:
        raise DataError(f"unusable audio {audio}: {exc.reason}", meta, line) from exc


def read_text(path: Path, line_hint: int | None = None) -> str:
    """Read a text file as UTF-8 (BOM allowed), else Latin-1; errors name the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path, line_hint) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def unique_ids(utterances: Iterable[Utterance], problems: Problems) -> list[Utterance]:
    """Drop (or raise on) utterances whose id was already seen."""
    seen: dict[str, Path] = {}
    out = []
    for utt in utterances:
        if utt.utt_id in seen:
            problems(f"duplicate utterance id {utt.utt_id!r} (also {seen[utt.utt_id]})", utt.path)
            continue
        seen[utt.utt_id] = utt.path
        out.append(utt)
    return out
