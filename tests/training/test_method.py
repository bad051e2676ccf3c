"""The method protocol: phase specs, defaults, batch transfer."""

from __future__ import annotations

from collections import defaultdict, namedtuple
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from audioadapt.errors import CheckpointError, ConfigError
from audioadapt.training import Method, PhaseSpec, TrainConfig
from audioadapt.training.method import move_to_device, trainable_networks


class Shared(Method):
    def __init__(self):
        self.body = nn.Linear(2, 3)
        self.head = nn.Sequential(self.body, nn.Linear(3, 1))  # shares body's parameters
        self.frozen = nn.Linear(3, 1).requires_grad_(False)

    def networks(self):
        return {"body": self.body, "head": self.head, "frozen": self.frozen}


def test_phase_spec_validation():
    assert PhaseSpec("phase-2", 3, ["a", "b"]).trainable == ("a", "b")
    for kwargs, match in (({"name": "", "epochs": 1}, "name"), ({"name": "a b", "epochs": 1}, "name"),
                          ({"name": "a", "epochs": -1}, "epochs"), ({"name": "a", "epochs": 1, "lr": 0}, "lr")):
        with pytest.raises(ConfigError, match=match):
            PhaseSpec(**kwargs)


def test_default_phase_and_parameters_to_optimize():
    method = Shared()
    (phase,) = method.phases(TrainConfig(epochs=7))
    assert (phase.name, phase.epochs, phase.trainable) == ("train", 7, None)
    params = list(method.parameters_to_optimize(phase))
    assert len(params) == 4  # body (2) + head's last layer (2); shared once, frozen left out
    assert len({id(p) for p in params}) == 4
    only_head = list(method.parameters_to_optimize(PhaseSpec("p", 1, ("frozen",))))
    assert only_head == []


def test_trainable_networks_by_name():
    method = Shared()
    assert list(trainable_networks(method, PhaseSpec("p", 1, ("head",)))) == ["head"]
    with pytest.raises(ConfigError, match=r"unknown networks \['tail'\].*\['body', 'frozen', 'head'\]"):
        trainable_networks(method, PhaseSpec("p", 1, ("head", "tail")))


def test_required_hooks_name_the_class_and_stateless_methods_refuse_state():
    class Bare(Method):
        pass

    with pytest.raises(NotImplementedError, match="Bare must define networks"):
        Bare().networks()
    with pytest.raises(NotImplementedError, match="Bare must define train_loader"):
        Bare().train_loader(PhaseSpec("p", 1), None)
    assert Bare().state_dict() == {} and Bare().validate(None) == {}
    Bare().load_state_dict({})
    with pytest.raises(CheckpointError, match=r"Bare keeps no state.*\['memory'\]"):
        Bare().load_state_dict({"memory": torch.zeros(1)})


Pair = namedtuple("Pair", "x y")


@dataclass
class Rows:
    features: torch.Tensor
    names: list[str]


class HasTo:
    def __init__(self):
        self.device = None

    def to(self, device):
        moved = HasTo()
        moved.device = device
        return moved


def test_move_to_device_walks_nested_batches():
    meta = torch.device("meta")
    counts = defaultdict(int, {"n": torch.ones(1)})
    batch = {"pair": Pair(torch.ones(2), [torch.zeros(1), "label"]), "rows": Rows(torch.ones(3), ["a"]),
             "custom": HasTo(), "counts": counts, "k": 3}
    out = move_to_device(batch, meta)
    assert out["pair"].x.device == meta and isinstance(out["pair"], Pair)
    assert out["pair"].y[0].device == meta and out["pair"].y[1] == "label"
    assert out["rows"].features.device == meta and out["rows"].names == ["a"]
    assert out["custom"].device == meta
    assert out["counts"]["n"].device == meta
    assert out["k"] == 3
    assert batch["rows"].features.device == torch.device("cpu")  # the input is left alone
