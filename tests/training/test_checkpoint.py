"""Checkpoints load with weights_only, refuse pickled objects and name broken files."""

from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from audioadapt import __version__
from audioadapt.errors import CheckpointError
from audioadapt.training.checkpoint import (
    FORMAT_VERSION,
    BestTracker,
    checkpoint_inputs,
    improves,
    load_checkpoint,
    make_checkpoint,
    restore_networks,
    save_checkpoint,
    to_plain,
)


class Payload:
    """An arbitrary class: unpickling it would run code chosen by the file."""

    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    hidden: int = 8
    pools: tuple[int, ...] = (2, 2)
    root: Path = Path("/data")


def _checkpoint(**meta):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(5, 3)).sum().backward()
    opt.step()
    ckpt = make_checkpoint(
        networks={"net": net}, method_state={"memory": torch.randn(6, 4), "labels": np.arange(3), "round": 2},
        progress={"epoch": 1}, best={"value": 0.5}, meta=meta, optimizer=opt,
    )
    return net, ckpt


def test_round_trip_with_weights_only(tmp_path):
    net, ckpt = _checkpoint(model_config=ModelConfig(), classes=["dog", "cat"], normalizer={"mean": np.zeros(2)})
    path = save_checkpoint(ckpt, tmp_path / "sub" / "last.pt")
    plain = torch.load(path, weights_only=True)  # the contract, independent of our loader
    loaded = load_checkpoint(path)
    assert plain.keys() == loaded.keys()
    assert loaded["format"] == FORMAT_VERSION and loaded["audioadapt_version"] == __version__
    assert loaded["meta"]["model_config"] == {"hidden": 8, "pools": (2, 2), "root": "/data"}
    assert loaded["meta"]["classes"] == ["dog", "cat"]
    assert torch.equal(loaded["meta"]["normalizer"]["mean"], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(loaded["method"]["labels"], torch.arange(3))
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    restore_networks({"net": other}, loaded)
    for key, value in net.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    assert loaded["optimizer"]["state"][0]["exp_avg"].shape == (4, 3)


def test_pickled_object_is_refused(tmp_path, capfd):
    path = tmp_path / "evil.pt"
    _, ckpt = _checkpoint()
    ckpt["meta"] = {"normalizer": Payload()}
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused.*pickled object \((posix|nt)\.system\)"):
        load_checkpoint(path)
    assert "should-never-run" not in capfd.readouterr().out


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"kind": "audioadapt-checkpoint"}))
    with pytest.raises(CheckpointError, match=r"plain\.pkl: not a checkpoint archive"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "flip"])
