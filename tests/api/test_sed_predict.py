"""``predict_sed`` / ``audioadapt sed predict`` with a tiny trained run on the tiny generated dataset."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from audioadapt.api.sed import evaluate_sed_run, load_sed_run, predicting_model, train_sed
from audioadapt.api.sed_decode import RunDecode
from audioadapt.api.sed_predict import SedPrediction, plot_names, predict_sed
from audioadapt.audio.io import audio_info, load_audio, write_audio
from audioadapt.cli.main import main
from audioadapt.data.dcase import read_strong_tsv
from audioadapt.data.manifest import Event
from audioadapt.errors import AudioError, DataError
from audioadapt.evaluation.decoding import DecodeConfig
from audioadapt.features.frames import FrameGrid
from audioadapt.training.sed_files import WindowPlan, score_files

#: A 2-block CRNN on 32 x 160 inputs, 4 output frames per second, trained for seconds;
#: a low threshold so that the barely trained model detects events.
TINY = ["features.hop_length=1380", "features.n_mels=32", "model.crnn.filters=[8,16]",
        "model.crnn.kernel_sizes=[3,3]", "model.crnn.pooling=[[2,4],[2,8]]", "model.crnn.rnn_hidden=16",
        "model.crnn.rnn_layers=1", "train.lr=1e-2", "train.epochs=2", "train.device=cpu",
        "train.progress_bar=false", "train.tensorboard=false", "sampler.phase1.batch_sizes.synthetic=4",
        "sampler.phase1.batch_sizes.weak=4", "sampler.phase1.steps_per_epoch=3", "cache.num_workers=0",
        "cache.progress=false", "method.predict.batch_size=16", "decode.threshold=0.2"]
SR = 22050

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(sed_tiny_dataset, tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("sed_predict") / "run"
        train_sed("sed_baseline", TINY, data_root=sed_tiny_dataset, run_dir=run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


@pytest.fixture(scope="module")
def validation(sed_tiny_dataset) -> Path:
    return sed_tiny_dataset / "audio" / "validation"


@pytest.fixture(scope="module")
def odd(validation, tmp_path_factory) -> Path:
    """``long.wav`` (25 s: two clips and half of one), ``short.wav`` (3 s), ``sub/window2.wav``
    (the long file's second model window on its own) and a text file named ``.wav``."""
    folder = tmp_path_factory.mktemp("odd")
    a = load_audio(validation / "validation_00000.wav", SR)
    b = load_audio(validation / "validation_00001.wav", SR)
    long = np.concatenate([a, b, a[: 5 * SR]])
    write_audio(folder / "long.wav", long, SR)
    write_audio(folder / "short.wav", a[: 3 * SR], SR)
    step = 39 * 4 * 1380  # whole output frames in 10 s (see WindowPlan)
    write_audio(folder / "sub" / "window2.wav", long[step: step + 10 * SR], SR)
    (folder / "text").mkdir()
    (folder / "text" / "notes.wav").write_text("not audio\n")
    return folder


def fake_prediction(events: dict[str, list[Event]]) -> SedPrediction:
    """What ``predict_sed_run`` returns, for command-line tests that do not predict."""
    return SedPrediction(events, Path("run/best.pt"), RunDecode(DecodeConfig()), 0.0625)


def within(events: list[Event], duration: float) -> bool:
    return all(0 <= e.onset < e.offset <= duration + 1e-9 for e in events)


def rounded(events) -> list[tuple[float, float, str]]:
    return [(round(e.onset, 3), round(e.offset, 3), e.label) for e in events]


def test_window_plan_starts_every_window_on_the_output_grid():
    from audioadapt.features.config import FeatureConfig

    features = FeatureConfig(hop_length=1380, n_mels=32)
    grid = FrameGrid.from_features(features, (2, 2))
    plan = WindowPlan.from_features(features, grid)
    assert (plan.clip_samples, plan.step_frames, plan.step_samples) == (220500, 39, 39 * 5520)
    assert [len(plan.windows(np.zeros(n, np.float32))) for n in (100, 220500, 220501, 220500 + 215280 + 1)] == \
        [1, 1, 2, 3]
    assert all(len(w) == 220500 for w in plan.windows(np.zeros(500000, np.float32)))
    joined = plan.stitch([np.full(40, 0), np.full(40, 1), np.full(40, 2)], 39)
    assert len(joined) == 39 + 39 + 40 and joined[38] == 0 and joined[39] == 1 and joined[-1] == 2
    free = WindowPlan.from_features(FeatureConfig(clip_seconds=None), grid)
    assert len(free.windows(np.zeros(12345, np.float32))[0]) == 12345


def test_folder_gives_the_events_of_the_run_evaluation(run, validation):
    events = predict_sed(run, [validation])
    assert list(events) == sorted(p.name for p in validation.glob("*.wav"))
    assert sum(map(len, events.values())) > 0
    for name, found in events.items():
        assert within(found, audio_info(validation / name).duration)
    # 10 s clips are fed to the model exactly as evaluation does
    evaluate_sed_run(run)
    expected = read_strong_tsv(run / "predictions_validation.tsv")
    assert {k: rounded(v) for k, v in events.items()} == {k: rounded(v) for k, v in expected.items()}


def test_list_file_and_single_file_inputs(run, validation, odd, tmp_path):
    listing = odd / "files.lst"
    listing.write_text(f"# clips\nshort.wav\n{validation / 'validation_00003.wav'}\n")
    events = predict_sed(run, [listing, validation / "validation_00004.wav"], checkpoint="last", batch_size=1)
    assert list(events) == ["short.wav", "validation_00003.wav", "validation_00004.wav"]
    again = predict_sed(run, [odd / "short.wav", validation / "validation_00003.wav",
                              validation / "validation_00004.wav"], checkpoint="last")
    assert again == events  # batching does not change the result


def test_long_and_short_files_are_scored_over_their_whole_length(run, odd):
    events = predict_sed(run, [odd / "long.wav", odd / "short.wav"])
    assert within(events["long.wav"], 25.0) and within(events["short.wav"], 3.0)
    assert max(e.offset for e in events["long.wav"]) > 10.0
    ckpt, cfg, _ = load_sed_run(run)
    model, normalizer = predicting_model(ckpt, cfg)
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    files = {"long": odd / "long.wav", "second": odd / "sub" / "window2.wav", "short": odd / "short.wav"}
    scores = {s.name: s for s in score_files(model, normalizer, files, ckpt["meta"]["classes"], cfg.features, grid,
                                             cfg.method.predict.heads, 4)}
    long = scores["long"]
    assert long.duration == pytest.approx(25.0) and long.frame.shape == (100, 10)
    assert long.features.shape == (grid.num_input_frames(25 * SR), 32)
    # the windows are stitched on the file's frame grid: window 2 starts at output frame 39
    np.testing.assert_allclose(long.frame[39:78], scores["second"].frame[:39], atol=1e-5)
    assert scores["short"].frame.shape == (12, 10) and scores["short"].duration == pytest.approx(3.0)


def test_plots_are_written_one_per_file_with_unique_names(run, validation, odd, tmp_path):
    plots = tmp_path / "plots"
    files = [validation / "validation_00000.wav", odd / "long.wav", odd / "short.wav"]
    predict_sed(run, files, plot_dir=plots)
    written = sorted(p.name for p in plots.iterdir())
    assert written == ["long.png", "short.png", "validation_00000.png"]
    for name in written:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_names([Path("a/x.wav"), Path("b/x.flac"), Path("x.wav"), Path("y.wav")]) == \
        ["x.png", "x-2.png", "x-3.png", "y.png"]


def test_unusable_files_are_named_in_the_error(run, odd, tmp_path):
    with pytest.raises(AudioError, match="cannot decode audio") as err:
        predict_sed(run, [odd / "short.wav", odd / "text" / "notes.wav"])
    assert err.value.path == odd / "text" / "notes.wav"
    with pytest.raises(DataError, match="no such audio file") as err:
        predict_sed(run, [tmp_path / "gone.wav"])
    assert err.value.path == tmp_path / "gone.wav"


# -- command line ---------------------------------------------------------------------------
def test_cli_writes_tsv_and_plots(run, odd, tmp_path, capsys):
    out, plots = tmp_path / "events.tsv", tmp_path / "plots"
    assert main(["sed", "predict", str(run), str(odd / "long.wav"), str(odd / "sub"), "--out", str(out),
                "--plots", str(plots), "--batch-size", "2"]) == 0
    assert "to " + str(out) in capsys.readouterr().out
    assert out.read_text().startswith("filename\tonset\toffset\tevent_label\n")
    table = read_strong_tsv(out)
    assert list(table) == ["long.wav", "window2.wav"]
    assert all(within(list(v), 25.0) for v in table.values())
    assert sorted(p.name for p in plots.glob("*.png")) == ["long.png", "window2.png"]


def test_cli_prints_tsv_with_empty_event_rows(run, odd, tmp_path, capsys, monkeypatch):
    assert main(["sed", "predict", str(run), str(odd / "short.wav")]) == 0
    printed = tmp_path / "printed.tsv"
    printed.write_text(capsys.readouterr().out)
    assert list(read_strong_tsv(printed)) == ["short.wav"]

    monkeypatch.setattr("audioadapt.api.sed_predict.predict_sed_run",
                        lambda *a, **k: fake_prediction({"quiet.wav": [], "x.wav": [Event(0.5, 1.25, "hum")]}))
    assert main(["sed", "predict", str(run), str(odd / "short.wav")]) == 0
    assert capsys.readouterr().out == "filename\tonset\toffset\tevent_label\nquiet.wav\t\t\t\n" \
                                      "x.wav\t0.500\t1.250\thum\n"


def test_cli_errors_exit_with_a_message(run, odd, tmp_path, capsys):
    assert main(["sed", "predict", str(run), str(odd / "text")]) == 2
    assert f"{odd / 'text' / 'notes.wav'}: cannot decode audio" in capsys.readouterr().err
    assert main(["sed", "predict", str(run), str(tmp_path / "gone.wav")]) == 2
    assert f"{tmp_path / 'gone.wav'}: no such audio file" in capsys.readouterr().err
    assert main(["sed", "predict", str(tmp_path / "norun"), str(odd / "short.wav")]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert main(["sed", "predict", str(run), str(odd / "short.wav"), "--batch-size", "0"]) == 2
    assert "batch size must be >= 1" in capsys.readouterr().err


def test_cli_outputs_that_cannot_be_written_are_refused_before_predicting(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("audioadapt.api.sed_predict.predict_sed_run", pytest.fail)  # must not be reached
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    run, wav = str(tmp_path / "run"), str(tmp_path / "x.wav")
    assert main(["sed", "predict", run, wav, "--plots", str(a_file)]) == 2
    assert capsys.readouterr().err == f"audioadapt: error: {a_file}: cannot write --plots: this is a file, " \
                                      "not a folder\n"
    assert main(["sed", "predict", run, wav, "--out", str(a_file / "events.tsv")]) == 2
    assert f"{a_file / 'events.tsv'}: cannot write --out: {a_file} is a file, not a folder" \
        in capsys.readouterr().err
    real = os.access
    monkeypatch.setattr("audioadapt.cli.outputs.os.access",
                        lambda path, mode: False if Path(path) == tmp_path else real(path, mode))
    assert main(["sed", "predict", run, wav, "--out", str(tmp_path / "events.tsv")]) == 2
    assert f"folder {tmp_path} is not writable" in capsys.readouterr().err


def test_cli_write_failures_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("audioadapt.api.sed_predict.predict_sed_run", lambda *a, **k: fake_prediction({"x.wav": []}))

    def full(path, events):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("audioadapt.data.dcase.write_strong_tsv", full)
    out = tmp_path / "events.tsv"
    assert main(["sed", "predict", str(tmp_path / "run"), "x.wav", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"audioadapt: error: {out}: No space left on device\n"


# -- score files, decode overrides and the record of how events were made ---------------------------------------
def test_cli_writes_score_files_and_a_record_of_the_settings(run, validation, tmp_path, capsys):
    from audioadapt.evaluation.decoding import decode_timed_scores
    from audioadapt.evaluation.score_files import read_score_folder

    out, scores_dir = tmp_path / "events.tsv", tmp_path / "scores"
    files = [str(validation / "validation_00000.wav"), str(validation / "validation_00001.wav")]
    assert main(["sed", "predict", str(run), *files, "--out", str(out), "--scores", str(scores_dir),
                 "decode.median_filter_seconds=0.2"]) == 0
    printed = capsys.readouterr().out
    assert f"(settings in {tmp_path / 'events.json'})" in printed
    assert f"wrote 2 score file(s) to {scores_dir}" in printed
    record = json.loads((tmp_path / "events.json").read_text())
    assert record["decode_overrides"] == ["decode.median_filter_seconds=0.2"]
    assert record["decode"]["median_filter_seconds"] == 0.2 and record["decode"]["median_filter_frames"] == 1
    assert record["thresholds"] == {"source": "run config"} and record["score_files"] == 2
    assert record["checkpoint"] == str(run / "best.pt") and record["files"] == 2
    # the score files decode, at the run's threshold, to the events written
    found = read_score_folder(scores_dir)
    assert sorted(found.scores) == ["validation_00000", "validation_00001"]
    events = read_strong_tsv(out)
    for key in found.scores:
        again = decode_timed_scores(found.scores[key], found.timestamps[key], found.classes,
                                    DecodeConfig(threshold=0.2, median_filter_seconds=0.0))
        assert rounded(again) == rounded(events[f"{key}.wav"])
    assert found.timestamps["validation_00000"][-1] == pytest.approx(audio_info(files[0]).duration)


def test_decode_overrides_change_the_events_and_bad_ones_are_refused(run, validation, capsys, monkeypatch):
    clip = validation / "validation_00000.wav"
    default = predict_sed(run, [clip])
    assert predict_sed(run, [clip], overrides=["decode.threshold=0.2"]) == default  # the run's own value
    assert sum(map(len, predict_sed(run, [clip], overrides=["decode.threshold=0.999"]).values())) == 0
    classes = load_sed_run(run)[0]["meta"]["classes"]
    every = predict_sed(run, [clip], overrides=[f"decode.class_thresholds.{c}=0.999" for c in classes])
    assert sum(map(len, every.values())) == 0
    monkeypatch.setattr("audioadapt.training.sed_files.score_files", pytest.fail)  # refused before predicting
    assert main(["sed", "predict", str(run), str(clip), "decode.treshold=0.3"]) == 2
    assert "unknown config key 'decode.treshold' in override 'decode.treshold=0.3'. Did you mean 'threshold'?" \
        in capsys.readouterr().err
    assert main(["sed", "predict", str(run), str(clip), "train.lr=0.1"]) == 2
    assert "override 'train.lr=0.1': only decode.* settings can be changed here" in capsys.readouterr().err
    assert main(["sed", "predict", str(run), "decode.threshold=0.3"]) == 2
    assert "give at least one AUDIO file" in capsys.readouterr().err


# -- torch.compile ------------------------------------------------------------------------------
def _with_compile(cfg, value: bool):
    import dataclasses

    method = dataclasses.replace(cfg.method, predict=dataclasses.replace(cfg.method.predict, compile=value))
    return dataclasses.replace(cfg, method=method)


def test_compile_reaches_the_network_from_the_flag_the_config_and_the_system(run, odd, capsys, monkeypatch):
    import audioadapt
    from audioadapt.api.sed import open_sed_run
    from audioadapt.training import sed_predict

    seen: list[bool] = []
    monkeypatch.setattr(sed_predict, "inference_model", lambda model, compile=False: seen.append(compile) or model)
    short = str(odd / "short.wav")
    assert main(["sed", "predict", str(run), short]) == 0
    assert main(["sed", "predict", str(run), short, "--compile"]) == 0
    assert seen == [False, True]  # the run's method.predict.compile (false), then the flag
    capsys.readouterr()
    det = audioadapt.load(run)
    assert det.compile is False
    det.compile = True
    det.scores(odd / "short.wav")
    assert seen[-1] is True
    opened = open_sed_run(run)  # sed evaluate's path
    _, dataset, _ = opened.split("validation")
    opened.cfg = _with_compile(opened.cfg, True)
    opened.predict(dataset)
    assert seen[-1] is True


@pytest.mark.slow  # inductor compiles for 30-60 s with an empty cache on a busy 2-core machine
def test_compiled_and_eager_predictions_agree(run, odd, monkeypatch):
    import torch
    from torch._dynamo.utils import counters

    ckpt, cfg, _ = load_sed_run(run)
    model, normalizer = predicting_model(ckpt, cfg)
    grid = FrameGrid.from_features(cfg.features, cfg.model.crnn.time_pooling)
    files = {"long": odd / "long.wav", "short": odd / "short.wav"}  # 3 + 1 windows: one batch, one shape

    def scores(compile: bool) -> dict:
        return {s.name: s.frame for s in score_files(model, normalizer, files, ckpt["meta"]["classes"], cfg.features,
                                                     grid, cfg.method.predict.heads, 16, compile=compile)}

    eager = scores(False)
    torch._dynamo.reset()
    counters.clear()
    wrapped = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda *a, **k: wrapped.append(a[0]) or real_compile(*a, **k))
    try:
        compiled = scores(True)
        assert wrapped == [model] and counters["stats"]["unique_graphs"] > 0  # dynamo captured the network
    finally:
        torch._dynamo.reset()
    assert compiled.keys() == eager.keys()
    for name in eager:
        np.testing.assert_allclose(compiled[name], eager[name], rtol=1e-4, atol=1e-6, err_msg=name)
