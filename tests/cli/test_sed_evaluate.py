"""``audioadapt sed evaluate`` end to end on generated TSV files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audioadapt.cli.main import main
from audioadapt.data.dcase import write_durations_tsv, write_strong_tsv
from audioadapt.data.manifest import Event as E

REFERENCE = {
    "a.wav": [E(0.5, 2.0, "Speech"), E(3.0, 6.0, "Dog")],
    "b.wav": [],
    "c.wav": [E(1.0, 9.0, "Blender")],
}
PREDICTED = {
    "a.wav": [E(0.6, 2.1, "Speech"), E(7.0, 8.0, "Dog")],
    "b.wav": [E(1.0, 2.0, "Speech")],
    "c.wav": [],  # an empty-event row: no detections
}


@pytest.fixture
def files(tmp_path):
    ref = write_strong_tsv(tmp_path / "ref.tsv", REFERENCE)
    pred = write_strong_tsv(tmp_path / "pred.tsv", PREDICTED)
    durations = write_durations_tsv(tmp_path / "durations.tsv", {name: 10.0 for name in REFERENCE})
    return tmp_path, ref, pred, durations


def test_prints_the_table_and_writes_json_and_markdown(files, capsys):
    tmp, ref, pred, _ = files
    out = tmp / "res" / "results.json"
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # By hand: Speech 1 TP of 1 reference, 2 detections -> F1 2/3; Dog and Blender 0 -> macro 2/9
    assert "| Speech | 1 | 66.67 | 50.00 | 100.00 |" in printed
    assert "| macro |" in printed and "| micro |" in printed
    data = json.loads(out.read_text())
    assert data["entries"]["event_macro_f1"] == pytest.approx(2 / 9)
    assert data["results"]["event"]["class_wise"]["Dog"]["fp"] == 1
    assert data["inputs"]["reference"] == str(ref)
    assert "numpy" in data["versions"]
    assert out.with_suffix(".md").read_text().startswith("## SED evaluation")


def test_durations_change_the_segment_metric(files, capsys):
    _, ref, pred, durations = files
    args = ["sed", "evaluate", "--pred", str(pred), "--ref", str(ref)]
    assert main(args + ["--out", str(files[0] / "plain.json")]) == 0
    assert main(args + ["--durations", str(durations), "--out", str(files[0] / "dur.json")]) == 0
    plain = json.loads((files[0] / "plain.json").read_text())["results"]["segment"]
    dur = json.loads((files[0] / "dur.json").read_text())["results"]["segment"]
    # Without durations a file lasts until its last reference or predicted offset:
    # a.wav 8 s (the predicted Dog), b.wav 2 s, c.wav 9 s.
    assert plain["info"]["evaluated_seconds"] == pytest.approx(8.0 + 2.0 + 9.0)
    assert dur["info"]["evaluated_seconds"] == pytest.approx(30.0)


def test_classes_option_restricts_and_orders_the_table(files, capsys):
    tmp, ref, pred, _ = files
    code = main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--classes", "Speech,Dog,Blender,Cat"])
    assert code == 0
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[-6:] == ["Speech", "Dog", "Blender", "Cat", "macro", "micro"]


def test_missing_file_is_a_clean_error(files, capsys):
    tmp, ref, _, _ = files
    missing = tmp / "nope.tsv"
    assert main(["sed", "evaluate", "--pred", str(missing), "--ref", str(ref)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err


def test_malformed_row_names_file_and_line(files, capsys):
    tmp, ref, _, _ = files
    bad = tmp / "bad.tsv"
    bad.write_text("filename\tonset\toffset\tevent_label\na.wav\t0.5\t1.0\tSpeech\na.wav\t0.5\tsoon\tDog\n")
    assert main(["sed", "evaluate", "--pred", str(bad), "--ref", str(ref)]) == 2
    assert f"{bad}:3" in capsys.readouterr().err


def test_unknown_label_with_classes_is_a_clean_error(files, capsys):
    _, ref, pred, _ = files
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--classes", "Speech,Dog"]) == 2
    assert "Blender" in capsys.readouterr().err


def test_predictions_for_unknown_files(files, capsys):
    tmp, ref, _, _ = files
    pred = write_strong_tsv(tmp / "extra.tsv", {**PREDICTED, "z.wav": [E(0.0, 1.0, "Dog")]})
    args = ["sed", "evaluate", "--pred", str(pred), "--ref", str(ref)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(pred) in err and "z.wav" in err
    assert main(args + ["--extra-pred-files", "false_positive", "--out", str(tmp / "fp.json")]) == 0
    data = json.loads((tmp / "fp.json").read_text())
    assert data["results"]["event"]["class_wise"]["Dog"]["fp"] == 2


def test_missing_durations_are_a_clean_error(files, capsys):
    tmp, ref, pred, _ = files
    short = write_durations_tsv(tmp / "short.tsv", {"a.wav": 10.0})
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--durations", str(short)]) == 2
    assert str(short) in capsys.readouterr().err


def test_bad_classes_argument_is_a_usage_error(files, capsys):
    _, ref, pred, _ = files
    with pytest.raises(SystemExit) as exc:
        main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--classes", "Speech,,Dog"])
    assert exc.value.code == 2


def test_unknown_predicted_label_without_classes_names_file_and_line(files, capsys):
    tmp, ref, _, _ = files
    pred = tmp / "unicorn.tsv"
    pred.write_text("filename\tonset\toffset\tevent_label\na.wav\t0.5\t1.0\tSpeech\nb.wav\t1.0\t2.0\tUnicorn\n"
                    "c.wav\t\t\t\n")
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref)]) == 2
    err = capsys.readouterr().err
    assert err == (f"audioadapt: error: {pred}:3: unknown label 'Unicorn'; the classes (from the reference {ref}; "
                   "list every class with --classes) are Blender, Dog, Speech: fix the label or the class list\n")
    # with --classes naming it, the label is known and is scored
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref),
                 "--classes", "Speech,Dog,Blender,Unicorn"]) == 0


def test_unknown_reference_label_with_classes_names_file_and_line(files, capsys):
    _, ref, pred, _ = files
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--classes", "Speech,Dog,Cat"]) == 2
    assert f"{ref}:5: unknown label 'Blender'; the classes (from --classes) are Cat, Dog, Speech" \
        in capsys.readouterr().err


def test_reference_files_missing_from_the_predictions(files, capsys):
    tmp, ref, _, _ = files
    partial = write_strong_tsv(tmp / "partial.tsv", {"a.wav": PREDICTED["a.wav"]})
    args = ["sed", "evaluate", "--pred", str(partial), "--ref", str(ref)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{partial}: 2 of the 3 reference file(s) have no row here: 'b.wav', 'c.wav'" in err
    assert "--missing-pred empty" in err
    # scored as without detections when asked: the same as empty-event rows for them
    assert main(args + ["--missing-pred", "empty", "--out", str(tmp / "empty.json")]) == 0
    rows = write_strong_tsv(tmp / "rows.tsv", {"a.wav": PREDICTED["a.wav"], "b.wav": [], "c.wav": []})
    assert main(["sed", "evaluate", "--pred", str(rows), "--ref", str(ref), "--out", str(tmp / "rows.json")]) == 0
    empty, explicit = (json.loads((tmp / f"{n}.json").read_text()) for n in ("empty", "rows"))
    assert empty["entries"] == explicit["entries"] and empty["results"]["event"]["class_wise"]["Blender"]["fn"] == 1
    assert empty["inputs"]["reference_files_not_predicted"] == 2
    assert explicit["inputs"]["reference_files_not_predicted"] == 0


def test_missing_pred_only_applies_to_files(files, tmp_path, capsys):
    assert main(["sed", "evaluate", str(tmp_path), "--missing-pred", "empty"]) == 2
    assert "--missing-pred cannot be combined with RUN_DIR" in capsys.readouterr().err


# -- outputs that cannot be written: one line naming the path, before any work --------------------
def read_only(monkeypatch, folder):
    """``folder`` not writable: chmod where permissions apply, else (root) as the permission check sees it."""
    import os

    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    real = os.access
    monkeypatch.setattr("audioadapt.cli.outputs.os.access",
                        lambda path, mode: False if Path(path) == folder else real(path, mode))


def test_read_only_out_folder_is_refused_before_evaluating(files, monkeypatch, capsys):
    tmp, ref, pred, _ = files
    locked = tmp / "locked"
    locked.mkdir()
    read_only(monkeypatch, locked)
    monkeypatch.setattr("audioadapt.evaluation.api.evaluate_sed_files", pytest.fail)  # must not be reached
    try:
        assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref),
                     "--out", str(locked / "r.json")]) == 2
    finally:
        locked.chmod(0o755)
    assert capsys.readouterr().err == (f"audioadapt: error: {locked / 'r.json'}: cannot write --out: "
                                       f"folder {locked} is not writable; choose another place\n")


def test_out_below_a_file_is_refused(files, capsys):
    tmp, ref, pred, _ = files
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(ref / "r.json")]) == 2
    assert f"{ref / 'r.json'}: cannot write --out: {ref} is a file, not a folder" in capsys.readouterr().err


def test_a_failing_write_is_one_line(files, monkeypatch, capsys):
    tmp, ref, pred, _ = files
    out = tmp / "r.json"

    def denied(report, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("audioadapt.evaluation.report.write_report", denied)
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"audioadapt: error: {out}: Permission denied\n"


def test_read_only_run_folder_is_refused_before_predicting(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run.mkdir()
    read_only(monkeypatch, run)
    monkeypatch.setattr("audioadapt.api.sed.evaluate_sed_run", pytest.fail)
    try:
        assert main(["sed", "evaluate", str(run)]) == 2
    finally:
        run.chmod(0o755)
    assert f"{run}: cannot write the evaluation report into the run: folder {run} is not writable" \
        in capsys.readouterr().err


def test_markdown_out_would_overwrite_the_json(files, capsys):
    tmp, ref, pred, _ = files
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp / "r.md")]) == 2
    assert f"{tmp / 'r.md'}: the Markdown report would overwrite the JSON report" in capsys.readouterr().err


def test_a_reference_without_events_does_not_restrict_the_labels(tmp_path, capsys):
    ref = write_strong_tsv(tmp_path / "ref.tsv", {"a.wav": [], "b.wav": []})
    pred = write_strong_tsv(tmp_path / "pred.tsv", {"a.wav": [E(0.0, 1.0, "Dog")], "b.wav": []})
    assert main(["sed", "evaluate", "--pred", str(pred), "--ref", str(ref)]) == 0
    assert "| Dog | 0 |" in capsys.readouterr().out


# --------------------------------------------------------------------------- a run on another dataset
#: Shrinks sed_baseline to seconds (as the training tests do).
BASELINE_SMALL = ["features.hop_length=1380", "features.n_mels=32", "model.crnn.filters=[8,16]",
                  "model.crnn.kernel_sizes=[3,3]", "model.crnn.pooling=[[2,4],[2,8]]", "model.crnn.rnn_hidden=16",
                  "model.crnn.rnn_layers=1", "train.device=cpu", "train.progress_bar=false",
                  "train.tensorboard=false", "sampler.phase1.batch_sizes.synthetic=4",
                  "sampler.phase1.batch_sizes.weak=4",
                  "cache.num_workers=0", "cache.progress=false", "psds.enabled=false"]


@pytest.fixture(scope="module")
def baseline_run(sed_tiny_dataset, tmp_path_factory) -> Path:
    """A two-step run of the shrunk baseline on the session's tiny dataset (seed 3)."""
    run = tmp_path_factory.mktemp("eval_other") / "run"
    assert main(["sed", "train", "sed_baseline", "--data", str(sed_tiny_dataset), "--out", str(run),
                 "--fast-dev-run", "2", *BASELINE_SMALL]) == 0
    return run