def test_damaged_file_names_the_file(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(_checkpoint()[1], path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "random":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    else:  # corrupt the pickled dictionary inside an intact zip
        start = data.index(b"data.pkl") + 60
        data[start : start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path).replace(".", r"\.")):
        load_checkpoint(path)


def test_missing_file_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt: not an audioadapt checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    _, ckpt = _checkpoint()
    ckpt["format"] = FORMAT_VERSION + 1
    torch.save(ckpt, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="future.pt: checkpoint format .* newer"):
        load_checkpoint(tmp_path / "future.pt")


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.pt"
    _, ckpt = _checkpoint()
    save_checkpoint(ckpt, path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint({**ckpt, "oops": lambda: None}, path)  # cannot be pickled
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4480 vs 4374"),
])
def test_a_write_failure_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pt"
    _, ckpt = _checkpoint()
    save_checkpoint(ckpt, path)
    before = path.read_bytes()

    def failing_save(obj, fh):
        fh.write(b"partial")
        raise failure

    monkeypatch.setattr(torch, "save", failing_save)
    first_line = str(failure.strerror if isinstance(failure, OSError) else failure)
    with pytest.raises(CheckpointError, match=rf"last\.pt: cannot write the checkpoint: {re.escape(first_line)}; "
                                              r"the previous last\.pt is unchanged"):
        save_checkpoint(ckpt, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left
    with pytest.raises(CheckpointError, match=r"best\.pt: cannot write the checkpoint: .*; nothing was written"):
        save_checkpoint(ckpt, tmp_path / "best.pt")
    assert load_checkpoint(path)["progress"] == {"epoch": 1}


def test_to_plain_refuses_objects_with_their_location():
    assert to_plain({"a": (1, [2.5, None]), "b": np.float32(0.5), "c": Path("x")}) == {
        "a": (1, [2.5, None]), "b": 0.5, "c": "x"}
    with pytest.raises(CheckpointError, match=r"method state\['mem'\]\[1\]: a builtins\.set"):
        to_plain({"mem": [1, {2}]}, "method state")
    with pytest.raises(CheckpointError, match="key"):
        to_plain({(1, 2): 3})


def test_restore_networks_reports_mismatch():
    _, ckpt = _checkpoint()
    with pytest.raises(CheckpointError, match="network 'net' does not match"):
        restore_networks({"net": nn.Linear(3, 4)}, ckpt)
    with pytest.raises(CheckpointError, match=r"no network\(s\) \['teacher'\]"):
        restore_networks({"teacher": nn.Linear(3, 4)}, ckpt)


def test_ties_go_to_the_later_epoch_in_both_directions():
    assert improves(0.5, 0.5, "max") and improves(0.5, 0.5, "min")
    assert improves(0.6, 0.5, "max") and not improves(0.4, 0.5, "max")
    assert improves(0.4, 0.5, "min") and not improves(0.6, 0.5, "min")
    assert improves(0.0, None, "max") and not improves(float("nan"), None, "max")


def test_best_tracker_records_whether_the_metric_ever_rose():
    flat = BestTracker("selection")
    for epoch, value in enumerate([0.0, 0.0, float("nan"), 0.0], start=1):
        flat.update({"selection": value}, epoch)
    assert (flat.value, flat.global_epoch, flat.validations, flat.never_rose) == (0.0, 4, 3, True)
    assert "never rose above its first value 0 in 3 validated epochs" in flat.describe()
    falling = BestTracker("loss", "min")
    for epoch, value in enumerate([1.0, 1.2, 1.0], start=1):
        falling.update({"loss": value}, epoch)
    assert falling.never_rose and falling.global_epoch == 3 and "never fell below" in falling.describe()
    rising = BestTracker("selection")
    for epoch, value in enumerate([0.1, 0.2, 0.1], start=1):
        rising.update({"selection": value}, epoch)
    assert not rising.never_rose and rising.global_epoch == 2
    assert rising.describe() == "epoch 2 selected, selection = 0.2 (first value 0.1, 3 validated epochs)"
    one = BestTracker("selection")
    one.update({"selection": 0.0}, 1)
    assert not one.never_rose  # one validation: nothing to rise from
    none = BestTracker("selection")
    none.update({"selection": float("nan")}, 1)
    assert none.describe() == "no epoch gave a finite selection: no epoch was selected"


def test_best_tracker_round_trips_and_reads_older_records():
    tracker = BestTracker("selection")
    for epoch in (1, 2):
        tracker.update({"selection": 0.0}, epoch)
    restored = BestTracker("selection")
    restored.restore(tracker.to_dict())
    assert restored == tracker and restored.to_dict()["never_rose"] is True
    old = BestTracker("selection")
    old.restore({"metric": "selection", "mode": "max", "value": 0.3, "global_epoch": 5})  # before these fields
    assert (old.value, old.first_value, old.validations, old.never_rose) == (0.3, 0.3, 0, False)


def test_checkpoint_inputs_name_the_seed_and_the_selection(tmp_path):
    tracker = BestTracker("selection")
    for epoch in (1, 2):
        tracker.update({"selection": 0.0}, epoch)
    ckpt = {"progress": {"global_epoch": 2}, "train_config": {"seed": 7}, "best": tracker.to_dict()}
    inputs = checkpoint_inputs(tmp_path / "best.pt", ckpt)
    assert (inputs["checkpoint_role"], inputs["global_epoch"], inputs["seed"]) == ("best", 2, 7)
    assert inputs["selection"]["never_rose"] is True and inputs["selection"]["global_epoch"] == 2
