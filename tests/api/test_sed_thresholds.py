"""Tuned class thresholds and score files with a tiny trained run: tune, predict, evaluate, guard the tuning split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audioadapt.api.sed import evaluate_sed_run
from audioadapt.api.sed_predict import predict_sed
from audioadapt.api.sed_thresholds import tune_sed_thresholds
from audioadapt.cli.main import main
from audioadapt.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(sed_run, tmp_path) -> Path:
    """A copy of the session's tiny trained run, so that tuning one test's run leaves the others' alone."""
    return Path(shutil.copytree(sed_run, tmp_path / "run"))


def test_tune_thresholds_writes_them_beside_the_checkpoint(run, capsys):
    assert main(["sed", "tune-thresholds", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "### Class thresholds tuned on synthetic_valid for event F1" in printed
    assert f"wrote {run / 'best.thresholds.json'}" in printed
    data = json.loads((run / "best.thresholds.json").read_text())
    classes = json.loads((run / "data.json").read_text())["classes"]
    assert sorted(data["thresholds"]) == sorted(classes)
    assert (data["split"], data["objective"], data["checkpoint"]) == ("synthetic_valid", "event", str(run / "best.pt"))
    tuning = data["tuning"]
    assert tuning["macro_f1_after"] >= tuning["macro_f1_before"]
    for name, row in tuning["per_class"].items():
        assert row["threshold"] == data["thresholds"][name]
        assert row["tuned"] == (row["n_ref"] > 0)
        assert row["threshold_before"] == 0.2  # the run's decode.threshold
    assert data["decode"]["median_filter_seconds"] == 0.45 and "threshold" not in data["decode"]
    assert main(["sed", "tune-thresholds", str(run), "--objective", "segment", "--checkpoint", "last"]) == 0
    assert json.loads((run / "last.thresholds.json").read_text())["objective"] == "segment"


def test_evaluation_uses_tuned_thresholds_and_refuses_their_split(run, capsys):
    tuned, result = tune_sed_thresholds(run)
    # the real-domain validation split: the tuned thresholds apply, and the report says where they came from
    report = evaluate_sed_run(run).to_dict()
    assert report["inputs"]["thresholds"] == {"source": "tuned", "split": "synthetic_valid", "objective": "event",
                                              "data_root": tuned.data_root, "file": str(run / "best.thresholds.json")}
    assert report["inputs"]["decode"]["class_thresholds"] == tuned.thresholds
    markdown = (run / "eval_validation.md").read_text()
    assert "| thresholds from | tuned on the synthetic_valid split for event F1" in markdown
    # the tuning split is refused, unless allowed; then the report says so and its F1 is the tuned one
    assert main(["sed", "evaluate", str(run), "--split", "synthetic_valid"]) == 2
    err = capsys.readouterr().err
    assert f"the class thresholds in {run / 'best.thresholds.json'} were tuned on the 'synthetic_valid' split" in err
    assert "--allow-tuned-split" in err and "--no-tuned-thresholds" in err
    assert main(["sed", "evaluate", str(run), "--split", "synthetic_valid", "--allow-tuned-split"]) == 0
    allowed = json.loads((run / "eval_synthetic_valid.json").read_text())
    assert allowed["inputs"]["thresholds"]["tuned_on_evaluated_split"] is True
    assert "tuned on this very split (synthetic_valid)" in (run / "eval_synthetic_valid.md").read_text()
    assert allowed["entries"]["event_macro_f1"] == pytest.approx(result.macro_after)
    # ignoring them (flag, or an override that sets the thresholds) is allowed on that split
    assert main(["sed", "evaluate", str(run), "--split", "synthetic_valid", "--no-tuned-thresholds"]) == 0
    plain = json.loads((run / "eval_synthetic_valid.json").read_text())
    assert plain["inputs"]["thresholds"] == {"source": "run config",
                                             "not_used": f"{run / 'best.thresholds.json'} (ignored on request)"}
    assert plain["entries"]["event_macro_f1"] == pytest.approx(result.macro_before)
    assert main(["sed", "evaluate", str(run), "--split", "synthetic_valid", "decode.threshold=0.3"]) == 0
    overridden = json.loads((run / "eval_synthetic_valid.json").read_text())
    assert overridden["inputs"]["thresholds"]["source"] == "override"
    assert overridden["inputs"]["decode"]["threshold"] == 0.3 and overridden["inputs"]["decode"]["class_thresholds"] \
        is None
    assert overridden["inputs"]["decode_overrides"] == ["decode.threshold=0.3"]
    assert "| overrides | `decode.threshold=0.3` |" in (run / "eval_synthetic_valid.md").read_text()


def test_prediction_uses_tuned_thresholds_unless_told_otherwise(run, sed_tiny_dataset, caplog):
    clips = [sed_tiny_dataset / "audio" / "validation" / f"validation_0000{i}.wav" for i in range(3)]
    before = predict_sed(run, clips)
    tuned, _ = tune_sed_thresholds(run)
    explicit = [f"decode.class_thresholds.{c}={t}" for c, t in tuned.thresholds.items()]
    with_tuned = predict_sed(run, clips)
    assert with_tuned == predict_sed(run, clips, overrides=explicit)
    assert predict_sed(run, clips, use_tuned_thresholds=False) == before
    # thresholds tuned for an earlier version of the checkpoint are not applied
    path = run / "best.thresholds.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "checkpoint_sha256": "0" * 64}))
    with caplog.at_level("WARNING"):
        assert predict_sed(run, clips) == before
    assert "it was tuned for an earlier version of" in caplog.text


def test_tuning_on_the_validation_split_must_be_asked_for_and_guards_it(run):
    tune_sed_thresholds(run, split="validation", objective="segment")
    with pytest.raises(ConfigError, match="tuned on the 'validation' split"):
        evaluate_sed_run(run)
    evaluate_sed_run(run, split="synthetic_valid")  # another split: allowed
    with pytest.raises(ConfigError, match="objective must be one of event, segment"):
        tune_sed_thresholds(run, objective="clip")


def test_run_score_files_evaluate_to_the_run_s_numbers(run, sed_tiny_dataset, capsys):
    """``evaluate RUN --scores DIR`` then ``evaluate --scores DIR --ref``: the same F1 and PSDS from the files alone."""
    scores = run.parent / "scores"
    assert main(["sed", "evaluate", str(run), "--scores", str(scores)]) == 0
    assert f"wrote 12 score file(s) to {scores}" in capsys.readouterr().out
    own = json.loads((run / "eval_validation.json").read_text())
    assert own["inputs"]["scores_dir"] == str(scores)
    assert own["results"]["psds"]["psds1"]["parameters"]["dtc"] == 0.7
    meta = sed_tiny_dataset / "metadata" / "validation"
    out = run.parent / "from_files.json"
    args = ["sed", "evaluate", "--scores", str(scores), "--ref", str(meta / "validation.tsv"), "--out", str(out),
            "decode.threshold=0.2"]
    durations = meta / "validation_durations.tsv"
    if durations.is_file():
        args += ["--durations", str(durations)]
    assert main(args) == 0
    files = json.loads(out.read_text())
    assert files["entries"] == pytest.approx(own["entries"], abs=1e-12, nan_ok=True)
    for kind in ("event", "segment", "clip"):
        assert files["results"][kind]["class_wise"] == own["results"][kind]["class_wise"], kind
    assert files["results"]["psds"] == own["results"]["psds"]
    # writing into a folder that holds other files is refused before predicting
    assert main(["sed", "evaluate", str(run), "--split", "synthetic_valid", "--scores", str(scores)]) == 2
    assert "the score folder holds 12 other file(s)" in capsys.readouterr().err


def test_command_line_combinations_are_checked(run, tmp_path, capsys):
    assert main(["sed", "evaluate", str(run), "decode.treshold=0.1"]) == 2
    assert "unknown config key 'decode.treshold'" in capsys.readouterr().err
    assert main(["sed", "evaluate", "--pred", "p.tsv", "--ref", "r.tsv", "decode.threshold=0.1"]) == 2
    assert "apply to RUN_DIR or --scores, not to --pred" in capsys.readouterr().err
    assert main(["sed", "evaluate", "--scores", str(tmp_path), "--ref", "r.tsv", "--missing-pred", "empty"]) == 2
    assert "--missing-pred only apply to --pred" in capsys.readouterr().err
    assert main(["sed", "evaluate", "--scores", str(tmp_path), "--pred", "p.tsv", "--ref", "r.tsv"]) == 2
    assert "either --pred PRED.tsv or --scores DIR" in capsys.readouterr().err
    assert main(["sed", "evaluate", "--pred", "p.tsv", "--ref", "r.tsv", "--allow-tuned-split"]) == 2
    assert "--allow-tuned-split only apply to RUN_DIR" in capsys.readouterr().err