@pytest.fixture(scope="module")
def shifted(sed_tiny_dataset, tmp_path_factory) -> Path:
    """The tiny dataset's validation sources (split seed 3) rendered again: rendering seed 4, lower SNRs."""
    import dataclasses

    from audioadapt.data.synthetic import SedSynthConfig, SizeOverrides, generate_sed_dataset

    base = SedSynthConfig(size="tiny", seed=4, split_seed=3, sizes=SizeOverrides(synthetic=0, weak=0, unlabeled=0))
    cfg = dataclasses.replace(base, real_domain=dataclasses.replace(base.real_domain, snr_db=(-6.0, 12.0)))
    root = tmp_path_factory.mktemp("data") / "shifted"
    generate_sed_dataset(root, cfg, workers=1, progress=False)
    return root


def test_a_run_is_scored_on_a_second_validation_set_of_the_same_sources(sed_tiny_dataset, baseline_run, shifted,
                                                                       capsys):
    run = baseline_run
    assert main(["sed", "evaluate", str(run)]) == 0
    own = json.loads((run / "eval_validation.json").read_text())
    capsys.readouterr()
    assert main(["sed", "evaluate", str(run), "--data", str(shifted)]) == 0
    printed = capsys.readouterr().out
    assert f"Data: `{shifted.resolve()}` (validation split, 12 clips)" in printed
    assert f"wrote {run / 'eval_validation_shifted.json'}" in printed
    report = json.loads((run / "eval_validation_shifted.json").read_text())
    inputs = report["inputs"]
    assert inputs["data_root"] == str(shifted.resolve()) and inputs["tag"] == "shifted"
    assert inputs["trained_on"] == str(sed_tiny_dataset.resolve())
    assert inputs["dataset"] == {"seed": 4, "split_seed": 3}
    assert (run / "predictions_validation_shifted.tsv").is_file()
    # the run's own report is kept
    assert json.loads((run / "eval_validation.json").read_text()) == own
    assert own["inputs"]["data_root"] == str(sed_tiny_dataset.resolve()) and own["inputs"]["tag"] is None
    assert main(["sed", "evaluate", str(run), "--data", str(shifted), "--tag", "snr_low"]) == 0
    assert (run / "eval_validation_snr_low.md").read_text().startswith("## SED evaluation")


