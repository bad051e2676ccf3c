"""Feature normalisation whose settings and statistics travel with checkpoints.

Four kinds (``NormalizerConfig.kind``):

* ``"none"``: identity;
* ``"instance_minmax"``: per clip, ``lo + (hi - lo) * (x - min) / (max - min + eps)``
  with ``(lo, hi) = output_range``;
* ``"instance_meanstd"``: per clip, ``(x - mean) / (std + eps)``;
* ``"dataset_meanstd"``: per mel bin, ``(x - mean) / (std + eps)`` with the
  mean and standard deviation fitted once over the training features by a
  streaming :meth:`Normalizer.fit`.

Instance statistics are taken over the whole ``(frame, mel)`` plane of a
clip, or per mel bin over frames when ``per_mel`` is set; only the valid
frames count when ``lengths`` is given. Standard deviations are population
ones (``ddof=0``).

**Default: ``instance_minmax`` to ``[-1, 1]``.** It is what the DCASE 2021+
baselines (DESED_task), the reference most users compare against, apply to
their dB mels; it needs no fitting pass over the training set, so the
statistics cannot leak from one domain into the other; and scaling every clip
to the same range removes the level differences between synthetic and real
recordings that a domain classifier would otherwise pick up trivially. The
DESED scaler's range changed from ``[0, 1]`` to ``[-1, 1]`` between
releases and silently broke old checkpoints. Here the settings are stored in
the module's ``state_dict`` (torch "extra state") next to any fitted
statistics, and loading a checkpoint whose settings differ from the
configured ones raises :class:`~audioadapt.errors.CheckpointError`
(:meth:`Normalizer.from_state_dict` rebuilds the stored one instead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from audioadapt.errors import CheckpointError

NormKind = Literal["none", "instance_minmax", "instance_meanstd", "dataset_meanstd"]
_KINDS = ("none", "instance_minmax", "instance_meanstd", "dataset_meanstd")

#: Bumped when the meaning of a stored setting changes.
SETTINGS_VERSION = 1


@dataclass(frozen=True)
class NormalizerConfig:
    """How features are normalised before the model.

    Attributes
    ----------
    kind: ``"none"``, ``"instance_minmax"``, ``"instance_meanstd"`` or
        ``"dataset_meanstd"`` (see the module docstring).
    output_range: ``(lo, hi)`` of ``instance_minmax``.
    per_mel: instance statistics per mel bin (over frames) instead of over
        the whole ``(frame, mel)`` plane.
    eps: added to the denominator of every scaling.
    """

    kind: NormKind = "instance_minmax"
    output_range: tuple[float, float] = (-1.0, 1.0)
    per_mel: bool = False
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}, got {self.kind!r}")
        lo, hi = self.output_range
        if not lo < hi:
            raise ValueError(f"output_range must have lo < hi, got {self.output_range}")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps}")


class Normalizer(nn.Module):
    """Normalise log-mel features ``(batch, frame, mel)``.

    Parameters
    ----------
    cfg: the normalisation settings.
    n_mels: number of mel bins (sizes the fitted statistics).

    Notes
    -----
    For ``dataset_meanstd`` the buffers ``mean (mel,)``, ``std (mel,)`` and
    ``count ()`` (frames seen by :meth:`fit`, 0 when unfitted) are persistent,
    so ``state_dict`` carries them. Every kind stores its settings as extra
    state.
    """

    def __init__(self, cfg: NormalizerConfig, n_mels: int):
        super().__init__()
        if n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {n_mels}")
        self.cfg = cfg
        self.n_mels = int(n_mels)
        if cfg.kind == "dataset_meanstd":
            self.register_buffer("mean", torch.zeros(n_mels, dtype=torch.float32))
            self.register_buffer("std", torch.ones(n_mels, dtype=torch.float32))
            self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    # -- settings in the state dict ------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The stored settings: config fields, ``n_mels`` and a format version."""
        out = dataclasses.asdict(self.cfg)
        out["output_range"] = list(self.cfg.output_range)
        out["n_mels"] = self.n_mels
        out["version"] = SETTINGS_VERSION
        return out

    def get_extra_state(self) -> dict[str, Any]:
        return self.settings()

    def set_extra_state(self, state: Any) -> None:
        mine = self.settings()
        if not isinstance(state, Mapping):
            raise CheckpointError(f"normaliser settings in the checkpoint are not a mapping: {state!r}")
        diffs = [
            f"{key}: checkpoint {state.get(key)!r}, configured {value!r}"
            for key, value in mine.items()
            if _norm(state.get(key)) != _norm(value)
        ]
        if diffs:
            raise CheckpointError(
                "normaliser settings in the checkpoint differ from the configured ones ("
                + "; ".join(diffs)
                + "); use the checkpoint's settings or Normalizer.from_state_dict"
            )

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any], prefix: str = "") -> "Normalizer":
        """Rebuild a normaliser, settings and statistics, from a (sub-)state dict."""
        key = f"{prefix}_extra_state"
        if key not in state_dict:
            raise CheckpointError(f"no normaliser settings ('{key}') in the state dict")
        settings = dict(state_dict[key])
        version = settings.pop("version", None)
        if version != SETTINGS_VERSION:
            raise CheckpointError(f"normaliser settings version {version!r} is not {SETTINGS_VERSION}")
        n_mels = settings.pop("n_mels")
        settings["output_range"] = tuple(settings["output_range"])
        try:
            cfg = NormalizerConfig(**settings)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid normaliser settings in the checkpoint: {exc}") from exc
        module = cls(cfg, n_mels)
        own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        module.load_state_dict(own)
        return module

    # -- fitting -----------------------------------------------------------
    @property
    def requires_fit(self) -> bool:
        """Whether this kind has dataset statistics to fit."""
        return self.cfg.kind == "dataset_meanstd"

    @property
    def is_fitted(self) -> bool:
        return not self.requires_fit or int(self.count) > 0

    def fit(self, features: Iterable[np.ndarray | torch.Tensor]) -> "Normalizer":
        """Fit per-mel mean and std in one streaming pass (no-op for other kinds).

        Parameters
        ----------
        features: items of shape ``(..., mel)``, e.g. a
            :class:`~audioadapt.features.cache.FeatureCache` (one
            ``(frame, mel)`` array per clip). Accumulated in float64 with
            Chan's parallel update, so memory does not grow with the data.
        """
        if not self.requires_fit:
            return self
        count = 0
        mean = np.zeros(self.n_mels, dtype=np.float64)
        m2 = np.zeros(self.n_mels, dtype=np.float64)
        for item in features:
            arr = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
            if arr.shape[-1] != self.n_mels:
                raise ValueError(f"expected items with {self.n_mels} mel bins, got shape {arr.shape}")
            arr = arr.reshape(-1, self.n_mels).astype(np.float64)
            n = arr.shape[0]
            if n == 0:
                continue
            item_mean = arr.mean(axis=0)
            item_m2 = ((arr - item_mean) ** 2).sum(axis=0)
            total = count + n
            delta = item_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + item_m2 + delta**2 * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("cannot fit the normaliser on no frames")
        if not np.isfinite(mean).all() or not np.isfinite(m2).all():
            raise ValueError("non-finite features while fitting the normaliser")
        self.mean.copy_(torch.from_numpy(mean))
        self.std.copy_(torch.from_numpy(np.sqrt(m2 / count)))
        self.count.fill_(count)
        return self

    # -- forward -------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x``.

        Parameters
        ----------
        x: features ``(batch, frame, mel)`` (or ``(frame, mel)``).
        lengths: valid frames per item ``(batch,)``; padded frames are left
            out of instance statistics and set to zero in the output.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        kind = self.cfg.kind
        if kind == "none":
            return x
        squeeze = x.ndim == 2
        if squeeze:
            x = x.unsqueeze(0)
        if x.ndim != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"expected (batch, frame, {self.n_mels}) features, got shape {tuple(x.shape)}")
        mask = None
        if lengths is not None:
            frames = torch.arange(x.shape[1], device=x.device)
            mask = (frames[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)  # (batch, frame, 1)
        eps = self.cfg.eps
        if kind == "dataset_meanstd":
            if not self.is_fitted:
                raise RuntimeError("dataset_meanstd normaliser used before fit() or loading fitted statistics")
            out = (x - self.mean.to(x.dtype)) / (self.std.to(x.dtype) + eps)
        else:
            dims = (1,) if self.cfg.per_mel else (1, 2)
            if kind == "instance_minmax":
                lo, hi = self.cfg.output_range
                big = torch.finfo(x.dtype).max
                x_lo = x if mask is None else x.masked_fill(~mask, big)
                x_hi = x if mask is None else x.masked_fill(~mask, -big)
                mn = torch.amin(x_lo, dim=dims, keepdim=True)
                mx = torch.amax(x_hi, dim=dims, keepdim=True)
                out = lo + (hi - lo) * (x - mn) / (mx - mn + eps)
            else:
                if mask is None:
                    mean = x.mean(dim=dims, keepdim=True)
                    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
                else:
                    weight = mask.to(x.dtype).expand_as(x)
                    n = weight.sum(dim=dims, keepdim=True).clamp(min=1)
                    mean = (x * weight).sum(dim=dims, keepdim=True) / n
                    var = (((x - mean) ** 2) * weight).sum(dim=dims, keepdim=True) / n
                out = (x - mean) / (var.sqrt() + eps)
        if mask is not None:
            out = out.masked_fill(~mask, 0.0)
        return out.squeeze(0) if squeeze else out

    def extra_repr(self) -> str:
        c = self.cfg
        extra = f", output_range={c.output_range}" if c.kind == "instance_minmax" else ""
        return f"kind={c.kind}{extra}, per_mel={c.per_mel}, n_mels={self.n_mels}"


def _norm(value: Any) -> Any:
    """Compare tuples and lists alike."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


__all__ = ["NormKind", "Normalizer", "NormalizerConfig", "SETTINGS_VERSION"]
