import math
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
from audioadapt.errors import ConfigError


def _bank(features: torch.Tensor, labels=None, **cfg) -> MemoryBank:
    n, d = features.shape
    bank = MemoryBank(n, d, 4, MemoryConfig(**cfg))
    bank.initialize(features, torch.arange(n) % 4 if labels is None else labels)
    return bank


def test_initialize_normalises_and_stores_labels():
    bank = MemoryBank(3, 2, 4, MemoryConfig())
    assert not bank.initialized
    bank.initialize(torch.tensor([[3.0, 4.0], [0.0, -2.0], [1.0, 1.0]]), torch.tensor([2, 0, 3]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(bank.features, torch.tensor([[0.6, 0.8], [0.0, -1.0], [s, s]]))
    assert bank.labels.tolist() == [2, 0, 3] and bank.initialized


@pytest.mark.parametrize(
    "features, labels, match",
    [
        (torch.ones(2, 2), torch.zeros(3, dtype=torch.long), "one feature per slot"),
        (torch.ones(3, 3), torch.zeros(3, dtype=torch.long), r"\(rows, 2\)"),
        (torch.ones(3, 2), torch.zeros(2, dtype=torch.long), "labels must be"),
        (torch.ones(3, 2), torch.tensor([0, 4, 1]), r"\[0, 4\)"),
        (torch.ones(3, 2), torch.zeros(3), "integers"),
        (torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), torch.zeros(3, dtype=torch.long), "all-zero"),
        (torch.tensor([[1.0, math.nan], [1.0, 0.0], [1.0, 1.0]]), torch.zeros(3, dtype=torch.long), "NaN"),
    ],
)
def test_initialize_rejects_bad_input(features, labels, match):
    with pytest.raises(ValueError, match=match):
        MemoryBank(3, 2, 4, MemoryConfig()).initialize(features, labels)


@pytest.mark.parametrize("convention", ["old", "new"])
def test_write_follows_eq3_in_both_conventions(convention):
    bank = _bank(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), rate_weights=convention)
    rate = 0.25
    bank.write(torch.tensor([0]), torch.tensor([[0.0, 2.0]]), rate)
    # M[0] = (1, 0), f_hat = (0, 1)
    w_old = rate if convention == "old" else 1 - rate
    mixed = torch.tensor([w_old, 1 - w_old])
    torch.testing.assert_close(bank.features[0], mixed / mixed.norm())
    torch.testing.assert_close(bank.features[1:], torch.tensor([[0.0, 1.0], [-1.0, 0.0]]), rtol=0, atol=0)


def test_rate_extremes():
    base = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    new = torch.tensor([[3.0, 4.0]])
    old = _bank(base, rate_weights="old")
    old.write(torch.tensor([1]), new, 0.0)  # MMCL convention: rate 0 overwrites
    torch.testing.assert_close(old.features[1], torch.tensor([0.6, 0.8]))
    old.write(torch.tensor([0]), new, 1.0)  # rate 1 keeps the old slot
    torch.testing.assert_close(old.features[0], torch.tensor([1.0, 0.0]))
    other = _bank(base, rate_weights="new")
    other.write(torch.tensor([1]), new, 0.0)  # other convention: rate 0 freezes
    torch.testing.assert_close(other.features[1], torch.tensor([0.0, 1.0]))


def test_only_written_slots_change_and_rows_stay_unit():
    torch.manual_seed(0)
    bank = _bank(torch.randn(50, 8))
    before = bank.features.clone()
    idx = torch.tensor([3, 17, 42, 9])
    bank.write(idx, 5 * torch.randn(4, 8), 0.3)
    changed = (bank.features != before).any(dim=1).nonzero().flatten().tolist()
    assert sorted(changed) == sorted(idx.tolist())
    torch.testing.assert_close(bank.features.norm(dim=1), torch.ones(50))
    assert bank.labels.tolist() == (torch.arange(50) % 4).tolist()


def test_write_row_order_matches_indices():
    torch.manual_seed(1)
    init = torch.randn(10, 4)
    feats = torch.randn(3, 4)
    a, b = _bank(init), _bank(init)
    a.write(torch.tensor([7, 2, 5]), feats, 0.2)
    for i, slot in enumerate([7, 2, 5]):  # one row at a time
        b.write(torch.tensor([slot]), feats[i : i + 1], 0.2)
    torch.testing.assert_close(a.features, b.features)


def test_duplicate_indices_write_the_mean_direction_in_any_order():
    init = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    feats = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.0, 5.0, 5.0]])
    a = _bank(init)
    a.write(torch.tensor([0, 0, 1]), feats, 0.5)
    # slot 0 gets the normalised mean of (0, 1, 0) and (0, 0, -1): (0, 1, -1) / sqrt 2
    f0 = torch.tensor([0.0, 1.0, -1.0]) / math.sqrt(2)
    m0 = 0.5 * torch.tensor([1.0, 0.0, 0.0]) + 0.5 * f0
    torch.testing.assert_close(a.features[0], m0 / m0.norm())
    b = _bank(init)
    b.write(torch.tensor([1, 0, 0]), feats[[2, 1, 0]], 0.5)
    torch.testing.assert_close(a.features, b.features, rtol=0, atol=1e-7)


def test_write_takes_no_gradient_and_leaves_the_graph_alone():
    torch.manual_seed(2)
    bank = _bank(torch.randn(6, 3))
    w = torch.randn(3, 3, requires_grad=True)
    feats = torch.randn(2, 3) @ w
    bank.write(torch.tensor([0, 1]), feats, 0.1)
    assert not bank.features.requires_grad and bank.features.grad_fn is None
    feats.sum().backward()  # the caller's graph still works
    assert w.grad is not None
    assert [name for name, _ in bank.named_parameters()] == []
    assert set(bank.state_dict()) == {"features", "labels"}


