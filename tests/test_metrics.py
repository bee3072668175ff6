"""Metrics log (truncation on resume, value conversion) and the Progress display."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch

from monde.train import metrics
from monde.train.metrics import MetricsLogger, Progress, read_metrics


def test_log_and_read_convert_values(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as log:
        log.log(1, loss=torch.tensor(0.5), rank=np.float32(3.0), recipe="tiny", n=4)
        log.log(2, loss=float("nan"))
        # Each line is on disk as soon as it is logged (a killed run loses nothing).
        assert len(path.read_text().splitlines()) == 2
    rows = read_metrics(path)
    assert rows[0] == {"step": 1, "loss": 0.5, "rank": 3.0, "recipe": "tiny", "n": 4}
    assert math.isnan(rows[1]["loss"])
    assert read_metrics(tmp_path) == rows  # a run folder works too
    log = MetricsLogger(path)
    with pytest.raises(ValueError, match="not a scalar"):
        log.log(3, x=torch.ones(2))
    with pytest.raises(TypeError, match="x"):
        log.log(3, x=[1])
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.log(4, y=1)


def test_resume_truncates_steps_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as log:
        for step in range(1, 8):
            log.log(step, loss=1.0 / step)
    with MetricsLogger(path, resume_step=4) as log:  # resumed from the step-4 checkpoint
        log.log(5, loss=0.0)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    assert read_metrics(path)[-1]["loss"] == 0.0


def test_torn_last_line_from_a_killed_run_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "a": 1}) + "\n" + '{"step": 2, "a"')
    with MetricsLogger(path) as log:  # not resuming: append, but on a fresh line
        log.log(3, a=3)
    with pytest.warns(UserWarning, match="1 unreadable"):
        assert [r["step"] for r in read_metrics(path)] == [1, 3]
    with MetricsLogger(path, resume_step=10):  # resuming also cleans it out
        pass
    assert [r["step"] for r in read_metrics(path)] == [1, 3]


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_prints_plain_lines_when_not_a_tty(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(metrics, "_clock", clock)
    with Progress(total=1000, initial=100, desc="tiny", every=10.0) as bar:
        for step in range(101, 141):
            clock.t += 0.5  # 2 steps/s
            bar.update(step, loss=torch.tensor(0.123456), rank=45.1)
        assert bar.steps_per_second == pytest.approx(2.0)
    lines = capsys.readouterr().err.splitlines()
    # At the first update (t=0.5 s), 10 s later (step 121), and a last line on close.
    assert len(lines) == 3, lines
    assert lines[0].startswith("tiny 101/1000") and "ETA 0:07:30" in lines[0]
    assert "2.00 steps/s" in lines[1] and "ETA 0:07:20" in lines[1]  # (1000-121)/2 s
    assert "loss=0.1235" in lines[1] and "rank=45.1" in lines[1]
    assert lines[-1].startswith("tiny 140/1000 (14.0%)")


def test_progress_unknown_rate_and_quiet(monkeypatch, capsys):
    monkeypatch.setattr(metrics, "_clock", _Clock())
    with Progress(total=10, every=0.0) as bar:
        bar.update(1)  # no time has passed: the rate is unknown, not infinite
    assert "ETA ?" in capsys.readouterr().err
    with Progress(total=10, quiet=True, every=0.0) as bar:
        bar.update(5)
    assert capsys.readouterr().err == ""


def test_progress_uses_tqdm_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress(total=10, desc="tty", file=out) as bar:
        bar.update(3, loss=0.5)
    text = out.getvalue()
    assert "tty" in text and "3/10" in text and "loss=0.5" in text
