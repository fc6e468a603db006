"""benchmarks/multitask.py --suite popgym: env steps per task read from a run's buffer, and the table that
compares the one agent with RecurrentPPO per env (from result files written here, nothing trained)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from icrl.presets import preset_config
from icrl.replay.store import trial_file_name


@pytest.fixture
def bench(benchmark_script):
    return benchmark_script("multitask")


def test_task_env_steps_sums_each_tasks_stored_trials(bench, tmp_path):
    fifo = tmp_path / "buffer" / "fifo"
    fifo.mkdir(parents=True)
    for length, task in [(52, 0), (52, 0), (10, 3), (200, 4)]:
        (fifo / trial_file_name(length, task=task)).touch()
    assert bench.task_env_steps(tmp_path) == {0: 104, 3: 10, 4: 200}


def _ppo(root: Path, env: str, seed: int, value: float, episodes: int = 200) -> None:
    short = env[len("popgym-") : -len("-v0")]
    path = root / short / f"ppo__{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"curve": [], "final": {"episodes": episodes, "return": value}}))


def test_popgym_table_counts_the_seeds_at_or_above_ppo(bench, tmp_path):
    ids = preset_config(bench.POPGYM_PRESET).env.ids
    args = argparse.Namespace(
        root=tmp_path / "runs", ppo_root=tmp_path / "ppo", seeds=[0, 1], steps_per_task=50_000
    )
    for seed, ppo_value in [(0, -0.4), (1, -0.2)]:  # PPO's mean: -0.3 on every env
        for env in ids:
            _ppo(args.ppo_root, env, seed, ppo_value)
    # seed 0 ties PPO's mean up to float summation (counts), seed 1 is below
    for seed, value in [(0, -0.3 - 1e-8), (1, -0.31)]:
        result = {"seed": seed}
        for env in ids:
            result[env], result[f"{env}/env_steps"] = value, 50_000 + seed
        run = args.root / f"{bench.POPGYM_PRESET}__{seed}"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps(result))
    table, finals = bench.popgym_table(args)
    rows = [line for line in table.splitlines() if line.startswith("| RepeatPreviousEasy")]
    assert rows == ["| RepeatPreviousEasy | -0.300 ± 0.100 | -0.305 ± 0.005 | 50,000 | 1/2 |"]
    assert finals["RecurrentPPO"][ids[0]] == [-0.4, -0.2]
    assert finals["icrl, one agent"][ids[0]] == [-0.3 - 1e-8, -0.31]


def test_popgym_table_ignores_ppo_scored_on_other_episode_counts(bench, tmp_path):
    ids = preset_config(bench.POPGYM_PRESET).env.ids
    args = argparse.Namespace(
        root=tmp_path / "runs", ppo_root=tmp_path / "ppo", seeds=[0], steps_per_task=50_000
    )
    _ppo(args.ppo_root, ids[0], 0, 0.5, episodes=32)
    table, finals = bench.popgym_table(args)
    assert finals["RecurrentPPO"][ids[0]] == []
    assert "| RepeatPreviousEasy | - | - | - | 0/0 |" in table
