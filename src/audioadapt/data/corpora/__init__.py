"""Speech-emotion corpus loaders: each reads one corpus in its published layout.

Every loader has the signature
``prepare_<corpus>(root, *, on_error="raise", report=None, keep_unmapped=False,
check_audio=False, ...) -> list[Utterance]`` and maps the corpus's labels onto
:data:`~audioadapt.data.utterances.EMOTIONS`. Loaders check that audio files
exist but never decode them (``check_audio=True`` reads their headers).

=========  ===========================================  ==================
name       layout                                       4-class utterances
=========  ===========================================  ==================
iemocap    Session{1..5}/ + dialog/EmoEvaluation/*.txt  5 531
emodb      wav/<ss><ttt><E><v>.wav                      339
shemo      shemo.json + female/ male/                   2 767
urdu       Angry/ Happy/ Neutral/ Sad/                  400
ekorpus    <id>.wav + <id>.TextGrid                     1 164
ravdess    Actor_NN/03-01-EE-II-SS-RR-AA.wav            672 (864 with calm)
csv        path,label[,speaker] manifest                --
=========  ===========================================  ==================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from audioadapt.data.corpora.csv_manifest import prepare_csv
from audioadapt.data.corpora.ekorpus import prepare_ekorpus
from audioadapt.data.corpora.emodb import prepare_emodb
from audioadapt.data.corpora.iemocap import prepare_iemocap
from audioadapt.data.corpora.ravdess import prepare_ravdess
from audioadapt.data.corpora.shemo import prepare_shemo
from audioadapt.data.corpora.urdu import prepare_urdu
from audioadapt.data.utterances import Utterance
from audioadapt.errors import ConfigError

Loader = Callable[..., list[Utterance]]

#: Corpus name -> loader.
CORPORA: Mapping[str, Loader] = MappingProxyType(
    {
        "iemocap": prepare_iemocap,
        "emodb": prepare_emodb,
        "shemo": prepare_shemo,
        "urdu": prepare_urdu,
        "ekorpus": prepare_ekorpus,
        "ravdess": prepare_ravdess,
        "csv": prepare_csv,
    }
)


def load_corpus(name: str, root: str | Path, **kwargs: Any) -> list[Utterance]:
    """Read corpus ``name`` from ``root``; ``kwargs`` go to its loader.

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`CORPORA`.
    DataError
        If the data under ``root`` cannot be read (see each loader).
    """
    key = name.strip().lower()
    if key not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return CORPORA[key](root, **kwargs)


__all__ = [
    "CORPORA",
    "load_corpus",
    "prepare_csv",
    "prepare_ekorpus",
    "prepare_emodb",
    "prepare_iemocap",
    "prepare_ravdess",
    "prepare_shemo",
    "prepare_urdu",
]
