"""Resuming: a run killed with SIGKILL continues from its last whole checkpoint and its replay buffer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icrl.cli import main
from icrl.config import load_config
from icrl.replay import load_trial
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import RunLogger, read_metrics
from icrl.train.stopping import RunFinished
from icrl.train.trainer import Trainer, resume_run


def _wait_for_checkpoint(proc: subprocess.Popen, ckpts: Path, min_updates: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training exited early with {proc.returncode}")
        latest = latest_checkpoint(ckpts) if (ckpts / "latest.json").exists() else None
        if latest is not None and int(latest.name.split("_")[1]) >= min_updates:
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint with {min_updates} updates within {timeout} s")


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(150)
def test_resume_after_sigkill(tmp_path, tiny_cli, capsys):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "icrl.cli", "train", "icrl/TMaze-v0", *tiny_cli,
           "--total-env-steps", "1000000", "--eval-every", "0", "--checkpoint-every", "3",
           "--run-dir", str(run)]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait_for_checkpoint(proc, run / "checkpoints", min_updates=24)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{(tmp_path / 'stderr.txt').read_text()[-3000:]}") from None
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait(timeout=30)
    assert proc.returncode == -9

    ckpt = latest_checkpoint(run / "checkpoints")
    state = json.loads((ckpt / "state.json").read_text())["extra"]
    assert state["updates"] == int(ckpt.name.split("_")[1]) and state["env_steps"] > 0
    before = _rows(run)
    assert before, "the killed run logged nothing"
    with open(run / "metrics.jsonl", "a") as f:
        # Work done after the checkpoint and lost with the kill (redone after the resume) ...
        lost = {"env_steps": state["env_steps"] + 5000, "updates": state["updates"] + 500, "wall_time_s": 1e4}
        f.write(json.dumps(lost) + "\n")
        # ... and a write cut short by the kill: a torn last line.
        f.write('{"env_steps": 999999999, "updates": 12, "wall_ti')

    total = state["env_steps"] + 60
    main(["resume", str(run), "--total-env-steps", str(total)])
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert printed["run_dir"] == str(run) and "eval/return" in printed

    rows = _rows(run)  # every line parses: the torn one is gone
    assert rows == read_metrics(run)
    assert all(r["env_steps"] != 999999999 and r != lost for r in rows)
    assert load_config(run / "config.json").total_env_steps == total  # the new budget is kept
    steps, updates, times = ([r[k] for r in rows] for k in ("env_steps", "updates", "wall_time_s"))
    assert steps == sorted(steps), "env_steps went backwards after the resume"
    assert updates == sorted(updates) and times == sorted(times)
    assert times[-1] > 1e4  # wall time keeps counting across the resume
    resumed = [r for r in rows if r["env_steps"] > state["env_steps"]]
    assert resumed and resumed[-1]["env_steps"] == total
    assert resumed[-1]["updates"] == state["updates"] + 6  # 3 more rounds of 2 updates
    assert "eval/return" in rows[-1]
    # Rows logged up to the checkpoint survive.
    kept = [r for r in before if r["env_steps"] <= state["env_steps"] and r["updates"] <= state["updates"]]
    assert rows[: len(kept)] == kept

    final = latest_checkpoint(run / "checkpoints")
    extra = json.loads((final / "state.json").read_text())["extra"]
    assert extra["env_steps"] == total and extra["updates"] == state["updates"] + 6
    assert extra["rounds"] == state["rounds"] + 3
    assert final.name == f"ckpt_{extra['updates']:09d}"

    fifo = sorted((run / "buffer" / "fifo").glob("*.npz"))
    assert len(fifo) >= state["env_steps"] // 6 - 2  # 6-step trials: the pre-kill buffer is still there
    for path in fifo:
        trial = load_trial(path)  # raises on a corrupt or malformed file
        assert trial["reward"].shape == (6,)

    # Resuming a finished run changes nothing (tests/faults/test_lifecycle.py compares every file).
    assert extra["finished"] == "budget"
    with pytest.raises(RunFinished, match="has finished"):
        resume_run(run)
    assert json.loads((latest_checkpoint(run / "checkpoints") / "state.json").read_text())["extra"] == extra
    assert _rows(run)[-1]["updates"] == extra["updates"]


def test_logger_repairs_torn_line_and_drops_rows_after_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"env_steps": 10 * i, "updates": i, "wall_time_s": float(i)} for i in range(1, 6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"env_steps": 60, "upd')
    logger = RunLogger(tmp_path, tensorboard=False)
    assert read_metrics(tmp_path) == rows and path.read_text().endswith("}\n")
    assert logger.time_offset == 5.0
    logger.log({"x": 1.0}, env_steps=60, updates=6)
    logger.close()
    assert read_metrics(tmp_path)[-1]["x"] == 1.0 and read_metrics(tmp_path)[-1]["wall_time_s"] >= 5.0

    # Resuming from a checkpoint at (30 steps, 3 updates): later rows are redone, so they go.
    logger = RunLogger(tmp_path, tensorboard=False, resume_at=(30, 3))
    logger.close()
    assert read_metrics(tmp_path) == rows[:3]
    assert logger.time_offset >= 5.0  # wall time still counts the lost work

    # With TensorBoard, events after the checkpoint are purged the same way (and logging goes on).
    logger = RunLogger(tmp_path, tensorboard=True, resume_at=(20, 2))
    logger.log({"x": 2.0}, env_steps=30, updates=3)
    logger.close()
    assert [r["env_steps"] for r in read_metrics(tmp_path)] == [10, 20, 30]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_resume_with_changed_settings(tmp_path, tiny_config):
    """`icrl resume --set` continues a run with other settings (a longer window here, which rotary
    positions allow); a setting that changes the network's shape fails clearly and changes nothing."""
    run = tmp_path / "run"
    Trainer(tiny_config(run, total_env_steps=60, model={"pos_emb": "rope"}), run).run()
    saved = (run / "config.json").read_text()
    done = latest_checkpoint(run / "checkpoints").name

    with pytest.raises(SystemExit, match="does not fit this config's network"):
        main(["resume", str(run), "--set", "model.d_model=48", "--total-env-steps", "80"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["resume", str(run), "--set", "model.context_len"])
    assert (run / "config.json").read_text() == saved
    assert latest_checkpoint(run / "checkpoints").name == done

    main(["resume", str(run), "--set", "model.context_len=24", "--set", "eval_trials=2",
          "--total-env-steps", "80"])
    cfg = load_config(run / "config.json")
    assert (cfg.model.context_len, cfg.eval_trials, cfg.total_env_steps) == (24, 2, 80)
    assert cfg.model.d_model == 32 and cfg.run_dir == str(run)
    rows = _rows(run)
    assert rows[-1]["env_steps"] == 80 and rows[-1]["eval/trials"] == 2


@pytest.mark.timeout(150)
def test_collectors_end_with_a_killed_learner_and_the_run_resumes(tmp_path, tiny_cli, capsys, group_alive):
    """kill -9 of the learner leaves its collector processes (and their env processes) without a parent:
    they notice and end by themselves, and `icrl resume` goes on from the last checkpoint."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "icrl.cli", "train", "icrl/TMaze-v0", *tiny_cli, "--collectors", "2",
           "--env.asynchronous", "--total-env-steps", "1000000", "--eval-every", "0",
           "--checkpoint-every", "3", "--run-dir", str(run)]  # fmt: skip
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        _wait_for_checkpoint(proc, run / "checkpoints", min_updates=24)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{(tmp_path / 'stderr.txt').read_text()[-3000:]}") from None
    finally:
        proc.kill()  # the learner only: its collectors get no signal at all
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = group_alive(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not alive, "collector processes outlived their learner by 30 s"

    state = json.loads((latest_checkpoint(run / "checkpoints") / "state.json").read_text())["extra"]
    total = state["env_steps"] + 60
    main(["resume", str(run), "--total-env-steps", str(total)])
    assert "eval/return" in json.loads(capsys.readouterr().out.splitlines()[-1])
    assert read_metrics(run)[-1]["env_steps"] >= total
