"""Act with a trained icrl policy inside your own plain gymnasium loop.

    python examples/act_in_your_loop.py runs/<run>    # a run you trained (icrl train ...)
    python examples/act_in_your_loop.py               # first trains T-Maze 10 (temporary folder)
    python examples/act_in_your_loop.py --quick       # the same, a few seconds of training (a smoke test)

The policy reads *trial* observations, not the env's raw ones: the env observation plus the previous
action, the previous reward, the time index inside the trial and an episode-start flag. The simplest
honest way to build them is to wrap your env the way training did (`make_trial_env` with the run's trial
budget), then keep one sequence-model state per actor: `agent.initial_state`, `agent.act` every step,
`agent.reset_state` when a trial ends. That is what icrl's own collector does, for N actors at once.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import icrl  # noqa: F401  (registers the built-in envs, e.g. icrl/TMaze-v0)
from icrl.envs import make_trial_env
from icrl.presets import preset_config
from icrl.train.evaluate import load_run_agent, resolve_checkpoint
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
    # config.json + the newest intact checkpoint (a run whose env id is `module:Id` also needs
    # trust_env_module=True: a run directory is data, and importing its module runs code).
    cfg, agent, extra = load_run_agent(run_dir, resolve_checkpoint(run_dir), device="cpu")
    agent.eval()
    print(f"loaded {run_dir} at {extra.get('updates')} updates, env {cfg.env.id} {cfg.env.kwargs}")

    # The env as training saw it: the same id, kwargs and trial budget (episodes or steps per trial).
    env = make_trial_env(
        cfg.env.id,
        episodes=cfg.env.trial_episodes,
        steps=cfg.env.trial_steps,
        budget_end=cfg.env.trial_end,
        **cfg.env.kwargs,
    )
    device = torch.device("cpu")
    state = agent.initial_state(1, device)  # one actor
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    total = 0.0
    while len(returns) < trials:
        batch = {key: torch.as_tensor(np.asarray(value))[None] for key, value in obs.items()}  # (1, ...)
        actions, state = agent.act(batch, state, greedy=True)  # numpy (1, *action_shape)
        obs, reward, terminated, truncated, info = env.step(actions[0])
        total += float(reward)
        # Inside a trial the wrapper resets finished episodes itself (the memory carries over); only the
        # end of the whole trial clears the agent's memory.
        if terminated or truncated:
            returns.append(total)
            total = 0.0
            state = agent.reset_state(state, torch.ones(1, dtype=torch.bool))
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