def test_similarity_is_an_inner_product_with_gradient_into_the_query_only():
    torch.manual_seed(3)
    bank = _bank(torch.randn(5, 3))
    f_hat = torch.nn.functional.normalize(torch.randn(2, 3), dim=1).requires_grad_(True)
    sim = bank.similarity(f_hat)
    assert sim.shape == (2, 5)
    query = f_hat.detach()
    for b in range(2):
        for i in range(5):
            expected = sum(float(query[b, j]) * float(bank.features[i, j]) for j in range(3))
            assert sim[b, i].detach().item() == pytest.approx(expected, abs=1e-6)
    sim.sum().backward()
    torch.testing.assert_close(f_hat.grad, bank.features.sum(dim=0).expand(2, 3))
    assert bank.features.grad is None
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        bank.similarity(torch.randn(2, 4))


def test_nearest_label():
    bank = _bank(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), labels=torch.tensor([3, 1, 0]))
    queries = torch.nn.functional.normalize(torch.tensor([[0.1, 1.0], [-1.0, 0.2], [1.0, -0.3]]), dim=1)
    assert bank.nearest_label(queries).tolist() == [1, 0, 3]


def test_rate_schedule_is_linear_from_0_to_0_4():
    cfg = MemoryConfig()
    assert cfg.rate(0.0) == 0.0
    assert cfg.rate(0.5) == pytest.approx(0.2)
    assert cfg.rate(1.0) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        cfg.rate(1.5)


def test_the_last_epoch_writes_with_the_end_rate():
    cfg = MemoryConfig()
    rates = [cfg.epoch_rate(e, 50) for e in range(50)]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.4) and rates[25] == pytest.approx(0.4 * 25 / 49)
    assert cfg.epoch_rate(0, 1) == pytest.approx(0.4)
    literal = MemoryConfig(rate_reaches_end="after_last_epoch")  # epochs counted from 0 over E: 0.392 at the end
    assert literal.epoch_rate(49, 50) == pytest.approx(0.392) and literal.epoch_rate(0, 1) == 0.0
    with pytest.raises(ValueError, match="epoch must lie in \\[0, 50\\)"):
        cfg.epoch_rate(50, 50)


def test_state_dict_round_trip():
    torch.manual_seed(4)
    bank = _bank(torch.randn(7, 3))
    copy = MemoryBank(7, 3, 4, MemoryConfig())
    copy.load_state_dict(bank.state_dict())
    assert copy.initialized
    torch.testing.assert_close(copy.features, bank.features)


@pytest.mark.parametrize(
    "indices, features, rate, error",
    [
        (torch.tensor([0]), torch.ones(1, 2), 1.5, ValueError),
        (torch.tensor([0]), torch.ones(1, 2), math.nan, ValueError),
        (torch.tensor([0, 1]), torch.ones(1, 2), 0.1, ValueError),
        (torch.tensor([3]), torch.ones(1, 2), 0.1, IndexError),
        (torch.tensor([-1]), torch.ones(1, 2), 0.1, IndexError),
        (torch.tensor([0.0]), torch.ones(1, 2), 0.1, ValueError),
        (torch.tensor([0]), torch.zeros(1, 2), 0.1, ValueError),
    ],
)
def test_write_rejects_bad_input(indices, features, rate, error):
    bank = _bank(torch.eye(3, 2) + 0.1)
    with pytest.raises(error):
        bank.write(indices, features, rate)


def test_config_validation():
    with pytest.raises(ConfigError, match="rate_end"):
        MemoryConfig(rate_end=1.5)
    with pytest.raises(ConfigError, match="rate_weights"):
        MemoryConfig(rate_weights="both")
    with pytest.raises(ConfigError, match="rate_reaches_end must be 'last_epoch' or 'after_last_epoch'"):
        MemoryConfig(rate_reaches_end="end")
    with pytest.raises(ConfigError, match="encoder_mode must be 'eval' or 'train'"):
        MemoryConfig(encoder_mode="inference")
    with pytest.raises(ConfigError):
        MemoryBank(0, 3, 4, MemoryConfig())


_RANK_SCRIPT = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from audioadapt.adaptation.memory import MemoryBank, MemoryConfig
    from audioadapt.training.distributed import DistInfo
    rank, world, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    dist.init_process_group("gloo", rank=rank, world_size=world)
    info = DistInfo(rank=rank, world_size=world, backend="gloo")
    torch.manual_seed(0)
    init = torch.randn(20, 4)
    bank = MemoryBank(20, 4, 4, MemoryConfig())
    bank.initialize(init, torch.arange(20) % 4)
    torch.manual_seed(100 + rank)
    n = 3 + rank  # ranks may hold different batch sizes
    idx = torch.randint(0, 20, (n,))
    idx[0] = 5  # the same slot on both ranks, as DistributedSampler padding gives
    feats = torch.randn(n, 4)
    bank.write(info.all_gather(idx), info.all_gather(feats), 0.3)
    torch.save({"features": bank.features, "idx": idx, "feats": feats, "init": init}, out)
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_ranks_writing_gathered_features_stay_identical(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"rank{r}.pt" for r in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, str(r), "2", str(outs[r])], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    r0, r1 = (torch.load(p) for p in outs)
    assert torch.equal(r0["features"], r1["features"])
    # the same as one process writing the concatenated batch
    single = _bank(r0["init"])
    single.write(torch.cat([r0["idx"], r1["idx"]]), torch.cat([r0["feats"], r1["feats"]]), 0.3)
    torch.testing.assert_close(single.features, r0["features"])
    assert not torch.equal(r0["features"], torch.nn.functional.normalize(r0["init"], dim=1))
