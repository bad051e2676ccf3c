"""The synthetic SED dataset: layout, labels, determinism, domain gap, real-recording mode."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audioadapt.data.dcase import read_durations_tsv, read_strong_tsv, read_unlabeled_tsv, read_weak_tsv
from audioadapt.data.corpora.desed import DcaseLayout, load_dcase_dataset
from audioadapt.data.synthetic import SIZE_PRESETS, SedSynthConfig, SizeOverrides, generate_sed_dataset
from audioadapt.data.synthetic.render import clip_sources
from audioadapt.data.synthetic.sed import load_sed_config, plan_sed_dataset
from audioadapt.data.synthetic.sources import CLASS_NAMES
from audioadapt.errors import ConfigError, DataError
from audioadapt.features.config import FeatureConfig

LAYOUT = DcaseLayout()
SPLITS = ("synthetic", "weak", "unlabeled", "validation")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    start = time.perf_counter()
    info = generate_sed_dataset(root, SedSynthConfig(size="tiny", seed=11), workers=1, progress=False)
    return root, info, time.perf_counter() - start


def _small(**changes) -> SedSynthConfig:
    """A fast config: short clips and a handful of clips per split."""
    base = dict(size="tiny", clip_seconds=3.0, sizes=SizeOverrides(synthetic=5, weak=3, unlabeled=2, validation=3))
    base.update(changes)
    return SedSynthConfig(**base)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- layout and labels
def test_tiny_generates_in_seconds(tiny):
    _, info, seconds = tiny
    assert info.clips == SIZE_PRESETS["tiny"].as_dict()
    assert seconds < 60


def test_defaults_follow_the_sed_features():
    cfg, features = SedSynthConfig(), FeatureConfig()
    assert cfg.sample_rate == features.sample_rate and cfg.clip_seconds == features.clip_seconds


def test_layout_is_read_back_by_the_dcase_readers(tiny):
    root, info, _ = tiny
    classes = info.classes
    strong = read_strong_tsv(root / LAYOUT.tsv("synthetic"), classes=classes,
                             audio_dir=root / LAYOUT.audio("synthetic"))
    weak = read_weak_tsv(root / LAYOUT.tsv("weak"), classes=classes, audio_dir=root / LAYOUT.audio("weak"))
    unlabeled = read_unlabeled_tsv(root / LAYOUT.tsv("unlabeled"), audio_dir=root / LAYOUT.audio("unlabeled"))
    validation = read_strong_tsv(root / LAYOUT.tsv("validation"), classes=classes,
                                 audio_dir=root / LAYOUT.audio("validation"))
    durations = read_durations_tsv(root / LAYOUT.validation_durations_tsv, audio_dir=root / LAYOUT.audio("validation"))
    sizes = SIZE_PRESETS["tiny"]
    assert (len(strong), len(weak), len(unlabeled), len(validation)) == (
        sizes.synthetic, sizes.weak, sizes.unlabeled, sizes.validation)
    assert set(durations) == set(validation) and set(durations.values()) == {10.0}
    # empty clips exist and are written as empty-event rows
    assert any(evs == () for evs in strong.values())
    assert sum(len(v) for v in strong.values()) == info.events["synthetic"]
    assert sum(len(v) for v in validation.values()) == info.events["validation"]
    dataset = load_dcase_dataset(root)
    assert dataset.classes == classes
    assert {s: c.kept for s, c in dataset.counts.items()} == info.clips


def test_audio_files_are_16_bit_mono_clips(tiny):
    root, _, _ = tiny
    for split in SPLITS:
        files = sorted((root / LAYOUT.audio(split)).glob("*.wav"))
        assert len(files) == SIZE_PRESETS["tiny"].as_dict()[split]
        for path in files[:3]:
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 220500, "PCM_16")
    x, _ = sf.read(files[0])
    assert 0 < np.abs(x).max() < 1.0


def test_every_class_is_generated_and_events_lie_inside_clips(tiny):
    root, info, _ = tiny
    assert info.classes == CLASS_NAMES
    for split in ("synthetic", "validation"):
        clips = read_strong_tsv(root / LAYOUT.tsv(split))
        events = [e for evs in clips.values() for e in evs]
        assert {e.label for e in events} == set(CLASS_NAMES)
        for e in events:
            assert 0.0 <= e.onset < e.offset <= 10.0
            assert e.offset - e.onset >= 0.25 - 1e-9
    weak = read_weak_tsv(root / LAYOUT.tsv("weak"))
    assert set().union(*weak.values()) <= set(CLASS_NAMES)
    assert sum(1 for tags in weak.values() if tags) >= len(weak) - 2


def test_annotations_match_where_the_audio_is_loud(tiny):
    """Frames inside annotated events are louder than frames outside (synthetic, dry domain)."""
    root, _, _ = tiny
    inside, outside = [], []
    for name, events in list(read_strong_tsv(root / LAYOUT.tsv("synthetic")).items())[:12]:
        x, sr = sf.read(root / LAYOUT.audio("synthetic") / name)
        frames = x[: x.size // 2205 * 2205].reshape(-1, 2205)
        level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        centres = (np.arange(len(level)) + 0.5) * 0.1
        active = np.zeros(len(level), dtype=bool)
        for e in events:
            active |= (centres > e.onset) & (centres < e.offset)
        inside.extend(level[active] - np.median(level))
        outside.extend(level[~active] - np.median(level))
    assert np.median(inside) > np.median(outside) + 3.0


def test_dataset_json_records_the_settings(tiny):
    root, info, _ = tiny
    meta = json.loads((root / LAYOUT.dataset_json).read_text())
    assert meta["seed"] == 11 and meta["classes"] == list(CLASS_NAMES)
    assert meta["sizes"] == info.clips and meta["events"] == info.events
    assert meta["config"]["real_domain"]["channel"]["reverb"] == SedSynthConfig().real_domain.channel.reverb
    assert meta["generator_version"] >= 1 and meta["event_source"] == "procedural"


def test_true_events_of_weak_and_unlabeled_clips_are_written_apart_for_diagnostics(tiny):
    from audioadapt.data.synthetic.sed import TRUTH_DIR, TRUTH_SPLITS

    root, info, _ = tiny
    truth = {s: read_strong_tsv(root / TRUTH_DIR / f"{s}.tsv", classes=info.classes) for s in TRUTH_SPLITS}
    weak = read_weak_tsv(root / LAYOUT.tsv("weak"))
    assert {f: {e.label for e in evs} for f, evs in truth["weak"].items()} == {f: set(t) for f, t in weak.items()}
    assert set(truth["unlabeled"]) == set(read_unlabeled_tsv(root / LAYOUT.tsv("unlabeled")))
    assert {s: sum(len(v) for v in truth[s].values()) for s in TRUTH_SPLITS} == {
        s: info.events[s] for s in TRUTH_SPLITS}
    assert "for diagnostics only" in (root / TRUTH_DIR / "README.txt").read_text().lower()
    meta = json.loads((root / LAYOUT.dataset_json).read_text())
    assert meta["truth"]["folder"] == TRUTH_DIR and "never read by training" in meta["truth"]["use"]
    assert not any(path.startswith(TRUTH_DIR) for path in vars(LAYOUT).values())  # no split of the layout


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes_with_any_worker_count(tmp_path):
    cfg = _small(seed=5)
    generate_sed_dataset(tmp_path / "a", cfg, workers=1, progress=False)
    generate_sed_dataset(tmp_path / "b", cfg, workers=2, progress=False)
    generate_sed_dataset(tmp_path / "c", dataclasses.replace(cfg, seed=6), workers=1, progress=False)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    wavs = [k for k in a if k.endswith(".wav")]
    assert len(wavs) == 13
    assert all(a[k] != c[k] for k in wavs)


def test_changing_one_split_size_leaves_the_other_splits_alone(tmp_path):
    cfg = _small(seed=2)
    bigger = dataclasses.replace(cfg, sizes=dataclasses.replace(cfg.sizes, weak=6))
    generate_sed_dataset(tmp_path / "a", cfg, workers=1, progress=False)
    generate_sed_dataset(tmp_path / "b", bigger, workers=1, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    for split in ("synthetic", "unlabeled", "validation"):
        keys = [k for k in a if k.startswith(LAYOUT.audio(split) + "/") or k == LAYOUT.tsv(split)]
        assert keys and all(a[k] == b[k] for k in keys)
    assert len([k for k in b if k.startswith(LAYOUT.audio("weak") + "/")]) == 6


# --------------------------------------------------------------------------- split seed
def _sources(root: Path, cfg: SedSynthConfig, **banks) -> dict[tuple[str, int], list[tuple[str, bytes]]]:
    """(split, clip index) -> the clip's dry sources as (label, audio bytes), from the plan alone."""
    plan = plan_sed_dataset(root, cfg, **banks)
    return {(job.split, job.index): [(ev.label, ev.audio.tobytes()) for ev in clip_sources(plan.contexts[job.split], job)]
            for job in plan.jobs}


