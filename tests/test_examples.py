"""The scripts in examples/ run end to end (each with --quick: a few hundred env steps, seconds on 2 cores).

Each runs as a subprocess, as a user would run it, so a missing `if __name__ == "__main__":` guard, an
import that moved or an API that changed shows up here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,  # a scratch folder: nothing is written into the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    tail = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{name} failed with exit code {done.returncode}:\n{tail}"
    return done.stdout


def test_custom_memory_env(tmp_path: Path) -> None:
    out = run_example("custom_memory_env.py", "--quick", "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert re.search(r"evaluation: return \d\.\d\d ± \d\.\d\d over 64 trials", out), out
    assert (tmp_path / "run" / "eval.json").is_file()  # evaluate_run wrote its result into the run


def test_act_in_your_loop(tmp_path: Path) -> None:
    out = run_example("act_in_your_loop.py", "--quick", "--trials", "6", cwd=tmp_path)
    assert re.search(r"^6 trials, mean return -?\d+\.\d{3}$", out, re.M), out


def test_act_in_your_loop_on_a_given_run(tmp_path: Path) -> None:
    """The script acts with a run it did not train itself: config and checkpoint come from the folder."""
    tmaze_run = tmp_path / "tmaze"
    from icrl.config import Config, EnvConfig, ModelConfig
    from icrl.train.trainer import Trainer

    cfg = Config(
        env=EnvConfig(id="icrl/TMaze-v0", kwargs={"length": 4}, num_actors=2),
        model=ModelConfig(d_model=16, n_heads=2, n_layers=1, context_len=6, encoder_hidden=(16,),
                          actor_hidden=(16,), critic_hidden=(16, 16)),
        total_env_steps=120, learning_starts=60, collect_steps=10, updates_per_collect=2,
        eval_every=0, eval_trials=2, tensorboard=False, progress=False, threads=1,
    )
    Trainer(cfg, run_dir=tmaze_run).run()
    out = run_example("act_in_your_loop.py", str(tmaze_run), "--trials", "3", cwd=tmp_path)
    assert f"loaded {tmaze_run} at " in out and "env icrl/TMaze-v0 {'length': 4}" in out, out
    assert re.search(r"^3 trials, mean return", out, re.M), out


@pytest.mark.skipif(importlib.util.find_spec("minigrid") is None, reason="needs the minigrid extra")
def test_minigrid_images(tmp_path: Path) -> None:
    out = run_example("minigrid_images.py", "--quick", cwd=tmp_path)
    assert re.search(r"MiniGrid-Empty-5x5-v0: return \d\.\d{3} over 4 trials", out), out
