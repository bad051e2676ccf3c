"""Wiring of Park et al.'s method: which terms reach which parameters, phases, pseudo labels, state.

Every loss term and the agreement rule are tested in their own modules; here
the tests check how the method puts them together, on small in-memory data.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.adaptation.losses import domain_bce
from audioadapt.config.sed import load_sed_config
from audioadapt.data.batch import collate
from audioadapt.data.labels import UNKNOWN
from audioadapt.data.manifest import ClipRecord, Event
from audioadapt.data.sed_dataset import SedDataset, SedDatasetConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.features.normalization import Normalizer
from audioadapt.models.sed_model import SedModel
from audioadapt.training import StepContext, Trainer
from audioadapt.training.checkpoint import to_plain
from audioadapt.training.distributed import DistInfo
from audioadapt.training.sed_data import SedDataModule
from audioadapt.training.sed_tri_adv import PSEUDO_LABEL_FILE, SedTriAdvMethod, pseudo_label_arrays

CLASSES = ("a", "b", "c")
N_FRAMES, N_MELS = 64, 16  # -> 16 output frames of 62.6 ms (about 1 s)
SIZES = {"synthetic": 6, "weak": 6, "unlabeled": 6, "synthetic_valid": 3, "weak_valid": 3}


def unit_overrides(preset: str) -> list[str]:
    """A very small network and batches for in-memory tests of ``preset``."""
    cfg = load_sed_config(preset)
    out = [f"features.n_mels={N_MELS}", "model.crnn.filters=[4,8]", "model.crnn.kernel_sizes=[3,3]",
           "model.crnn.pooling=[[2,4],[2,4]]", "model.crnn.rnn_hidden=8", "model.crnn.rnn_layers=1",
           "train.device=cpu", "train.progress_bar=false", "train.tensorboard=false", "train.log_every=1",
           "sampler.phase1.batch_sizes.synthetic=2", "sampler.phase1.batch_sizes.weak=2",
           "method.predict.batch_size=4"]
    if cfg.sampler.phase1.batch_sizes.get("unlabeled", 0):
        out.append("sampler.phase1.batch_sizes.unlabeled=2")
    if cfg.method.uses_labelers:
        out.append("sampler.phase2.batch_sizes={synthetic: 2, weak: 2, unlabeled: 2}")
    if cfg.method.adversarial != "none":
        out.append("model.domain.hidden=[8]")
    return out


def make_records(source: str, n: int, rng: np.random.Generator) -> list[ClipRecord]:
    out = []
    for i in range(n):
        kw = {}
        if source.startswith("synthetic"):
            onset = float(rng.uniform(0.0, 0.5))
            kw["events"] = (Event(onset, onset + 0.4, CLASSES[i % 3]),)
        elif source.startswith("weak"):
            kw["tags"] = frozenset({CLASSES[i % 3]} | ({CLASSES[(i + 1) % 3]} if i % 2 else set()))
        out.append(ClipRecord(f"{source}_{i}.wav", Path(f"/nowhere/{source}_{i}.wav"), source.split("_")[0], **kw))
    return out


def make_module(cfg, seed: int = 0) -> SedDataModule:
    """A data module over random in-memory features."""
    rng = np.random.default_rng(seed)
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    ds_cfg = SedDatasetConfig(cfg.labels, cfg.method.synthetic_clip_loss)
    datasets = {}
    for name, n in SIZES.items():
        feats = [rng.normal(size=(N_FRAMES, N_MELS)).astype(np.float32) for _ in range(n)]
        datasets[name] = SedDataset(make_records(name, n, rng), feats, grid, CLASSES, ds_cfg, name=name)
    train = {k: v for k, v in datasets.items() if k in cfg.needed_sources()}
    return SedDataModule.from_datasets(cfg, train, {k: datasets[k] for k in ("synthetic_valid", "weak_valid")})


def make_method(preset: str, extra: tuple[str, ...] = (), seed: int = 0) -> SedTriAdvMethod:
    cfg = load_sed_config(preset, unit_overrides(preset) + list(extra))
    torch.manual_seed(seed)
    model = SedModel(cfg.model, N_MELS, len(CLASSES))
    return SedTriAdvMethod(cfg, model, Normalizer(cfg.normalizer, N_MELS), make_module(cfg, seed))


def context(method: SedTriAdvMethod, phase_index: int = 0, run_dir: Path | None = None) -> StepContext:
    phases = tuple(method.phases(method.cfg.train))
    return StepContext(config=method.cfg.train, dist=DistInfo(), phases=phases, phase_index=phase_index,
                       run_dir=run_dir, steps_per_epoch=1)


def mixed_batch(method: SedTriAdvMethod):
    """Two rows of each training source, in the multi-source index space."""
    train = method.data.train
    rows = [r for name in train.source_names for r in list(train.ranges[name])[:2]]
    return collate([train[i] for i in rows])


def grads(loss: torch.Tensor, params) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True))


def test_phases_and_trainable_networks_of_each_row():
    full = make_method("sed_adv_time_tri_training")
    p1, p2 = full.phases(full.cfg.train)
    assert set(p1.trainable) == {"encoder", "f1", "f2", "ft", "domain"}
    assert set(p2.trainable) == {"encoder", "ft", "domain"}  # F1, F2 frozen in phase 2
    assert (p1.epochs, p2.epochs) == (full.cfg.train.epochs, full.cfg.train.epochs)
    (only,) = make_method("sed_baseline").phases(full.cfg.train)
    assert set(only.trainable) == {"encoder", "ft"}
    tri = make_method("sed_tri_training", ("method.pseudo_label_rounds=2", "method.phase2_epochs=3"))
    assert [(p.name, p.epochs) for p in tri.phases(tri.cfg.train)][1:] == [("phase2_r1", 2), ("phase2_r2", 1)]
    assert set(tri.phases(tri.cfg.train)[1].trainable) == {"encoder", "ft"}


def test_phase1_trains_every_part_and_phase2_leaves_the_labelers_out():
    method = make_method("sed_adv_time_tri_training")
    model = method.model
    method.model.train()
    batch = mixed_batch(method)
    loss = method.training_step(batch, context(method, 0)).loss
    parts = {"F": model.encoder, "F1": model.heads["f1"], "F2": model.heads["f2"], "Ft": model.heads["ft"],
             "D": model.domain}
    for name, module in parts.items():
        g = grads(loss, list(module.parameters()))
        assert any(x is not None and x.abs().sum() > 0 for x in g), f"{name} gets no gradient in phase 1"
    loss2 = method.training_step(batch, context(method, 1)).loss
    for name in ("F1", "F2"):
        assert all(x is None for x in grads(loss2, list(parts[name].parameters()))), name
    for name in ("F", "Ft", "D"):
        assert any(x is not None and x.abs().sum() > 0 for x in grads(loss2, list(parts[name].parameters())))


def test_domain_gradient_reaches_f_reversed_and_scaled_by_the_grl_weight():
    method = make_method("sed_adv_time", ("method.grl_weight.kind=constant", "method.grl_weight.end=0.3",
                                          "method.grl_weight.warmup=0"))
    model = method.model.eval()  # no dropout, BN running statistics: deterministic passes
    batch = mixed_batch(method)
    terms = method.compute_losses(batch, context(method))
    enc, dom = list(model.encoder.parameters()), list(model.domain.parameters())
    reversed_f, through_d = grads(terms["domain"], enc), grads(terms["domain"], dom)
    h = model.encoder(method.normalizer(batch.features))  # the same loss without the GRL
    plain = domain_bce(model.domain(h), batch.domain, True, None)
    plain_f, plain_d = grads(plain, enc), grads(plain, dom)
    assert terms["domain"].item() == pytest.approx(plain.item())
    for r, p in zip(reversed_f, plain_f):
        torch.testing.assert_close(r, -0.3 * p, rtol=1e-4, atol=1e-7)
    for r, p in zip(through_d, plain_d):
        torch.testing.assert_close(r, p)  # D itself minimises L_d (eq. 7)


def test_grl_weight_ramps_over_the_whole_run_by_default():
    method = make_method("sed_adv_time_tri_training")
    ctx = context(method, 1)  # start of phase 2 = half of the run
    assert method.grl_weight(ctx) == pytest.approx(method.cfg.method.grl_weight.value(0.5))
    per_phase = make_method("sed_adv_time_tri_training", ("method.grl_progress=phase",))
    assert per_phase.grl_weight(context(per_phase, 1)) == pytest.approx(0.0)


@pytest.mark.parametrize("phase_index", [0, 1])
def test_unlabelled_rows_enter_only_the_domain_loss(phase_index):
    method = make_method("sed_adv_whole_tri_training", ("method.grl_weight.kind=constant", "method.grl_weight.end=1",
                                                        "method.grl_weight.warmup=0"))  # alpha 1 from the start
    method.model.eval()
    if phase_index == 1:
        method.data.source("unlabeled").reset_labels()  # phase 2 before any pseudo label: U still unknown
    batch = mixed_batch(method)
    batch.features.requires_grad_(True)
    terms = method.compute_losses(batch, context(method, phase_index))
    names = method.data.train.source_names
    rows = {n: batch.source == names.index(n) for n in names}
    for name, term in terms.items():
        if name == "ortho":
            continue
        (g,) = torch.autograd.grad(term, batch.features, retain_graph=True, allow_unused=True)
        per_row = torch.zeros(batch.size) if g is None else g.abs().flatten(1).sum(1)
        if name == "domain":
            assert (per_row[rows["unlabeled"]] > 0).all()
        else:
            assert (per_row[rows["unlabeled"]] == 0).all(), f"{name} reaches unlabelled rows"
            if name.endswith("_frame"):
                assert (per_row[rows["weak"]] == 0).all(), "weak rows have no frame labels"
                assert (per_row[rows["synthetic"]] > 0).any()
            else:
                assert (per_row[rows["weak"]] > 0).any()


def test_training_step_sums_the_weighted_terms():
    method = make_method("sed_adv_time_tri_training", ("method.loss_weights.f2=0", "method.loss_weights.domain=2"))
    method.model.eval()
    batch = mixed_batch(method)
    ctx = context(method)
    out = method.training_step(batch, ctx)
    t = {k: float(v) for k, v in out.logs.items()}
    expected = t["ortho"] + t["f1_frame"] + t["f1_clip"] + t["ft_frame"] + t["ft_clip"] + 2 * t["domain"]
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert t["ortho"] > 0 and "grl_weight" in t


def _force_labelers(method: SedTriAdvMethod, f1: float, f2: float) -> None:
    """Make F1 and F2 output sigmoid(bias) everywhere."""
    with torch.no_grad():
        for name, bias in (("f1", f1), ("f2", f2)):
            head = method.model.heads[name]
            head.strong.weight.zero_()
            head.strong.bias.fill_(bias)


def test_pseudo_labels_never_contradict_weak_labels(tmp_path):
    method = make_method("sed_tri_training")
    _force_labelers(method, 8.0, 8.0)  # both labelers say "present" everywhere
    method.pseudo_label(context(method, 0, run_dir=tmp_path))
    weak = method.data.source("weak")
    for i, rec in enumerate(weak.records):
        labels = weak.strong_labels(i)
        for k, c in enumerate(CLASSES):
            assert (labels[:, k] == (1 if c in rec.tags else 0)).all(), (rec.filename, c)
        np.testing.assert_array_equal(weak.weak_labels(i), [1.0 if c in rec.tags else 0.0 for c in CLASSES])
    unl = method.data.source("unlabeled")
    assert all((unl.strong_labels(i) == 1).all() and (unl.weak_labels(i) == 1).all() for i in range(len(unl)))
    saved = json.loads((tmp_path / PSEUDO_LABEL_FILE).read_text())
    assert saved[0]["sources"]["unlabeled"]["per_class"]["a"]["clips_with_events"] == len(unl)
    assert saved[0]["sources"]["weak"]["per_class"]["a"]["events"] == sum("a" in r.tags for r in weak.records)

    _force_labelers(method, 8.0, -8.0)  # now they disagree: nothing is known except absent weak classes
    method.pseudo_label(context(method, 0))
    for i, rec in enumerate(weak.records):
        labels = weak.strong_labels(i)
        for k, c in enumerate(CLASSES):
            assert (labels[:, k] == (UNKNOWN if c in rec.tags else 0)).all()
    assert all((unl.strong_labels(i) == UNKNOWN).all() for i in range(len(unl)))
    assert method.rounds_done == 2


def test_method_state_restores_the_pseudo_labels_through_a_safe_checkpoint():
    method = make_method("sed_tri_training")
    _force_labelers(method, 8.0, 8.0)
    method.pseudo_label(context(method))
    buffer = io.BytesIO()
    torch.save(to_plain(method.state_dict()), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = make_method("sed_tri_training")
    assert (fresh.data.source("unlabeled").strong_labels(0) == UNKNOWN).all()
    fresh.load_state_dict(state)
    assert fresh.rounds_done == 1 and fresh.history == method.history
    for source in ("weak", "unlabeled"):
        old, new = method.data.source(source), fresh.data.source(source)
        for i in range(len(old)):
            np.testing.assert_array_equal(new.strong_labels(i), old.strong_labels(i))
            np.testing.assert_array_equal(new.weak_labels(i), old.weak_labels(i))
        assert len(pseudo_label_arrays(fresh, source)) == len(old)


def test_fit_freezes_the_labelers_in_phase_2_and_selects_in_the_last_phase(tmp_path):
    method = make_method("sed_adv_time_tri_training", ("train.epochs=2", "method.phase2_epochs=2"))
    snapshots = {}
    original = method.on_phase_end

    def spy(phase, ctx):
        snapshots[phase.name] = {n: {k: v.clone() for k, v in m.state_dict().items()}
                                 for n, m in method.networks().items()}
        original(phase, ctx)

    method.on_phase_end = spy
    result = Trainer(method.cfg.train, tmp_path).fit(method)
    after1, after2 = snapshots["phase1"], snapshots["phase2"]
    for name in ("f1", "f2"):
        for key in after1[name]:
            torch.testing.assert_close(after1[name][key], after2[name][key])
    assert any(not torch.equal(after1["encoder"][k], after2["encoder"][k]) for k in after1["encoder"])
    phase1_rows = [r for r in result.history if r["phase"] == "phase1"]
    assert all(np.isnan(r["val/selection"]) for r in phase1_rows)
    assert result.best["global_epoch"] in (3, 4)
    assert (tmp_path / PSEUDO_LABEL_FILE).is_file()
