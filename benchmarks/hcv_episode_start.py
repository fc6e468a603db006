"""HalfCheetahVel: how fast each episode of a trial reaches its target velocity (a sensitive adaptation test).

Memory across episodes can only help at an episode's start (the first step's reward already tells the
target, see `icrl/envs/half_cheetah_vel.py`), so whole-episode returns hide it. This plays greedy trials of
a run's latest checkpoint through `icrl eval`'s `play_trials`, with a recorder under the trial wrapper,
and prints per episode: the return of its first K steps (K = 10, 25, 50), the steps it takes to come within
0.25 of the target velocity (the episode's length if never), and the paired differences last episode minus
first episode with standard errors.

    .venv/bin/python benchmarks/hcv_episode_start.py RUN --trials 64 --seed 3 --split test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from icrl.analysis.stats import mean_se
from icrl.envs.trial import make_trial_env
from icrl.train.evaluate import eval_env_config, load_run_agent, play_trials, resolve_checkpoint

FIRST_STEPS = (10, 25, 50)
CLOSE = 0.25  # |velocity - target| that counts as "at the target"


class EpisodeRecorder(gym.Wrapper):
    """Every episode's per-step rewards and velocity errors, grouped by trial."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.trials: list[list[dict[str, list[float]]]] = []

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        if (kwargs.get("options") or {}).get("new_task") or not self.trials:
            self.trials.append([])
        self.trials[-1].append({"reward": [], "error": []})
        return obs, info

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        episode = self.trials[-1][-1]
        episode["reward"].append(float(reward))
        episode["error"].append(abs(info["x_velocity"] - info["target_velocity"]))
        return obs, reward, terminated, truncated, info


def episode_measures(episode: dict[str, list[float]]) -> dict[str, float]:
    out = {f"return_first_{k}": float(sum(episode["reward"][:k])) for k in FIRST_STEPS}
    close = [t for t, e in enumerate(episode["error"]) if e < CLOSE]
    out["steps_to_target"] = float(close[0] if close else len(episode["error"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--split", default="test", choices=("train", "test"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ckpt = resolve_checkpoint(args.run_dir)
    cfg, agent, extra = load_run_agent(args.run_dir, ckpt)
    eval_cfg = eval_env_config(cfg, {"split": args.split})
    recorders: list[EpisodeRecorder] = []

    def make_env() -> gym.Env:
        recorders.append(EpisodeRecorder(gym.make(eval_cfg.env.id, **eval_cfg.env.kwargs)))
        return make_trial_env(recorders[-1], episodes=eval_cfg.env.trial_episodes)

    play_trials(agent.eval(), eval_cfg, args.trials, seed=args.seed, greedy=True, env_fn=make_env)
    episodes = max(len(t) for r in recorders for t in r.trials)
    trials = [t for r in recorders for t in r.trials if len(t) == episodes and len(t[-1]["reward"])]
    measures = [[episode_measures(e) for e in t] for t in trials]
    keys = list(measures[0][0])
    result: dict[str, Any] = {"run_dir": str(args.run_dir), "updates": extra.get("updates"),
                              "split": args.split, "seed": args.seed, "trials": len(trials)}
    for key in keys:
        result[key] = [round(float(np.mean([m[i][key] for m in measures])), 2) for i in range(episodes)]
        gain = mean_se(m[-1][key] - m[0][key] for m in measures)  # paired within each trial
        result[f"{key}_last_minus_first"] = round(gain.mean, 2)
        result[f"{key}_last_minus_first_se"] = round(gain.se, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
