"""benchmarks/popgym_cpu.py decides per run: finished (skip), stopped with a checkpoint (resume), or
never checkpointed (start over). Subprocesses are recorded, not run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from icrl.train.checkpoint import save_checkpoint


@pytest.fixture
def bench(monkeypatch, benchmark_script):
    module = benchmark_script("popgym_cpu")
    calls: list[list[str]] = []
    monkeypatch.setattr(module.subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))
    return module, calls


def _args(root: Path) -> argparse.Namespace:
    return argparse.Namespace(root=str(root), steps=1_000, icrl_args="", eval_every=500, threads=1,
                              box_action_bins=None)  # fmt: skip


def _run_dir(root: Path, last_eval_steps: int | None, checkpoint: bool) -> Path:
    run_dir = root / "RepeatPreviousEasy" / "icrl__0"
    run_dir.mkdir(parents=True)
    if last_eval_steps is not None:
        row = {"env_steps": last_eval_steps, "updates": 5, "wall_time_s": 1.0, "eval/return": 0.5}
        (run_dir / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    if checkpoint:  # a whole checkpoint (a damaged one is not taken for one)
        save_checkpoint(run_dir / "checkpoints", "000000005", torch.nn.Linear(2, 1), extra={"updates": 5})
    return run_dir


def test_finished_run_is_kept(bench, tmp_path):
    module, calls = bench
    run_dir = _run_dir(tmp_path, last_eval_steps=1_024, checkpoint=True)
    assert module.run_icrl("RepeatPreviousEasy", 0, "transformer", _args(tmp_path)) == run_dir
    assert calls == []


def test_stopped_run_with_a_checkpoint_is_resumed(bench, tmp_path):
    module, calls = bench
    run_dir = _run_dir(tmp_path, last_eval_steps=512, checkpoint=True)
    module.run_icrl("RepeatPreviousEasy", 0, "transformer", _args(tmp_path))
    assert len(calls) == 1 and calls[0][-3:] == ["icrl.cli", "resume", str(run_dir)]
    assert (run_dir / "checkpoints").exists()  # nothing deleted


@pytest.mark.parametrize("last_eval_steps", [None, 512])
def test_run_without_a_checkpoint_starts_over(bench, tmp_path, last_eval_steps):
    module, calls = bench
    run_dir = _run_dir(tmp_path, last_eval_steps=last_eval_steps, checkpoint=False)
    (run_dir / "marker").write_text("old attempt")
    module.run_icrl("RepeatPreviousEasy", 0, "transformer", _args(tmp_path))
    assert not (run_dir / "marker").exists()
    assert len(calls) == 1 and "train" in calls[0] and "--run-dir" in calls[0]
