"""Multi-source batch sampler: composition, epochs, determinism and distributed shares."""

from __future__ import annotations

from collections import Counter

import pytest

from audioadapt.config.load import from_dict
from audioadapt.data.sampling import MultiSourceBatchSampler, SamplerConfig
from audioadapt.errors import ConfigError

SOURCES = {"synthetic": range(0, 40), "weak": range(40, 70), "unlabeled": range(70, 200)}
CFG = SamplerConfig(batch_sizes={"synthetic": 4, "weak": 4, "unlabeled": 8}, seed=11)


def _source_of(i: int) -> str:
    return next(n for n, r in SOURCES.items() if i in r)


def test_default_composition_is_16_16_32():
    cfg = SamplerConfig()
    assert cfg.batch_sizes == {"synthetic": 16, "weak": 16, "unlabeled": 32} and cfg.global_batch_size == 64


def test_each_batch_has_the_configured_composition():
    sampler = MultiSourceBatchSampler(SOURCES, CFG)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7  # weak runs out first: 30 // 4
    for batch in batches:
        counts = Counter(_source_of(i) for i in batch)
        assert counts == {"synthetic": 4, "weak": 4, "unlabeled": 8}
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))  # no row twice within an epoch


def test_fixed_steps_per_epoch_cycles_short_sources():
    cfg = SamplerConfig(batch_sizes=CFG.batch_sizes, steps_per_epoch=20, seed=1)
    batches = list(MultiSourceBatchSampler(SOURCES, cfg))
    assert len(batches) == 20
    weak = [i for b in batches for i in b if i in SOURCES["weak"]]
    assert len(weak) == 80 and set(weak) == set(SOURCES["weak"])
    first_pass = weak[:30]
    assert sorted(first_pass) == list(SOURCES["weak"])  # a full pass before any repeat


def test_determinism_and_reshuffling():
    a = MultiSourceBatchSampler(SOURCES, CFG)
    b = MultiSourceBatchSampler(SOURCES, CFG)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    a.set_epoch(0)
    assert list(a) == first
    other_seed = MultiSourceBatchSampler(SOURCES, SamplerConfig(batch_sizes=CFG.batch_sizes, seed=12))
    assert list(other_seed) != first


def test_no_shuffle_walks_sources_in_order_across_epochs():
    cfg = SamplerConfig(batch_sizes={"a": 2, "b": 3}, shuffle=False)
    sampler = MultiSourceBatchSampler({"a": range(4), "b": range(10, 20)}, cfg)
    assert list(sampler) == [[0, 1, 10, 11, 12], [2, 3, 13, 14, 15]]
    sampler.set_epoch(1)
    assert list(sampler) == [[0, 1, 16, 17, 18], [2, 3, 19, 10, 11]]


