"""How each attempt of a MetaFrozenLake run's greedy trials ends (goal, hole or timeout), and when.

Plays greedy trials of a run's latest checkpoint through `icrl eval`'s `play_trials`, with a recorder
between the lake and the trial wrapper, and prints:
- per attempt (0-based), how many trials end it at the goal, in a hole, or at the attempt's step limit;
- the last attempt's outcomes by the time step it starts at (a cluster of identical failures at one start
  time is one deterministic history that the greedy policy gets wrong, replicated across lakes);
- for trials that reach the goal in the second-to-last attempt and fail the last: how the last attempt
  ends and the step at which its path first leaves the previous attempt's path.

    .venv/bin/python benchmarks/frozen_lake_trace.py runs/mfl-ctx/s1 --trials 200
    .venv/bin/python benchmarks/frozen_lake_trace.py runs/mfl-ctx/s1 --trials 200 --acting-gamma 0.97
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from icrl.envs.frozen_lake import MetaFrozenLakeEnv
from icrl.envs.trial import TrialWrapper
from icrl.train.evaluate import eval_env_config, load_run_agent, play_trials, resolve_checkpoint


class AttemptRecorder(gym.Wrapper):
    """Records every trial's attempts: the agent's path and how the attempt ended."""

    def __init__(self, env: MetaFrozenLakeEnv) -> None:
        super().__init__(env)
        self.trials: list[list[dict[str, Any]]] = []

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        if (kwargs.get("options") or {}).get("new_task") or not self.trials:
            self.trials.append([])
        self.trials[-1].append({"path": [self.env.unwrapped.position], "end": None})
        return obs, info

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        attempt = self.trials[-1][-1]
        attempt["path"].append(self.env.unwrapped.position)
        if terminated or truncated:
            attempt["end"] = "goal" if reward > 0 else ("hole" if terminated else "timeout")
        return obs, reward, terminated, truncated, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--acting-gamma", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, agent, _ = load_run_agent(args.run_dir, resolve_checkpoint(args.run_dir), args.acting_gamma)
    kwargs = eval_env_config(cfg).env.kwargs
    recorders: list[AttemptRecorder] = []

    def make_env() -> TrialWrapper:
        recorders.append(AttemptRecorder(MetaFrozenLakeEnv(**kwargs)))
        return TrialWrapper(recorders[-1], episodes=recorders[-1].unwrapped.attempts)

    play_trials(agent.eval(), cfg, args.trials, seed=args.seed, greedy=True, env_fn=make_env)
    attempts = recorders[0].unwrapped.attempts
    trials = [t for r in recorders for t in r.trials if len(t) == attempts and t[-1]["end"]]

    ends = {i: Counter(t[i]["end"] for t in trials) for i in range(attempts)}
    by_start: dict[int, Counter] = defaultdict(Counter)
    left_path: Counter = Counter()
    for t in trials:
        start = sum(len(a["path"]) - 1 for a in t[:-1])
        by_start[start][t[-1]["end"]] += 1
        if attempts > 1 and t[-2]["end"] == "goal" and t[-1]["end"] != "goal":
            before, last = t[-2]["path"], t[-1]["path"]
            step = next((j for j in range(min(len(before), len(last))) if before[j] != last[j]), None)
            left_path[f"{t[-1]['end']} at step {step}"] += 1
    print(
        json.dumps(
            {
                "run_dir": str(args.run_dir),
                "acting_gamma": cfg.gammas[agent.acting_head],
                "trials": len(trials),
                "attempt_ends": {i: dict(c) for i, c in ends.items()},
                "last_attempt_by_start_time": {s: dict(by_start[s]) for s in sorted(by_start)},
                "goal_then_last_failed": dict(left_path),
            }
        )
    )


if __name__ == "__main__":
    main()