def test_another_class_list_or_a_bad_tag_is_a_clean_error(baseline_run, shifted, tmp_path, capsys):
    import shutil

    other = Path(shutil.copytree(shifted, tmp_path / "fewer"))
    meta_path = other / "dataset.json"
    meta = json.loads(meta_path.read_text())
    dropped = meta["classes"].pop()
    meta["classes"].append("kettle")
    meta_path.write_text(json.dumps(meta))
    assert main(["sed", "evaluate", str(baseline_run), "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"{meta_path}: the dataset's class list differs from the one of the checkpoint" in err
    assert f"lacks {dropped}; adds kettle" in err
    assert main(["sed", "evaluate", str(baseline_run), "--data", str(shifted), "--tag", "../up"]) == 2
    assert "evaluation tag '../up'" in capsys.readouterr().err
    assert main(["sed", "evaluate", "--pred", "p.tsv", "--ref", "r.tsv", "--tag", "x"]) == 2
    assert "--tag only apply to RUN_DIR" in capsys.readouterr().err


def test_held_out_recordings_seen_in_training_are_counted_and_logged(tmp_path, caplog):
    from audioadapt.api.sed import _held_out_check

    def dataset(name: str, split_seed: int, sides: dict[str, list[str]]) -> Path:
        root = tmp_path / name
        root.mkdir()
        banks = {side: {"group_ids": ids} for side, ids in sides.items()}
        (root / "dataset.json").write_text(json.dumps({"seed": 0, "split_seed": split_seed, "banks": banks}))
        return root

    trained = dataset("trained", 1, {"synthetic": ["a", "b"], "real_train": ["c"], "validation": ["d", "e"]})
    same = dataset("same", 1, {"validation": ["d", "e"]})
    leaky = dataset("leaky", 2, {"validation": ["c", "d"]})
    assert _held_out_check(same, trained) == {"seed": 0, "split_seed": 1, "validation_groups_seen_in_training": 0}
    with caplog.at_level("WARNING", logger="audioadapt.api.sed"):
        assert _held_out_check(leaky, trained)["validation_groups_seen_in_training"] == 1
    assert "1 of the 2 source-recording groups" in caplog.text and "split seed (1)" in caplog.text
    assert _held_out_check(tmp_path, trained) == {}  # no dataset.json: nothing to tell