def test_sources_may_be_index_subsets_and_zero_counts():
    cfg = SamplerConfig(batch_sizes={"synthetic": 2, "weak": 0, "unlabeled": 2})
    subset = {"synthetic": [5, 9, 13, 21], "weak": range(40, 70), "unlabeled": [100, 150, 199]}
    batches = list(MultiSourceBatchSampler(subset, cfg))
    assert len(batches) == 1
    assert set(batches[0][:2]) <= {5, 9, 13, 21} and set(batches[0][2:]) <= {100, 150, 199}


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("steps", [None, 9])
def test_distributed_ranks_split_the_global_batch(world, steps):
    cfg = SamplerConfig(batch_sizes=CFG.batch_sizes, steps_per_epoch=steps, seed=5)
    single = MultiSourceBatchSampler(SOURCES, cfg, num_replicas=1, rank=0)
    ranks = [MultiSourceBatchSampler(SOURCES, cfg, num_replicas=world, rank=r) for r in range(world)]
    for epoch in (0, 3):
        single.set_epoch(epoch)
        for s in ranks:
            s.set_epoch(epoch)
        expected = list(single)
        per_rank = [list(s) for s in ranks]
        assert all(len(p) == len(expected) == len(s) for p, s in zip(per_rank, ranks))
        for step, global_batch in enumerate(expected):
            shares = [p[step] for p in per_rank]
            assert all(len(sh) == 16 // world for sh in shares)
            union = [i for sh in shares for i in sh]
            assert Counter(union) == Counter(global_batch)  # union = single-process batch
            assert len(set(union)) == len(union)  # disjoint
            for sh in shares:  # each share keeps the composition
                assert Counter(_source_of(i) for i in sh) == {
                    n: c // world for n, c in CFG.batch_sizes.items()
                }
        assert list(single.global_batches()) == expected
        assert list(ranks[1].global_batches()) == expected


def test_counts_must_divide_across_ranks():
    cfg = SamplerConfig(batch_sizes={"synthetic": 4, "weak": 6, "unlabeled": 8})
    with pytest.raises(ConfigError, match="batch_sizes.weak = 6 is not divisible by the 4"):
        MultiSourceBatchSampler(SOURCES, cfg, num_replicas=4, rank=0)
    with pytest.raises(ConfigError, match="rank"):
        MultiSourceBatchSampler(SOURCES, CFG, num_replicas=2, rank=2)


def test_rank_defaults_from_torch_distributed(monkeypatch):
    import torch.distributed as dist

    assert MultiSourceBatchSampler(SOURCES, CFG).num_replicas == 1
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    sampler = MultiSourceBatchSampler(SOURCES, CFG)
    assert (sampler.num_replicas, sampler.rank, sampler.batch_size) == (4, 3, 4)
    explicit = MultiSourceBatchSampler(SOURCES, CFG, num_replicas=2, rank=0)
    assert (explicit.num_replicas, explicit.rank) == (2, 0)


@pytest.mark.parametrize(
    "sources, sizes, fragment",
    [
        ({"synthetic": range(10), "extra": range(10, 20)}, {"synthetic": 2}, "no entry in batch_sizes"),
        ({"synthetic": range(10)}, {"synthetic": 2, "weak": 2}, "does not have"),
        ({"synthetic": range(10), "weak": range(10, 13)}, {"synthetic": 2, "weak": 4}, r"weak \(3 < 4\)"),
        ({"synthetic": [], "weak": range(5)}, {"synthetic": 2, "weak": 1}, "'synthetic' is empty"),
    ],
)
def test_bad_source_setups(sources, sizes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        MultiSourceBatchSampler(sources, SamplerConfig(batch_sizes=sizes))


def test_config_validation_and_loading():
    with pytest.raises(ConfigError, match="non-negative"):
        SamplerConfig(batch_sizes={"a": -1})
    with pytest.raises(ConfigError, match="all zero"):
        SamplerConfig(batch_sizes={"a": 0})
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        SamplerConfig(steps_per_epoch=0)
    cfg = from_dict(SamplerConfig, {"batch_sizes": {"synthetic": 6, "weak": 6, "unlabeled": 12}, "seed": 2})
    assert cfg.global_batch_size == 24 and cfg.steps_per_epoch is None
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(SamplerConfig, {"batch_size": 64})


def test_the_run_seed_drives_the_shuffles_unless_the_sampler_has_its_own():
    derived = SamplerConfig(batch_sizes=CFG.batch_sizes)  # seed null: the run's seed
    assert derived.seed is None and derived.shuffle_seed(5) == 5 and CFG.shuffle_seed(5) == 11

    def order(cfg: SamplerConfig, run_seed: int) -> list[list[int]]:
        return list(MultiSourceBatchSampler(SOURCES, cfg, run_seed=run_seed))

    assert order(derived, 3) == order(derived, 3)
    assert order(derived, 3) != order(derived, 4)
    fixed = SamplerConfig(batch_sizes=CFG.batch_sizes, seed=3)
    assert order(derived, 3) == order(fixed, 0) == order(fixed, 4)  # an explicit seed ignores the run's
    assert order(derived, 0) == list(MultiSourceBatchSampler(SOURCES, derived))  # run seed 0 by default
    ranks = [list(MultiSourceBatchSampler(SOURCES, derived, num_replicas=2, rank=r, run_seed=7)) for r in (0, 1)]
    merged = [sorted(a + b) for a, b in zip(*ranks)]
    assert merged == [sorted(b) for b in order(derived, 7)]  # every rank shuffles with the same seed
    with pytest.raises(ConfigError, match="non-negative or null"):
        SamplerConfig(seed=-1)
    with pytest.raises(ConfigError, match="run_seed"):
        MultiSourceBatchSampler(SOURCES, derived, run_seed=-2)
    assert from_dict(SamplerConfig, {"seed": None}).seed is None