def _labels_per_clip(root: Path) -> dict[str, set[str]]:
    """Validation file -> the classes of its events (an event of a class already placed may find no room)."""
    return {f: {e.label for e in evs} for f, evs in read_strong_tsv(root / LAYOUT.tsv("validation")).items()}


def test_the_split_seed_defaults_to_the_seed_and_regenerates_identically(tmp_path):
    generate_sed_dataset(tmp_path / "a", _small(seed=5), workers=1, progress=False)
    generate_sed_dataset(tmp_path / "b", _small(seed=5, split_seed=5), workers=1, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k != LAYOUT.dataset_json)
    for root in (tmp_path / "a", tmp_path / "b"):
        meta = json.loads((root / LAYOUT.dataset_json).read_text())
        assert (meta["seed"], meta["split_seed"]) == (5, 5)


def test_the_split_seed_fixes_every_clips_sources_whatever_the_rendering_seed(tmp_path):
    cfg = _small(seed=0, split_seed=7)
    same, other = _sources(tmp_path, cfg), _sources(tmp_path, dataclasses.replace(cfg, seed=1))
    assert same == other and any(same.values())
    moved = _sources(tmp_path, dataclasses.replace(cfg, split_seed=8))
    assert sum(same[k] != moved[k] for k in same) >= len(same) // 2
    # rendered: the same events per validation clip, heard differently
    generate_sed_dataset(tmp_path / "a", cfg, workers=1, progress=False)
    generate_sed_dataset(tmp_path / "b", dataclasses.replace(cfg, seed=1), workers=1, progress=False)
    assert _labels_per_clip(tmp_path / "a") == _labels_per_clip(tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    wavs = [k for k in a if k.endswith(".wav")]
    assert wavs and all(a[k] != b[k] for k in wavs)
    meta = json.loads((tmp_path / "b" / LAYOUT.dataset_json).read_text())
    assert (meta["seed"], meta["split_seed"], meta["config"]["split_seed"]) == (1, 7, 7)


# --------------------------------------------------------------------------- domain gap
def _tilt_and_hf(path: Path) -> tuple[float, float]:
    """Spectral slope (dB/octave, 100 Hz-8 kHz) and share of power above 6 kHz of one clip."""
    x, sr = sf.read(path)
    f, p = signal.welch(x, sr, nperseg=2048)
    band = (f > 100) & (f < 8000)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band] + 1e-20), 1)[0]), float(p[f > 6000].sum() / p.sum())


