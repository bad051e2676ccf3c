"""audioadapt: learning sound classifiers across a domain gap.

Two systems share one toolkit:

* weakly labeled sound event detection with tri-training and adversarial
  learning (Park et al., DCASE 2019 task 4), and
* unsupervised cross-lingual speech emotion recognition with pseudo
  multilabels (NNPM, Li et al. 2021).

From Python, :func:`load` turns a trained run into a system that predicts::

    import audioadapt
    det = audioadapt.load("runs/demo")      # SedSystem or SerSystem
    det.predict("clip.wav")

The public API is exposed lazily so that ``import audioadapt`` stays cheap
(it imports neither torch nor numpy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported on first use.
_LAZY = {
    "load": "audioadapt.api.load",
    "SedSystem": "audioadapt.api.sed_system",
    "SedFrameScores": "audioadapt.api.sed_system",
    "SerSystem": "audioadapt.api.ser_system",
    "EmotionPrediction": "audioadapt.api.ser_system",
    "EmotionScores": "audioadapt.api.ser_system",
    "EmotionWindow": "audioadapt.api.ser_system",
    "Event": "audioadapt.data.manifest",
}

if TYPE_CHECKING:  # pragma: no cover
    from audioadapt.api.load import load
    from audioadapt.api.sed_system import SedFrameScores, SedSystem
    from audioadapt.api.ser_system import EmotionPrediction, EmotionScores, EmotionWindow, SerSystem
    from audioadapt.data.manifest import Event


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audioadapt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["EmotionPrediction", "EmotionScores", "EmotionWindow", "Event", "SedFrameScores", "SedSystem", "SerSystem",
           "__version__", "load"]
