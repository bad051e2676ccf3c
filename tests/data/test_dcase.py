"""DCASE metadata readers: round trips, every bad-input case, skip mode, dataset loading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from audioadapt.config.load import from_dict
from audioadapt.data.dcase import (
    read_durations_tsv,
    read_strong_tsv,
    read_unlabeled_tsv,
    read_weak_tsv,
    write_durations_tsv,
    write_strong_tsv,
    write_unlabeled_tsv,
    write_weak_tsv,
)
from audioadapt.data.corpora.desed import DcaseLayout, SedDataConfig, infer_classes, load_dcase_dataset, load_sed_split
from audioadapt.data.manifest import Event, SkipReport
from audioadapt.errors import ConfigError, DataError

STRONG = "filename\tonset\toffset\tevent_label"
WEAK = "filename\tevent_labels"
UNLAB = "filename"
DUR = "filename\tduration"
CLASSES = ("Cat", "Dog", "Speech")


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- round trips
def test_strong_round_trip_keeps_empty_clips(tmp_path):
    clips = {
        "b.wav": [Event(2.5, 4.0, "Dog"), Event(0.25, 1.125, "Speech")],
        "empty.wav": [],
        "a.wav": [Event(0.0, 10.0, "Cat")],
    }
    out = read_strong_tsv(write_strong_tsv(tmp_path / "s.tsv", clips))
    assert list(out) == ["b.wav", "empty.wav", "a.wav"]
    assert out["empty.wav"] == ()
    assert out["b.wav"] == (Event(0.25, 1.125, "Speech"), Event(2.5, 4.0, "Dog"))
    assert out["a.wav"] == (Event(0.0, 10.0, "Cat"),)


def test_weak_unlabeled_durations_round_trip(tmp_path):
    weak = {"x.wav": {"Dog", "Cat"}, "y.wav": {"Speech"}, "z.wav": set()}
    assert read_weak_tsv(write_weak_tsv(tmp_path / "w.tsv", weak)) == {k: frozenset(v) for k, v in weak.items()}
    names = ["u2.wav", "u1.wav", "sub/u3.wav"]
    assert read_unlabeled_tsv(write_unlabeled_tsv(tmp_path / "u.tsv", names)) == names
    durs = {"a.wav": 10.0, "b.wav": 7.25}
    assert read_durations_tsv(write_durations_tsv(tmp_path / "d.tsv", durs)) == durs


def test_crlf_bom_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "w.tsv"
    path.write_bytes(b"\xef\xbb\xbffilename\tevent_labels\r\na.wav\tDog,Cat\r\n\r\nb.wav\tSpeech\r\n")
    assert read_weak_tsv(path) == {"a.wav": frozenset({"Dog", "Cat"}), "b.wav": frozenset({"Speech"})}


def test_filename_alone_is_an_empty_event_row(tmp_path):
    path = _write(tmp_path / "s.tsv", [STRONG, "a.wav", "b.wav\t1\t2\tDog"])
    assert read_strong_tsv(path) == {"a.wav": (), "b.wav": (Event(1.0, 2.0, "Dog"),)}


def test_columns_are_matched_by_header_name(tmp_path):
    path = _write(tmp_path / "p.tsv", ["filename\tevent_label\tonset\toffset", "a.wav\tDog\t1.5\t2.5", "e.wav\t\t\t"])
    assert read_strong_tsv(path) == {"a.wav": (Event(1.5, 2.5, "Dog"),), "e.wav": ()}
    path = _write(tmp_path / "d.tsv", ["duration\tfilename", "9.5\ta.wav"])
    assert read_durations_tsv(path) == {"a.wav": 9.5}


def test_full_precision_times_are_kept(tmp_path):
    path = _write(tmp_path / "s.tsv", [STRONG, "1.wav\t0.123456789\t3.98765\tDog"])
    assert read_strong_tsv(path)["1.wav"] == (Event(0.123456789, 3.98765, "Dog"),)


# --------------------------------------------------------------------------- header checks
@pytest.mark.parametrize(
    "reader, header, expected_kind",
    [
        (read_strong_tsv, WEAK, "weak-label"),
        (read_weak_tsv, STRONG, "strong-label"),
        (read_unlabeled_tsv, WEAK, "weak-label"),
        (read_durations_tsv, UNLAB, "unlabeled"),
        (read_weak_tsv, "file\tlabels", None),
    ],
)
def test_wrong_header_is_named(tmp_path, reader, header, expected_kind):
    path = _write(tmp_path / "meta.tsv", [header, "a.wav\tDog"])
    with pytest.raises(DataError) as info:
        reader(path)
    msg = str(info.value)
    assert "meta.tsv:1:" in msg and "header" in msg
    if expected_kind:
        assert f"looks like a {expected_kind} file" in msg
    assert info.value.line == 1


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="nope.tsv.*not found"):
        read_strong_tsv(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty.tsv.*empty file"):
        read_unlabeled_tsv(tmp_path / "empty.tsv")


def test_bad_on_error_value(tmp_path):
    path = _write(tmp_path / "u.tsv", [UNLAB, "a.wav"])
    with pytest.raises(ConfigError, match="on_error"):
        read_unlabeled_tsv(path, on_error="ignore")


# --------------------------------------------------------------------------- bad rows
# (reader, header, rows, index of the bad row in rows, fragment, reader kwargs)
BAD_ROWS = [
    ("strong", STRONG, ["a.wav\t0.0\t1.0\tDog", "a.wav\t1.0\t2.0\tBird"], 1, "unknown label 'Bird'",
     {"classes": CLASSES}),
    ("strong", STRONG, ["a.wav\t0.0\t1.0\tDog", "b.wav\t2.0\t2.0\tDog"], 1, "not before offset", {}),
    ("strong", STRONG, ["a.wav\t3.0\t1.0\tDog"], 0, "not before offset", {}),
    ("strong", STRONG, ["a.wav\t-0.5\t1.0\tDog"], 0, "negative", {}),
    ("strong", STRONG, ["a.wav\t0.5\t1.0\tDog", "b.wav\t0.5\t1.0"], 1, "expected 4 tab-separated", {}),
    ("strong", STRONG, ["a.wav\t0.5\t1.0\tDog\textra"], 0, "got 5", {}),
    ("strong", STRONG, ["a.wav\tzero\t1.0\tDog"], 0, "onset 'zero' is not a number", {}),
    ("strong", STRONG, ["a.wav\t0\tnan\tDog"], 0, "not a finite number", {}),
    ("strong", STRONG, ["a.wav\t0.0\t1.0\t"], 0, "partially empty row", {}),
    ("strong", STRONG, ["a.wav\t\t\tDog"], 0, "partially empty row", {}),
    ("strong", STRONG, ["\t0.0\t1.0\tDog"], 0, "empty filename", {}),
    ("strong", STRONG, ["a.wav\t\t\t", "b.wav\t0\t1\tCat", "a.wav\t0.0\t1.0\tDog"], 2,
     "both an empty-event row and events", {}),
    ("strong", STRONG, ["a.wav\t0.0\t1.0\tDog", "a.wav\t\t\t"], 1, "both an empty-event row and events", {}),
    ("weak", WEAK, ["a.wav\tDog", "b.wav\tDog,Bird"], 1, "unknown label 'Bird'", {"classes": CLASSES}),
    ("weak", WEAK, ["a.wav\tDog", "b.wav\tCat", "a.wav\tDog,Cat"], 2, "listed again with different tags", {}),
    ("weak", WEAK, ["a.wav\tDog,,Cat"], 0, "empty label", {}),
    ("weak", WEAK, ["a.wav"], 0, "expected 2 tab-separated", {}),
    ("unlabeled", UNLAB, ["a.wav", "b.wav", "a.wav"], 2, "duplicate file name 'a.wav'", {}),
    ("unlabeled", UNLAB, ["a.wav\tDog"], 0, "expected 1 tab-separated", {}),
    ("durations", DUR, ["a.wav\t10.0", "b.wav\tlong"], 1, "duration 'long' is not a number", {}),
    ("durations", DUR, ["a.wav\t0"], 0, "duration is zero", {}),
    ("durations", DUR, ["a.wav\t10.0", "a.wav\t9.0"], 1, "listed again with duration", {}),
    # columns separated by spaces instead of tabs
    ("strong", STRONG, ["a.wav\t0.0\t1.0\tDog", "b.wav 0.5 1.2 Dog"], 1,
     "expected 4 tab-separated columns, found spaces; separate the columns", {}),
    ("strong", STRONG, ["a.wav\t0.5 1.2\tDog"], 0, "expected 4 tab-separated columns, found spaces", {}),
    ("weak", WEAK, ["a.wav Dog,Cat"], 0, "expected 2 tab-separated columns, found spaces", {}),
    ("durations", DUR, ["a.wav 10.0"], 0, "expected 2 tab-separated columns, found spaces", {}),
    # a class list and where it comes from
    ("weak", WEAK, ["a.wav\tDog", "b.wav\tUnicorn"], 1,
     "unknown label 'Unicorn'; the classes (from d/dataset.json) are Cat, Dog, Speech: fix the label",
     {"classes": CLASSES, "classes_from": "d/dataset.json"}),
    ("strong", STRONG, ["a.wav\t0\t1\tDog_Barking"], 0,
     "unknown label 'Dog_Barking'; the classes (from data.classes)",
     {"classes": CLASSES, "classes_from": "data.classes"}),
    # an event that starts after its clip's end (one that only ends after it is cut in skip mode)
    ("strong", STRONG, ["a.wav\t0\t1\tDog", "a.wav\t12\t14\tDog"], 1,
     "event 12-14 s starts after the end of clip 'a.wav' (its listed duration is 10.000 s)",
     {"durations": {"a.wav": 10.0}}),
]
READERS = {
    "strong": read_strong_tsv,
    "weak": read_weak_tsv,
    "unlabeled": read_unlabeled_tsv,
    "durations": read_durations_tsv,
}


@pytest.mark.parametrize("kind, header, rows, bad, fragment, kwargs", BAD_ROWS)
def test_bad_row_raises_with_file_and_line(tmp_path, kind, header, rows, bad, fragment, kwargs):
    path = _write(tmp_path / f"{kind}_meta.tsv", [header, *rows])
    with pytest.raises(DataError) as info:
        READERS[kind](path, **kwargs)
    line = bad + 2  # header is line 1, rows start at line 2
    msg = str(info.value)
    assert f"{kind}_meta.tsv:{line}:" in msg
    assert fragment in msg
    assert info.value.line == line and info.value.path == path


@pytest.mark.parametrize("kind, header, rows, bad, fragment, kwargs", BAD_ROWS)
def test_bad_row_is_reported_in_skip_mode(tmp_path, kind, header, rows, bad, fragment, kwargs, caplog):
    path = _write(tmp_path / f"{kind}_meta.tsv", [header, *rows])
    report = SkipReport()
    with caplog.at_level(logging.WARNING, logger="audioadapt.data.dcase"):
        READERS[kind](path, on_error="skip", report=report, **kwargs)
    lines = [line for _, line, _ in report.skipped]
    assert bad + 2 in lines
    assert any(fragment in reason for _, line, reason in report.skipped if line == bad + 2)
    assert f"skipped {len(report)} row(s)" in caplog.text and f"{kind}_meta.tsv:{bad + 2}" in caplog.text


def test_encoding_error_names_the_line(tmp_path):
    path = tmp_path / "w.tsv"
    path.write_bytes(b"filename\tevent_labels\na.wav\tDog\nb\xff.wav\tCat\nc.wav\tCat\n")
    with pytest.raises(DataError, match=r"w\.tsv:3: not valid UTF-8"):
        read_weak_tsv(path)
    report = SkipReport()
    assert read_weak_tsv(path, on_error="skip", report=report) == {
        "a.wav": frozenset({"Dog"}),
        "c.wav": frozenset({"Cat"}),
    }
    assert [line for _, line, _ in report.skipped] == [3]


def test_missing_audio_is_an_error_with_line(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.wav").write_bytes(b"")
    path = _write(tmp_path / "s.tsv", [STRONG, "a.wav\t0\t1\tDog", "gone.wav\t0\t1\tDog", "gone.wav\t2\t3\tCat"])
    with pytest.raises(DataError, match=r"s\.tsv:3: audio file not found: .*gone\.wav"):
        read_strong_tsv(path, audio_dir=audio)
    report = SkipReport()
    out = read_strong_tsv(path, audio_dir=audio, on_error="skip", report=report)
    assert list(out) == ["a.wav"]
    assert [line for _, line, _ in report.skipped] == [3, 4]
    for reader, header, row in [(read_weak_tsv, WEAK, "gone.wav\tDog"), (read_unlabeled_tsv, UNLAB, "gone.wav"),
                                (read_durations_tsv, DUR, "gone.wav\t10")]:
        meta = _write(tmp_path / "m.tsv", [header, row])
        with pytest.raises(DataError, match=r"m\.tsv:2: audio file not found"):
            reader(meta, audio_dir=audio)


# --------------------------------------------------------------------------- duplicates and skip semantics
def test_identical_strong_duplicate_is_a_warning_skip(tmp_path, caplog):
    rows = [STRONG, "a.wav\t0\t1\tDog", "a.wav\t0.0\t1.000\tDog", "e.wav\t\t\t", "e.wav\t\t\t"]
    path = _write(tmp_path / "s.tsv", rows)
    report = SkipReport()
    with caplog.at_level(logging.WARNING, logger="audioadapt.data.dcase"):
        out = read_strong_tsv(path, report=report)  # default on_error="raise" does not raise
    assert out == {"a.wav": (Event(0.0, 1.0, "Dog"),), "e.wav": ()}
    assert [line for _, line, _ in report.skipped] == [3, 5]
    assert "identical duplicate of line 2" in report.skipped[0][2]
    assert "s.tsv:3" in caplog.text


def test_identical_weak_duplicate_is_a_warning_skip(tmp_path):
    path = _write(tmp_path / "w.tsv", [WEAK, "a.wav\tDog,Cat", "a.wav\tCat,Dog"])
    report = SkipReport()
    assert read_weak_tsv(path, report=report) == {"a.wav": frozenset({"Cat", "Dog"})}
    assert len(report) == 1 and report.skipped[0][1] == 3


def test_conflicting_clip_is_dropped_in_skip_mode(tmp_path):
    rows = [WEAK, "a.wav\tDog", "b.wav\tCat", "a.wav\tSpeech", "a.wav\tDog"]
    report = SkipReport()
    out = read_weak_tsv(_write(tmp_path / "w.tsv", rows), on_error="skip", report=report)
    assert out == {"b.wav": frozenset({"Cat"})}
    assert [line for _, line, _ in report.skipped] == [4, 5]
    assert "clip dropped" in report.skipped[0][2] and "conflict at line 4" in report.skipped[1][2]
    strong = [STRONG, "a.wav\t\t\t", "a.wav\t0\t1\tDog", "a.wav\t2\t3\tDog", "b.wav\t0\t1\tCat"]
    out = read_strong_tsv(_write(tmp_path / "s.tsv", strong), on_error="skip")
    assert out == {"b.wav": (Event(0.0, 1.0, "Cat"),)}


def test_skip_mode_keeps_good_rows_and_counts(tmp_path):
    rows = [STRONG, "a.wav\t0\t1\tDog", "b.wav\tx\t1\tDog", "c.wav\t1\t0.5\tCat", "d.wav\t\t\t", "e.wav\t0\t1\tBird"]
    report = SkipReport()
    out = read_strong_tsv(_write(tmp_path / "s.tsv", rows), classes=CLASSES, on_error="skip", report=report)
    assert out == {"a.wav": (Event(0.0, 1.0, "Dog"),), "d.wav": ()}
    assert [line for _, line, _ in report.skipped] == [3, 4, 6]


# --------------------------------------------------------------------------- dataset layout
def _make_dataset(root: Path, layout: DcaseLayout = DcaseLayout(), missing: tuple[str, ...] = ()) -> None:
    synthetic = {"1.wav": [Event(0.5, 2.0, "Dog")], "2.wav": [Event(1.0, 3.0, "Cat"), Event(2.0, 4.0, "Dog")],
                 "3.wav": []}
    weak = {"Yw1.wav": {"Speech"}, "Yw2.wav": {"Dog", "Speech"}, "Yw3.wav": {"Cat"}}
    unlabeled = ["Yu1.wav", "Yu2.wav", "Yu3.wav", "Yu4.wav"]
    validation = {"Yv1.wav": [Event(0.0, 1.0, "Speech")], "Yv2.wav": []}
    write_strong_tsv(root / layout.synthetic_tsv, synthetic)
    write_weak_tsv(root / layout.weak_tsv, weak)
    write_unlabeled_tsv(root / layout.unlabeled_tsv, unlabeled)
    write_strong_tsv(root / layout.validation_tsv, validation)
    write_durations_tsv(root / layout.validation_durations_tsv, {"Yv1.wav": 10.0, "Yv2.wav": 9.5})
    for split, names in [("synthetic", synthetic), ("weak", weak), ("unlabeled", unlabeled),
                         ("validation", validation)]:
        folder = root / layout.audio(split)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name not in missing:
                (folder / name).write_bytes(b"")


def test_load_dataset_default_layout(tmp_path, caplog):
    _make_dataset(tmp_path)
    with caplog.at_level(logging.INFO, logger="audioadapt.data.corpora.desed"):
        ds = load_dcase_dataset(tmp_path)
    assert ds.classes == ("Cat", "Dog", "Speech")
    assert {k: c.kept for k, c in ds.counts.items()} == {"synthetic": 3, "weak": 3, "unlabeled": 4, "validation": 2}
    syn = ds.records("synthetic")
    assert [r.filename for r in syn] == ["1.wav", "2.wav", "3.wav"]
    assert syn[2].events == () and syn[0].tags is None and syn[0].domain == 0
    assert syn[1].path == tmp_path / "audio/train/synthetic/2.wav"
    weak = ds.records("weak")
    assert weak[1].tags == frozenset({"Dog", "Speech"}) and weak[1].events is None and weak[1].domain == 1
    unl = ds.records("unlabeled")
    assert all(r.events is None and r.tags is None and r.source == "unlabeled" for r in unl)
    val = ds.records("validation")
    assert val[1].events == () and val[0].path == tmp_path / "audio/validation/Yv1.wav"
    assert ds.durations == {"Yv1.wav": 10.0, "Yv2.wav": 9.5}
    assert "unlabeled: 4 of 4 clips" in caplog.text


def test_lost_clips_are_counted(tmp_path):
    _make_dataset(tmp_path, missing=("Yw2.wav", "Yu1.wav", "Yu4.wav"))
    with pytest.raises(DataError, match=r"weak\.tsv:3: audio file not found"):
        load_dcase_dataset(tmp_path)
    ds = load_dcase_dataset(tmp_path, SedDataConfig(on_error="skip"))
    assert ds.counts["weak"].listed == 3 and ds.counts["weak"].kept == 2 and ds.counts["weak"].lost == 1
    assert ds.counts["unlabeled"].lost == 2 and ds.counts["unlabeled"].skipped_rows == 2
    assert [r.filename for r in ds.records("unlabeled")] == ["Yu2.wav", "Yu3.wav"]
    assert "weak: 2 of 3 clips, 1 lost" in ds.summary()
    assert len(ds.skipped) == 3
    # Without the audio check nothing is lost.
    ds = load_dcase_dataset(tmp_path, SedDataConfig(check_audio=False))
    assert ds.counts["unlabeled"].kept == 4


def test_validation_label_outside_training_classes(tmp_path):
    _make_dataset(tmp_path)
    path = tmp_path / DcaseLayout().validation_tsv
    write_strong_tsv(path, {"Yv1.wav": [Event(0.0, 1.0, "Speech")], "Yv2.wav": [Event(1.0, 2.0, "Spech")]})
    with pytest.raises(DataError, match=r"validation\.tsv:3: unknown label 'Spech'"):
        load_dcase_dataset(tmp_path)


def test_given_classes_and_custom_layout_from_config(tmp_path):
    layout = DcaseLayout(synthetic_tsv="meta/syn.tsv", synthetic_audio="wav/syn")
    _make_dataset(tmp_path, layout)
    cfg = from_dict(
        SedDataConfig,
        {"layout": {"synthetic_tsv": "meta/syn.tsv", "synthetic_audio": "wav/syn"},
         "classes": ["Speech", "Dog", "Cat", "Blender"], "splits": ["synthetic", "weak"]},
    )
    ds = load_dcase_dataset(tmp_path, cfg)
    assert ds.classes == ("Speech", "Dog", "Cat", "Blender")
    assert set(ds.splits) == {"synthetic", "weak"} and ds.durations is None
    assert ds.records("synthetic")[0].path == tmp_path / "wav/syn/1.wav"
    with pytest.raises(DataError, match="not loaded"):
        ds.records("validation")
    with pytest.raises(DataError, match=r"syn\.tsv:2: unknown label 'Dog'"):
        load_dcase_dataset(tmp_path, SedDataConfig(layout=layout, classes=("Cat",)))


def test_load_single_split(tmp_path):
    _make_dataset(tmp_path, missing=("Yv2.wav",))
    report = SkipReport()
    split = load_sed_split(tmp_path, "validation", SedDataConfig(on_error="skip"), classes=CLASSES, report=report)
    assert [r.filename for r in split.records] == ["Yv1.wav"]
    assert split.counts.listed == 2 and split.counts.kept == 1 and len(report) == 1


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"splits": ("synthetic", "strong")}, "unknown SED split"), ({"classes": ("Dog", "Dog")}, "repeats"),
     ({"on_error": "warn"}, "on_error")],
)
def test_config_validation(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        SedDataConfig(**kwargs)
    with pytest.raises(ConfigError, match="must not be empty"):
        DcaseLayout(weak_tsv="")


def test_infer_classes_is_sorted_union():
    strong = {"a": (Event(0, 1, "Speech"), Event(1, 2, "Alarm")), "b": ()}
    weak = {"w": frozenset({"Dog", "Alarm"})}
    assert infer_classes([strong], [weak]) == ("Alarm", "Dog", "Speech")
    assert infer_classes() == ()


# --------------------------------------------------------------------------- spaces for tabs
def test_a_space_separated_header_is_named(tmp_path):
    path = _write(tmp_path / "s.tsv", ["filename onset offset event_label", "a.wav 0 1 Dog"])
    with pytest.raises(DataError, match=r"s\.tsv:1: .*the columns are separated by spaces: separate them with tabs"):
        read_strong_tsv(path)


def test_a_file_name_with_spaces_is_not_taken_for_columns(tmp_path):
    path = _write(tmp_path / "s.tsv", [STRONG, "my clip.wav", "a b c d.wav\t1\t2\tDog", "one two three.wav"])
    assert read_strong_tsv(path) == {"my clip.wav": (), "a b c d.wav": (Event(1.0, 2.0, "Dog"),),
                                     "one two three.wav": ()}
    assert read_unlabeled_tsv(_write(tmp_path / "u.tsv", [UNLAB, "my clip.wav"])) == ["my clip.wav"]


# --------------------------------------------------------------------------- events past the end of their clip
def _wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate, subtype="PCM_16")
    return path


def test_an_event_past_the_end_of_its_audio_is_an_error(tmp_path):
    audio = tmp_path / "audio"
    _wav(audio / "a.wav", 10.0)
    path = _write(tmp_path / "s.tsv", [STRONG, "a.wav\t1\t2\tDog", "a.wav\t3\t25\tCat", "a.wav\t4\t10.005\tCat"])
    with pytest.raises(DataError, match=r"s\.tsv:3: offset 25 s lies past the end of clip 'a\.wav' "
                                        r"\(its audio lasts 10\.000 s\); fix the offset or the audio file"):
        read_strong_tsv(path, audio_dir=audio)
    # rounded times a few milliseconds past the end are fine
    fine = _write(tmp_path / "f.tsv", [STRONG, "a.wav\t4\t10.005\tCat"])
    assert read_strong_tsv(fine, audio_dir=audio) == {"a.wav": (Event(4.0, 10.005, "Cat"),)}
    # without the audio or a duration nothing is known about the end
    assert read_strong_tsv(path)["a.wav"][1] == Event(3.0, 25.0, "Cat")


def test_a_truncated_wav_is_as_long_as_the_samples_it_holds(tmp_path):
    audio = tmp_path / "audio"
    wav = _wav(audio / "cut.wav", 10.0)
    with open(wav, "r+b") as fh:  # cut in half, header unchanged
        fh.truncate(wav.stat().st_size // 2)
    path = _write(tmp_path / "s.tsv", [STRONG, "cut.wav\t1\t2\tDog", "cut.wav\t4\t8\tCat"])
    with pytest.raises(DataError, match=r"s\.tsv:3: offset 8 s lies past the end of clip 'cut\.wav' "
                                        r"\(its audio lasts 4\.99\d s\)"):
        read_strong_tsv(path, audio_dir=audio, durations={"cut.wav": 10.0})


def test_skip_mode_cuts_events_at_the_end_of_their_clip(tmp_path, caplog):
    audio = tmp_path / "audio"
    _wav(audio / "a.wav", 10.0)
    _wav(audio / "b.wav", 10.0)
    rows = [STRONG, "a.wav\t3\t25\tCat", "a.wav\t12\t14\tDog", "b.wav\t1\t9.5\tDog", "b.wav\t8\t12\tCat"]
    path = _write(tmp_path / "s.tsv", rows)
    report = SkipReport()
    with caplog.at_level(logging.WARNING, logger="audioadapt.data.dcase"):
        out = read_strong_tsv(path, audio_dir=audio, durations={"b.wav": 9.0}, on_error="skip", report=report)
    assert out == {"a.wav": (Event(3.0, 10.0, "Cat"),), "b.wav": (Event(1.0, 9.0, "Dog"), Event(8.0, 9.0, "Cat"))}
    assert [line for _, line, _ in report.skipped] == [3]  # starts after the end: skipped
    assert "cut 3 event(s) at their clip's end" in caplog.text
    assert "s.tsv:2: offset 25 s cut to the end of clip 'a.wav' (its audio lasts 10.000 s)" in caplog.text
    assert "s.tsv:4: offset 9.5 s cut to the end of clip 'b.wav' (its listed duration is 9.000 s)" in caplog.text


# --------------------------------------------------------------------------- the class list of dataset.json
def _declare(root: Path, classes) -> None:
    import json

    (root / "dataset.json").write_text(json.dumps({"generator": "audioadapt synth sed", "classes": classes}))


def test_dataset_json_classes_are_the_class_list(tmp_path):
    _make_dataset(tmp_path)
    _declare(tmp_path, ["Speech", "Dog", "Cat", "Blender"])
    ds = load_dcase_dataset(tmp_path)
    assert ds.classes == ("Speech", "Dog", "Cat", "Blender")
    assert ds.classes_from == str(tmp_path / "dataset.json")
    # data.classes wins over the declared list
    assert load_dcase_dataset(tmp_path, SedDataConfig(classes=CLASSES)).classes == CLASSES


@pytest.mark.parametrize("split, row, line", [("synthetic", "2.wav\t5\t6\tDog_Barking", 6),
                                              ("weak", "Yw4.wav\tDog,Unicorn", 5)])
def test_an_unknown_label_is_an_error_when_the_dataset_declares_its_classes(tmp_path, split, row, line):
    _make_dataset(tmp_path)
    _declare(tmp_path, list(CLASSES))
    tsv = tmp_path / DcaseLayout().tsv(split)
    tsv.write_text(tsv.read_text() + row + "\n")
    label = row.rsplit("\t", 1)[1].split(",")[-1]
    with pytest.raises(DataError) as info:
        load_dcase_dataset(tmp_path, SedDataConfig(check_audio=False))
    declared = tmp_path / "dataset.json"
    assert str(info.value) == (f"{tsv}:{line}: unknown label '{label}'; the classes (from {declared}) are Cat, Dog, "
                               "Speech: fix the label or the class list")
    # without a declared list the label would have made a class of its own
    (tmp_path / "dataset.json").unlink()
    assert label in load_dcase_dataset(tmp_path, SedDataConfig(check_audio=False)).classes


@pytest.mark.parametrize("text", ['{"classes": "Dog"}', '{"classes": ["Dog", "Dog"]}', '{"classes": []}', "{oops"])
def test_a_bad_dataset_json_is_named(tmp_path, text):
    _make_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(DataError, match=r"dataset\.json: "):
        load_dcase_dataset(tmp_path)


def test_clipped_events_are_counted_per_split(tmp_path):
    _make_dataset(tmp_path)
    _wav(tmp_path / "audio/train/synthetic/2.wav", 3.0)  # events up to 4 s
    with pytest.raises(DataError, match=r"synthetic\.tsv:4: offset 4 s lies past the end of clip '2\.wav'"):
        load_dcase_dataset(tmp_path)
    ds = load_dcase_dataset(tmp_path, SedDataConfig(on_error="skip"))
    assert ds.counts["synthetic"].clipped_events == 1 and ds.counts["synthetic"].skipped_rows == 0
    assert ds.records("synthetic")[1].events == (Event(1.0, 3.0, "Cat"), Event(2.0, 3.0, "Dog"))
    assert "synthetic: 3 of 3 clips, 1 event(s) cut at the clip's end" in ds.summary()