def test_real_domain_effects_change_the_clip_statistics(tmp_path):
    """The same validation clips (same events, positions and draws) at gap 0 and gap 1."""
    sizes = SizeOverrides(synthetic=3, weak=0, unlabeled=0, validation=8)
    for gap in (0.0, 1.0):
        generate_sed_dataset(tmp_path / f"gap{gap}", _small(seed=3, gap=gap, sizes=sizes), workers=1, progress=False)
    same, shifted = _files(tmp_path / "gap0.0"), _files(tmp_path / "gap1.0")
    synthetic = [k for k in same if k.startswith(LAYOUT.audio("synthetic") + "/")]
    assert synthetic and all(same[k] == shifted[k] for k in synthetic)  # the gap only touches the real domain
    clips = sorted((tmp_path / "gap0.0" / LAYOUT.audio("validation")).glob("*.wav"))
    pairs = [(_tilt_and_hf(p), _tilt_and_hf(tmp_path / "gap1.0" / LAYOUT.audio("validation") / p.name)) for p in clips]
    tilt_drop = [a[0] - b[0] for a, b in pairs]
    hf_ratio = [a[1] / max(b[1], 1e-12) for a, b in pairs]
    # darker: a steeper spectral slope and less high-frequency power in (nearly) every clip
    assert sum(d > 0 for d in tilt_drop) >= len(pairs) - 1 and np.mean(tilt_drop) > 1.5
    assert sum(r > 1 for r in hf_ratio) >= len(pairs) - 1 and np.median(hf_ratio) > 3.0


