"""Act with a trained icrl policy inside your own plain gymnasium loop.

    python examples/act_in_your_loop.py runs/<run>    # a run you trained (icrl train ...)
    python examples/act_in_your_loop.py               # first trains T-Maze 10 (temporary folder)
    python examples/act_in_your_loop.py --quick       # the same, a few seconds of training (a smoke test)

`icrl.load_policy(run_dir)` reads the run directory and gives a policy for the plain env: `act(obs)`
returns an action of the env's own action space, `observe(reward, terminated, truncated)` records the
step. The agent reads *trial* observations (the env observation plus the previous action and reward, the
time index inside the trial and an episode-start flag); the policy builds them, keeps the sequence model's
memory, and starts a new trial's memory when the run's trial budget is used up (`policy.trial_ended`).
For N envs at once: `policy.reset(num_envs=N)`, then batched observations and arrays of rewards and flags.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np

import icrl  # registers the built-in envs (e.g. icrl/TMaze-v0)
from icrl.envs.trust import env_module_of
from icrl.presets import preset_config
from icrl.train.trainer import Trainer


def train_short_tmaze(run_dir: Path, quick: bool) -> None:
    """A T-Maze with a 10-step corridor: remember the side shown at step 0, turn that way at the end."""
    cfg = preset_config("tmaze-quick")  # T-Maze's settings, stopping once an evaluation reaches 0.99
    cfg = replace(cfg, env=replace(cfg.env, kwargs={"length": 10}), model=replace(cfg.model, context_len=12),
                  tensorboard=False, progress=False, threads=2)  # the whole 11-step trial in context
    if quick:  # a few hundred env steps: checks the plumbing, learns nothing
        cfg = replace(cfg, total_env_steps=500, learning_starts=200, updates_per_collect=4, eval_every=0,
                      eval_trials=8)
    Trainer(cfg, run_dir=run_dir).run()


def play(run_dir: Path, trials: int, seed: int = 0) -> list[float]:
    """Play `trials` greedy trials of the run's env with its latest checkpoint; return each one's return."""
    # config.json, spaces.json and the newest intact checkpoint: the run directory is all it needs.
    policy = icrl.load_policy(run_dir)
    cfg = policy.config
    print(f"loaded {run_dir} at {policy.updates} updates, env {cfg.env.id} {cfg.env.kwargs}, "
          f"trials of {policy.episodes} episode(s)")

    # Your own env, not wrapped: the policy keeps the previous action and reward, the time index and the
    # sequence model's memory itself, and knows when a trial (here: one episode) is over.
    if env_module_of(cfg.env.id) is not None:  # gym.make would import the module the run names
        raise SystemExit(f"{cfg.env.id!r} names a Python module: make that env yourself if you trust it")
    env = gym.make(cfg.env.id, **cfg.env.kwargs)
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    policy.reset()
    total = 0.0
    while len(returns) < trials:
        action = policy.act(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward, terminated, truncated)
        total += float(reward)
        if policy.trial_ended:  # a new trial: a meta-RL env would get a new task here
            returns.append(total)
            total = 0.0
            obs, _ = env.reset(options={"new_task": True})
        elif terminated or truncated:  # the next episode of the same trial
            obs, _ = env.reset()
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default=None, help="a trained run (default: train one first)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="train only a few hundred env steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp) / "tmaze-run"
        if args.run_dir is None:
            train_short_tmaze(run_dir, args.quick)
        returns = play(run_dir, args.trials)
        print(f"{len(returns)} trials, mean return {np.mean(returns):.3f}")


if __name__ == "__main__":
    main()
