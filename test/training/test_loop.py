"""training.loop.RunEnd, the end of each step and of a run shared by train() and distill():
log lines, checkpoint-or-stop and the final save, driven without a model."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from litesam_ros.training import loop
from litesam_ros.training.loop import RunEnd


def _cfg(tmp_path: Any, **kw: Any) -> SimpleNamespace:
    base: dict = dict(steps=10, log_every=1, log_file=str(tmp_path / "logs" / "run.jsonl"),
                      ckpt_every_steps=0, ckpt_every_seconds=0.0, max_seconds=0.0,
                      max_cpu_seconds=0.0, stop_after=0)
    base.update(kw)
    return SimpleNamespace(**base)


def _run(cfg: SimpleNamespace, start: int = 0, rank: int = 0, wall0: float = 0.0,
         digits: int = 1) -> tuple[list, tuple[int, float], list[int]]:
    """Drive a RunEnd like the training loops do; (saves, finish(), steps run)."""
    saves: list = []
    end = RunEnd(cfg, start, wall0, rank, 1, lambda s, w: saves.append((s, w)), digits)
    ran = []
    for step in range(start, cfg.steps):
        ran.append(step)
        if end.after_step(step, {"loss": 1.0 / (step + 1), "iou": 0.5}, 0.1 * step):
            break
    return saves, end.finish(), ran


def _fake_clock(monkeypatch: pytest.MonkeyPatch, wall: Callable[[], float]) -> None:
    """loop's wall clock only (the time module itself is left alone)."""
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=wall, process_time=time.process_time))


def _log(cfg: SimpleNamespace) -> list[dict]:
    with open(cfg.log_file) as f:
        return [json.loads(line) for line in f]


def test_log_lines_every_log_every_and_the_last_step(tmp_path: Any) -> None:
    cfg = _cfg(tmp_path, steps=7, log_every=3)
    saves, (step, wall), _ = _run(cfg, digits=2)
    rows = _log(cfg)  # the log's folder was created
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert list(rows[1]) == ["step", "wall", "lr", "loss", "iou"]
    assert rows[1]["lr"] == pytest.approx(0.3) and rows[1]["loss"] == 0.25
    assert step == 7 and saves == [(7, pytest.approx(wall))]  # the final save only


def test_wall_is_rounded_and_continues_from_wall0(tmp_path: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 101.23456, 102.5, 103.0])
    _fake_clock(monkeypatch, lambda: next(clock))
    cfg = _cfg(tmp_path, steps=2)
    saves, (step, wall), _ = _run(cfg, wall0=10.0, digits=2)
    assert [r["wall"] for r in _log(cfg)] == [11.23, 12.5]
    assert (step, wall) == (2, 13.0) and saves == [(2, 13.0)]


def test_stop_after_saves_once_and_reports_the_steps_done(tmp_path: Any) -> None:
    cfg = _cfg(tmp_path, steps=10, stop_after=3)
    saves, (step, _), ran = _run(cfg, start=2)
    assert ran == [2, 3, 4] and step == 5
    assert [s for s, _ in saves] == [5]  # the stop's checkpoint; no second one at the end


def test_periodic_checkpoints_and_a_final_one_only_when_needed(tmp_path: Any) -> None:
    saves, (step, _), _ = _run(_cfg(tmp_path, steps=6, ckpt_every_steps=3))
    assert step == 6 and [s for s, _ in saves] == [3, 6]
    saves, (step, _), _ = _run(_cfg(tmp_path, steps=7, ckpt_every_steps=3))
    assert step == 7 and [s for s, _ in saves] == [3, 6, 7]


def test_time_budget_stops(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    _fake_clock(monkeypatch, tick)
    saves, (step, _), ran = _run(_cfg(tmp_path, steps=100, max_seconds=3.0, log_file=None))
    # t0 = 1; step 0 ends at 2, step 1 at 3, step 2 at 4 (elapsed 3 -> stop)
    assert ran == [0, 1, 2] and step == 3 and [s for s, _ in saves] == [3]


def test_other_ranks_neither_log_nor_save(tmp_path: Any) -> None:
    cfg = _cfg(tmp_path, steps=5, stop_after=2)
    saves, (step, _), ran = _run(cfg, rank=1)
    assert saves == [] and ran == [0, 1] and step == 2
    assert not (tmp_path / "logs").exists()


def test_nothing_left_to_do(tmp_path: Any) -> None:
    """Resuming a finished run (start >= steps): no step, no save, steps = cfg.steps."""
    saves, (step, _), ran = _run(_cfg(tmp_path, steps=4, log_file=None), start=4)
    assert ran == [] and saves == [] and step == 4
    saves, (step, _), ran = _run(_cfg(tmp_path, steps=4, log_file=None), start=6)
    assert ran == [] and saves == [] and step == 4
