"""metrics.csv survives interruptions; running means; progress text; TensorBoard scalars."""

from __future__ import annotations

import pytest

from audioadapt.errors import DataError
from audioadapt.training.logging import CsvLogger, RunLogger, RunningMean, format_logs, read_metrics


def _row(epoch, **values):
    return {"phase": "one", "epoch": epoch, "global_epoch": epoch, "step": 10 * epoch, **values}


def test_new_columns_widen_the_file_and_floats_read_back_exactly(tmp_path):
    path = tmp_path / "metrics.csv"
    log = CsvLogger(path)
    log.log(_row(1, **{"train/loss": 0.1 + 0.2}))
    log.log(_row(2, **{"train/loss": 1 / 3, "val/f1": 0.5}))
    log.log(_row(3, **{"train/loss": 2 / 3}))
    rows = read_metrics(path)
    assert path.read_text().splitlines()[0] == "phase,epoch,global_epoch,step,train/loss,val/f1"
    assert [float(r["train/loss"]) for r in rows] == [0.1 + 0.2, 1 / 3, 2 / 3]
    assert "val/f1" not in rows[0] and rows[1]["val/f1"] == "0.5" and "val/f1" not in rows[2]


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    log = CsvLogger(path)
    for epoch in (1, 2, 3):
        log.log(_row(epoch, loss=float(epoch)))
    CsvLogger(path, keep_until=2).log(_row(3, loss=30.0))
    assert [(r["global_epoch"], r["loss"]) for r in read_metrics(path)] == [("1", "1.0"), ("2", "2.0"), ("3", "30.0")]
    # a new run (no resume) starts an empty file
    CsvLogger(path)
    assert read_metrics(path) == []


def test_damaged_metrics_file_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("phase,epoch,global_epoch,step,loss\none,1,1,4,0.5\none,2\n")
    with pytest.raises(DataError, match=r"metrics\.csv:3: malformed row"):
        CsvLogger(path, keep_until=5)
    path.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(DataError, match=r"metrics\.csv:1: not a metrics file"):
        read_metrics(path)


def test_running_mean_and_progress_text():
    run = RunningMean()
    run.update({"loss": 1.0, "cls": 0.5})
    run.update({"loss": 3.0})
    assert run.means() == {"loss": 2.0, "cls": 0.5}
    assert run.counts == {"loss": 2, "cls": 1}
    assert format_logs({"loss": 0.123456, "cls": 2.0}) == "loss=0.1235 cls=2"
    assert format_logs({"loss": 1.0, "diag/grad_ft": 0.5, "pseudo/weak/frames_positive/a": 3.0}) == "loss=1"


def test_tensorboard_receives_epoch_and_step_scalars(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    log = RunLogger(tmp_path)
    log.log_step(3, {"loss": 0.7})
    log.log_epoch(_row(1, **{"train/loss": 0.5, "val/f1": 0.25}))
    log.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"step/loss", "train/loss", "val/f1"}
    assert [(e.step, e.value) for e in acc.Scalars("val/f1")] == [(10, 0.25)]  # x axis: optimizer step
    assert [(e.step, pytest.approx(e.value)) for e in acc.Scalars("step/loss")] == [(3, 0.7)]


def test_resumed_run_hides_tensorboard_events_after_the_checkpoint(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    log = RunLogger(tmp_path)
    for epoch in (1, 2, 3):  # steps 10, 20, 30; the run then dies, its checkpoint being at epoch 1
        log.log_epoch(_row(epoch, **{"train/loss": float(epoch)}))
    log.close()
    log = RunLogger(tmp_path, resume_from=(1, 10))
    log.log_epoch(_row(2, **{"train/loss": 20.0}))
    log.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(10, 1.0), (20, 20.0)]
    assert [r["train/loss"] for r in read_metrics(tmp_path / "metrics.csv")] == ["1.0", "20.0"]