def test_gap_zero_makes_the_real_domain_the_synthetic_one():
    cfg = SedSynthConfig(gap=0.0)
    assert cfg.effective_real_domain() == cfg.synthetic_domain
    assert SedSynthConfig().effective_real_domain() == SedSynthConfig().real_domain


# --------------------------------------------------------------------------- config
def test_config_from_yaml_and_overrides(tmp_path):
    path = tmp_path / "synth.yaml"
    path.write_text("size: tiny\nseed: 4\nreal_domain:\n  channel:\n    reverb: 0.0\n")
    cfg = load_sed_config(path, ["sizes.weak=7", "gap=0.5"])
    assert cfg.size == "tiny" and cfg.seed == 4 and cfg.gap == 0.5
    assert cfg.real_domain.channel.reverb == 0.0
    assert cfg.real_domain.channel.coloration == SedSynthConfig().real_domain.channel.coloration
    assert cfg.split_sizes().weak == 7 and cfg.split_sizes().synthetic == SIZE_PRESETS["tiny"].synthetic
    # a setting the YAML does not name keeps the generator's default
    assert cfg.real_domain.noise == SedSynthConfig().real_domain.noise
    with pytest.raises(ConfigError, match="reverb"):
        load_sed_config(None, ["real_domain.channel.reverbb=1"])
    path.write_text("real_domain:\n  chanel: {}\n")
    with pytest.raises(ConfigError, match="channel"):
        load_sed_config(path)


@pytest.mark.parametrize(
    "changes",
    [{"size": "huge"}, {"seed": -1}, {"split_seed": -1}, {"gap": -0.5}, {"gap": 1.5}, {"group_split": (0.0, 0.5, 0.5)},
     {"sizes": SizeOverrides(weak=-1)}],
)
def test_invalid_settings_are_config_errors(changes):
    with pytest.raises(ConfigError):
        SedSynthConfig(**changes).split_sizes()


def test_an_occupied_output_folder_needs_overwrite(tmp_path):
    cfg = _small(sizes=SizeOverrides(synthetic=1, weak=1, unlabeled=1, validation=1))
    generate_sed_dataset(tmp_path, cfg, workers=1, progress=False)
    with pytest.raises(DataError, match="already holds a dataset"):
        generate_sed_dataset(tmp_path, cfg, workers=1, progress=False)
    (tmp_path / "notes.txt").write_text("kept")
    generate_sed_dataset(tmp_path, cfg, workers=1, progress=False, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "kept"


# --------------------------------------------------------------------------- real-recording mode
#: Each fake recording is a pure tone whose frequency encodes its class and group.
_GROUPS, _TAKES = 4, 2


def _freq(class_index: int, group: int) -> float:
    return 400.0 + 1000.0 * class_index + 150.0 * group


@pytest.fixture
def fake_recordings(tmp_path):
    rng = np.random.default_rng(0)
    events = tmp_path / "events"
    for c, label in enumerate(("alpha", "beta", "gamma")):
        for g in range(_GROUPS):
            for take in range(_TAKES):
                t = np.arange(int(16000 * rng.uniform(0.5, 0.9))) / 16000
                tone = 0.5 * np.sin(2 * np.pi * _freq(c, g) * t) * np.hanning(t.size) ** 0.2
                path = events / label / f"rec{c}{g}" / f"take{take}.flac"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, np.concatenate([np.zeros(800), tone, np.zeros(800)]), 16000)
    backgrounds = tmp_path / "backgrounds"
    backgrounds.mkdir()
    rows = []
    for i in range(6):
        sf.write(backgrounds / f"bg{i}.wav", 0.05 * rng.standard_normal(16000 * 2), 16000)
        rows.append(f"bg{i}.wav,,room{i // 2}\n")
    (backgrounds / "bank.csv").write_text("path,label,group\n" + "".join(rows))
    return events, backgrounds / "bank.csv"


_CLASSES = ("alpha", "beta", "gamma")


def _strongest_group(seg: np.ndarray, sr: int, label: str) -> tuple[int, int]:
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / sr)
    c = _CLASSES.index(label)
    power = [spec[np.abs(freqs - _freq(c, g)) < 20].max() for g in range(_GROUPS)]
    return c, int(np.argmax(power))


