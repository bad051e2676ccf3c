"""Which corpus each side of a SER experiment reads: ``CORPUS:PATH`` specifications and loader options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from audioadapt.errors import ConfigError

#: Corpus names besides the loaders of :mod:`audioadapt.data.corpora`: a folder
#: written by ``audioadapt synth ser`` (the domain is the side's role).
GENERATED = "generated"


def _known_corpora() -> tuple[str, ...]:
    from audioadapt.data.corpora import CORPORA

    return tuple(CORPORA) + (GENERATED,)


@dataclass(frozen=True)
class SerCorpusConfig:
    """Where one side's utterances come from.

    Attributes
    ----------
    corpus: a loader of :mod:`audioadapt.data.corpora` (``iemocap``, ``emodb``,
        ``shemo``, ``urdu``, ``ekorpus``, ``csv``) or ``generated`` (a dataset
        folder of ``audioadapt synth ser``, whose domain is the side's role).
        ``None`` until given (``--source`` / ``--target``).
    root: the corpus folder, the CSV manifest, or the generated dataset folder.
    on_error: ``raise`` at the first bad metadata row or missing audio file,
        or ``skip`` it (the counts in ``data.json`` record what was used).
    options: further keyword arguments of the corpus's loader, e.g.
        ``{calm: neutral}`` for ``ravdess`` or ``{label_column: emotion4}`` for
        ``csv``; a name the loader does not take is refused.
    """

    corpus: str | None = None
    root: str | None = None
    on_error: Literal["raise", "skip"] = "raise"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.corpus is None) != (self.root is None):
            raise ConfigError(f"a corpus needs both a name and a root, got corpus={self.corpus!r}, root={self.root!r}")
        if self.corpus is not None:
            name = self.corpus.strip().lower()
            if name not in _known_corpora():
                raise ConfigError(f"unknown corpus {self.corpus!r}; known: {', '.join(_known_corpora())}")
            object.__setattr__(self, "corpus", name)
        object.__setattr__(self, "options", dict(self.options))
        if self.options:
            _check_loader_options(self.corpus, self.options)

    @property
    def given(self) -> bool:
        return self.corpus is not None

    def describe(self) -> str:
        return f"{self.corpus}:{self.root}" if self.given else "(not given)"


#: Loader keywords that the corpus settings set themselves (``on_error``) or that a run never passes.
_RESERVED_OPTIONS = ("on_error", "report")


def loader_options(corpus: str | None) -> tuple[str, ...]:
    """The keyword options ``options`` may give the loader of ``corpus`` (none for ``generated``)."""
    import inspect

    from audioadapt.data.corpora import CORPORA

    if corpus is None or corpus not in CORPORA:
        return ()
    params = inspect.signature(CORPORA[corpus]).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _RESERVED_OPTIONS)


def _check_loader_options(corpus: str | None, options: Mapping[str, Any]) -> None:
    import difflib

    valid = loader_options(corpus)
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            listed = ", ".join(valid) if valid else "none"
            raise ConfigError(f"unknown option '{key}' of the {corpus or 'unnamed'} corpus loader.{hint} Its "
                              f"options: {listed}")


def parse_corpus_spec(text: str) -> SerCorpusConfig:
    """``CORPUS:PATH`` (e.g. ``emodb:/data/emodb``, ``csv:/x/manifest.csv``) or a generated dataset folder.

    A bare path is a generated dataset when it holds ``dataset.json``, else a
    CSV manifest (a ``.csv`` file or a folder holding ``manifest.csv``).
    """
    text = text.strip()
    if not text:
        raise ConfigError("empty corpus specification; expected CORPUS:PATH or a dataset folder")
    name, sep, path = text.partition(":")
    if sep and name.strip().lower() in _known_corpora():
        if not path:
            raise ConfigError(f"corpus specification {text!r} has no path after ':'")
        return SerCorpusConfig(name.strip().lower(), path)
    if sep and len(name) > 1 and not Path(text).exists() and "/" not in name and "\\" not in name:
        raise ConfigError(f"unknown corpus {name!r} in {text!r}; known: {', '.join(_known_corpora())}")
    root = Path(text)
    if (root / "dataset.json").is_file():
        return SerCorpusConfig(GENERATED, text)
    if root.suffix.lower() == ".csv" or (root / "manifest.csv").is_file():
        return SerCorpusConfig("csv", text)
    raise ConfigError(f"cannot tell which corpus {text!r} is: give CORPUS:PATH with CORPUS one of "
                      f"{', '.join(_known_corpora())}, or a folder written by 'audioadapt synth ser'")


__all__ = ["GENERATED", "SerCorpusConfig", "loader_options", "parse_corpus_spec"]
