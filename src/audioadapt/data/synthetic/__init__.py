"""Embedded synthetic datasets with a tunable domain shift.

* :mod:`~audioadapt.data.synthetic.sed`: sound-event soundscapes in the
  DCASE 2019 layout (:func:`generate_sed_dataset`);
* :mod:`~audioadapt.data.synthetic.ser`: a two-"language" speech-emotion
  dataset of CSV-manifest corpora (:func:`generate_ser_dataset`), with its
  settings in :mod:`~audioadapt.data.synthetic.ser_config` and its
  synthesiser in :mod:`~audioadapt.data.synthetic.ser_voice`;
* :mod:`~audioadapt.data.synthetic.sizes`: the size presets of both;
* :mod:`~audioadapt.data.synthetic.sources`: the ten procedural event classes;
* :mod:`~audioadapt.data.synthetic.domain`: reverberation, microphone
  coloration and background noise, reusable for any generator.

The names below are imported on first use, so importing a submodule (for
example ``domain``) does not pull in the whole generator.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SER_SIZE_PRESETS": "sizes",
    "SIZE_PRESETS": "sizes",
    "SedDatasetInfo": "sed",
    "SedSynthConfig": "sed",
    "SerDatasetInfo": "ser",
    "SerSizeOverrides": "sizes",
    "SerSizes": "sizes",
    "SerSynthConfig": "ser_config",
    "SizeOverrides": "sizes",
    "SplitSizes": "sizes",
    "generate_sed_dataset": "sed",
    "generate_ser_dataset": "ser",
    "load_ser_config": "ser_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