def _groups_heard(root: Path, split: str) -> set[tuple[int, int]]:
    """(class, group) of the recordings heard in a split.

    Strong splits: one per annotated event. Weak split: per clip and tag, the
    strongest group over the whole clip.
    """
    heard = set()
    if split == "weak":
        for name, tags in read_weak_tsv(root / LAYOUT.tsv(split)).items():
            x, sr = sf.read(root / LAYOUT.audio(split) / name)
            heard.update(_strongest_group(x, sr, label) for label in tags)
        return heard
    for name, events in read_strong_tsv(root / LAYOUT.tsv(split)).items():
        x, sr = sf.read(root / LAYOUT.audio(split) / name)
        heard.update(_strongest_group(x[int(e.onset * sr) : int(e.offset * sr)], sr, e.label) for e in events)
    return heard


def test_recordings_keep_source_groups_apart_between_domains(tmp_path, fake_recordings):
    events, backgrounds = fake_recordings
    root = tmp_path / "out"
    cfg = _small(seed=1, clip_seconds=4.0, sizes=SizeOverrides(synthetic=12, weak=8, unlabeled=0, validation=8))
    info = generate_sed_dataset(root, cfg, events=events, backgrounds=backgrounds, workers=1, progress=False)
    assert info.classes == ("alpha", "beta", "gamma")
    synthetic, weak, validation = (_groups_heard(root, s) for s in ("synthetic", "weak", "validation"))
    assert synthetic and weak and validation
    assert not synthetic & weak and not synthetic & validation and not weak & validation
    meta = json.loads((root / LAYOUT.dataset_json).read_text())
    banks = meta["banks"]
    assert set(banks) == {"synthetic", "real_train", "validation"}
    for side in banks.values():
        assert set(side["events"]) == {"alpha", "beta", "gamma"} and side["backgrounds"]["recordings"] > 0
    total = {c: sum(side["events"][c]["recordings"] for side in banks.values()) for c in info.classes}
    assert total == {c: _GROUPS * _TAKES for c in info.classes}


def test_recordings_validation_may_share_real_training_groups(tmp_path, fake_recordings):
    events, _ = fake_recordings
    cfg = _small(group_split=(0.5, 0.5, 0.0), sizes=SizeOverrides(synthetic=4, weak=2, unlabeled=2, validation=2))
    generate_sed_dataset(tmp_path / "out", cfg, events=events, workers=1, progress=False)
    banks = json.loads((tmp_path / "out" / LAYOUT.dataset_json).read_text())["banks"]
    assert set(banks) == {"synthetic", "real_train"}


def test_recordings_with_too_few_groups_name_the_class(tmp_path, fake_recordings):
    events, _ = fake_recordings
    for extra in ("one", "two"):
        path = events / "delta" / f"{extra}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.5 * np.sin(np.arange(8000) * 0.3), 16000)
    with pytest.raises(DataError, match="'delta' \\(2 source group"):
        generate_sed_dataset(tmp_path / "out", _small(), events=events, workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_recordings_per_side_follow_the_split_seed_not_the_rendering_seed(tmp_path, fake_recordings):
    events, backgrounds = fake_recordings
    banks = {"events": events, "backgrounds": backgrounds}
    cfg = _small(seed=1, split_seed=4, clip_seconds=4.0,
                 sizes=SizeOverrides(synthetic=6, weak=4, unlabeled=2, validation=4))

    def sides(c: SedSynthConfig) -> dict[str, list[str]]:
        return {side: entry["group_ids"] for side, entry in plan_sed_dataset(tmp_path, c, **banks).banks.items()}

    rerendered = dataclasses.replace(cfg, seed=2)
    assert sides(cfg) == sides(rerendered)
    assert _sources(tmp_path, cfg, **banks) == _sources(tmp_path, rerendered, **banks)
    assert sides(cfg) != sides(dataclasses.replace(cfg, split_seed=5))
    groups = sides(cfg)
    assert sorted(g for ids in groups.values() for g in ids) == sorted(set().union(*groups.values()))  # disjoint
    info = generate_sed_dataset(tmp_path / "out", rerendered, workers=1, progress=False, **banks)
    meta = json.loads((info.root / LAYOUT.dataset_json).read_text())
    assert meta["split_seed"] == 4 and {s: e["group_ids"] for s, e in meta["banks"].items()} == groups
