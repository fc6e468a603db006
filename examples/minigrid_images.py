"""Train icrl on MiniGrid, whose observations hold an image (needs `pip install -e ".[minigrid]"`).

MiniGrid observes `{"image": uint8 (7, 7, 3), "direction": Discrete(4), "mission": text}`. icrl encodes
uint8 images of shape (H, W, C) or (C, H, W) with a small CNN and Discrete values as one-hots, so the image
and the direction go in (the image's small codes spread over 0..255, as `icrl train MiniGrid-*` does);
only the mission string, which no encoder reads, is filtered out
(MiniGrid's Empty and Memory rooms have a fixed mission anyway).

    python examples/minigrid_images.py                               # MiniGrid-Empty-5x5-v0, 30k env steps
    python examples/minigrid_images.py --env MiniGrid-MemoryS7-v0 --steps 200000   # a memory task
    python examples/minigrid_images.py --quick                       # a few seconds: checks that it runs

This shows the plumbing, not a tuned recipe: how far these settings take MiniGrid has not been measured.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import gymnasium as gym

import icrl  # noqa: F401
from icrl.config import Config, EnvConfig, ModelConfig, ReplayConfig
from icrl.envs.minigrid_adapter import code_scale
from icrl.train.evaluate import evaluate_run
from icrl.train.trainer import Trainer


def make_minigrid(minigrid_id: str, **kwargs: Any) -> gym.Env:
    """A MiniGrid env with only the observation keys icrl can encode (image and direction)."""
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids)

    env = gym.wrappers.FilterObservation(gym.make(minigrid_id, **kwargs), ["image", "direction"])
    # The image holds small object / colour / state codes; the CNN reads x / 255, so spread them out.
    scale = code_scale()
    return gym.wrappers.TransformObservation(
        env, lambda obs: {**obs, "image": obs["image"] * scale}, env.observation_space
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-Empty-5x5-v0", help="a MiniGrid id")
    parser.add_argument("--steps", type=int, default=30_000, help="env steps to train for")
    parser.add_argument("--quick", action="store_true", help="a few hundred env steps: a smoke test")
    args = parser.parse_args()

    # The wrapped env gets an id of its own, so config.json names something `icrl eval` can make again
    # (in this process; from another one, register it in an importable module and use `module:Id`).
    env_id = f"examples/{args.env}"
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=make_minigrid, kwargs={"minigrid_id": args.env})

    cfg = Config(
        env=EnvConfig(id=env_id, num_actors=4),
        model=ModelConfig(d_model=64, n_heads=4, n_layers=2, context_len=64,
                          encoder_hidden=(64,), actor_hidden=(64,), critic_hidden=(64, 64)),
        replay=ReplayConfig(batch_size=8 if args.quick else 24),
        total_env_steps=400 if args.quick else args.steps,
        learning_starts=200 if args.quick else 2_000,
        collect_steps=32,
        updates_per_collect=4 if args.quick else 16,
        eval_every=0 if args.quick else 500,  # updates; 0: evaluate only at the end
        eval_trials=4 if args.quick else 16,
        tensorboard=False,
        progress=False,
        threads=2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = f"{tmp}/minigrid-run"
        Trainer(cfg, run_dir=run_dir).run()
        result = evaluate_run(run_dir, trials=4 if args.quick else 32)
        print(f"{args.env}: return {result['eval/return']:.3f} over {result['eval/trials']} trials")


if __name__ == "__main__":
    main()
