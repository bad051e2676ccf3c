"""The SER method on in-memory features: step order, frozen layers, ablation heads, selection, resume.

The data module is filled with random log-mel-like arrays (a class-dependent
offset makes the source learnable), so every run takes about a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audioadapt.adaptation.memory import MemoryBank
from audioadapt.api.ser import build_normalizer, checkpoint_meta
from audioadapt.config.ser import load_ser_config
from audioadapt.data.ser_dataset import SOURCE_DOMAIN, TARGET_DOMAIN, SerDataset
from audioadapt.data.utterances import EMOTIONS, Utterance
from audioadapt.errors import CheckpointError
from audioadapt.evaluation.report import checkpoint_line
from audioadapt.models.ser_model import SerModel
from audioadapt.training.checkpoint import checkpoint_inputs, load_checkpoint
from audioadapt.training.loop import Trainer
from audioadapt.training.ser_data import SerDataModule, strip_labels
from audioadapt.training.ser_nnpm import STAGE2, SerNnpmMethod, concat_batches
from audioadapt.training.ser_predict import encode_dataset

N_MELS = 8
TINY = ["features.n_mels=8", "model.encoder.conv_channels=[8,8]", "model.encoder.lstm_hidden=8",
        "model.encoder.lstm_layers=1", "model.encoder.attention_dim=8", "model.encoder.dropout=0.0",
        "dataset.crop_seconds=0.5", "dataset.pad_to_crop=false", "source_validation.kind=none",
        "stage1.epochs=2", "stage1.lr=1e-2", "stage1.batch_size=4", "train.device=cpu", "train.progress_bar=false",
        "train.tensorboard=false", "train.log_every=1", "method.predict_batch_size=8",
        # random arrays stand in for log-mels here: no silence to trim, no loudness to set
        "dataset.frontend.trim_db=null", "dataset.frontend.loudness_dbfs=null"]
STAGE2_TINY = ["stage2.epochs=2", "stage2.lr=1e-2", "stage2.source_batch_size=4", "stage2.target_batch_size=4"]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(preset: str, *extra: str):
    overrides = TINY + ([] if preset == "ser_snsa_f" else STAGE2_TINY)
    return load_ser_config(preset, [*overrides, *extra])


def _utterances(corpus: str, n: int) -> list[Utterance]:
    return [Utterance(Path(f"/nowhere/{corpus}_{i:03d}.wav"), EMOTIONS[i % 4], f"{corpus}_spk{i % 3}", corpus,
                      f"{corpus}_{i:03d}") for i in range(n)]


def _features(utts: list[Utterance], rng: np.random.Generator, offset: float) -> list[np.ndarray]:
    out = []
    for u in utts:
        x = rng.normal(size=(int(rng.integers(30, 70)), N_MELS)).astype(np.float32)
        x[:, EMOTIONS.index(u.label)] += 2.0  # the class shows in one mel bin
        out.append(x + offset)
    return out


def fake_data(cfg, n_source: int = 16, n_target: int = 12, n_valid: int = 0, seed: int = 0) -> SerDataModule:
    """A data module over random in-memory features (no audio, no cache)."""
    rng = np.random.default_rng(seed)
    data = SerDataModule(cfg)
    src = _utterances("src", n_source)
    feats = _features(src, rng, 0.0)
    common = dict(features_config=cfg.features, config=cfg.dataset, domain=SOURCE_DOMAIN)
    data.source_slots = SerDataset(src, feats, train=True, **common)
    data.source_slots_eval = SerDataset(src, feats, train=False, **common)
    data.source_train = SerDataset(src[n_valid:], feats[n_valid:], train=True, **common)
    data.source_valid = SerDataset(src[:n_valid], feats[:n_valid], train=False, **common) if n_valid else None
    tgt = _utterances("tgt", n_target)
    data.target_adapt = SerDataset(strip_labels(tgt), _features(tgt, rng, 1.0), cfg.features, cfg.dataset,
                                   train=True, domain=TARGET_DOMAIN, use_labels=False)
    if cfg.reads_target_truth:
        data.target_adapt_truth = np.array([u.label_index for u in tgt])
    return data


def build(cfg, data: SerDataModule, cls=SerNnpmMethod, seed: int = 0) -> SerNnpmMethod:
    torch.manual_seed(seed)
    model = SerModel(cfg.model, cfg.features.n_mels)
    return cls(cfg, model, build_normalizer(cfg, data), data)


def state(method: SerNnpmMethod) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.model.state_dict().items()}


class StageProbe(SerNnpmMethod):
    """Keeps the model (and memory) as stage 2 begins."""

    at_stage2: dict[str, torch.Tensor] | None = None
    memory_at_stage2: torch.Tensor | None = None

    def on_phase_start(self, phase, ctx):
        super().on_phase_start(phase, ctx)
        if phase.name == STAGE2:
            self.at_stage2 = state(self)
            if self.memory is not None:
                self.memory_at_stage2 = self.memory.features.clone()


class RecordingMemory(MemoryBank):
    """A memory bank that records every read and write with what surrounds it."""

    def __init__(self, bank: MemoryBank, method: SerNnpmMethod):
        super().__init__(bank.num_slots, bank.dim, bank.num_classes, bank.cfg)
        self.load_state_dict(bank.state_dict())
        self.method = method
        self.events: list[dict] = []

    def similarity(self, f_hat):
        self.events.append({"op": "read", "memory": self.features.clone(), "params": state(self.method)})
        return super().similarity(f_hat)

    def write(self, indices, features, rate):
        before = self.features.clone()
        self.events.append({"op": "write", "grad": torch.is_grad_enabled(), "requires_grad": features.requires_grad,
                            "params": state(self.method), "indices": indices.clone(), "rate": rate})
        super().write(indices, features, rate)
        self.events[-1]["after"] = self.features.clone()
        self.events[-1]["changed"] = (self.features != before).any(dim=1).nonzero().flatten().tolist()


def test_stage2_reads_the_memory_before_the_step_and_writes_after_it_without_gradient():
    cfg = tiny_config("ser_nnpm")
    method = build(cfg, fake_data(cfg), StageProbe)
    recorder = RecordingMemory(method.memory, method)
    method.memory = recorder
    result = Trainer(cfg.train).fit(method)
    events = recorder.events
    steps = 2 * 4  # 2 epochs of 16 source utterances in batches of 4
    assert [e["op"] for e in events] == ["read", "write"] * steps
    reads, writes = events[::2], events[1::2]
    assert torch.equal(reads[0]["memory"], method.memory_at_stage2)  # the first read sees the initialised memory
    for k, (read, write) in enumerate(zip(reads, writes)):
        # pseudo labels and losses came from the memory before this step's write ...
        assert not torch.equal(read["memory"], write["after"])
        if k + 1 < steps:
            assert torch.equal(reads[k + 1]["memory"], write["after"])
        # ... the optimizer step came between the read and the write ...
        assert any(not torch.equal(read["params"][n], write["params"][n]) for n in read["params"])
        # ... and the write is of detached features, without gradient, to the batch's slots only
        assert not write["grad"] and not write["requires_grad"]
        # (a slot whose new feature is its initial one stays the same in the first epoch, written with rate 0)
        assert write["changed"] and set(write["changed"]) <= set(write["indices"].tolist())
    # the rate rises over stage 2 (0 -> 0.4) so that the last epoch writes with 0.4: 0 in the first, 0.4 in the second
    assert [w["rate"] for w in writes] == [0.0] * 4 + [pytest.approx(0.4)] * 4
    rows = [r for r in result.history if r["phase"] == "stage2"]
    for key in ("train/pml_empty_fraction", "train/pml_mean_size", "train/memory_head_agreement",
                "train/target_loss", "train/source_ce", "train/memory_rate", "train/target_loss_positive",
                "train/target_loss_negative", "train/hard_negative_count", "train/hard_negative_similarity"):
        assert len(rows) == 2 and all(np.isfinite(r[key]) for r in rows), key
    for r in rows:  # the two parts make L_t (averaged over the same steps)
        assert r["train/target_loss_positive"] + r["train/target_loss_negative"] == pytest.approx(
            r["train/target_loss"], rel=1e-6)
        assert r["train/hard_negative_count"] == 1.0  # floor(0.01 * 16 slots), at least 1
        assert "train/pml_purity" not in r  # the truth is not read without the switch


def test_the_paper_literal_rate_stops_short_of_its_end():
    cfg = tiny_config("ser_nnpm", "memory.rate_reaches_end=after_last_epoch")
    result = Trainer(cfg.train).fit(build(cfg, fake_data(cfg)))
    assert [r["train/memory_rate"] for r in result.history if r["phase"] == "stage2"] == [0.0, pytest.approx(0.2)]


def _one_step(cfg, seed: int, step: int = 0, freeze: bool = False):
    """One stage-2 training step on a fixed batch after the memory is filled; the torch seed drives dropout only.

    ``freeze``: freeze ``stage2.freeze_conv`` conv layers first, as the Trainer does.
    """
    from audioadapt.training.distributed import DistInfo
    from audioadapt.training.method import PhaseSpec, StepContext

    data = fake_data(cfg)
    method = build(cfg, data)
    ctx = StepContext(cfg.train, DistInfo(), (PhaseSpec(STAGE2, 2),), step=step)
    method.setup(ctx)
    method.init_memory(ctx)
    if freeze:
        method.model.freeze_conv(cfg.stage2.freeze_conv)
    torch.manual_seed(0)
    batch = next(iter(data.stage2_loader()))
    method.model.train()
    torch.manual_seed(seed)
    out = method.training_step(batch, ctx)
    flags = [m.training for m in method.model.modules()]
    return out, method._pending[1] if method._pending is not None else None, flags, method


def _encoder_gradient_norm(method: SerNnpmMethod, loss: torch.Tensor) -> float:
    params = [p for p in method.model.encoder.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))


@pytest.mark.parametrize("preset", ["ser_nnpm", "ser_snsa_wo_sl", "ser_dann"])
def test_gradient_norms_of_each_loss_term_on_the_trainable_encoder(preset):
    dann = ["model.domain.hidden=[8]", "dann.grl_weight.kind=constant"] if preset == "ser_dann" else []
    cfg = tiny_config(preset, "diagnostics.gradient_every=1", *dann)
    out, _, _, method = _one_step(cfg, 0, freeze=True)
    logs = out.logs
    # the terms add up to the step's loss: its gradient on the unfrozen encoder parameters is grad_total
    assert logs["grad_total"] == pytest.approx(_encoder_gradient_norm(method, out.loss), rel=1e-5)
    assert not any(p.requires_grad for p in method.model.encoder.conv[0].parameters())  # freeze_conv 2
    if preset == "ser_dann":
        assert logs["grad_source"] > 0 and logs["grad_domain"] > 0 and -1 <= logs["grad_cos_domain_y"] <= 1
        assert "grad_target" not in logs
        # the domain term reaches the encoder through the GRL: times alpha (and the domain weight)
        half = _one_step(tiny_config(preset, "diagnostics.gradient_every=1", *dann, "dann.grl_weight.end=0.5"), 0,
                         freeze=True)
        assert half[0].logs["grad_domain"] == pytest.approx(logs["grad_domain"] / 2, rel=1e-5)
        assert half[0].logs["grad_source"] == pytest.approx(logs["grad_source"], rel=1e-5)
        return
    assert logs["grad_target"] > 0
    assert logs["grad_target"] <= logs["grad_target_positive"] + logs["grad_target_negative"] + 1e-9
    if preset == "ser_snsa_wo_sl":  # no source term: the target term is all
        assert "grad_source" not in logs and "grad_cos_target_source" not in logs
        assert logs["grad_total"] == pytest.approx(logs["grad_target"])
    else:
        assert logs["grad_source"] > 0 and -1 <= logs["grad_cos_target_source"] <= 1
    # lambda enters the target term as it enters the loss
    doubled = _one_step(tiny_config(preset, "diagnostics.gradient_every=1", "losses.target_weight=2"), 0,
                        freeze=True)[0].logs
    assert doubled["grad_target"] == pytest.approx(2 * logs["grad_target"], rel=1e-5)


def test_gradients_are_measured_every_n_steps_only_and_leave_training_unchanged():
    cfg = tiny_config("ser_nnpm", "diagnostics.gradient_every=3")
    assert "grad_total" in _one_step(cfg, 0, step=3)[0].logs
    assert not any(k.startswith("grad_") for k in _one_step(cfg, 0, step=4)[0].logs)
    runs = {}
    for every in (0, 1):
        cfg = tiny_config("ser_nnpm", f"diagnostics.gradient_every={every}")
        method = build(cfg, fake_data(cfg))
        result = Trainer(cfg.train).fit(method)
        runs[every] = (state(method), method.memory.features.clone(),
                       [r for r in result.history if r["phase"] == "stage2"])
    (w0, m0, rows0), (w1, m1, rows1) = runs[0], runs[1]
    assert all(torch.equal(w0[k], w1[k]) for k in w0) and torch.equal(m0, m1)
    assert all("train/grad_target" not in r for r in rows0)
    assert all(r["train/grad_target"] > 0 and r["train/grad_source"] > 0 for r in rows1)
    assert [r["train/loss"] for r in rows0] == [r["train/loss"] for r in rows1]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_dropout_stays_out_of_what_meets_the_memory(mode):
    cfg = tiny_config("ser_nnpm", "model.encoder.dropout=0.5", f"memory.encoder_mode={mode}")
    (a, written_a, flags_a, _), (b, written_b, flags_b, _) = _one_step(cfg, 1), _one_step(cfg, 2)
    assert all(flags_a) and flags_a == flags_b  # the network is back in training mode after the step
    same = torch.equal(written_a, written_b) and a.logs["target_loss"] == b.logs["target_loss"]
    assert same == (mode == "eval")  # with dropout in the path, another seed gives other features and L_t
    assert not torch.equal(a.logs["source_ce"], b.logs["source_ce"])  # the source CE keeps its dropout


def test_snsa_wo_hl_differs_from_nnpm_in_the_mining_only():
    theta = "pseudo_multilabel.threshold=0.99"  # the untrained network's features are close: smaller sets
    nnpm, wo_hl = _one_step(tiny_config("ser_nnpm", theta), 0)[0], _one_step(tiny_config("ser_snsa_wo_hl", theta), 0)[0]
    cfg = tiny_config("ser_snsa_wo_hl")
    assert cfg.losses.target_loss == "all_negatives"
    assert (cfg.losses.delta, cfg.losses.negative_target, cfg.losses.negatives) == (1.0, -1.0, "other_emotions")
    # the same sets and positive term on the same batch; every eligible negative instead of the hardest one
    assert wo_hl.logs["pml_mean_size"] == nnpm.logs["pml_mean_size"] > 0
    assert wo_hl.logs["target_loss_positive"] == nnpm.logs["target_loss_positive"]
    assert nnpm.logs["hard_negative_count"] == 1.0 and wo_hl.logs["hard_negative_count"] >= 3
    assert wo_hl.logs["hard_negative_similarity"] < nnpm.logs["hard_negative_similarity"]


@pytest.mark.parametrize("freeze", [0, 1, 2])
def test_frozen_conv_layers_are_unchanged_by_stage2(freeze):
    cfg = tiny_config("ser_nnpm", f"stage2.freeze_conv={freeze}")
    method = build(cfg, fake_data(cfg), StageProbe)
    Trainer(cfg.train).fit(method)
    before, after = method.at_stage2, state(method)
    for layer in range(2):
        keys = [k for k in before if k.startswith(f"encoder.conv.{layer}.")]
        same = all(torch.equal(before[k], after[k]) for k in keys)
        assert same == (layer < freeze), (layer, freeze)
    assert not torch.equal(before["encoder.lstm.0.weight_hh_l0"], after["encoder.lstm.0.weight_hh_l0"])


def test_snsa_wo_sl_keeps_its_head_and_adapts_the_encoder():
    cfg = tiny_config("ser_snsa_wo_sl")
    method = build(cfg, fake_data(cfg), StageProbe)
    result = Trainer(cfg.train).fit(method)
    before, after = method.at_stage2, state(method)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("head."))
    assert not torch.equal(before["encoder.lstm.0.weight_ih_l0"], after["encoder.lstm.0.weight_ih_l0"])
    assert not torch.equal(method.memory_at_stage2, method.memory.features)  # source features were written
    rows = [r for r in result.history if r["phase"] == "stage2"]
    assert rows and all("train/source_ce" not in r for r in rows)


def test_snsa_wo_hl_with_eq6_trains_on_every_slot():
    cfg = tiny_config("ser_snsa_wo_hl", "losses.target_loss=mse_all")
    method = build(cfg, fake_data(cfg), StageProbe)
    result = Trainer(cfg.train).fit(method)
    rows = [r for r in result.history if r["phase"] == "stage2"]
    # eq. 6 with 0/1 targets over all 16 slots is at most 4 (|s - y| <= 2) and far from the -1 targets' range
    assert all(0 <= r["train/target_loss"] <= 4 for r in rows)
    assert method.cfg.losses.target_loss == "mse_all" and all(r["train/hard_negative_count"] == 0 for r in rows)


def test_the_oracle_labels_every_slot_of_the_true_emotion():
    cfg = tiny_config("ser_oracle", "diagnostics.target_truth=true")
    result = Trainer(cfg.train).fit(build(cfg, fake_data(cfg)))
    rows = [r for r in result.history if r["phase"] == "stage2"]
    for r in rows:  # 16 slots, 4 of each emotion: the set is the 4 slots of the target's emotion
        assert (r["train/pml_purity"], r["train/pml_vote_accuracy"]) == (1.0, 1.0)
        assert (r["train/pml_mean_size"], r["train/pml_empty_fraction"]) == (4.0, 0.0)
        assert r["train/pml_mean_distinct_emotions"] == 1.0


def test_truth_diagnostics_measure_the_threshold_sets():
    cfg = tiny_config("ser_nnpm", "diagnostics.target_truth=true", "pseudo_multilabel.threshold=0.0")
    result = Trainer(cfg.train).fit(build(cfg, fake_data(cfg)))
    rows = [r for r in result.history if r["phase"] == "stage2"]
    for r in rows:
        assert 0.0 <= r["train/pml_purity"] < 1.0 and 0.0 <= r["train/head_target_accuracy"] <= 1.0
        assert 0.0 <= r["train/pml_head_vote_agreement"] <= 1.0 and r["train/pml_mean_size"] > 4


def test_memory_is_filled_by_one_pass_of_the_stage1_model():
    cfg = tiny_config("ser_nnpm")
    data = fake_data(cfg)
    snapshots = {}

    class Keep(StageProbe):
        def on_phase_end(self, phase, ctx):
            if phase.name == "stage1":
                snapshots["model"] = state(self)
            super().on_phase_end(phase, ctx)

    method = build(cfg, data, Keep)
    Trainer(cfg.train).fit(method)
    reference = SerModel(cfg.model, N_MELS)
    reference.load_state_dict(snapshots["model"])
    feats, _ = encode_dataset(reference, method.normalizer, data.source_slots_eval, 8)
    expected = torch.nn.functional.normalize(feats, dim=1)
    assert torch.allclose(method.memory_at_stage2, expected, atol=1e-6)
    assert method.memory.labels.tolist() == data.source_slots.labels.tolist()


@pytest.mark.parametrize("monitor", [[], ["train.monitor=source_wa", "train.monitor_mode=min"]])
def test_stage1_keeps_the_epoch_the_trainer_selects(monitor):
    cfg = tiny_config("ser_snsa_f", "stage1.epochs=4", "stage1.lr=3e-2", *monitor)
    data = fake_data(cfg, n_source=24, n_valid=8)
    epochs = []

    class Record(SerNnpmMethod):
        def validate(self, ctx):
            metrics = super().validate(ctx)
            epochs.append((metrics, state(self)))
            return metrics

    method = build(cfg, data, Record)
    result = Trainer(cfg.train).fit(method)
    assert method.selection_metric == "selection" and len(epochs) == 4
    if monitor:  # the last epoch with the lowest source WA (ties go to the later epoch)
        best = min(range(4), key=lambda i: (epochs[i][0]["source_wa"], -i))
    else:  # the last epoch with the highest source UA
        best = max(range(4), key=lambda i: (epochs[i][0]["selection"], i))
    final = state(method)
    assert all(torch.equal(final[k], epochs[best][1][k]) for k in final)
    assert result.best["global_epoch"] == best + 1
    assert [r["val/source_ua"] for r in result.history] == [e[0]["source_ua"] for e in epochs]
    # the saved result names the epoch its weights come from, and an evaluation report says so
    assert method.state_dict()["stage1_epoch"] == best + 1
    ckpt = {"progress": {"phase_index": 0, "global_epoch": 4}, "method": method.state_dict()}
    inputs = checkpoint_inputs("run/last.pt", ckpt)
    assert inputs["weights_epoch"] == best + 1
    assert checkpoint_line(inputs) == (f"Checkpoint: `run/last.pt` (last, epoch 4, holding the weights of the "
                                       f"selected epoch {best + 1})")


def test_dann_trains_the_domain_classifier_behind_a_ramping_grl():
    cfg = tiny_config("ser_dann", "model.domain.hidden=[8]", "stage2.freeze_conv=0")
    method = build(cfg, fake_data(cfg), StageProbe)
    result = Trainer(cfg.train).fit(method)
    before, after = method.at_stage2, state(method)
    for prefix in ("domain.", "head.", "encoder.conv."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    rows = [r for r in result.history if r["phase"] == "stage2"]
    alphas = [r["train/grl_weight"] for r in rows]
    assert 0 < alphas[0] < alphas[1] <= 1 and all(np.isfinite(r["train/domain"]) for r in rows)
    assert method.memory is None and "memory" not in method.state_dict()


def test_concat_batches_pads_the_shorter_batch():
    cfg = tiny_config("ser_dann")
    data = fake_data(cfg)
    a = data.source_slots_eval.collate([data.source_slots_eval[i] for i in range(3)])
    b = data.target_adapt.collate([data.target_adapt[i] for i in range(2)])
    both = concat_batches(a, b)
    assert both.size == 5 and both.features.shape[1] == max(a.features.shape[1], b.features.shape[1])
    assert both.domain.tolist() == [SOURCE_DOMAIN] * 3 + [TARGET_DOMAIN] * 2
    assert torch.equal(both.features[3, : b.features.shape[1]], b.features[0])
    assert both.label[3:].tolist() == [-1, -1]


class Interrupt(Exception):
    pass


def test_checkpoint_holds_the_memory_and_a_resumed_run_ends_identical(tmp_path):
    cfg = tiny_config("ser_nnpm", "stage2.epochs=3")
    data = fake_data(cfg)
    full = build(cfg, data)
    Trainer(cfg.train, tmp_path / "full").fit(full)

    class Stop(SerNnpmMethod):
        def on_epoch_start(self, ctx):
            if ctx.phase.name == STAGE2 and ctx.epoch == 1:
                raise Interrupt

    with pytest.raises(Interrupt):
        Trainer(cfg.train, tmp_path / "cut").fit(build(cfg, data, Stop))
    saved = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert saved["progress"]["phase"] == STAGE2 and saved["method"]["kind"] == "nnpm"
    assert saved["method"]["stage"] == STAGE2
    assert saved["method"]["memory"]["features"].shape == (16, cfg.model.encoder.output_dim)
    resumed = build(cfg, data, seed=123)  # other initial weights: all must come from the checkpoint
    Trainer(cfg.train, tmp_path / "cut").fit(resumed, resume=True)
    a, b = state(full), state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(full.memory.features, resumed.memory.features)
    ckpt = load_checkpoint(tmp_path / "full" / "last.pt")
    assert torch.equal(ckpt["method"]["memory"]["features"], full.memory.features)
    assert ckpt["method"]["memory"]["labels"].tolist() == data.source_slots.labels.tolist()


def test_a_checkpoint_of_another_method_or_source_set_is_refused(tmp_path):
    cfg = tiny_config("ser_nnpm")
    data = fake_data(cfg)
    method = build(cfg, data)
    Trainer(cfg.train, tmp_path / "run").fit(method)
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    other = build(cfg, fake_data(cfg, n_source=20))
    with pytest.raises(CheckpointError, match="memory"):
        other.load_state_dict(saved["method"])
    dann_cfg = tiny_config("ser_dann")
    with pytest.raises(CheckpointError, match="method 'nnpm'"):
        build(dann_cfg, fake_data(dann_cfg)).load_state_dict(saved["method"])


def test_stage2_from_a_stage1_checkpoint(tmp_path):
    s1_cfg = tiny_config("ser_snsa_f")
    snsa_f = build(s1_cfg, fake_data(s1_cfg))
    meta = checkpoint_meta(s1_cfg, snsa_f.normalizer, EMOTIONS)
    Trainer(s1_cfg.train, tmp_path / "snsa_f", meta=meta).fit(snsa_f)
    stage1 = load_checkpoint(tmp_path / "snsa_f" / "last.pt")["networks"]
    cfg = tiny_config("ser_nnpm", f"stage2.init_from={tmp_path / 'snsa_f'}")
    method = build(cfg, fake_data(cfg), StageProbe, seed=7)
    assert [p.name for p in method.phases(cfg.train)] == [STAGE2]
    Trainer(cfg.train).fit(method)
    start = method.at_stage2
    for net in ("encoder", "head"):
        for k, v in stage1[net].items():
            assert torch.equal(start[f"{net}.{k}"], v)
    assert method.memory.initialized
    bigger = tiny_config("ser_nnpm", "model.encoder.lstm_hidden=12", f"stage2.init_from={tmp_path / 'snsa_f'}")
    with pytest.raises(CheckpointError, match="model_config"):
        Trainer(bigger.train).fit(build(bigger, fake_data(bigger)))
    minmax = tiny_config("ser_nnpm", "normalizer.kind=instance_minmax", f"stage2.init_from={tmp_path / 'snsa_f'}")
    with pytest.raises(CheckpointError, match="normaliser settings"):
        Trainer(minmax.train).fit(build(minmax, fake_data(minmax)))
    Trainer(s1_cfg.train, tmp_path / "no_meta").fit(build(s1_cfg, fake_data(s1_cfg)))
    bare = tiny_config("ser_nnpm", f"stage2.init_from={tmp_path / 'no_meta' / 'last.pt'}")
    with pytest.raises(CheckpointError, match="not a checkpoint of a SER run"):
        Trainer(bare.train).fit(build(bare, fake_data(bare)))


def test_target_batches_carry_no_labels():
    cfg = tiny_config("ser_nnpm")
    data = fake_data(cfg)
    seen = []

    class Look(SerNnpmMethod):
        def training_step(self, batch, ctx):
            if ctx.phase.name == STAGE2:
                seen.append(batch.target.label.clone())
            return super().training_step(batch, ctx)

    Trainer(cfg.train).fit(build(cfg, data, Look))
    assert seen and all((labels == -1).all() for labels in seen)
    assert all(u.label is None for u in data.target_adapt.utterances)


@pytest.mark.parametrize("policy", ["negatives_only", "skip"])
def test_empty_sets_are_skipped_by_the_target_loss_only_under_skip(policy):
    # theta 0.999: the sets are empty; negatives_only still pushes each utterance away from its hardest slots
    cfg = tiny_config("ser_nnpm", "pseudo_multilabel.threshold=0.999", f"pseudo_multilabel.empty_policy={policy}")
    seen = []

    class Look(SerNnpmMethod):
        def training_step(self, batch, ctx):
            out = super().training_step(batch, ctx)
            if ctx.phase.name == STAGE2:
                seen.append((float(out.logs["target_loss"]), float(out.logs["pml_empty_fraction"])))
            return out

    Trainer(cfg.train).fit(build(cfg, fake_data(cfg), Look))
    all_empty = [loss for loss, empty in seen if empty == 1.0]
    assert len(all_empty) >= len(seen) // 2  # (the first step's memory can still hold the batch's own features)
    assert all((loss == 0.0) == (policy == "skip") for loss in all_empty)


def test_no_stage2_state_before_stage2_and_the_kind_is_checked():
    cfg = tiny_config("ser_snsa_f")
    method = build(cfg, fake_data(cfg))
    assert [p.name for p in method.phases(cfg.train)] == ["stage1"]
    assert method.memory is None and method.selection_metric is None
