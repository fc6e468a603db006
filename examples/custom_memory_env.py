"""Train icrl on a memory task you define yourself, then evaluate it.

The env: a cue (1 or 2) is shown on the first step only, then `delay` blank steps follow; on the last
step the agent must name the cue (action 0 for cue 1, action 1 for cue 2). Reward 1 for the right answer,
0 otherwise. A policy without memory scores 0.5 at best; one that remembers the cue scores 1.0.

    python examples/custom_memory_env.py            # trains until solved (about 10 s on 2 CPU cores)
    python examples/custom_memory_env.py --quick    # a few seconds: checks that everything runs
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import gymnasium as gym
import numpy as np

import icrl  # noqa: F401  (registers the built-in envs; not needed for this one, but the usual first import)
from icrl.config import Config, EnvConfig, ExplorationConfig, ModelConfig
from icrl.train.evaluate import evaluate_run
from icrl.train.trainer import Trainer

ENV_ID = "examples/Cue-v0"


class CueEnv(gym.Env):
    """Observation Discrete(3): 0 blank, 1 or 2 the cue (step 0 only). Action Discrete(2)."""

    def __init__(self, delay: int = 5) -> None:
        self.delay = delay
        self.observation_space = gym.spaces.Discrete(3)
        self.action_space = gym.spaces.Discrete(2)
        self.cue = 1
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)  # seeds self.np_random
        self.cue = int(self.np_random.integers(1, 3))
        self.t = 0
        return self.cue, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        self.t += 1
        if self.t <= self.delay:  # still in the corridor: actions do not matter
            return 0, 0.0, False, False, {}
        correct = int(action) == self.cue - 1
        # `success` is optional; icrl reports its mean as eval/success when an env sets it
        return 0, float(correct), True, False, {"success": float(correct)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred env steps: a smoke test")
    parser.add_argument("--run-dir", default=None, help="where the run goes (default: a temporary folder)")
    args = parser.parse_args()

    # Registration makes the env reachable by id (config.json keeps the id, `icrl eval` and `resume` use it).
    # From another process, put the env in an importable module and train on `my_module:Cue-v0` instead.
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=CueEnv)

    cfg = Config(
        env=EnvConfig(id=ENV_ID, kwargs={"delay": 5}, num_actors=4),
        # a small Transformer whose context holds a whole trial (7 timesteps here)
        model=ModelConfig(d_model=32, n_heads=2, n_layers=1, context_len=8,
                          encoder_hidden=(32,), actor_hidden=(32,), critic_hidden=(32, 32)),
        explore=ExplorationConfig(anneal_env_steps=3_000),
        total_env_steps=600 if args.quick else 20_000,
        learning_starts=200,
        collect_steps=24,
        updates_per_collect=16,
        eval_every=100,  # updates
        eval_trials=32,
        target_return=0.99,  # stop once solved
        tensorboard=False,
        progress=False,
        threads=2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or f"{tmp}/cue-run"
        last = Trainer(cfg, run_dir=run_dir).run()
        print(f"last in-training evaluation: return {last.get('eval/return', float('nan')):.2f}")

        # Score the final checkpoint on 64 fresh trials (also written to RUN/eval.json).
        result = evaluate_run(run_dir, trials=64)
        print(f"evaluation: return {result['eval/return']:.2f} ± {result['eval/return_se']:.2f} "
              f"over {result['eval/trials']} trials (a memory-free policy gets 0.5)")
        assert np.isfinite(result["eval/return"])


if __name__ == "__main__":  # required if you ever set collectors > 0 (spawned processes re-import this file)
    main()
