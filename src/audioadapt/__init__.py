"""audioadapt: learning sound classifiers across a domain gap.

Two systems share one toolkit:

* weakly labeled sound event detection with tri-training and adversarial
  learning (Park et al., DCASE 2019 task 4), and
* unsupervised cross-lingual speech emotion recognition with pseudo
  multilabels (NNPM, Li et al. 2021).

The public API is exposed lazily so that ``import audioadapt`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
