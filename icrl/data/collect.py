"""`icrl collect`: a dataset of trials played by a trained policy, with optional epsilon-random actions.

The policy is loaded as `icrl eval` loads it (`load_run_agent`: the same consent for a run whose env id
names a module) and plays the run's training env kwargs (never its `eval_kwargs`, often the test tasks).
The trials are the first `ceil(N / actors)` of every actor (as evaluation takes them, so short trials are
not over-represented), written in the replay format into `DIR/protected/` (`icrl.data.dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from icrl.data.dataset import building_dir, describe_space, return_summary, write_dataset_info
from icrl.envs.vector import make_vector_env
from icrl.replay.store import ReplayStore
from icrl.train.collector import Collector, TrialStats, explore_actions
from icrl.train.evaluate import eval_env_config, load_run_agent, resolve_checkpoint
from icrl.train.factory import env_factory, make_checked_env


def random_actions(
    space: gym.Space, actions: np.ndarray, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """`actions` (N, ...) with each row replaced, with probability `epsilon`, by a uniformly random action
    of the agent's action space (Discrete: `explore_actions`; Box [-1, 1]: uniform in the box; MultiBinary:
    uniform bits). With epsilon 0 nothing is drawn."""
    if epsilon <= 0.0:
        return actions
    if isinstance(space, gym.spaces.Discrete):
        return explore_actions(space, actions, np.full(len(actions), epsilon), rng)
    replace = rng.random(len(actions)) < epsilon  # (N,)
    if not replace.any():
        return actions
    actions = actions.copy()
    count = int(replace.sum())
    if isinstance(space, gym.spaces.Box):
        actions[replace] = rng.uniform(-1.0, 1.0, size=(count, *space.shape)).astype(actions.dtype)
    elif isinstance(space, gym.spaces.MultiBinary):
        actions[replace] = rng.integers(0, 2, size=(count, *actions.shape[1:])).astype(actions.dtype)
    else:
        raise NotImplementedError(f"no random actions for action space {space}")
    return actions


class DatasetCollector(Collector):
    """A `Collector` that keeps every finished trial with its statistics (per actor, in order) and acts
    with epsilon-uniform random actions instead of the training exploration schedule."""

    def __init__(self, *args: Any, epsilon: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epsilon = float(epsilon)
        self.kept: list[list[tuple[TrialStats, dict[str, np.ndarray]]]] = [[] for _ in range(self.num)]
        self._last_trial: dict[str, np.ndarray] | None = None

    def _policy(self, env_steps: int) -> np.ndarray:
        actions = super()._policy(env_steps)  # no exploration schedule: greedy or sampled
        return random_actions(self.envs.single_action_space, actions, self.epsilon, self.rng)

    def _trial_stats(self, trial: dict[str, np.ndarray], success: np.ndarray | None) -> TrialStats:
        self._last_trial = trial
        return super()._trial_stats(trial, success)

    def _finish(self, i: int, terminated: bool) -> TrialStats:
        stats = super()._finish(i, terminated)
        assert self._last_trial is not None
        self.kept[i].append((stats, self._last_trial))
        return stats


def collect_dataset(
    run_dir: str | Path,
    trials: int,
    out: str | Path,
    epsilon: float = 0.0,
    sampled: bool = False,
    seed: int = 0,
    checkpoint: str | int | None = None,
    device: str | None = None,
    env_overrides: dict[str, Any] | None = None,
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> dict[str, Any]:
    """Play `trials` trials of a run's checkpoint (latest, or `checkpoint`) and write them as a dataset
    at `out` (which must not exist); returns its `dataset.json` content. Actions are greedy (or sampled),
    each replaced with probability `epsilon` by a uniformly random one. Trials with NaN or inf data are
    dropped and counted (`dropped_nonfinite`)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    ckpt = resolve_checkpoint(run_dir, checkpoint)
    cfg, agent, extra = load_run_agent(
        run_dir, ckpt, device=device, trust_env_module=trust_env_module, imports=imports
    )
    cfg = eval_env_config(cfg, env_overrides, use_eval_kwargs=False)
    probe = make_checked_env(cfg)
    budget = {"episodes": probe.episodes} if probe.steps is None else {"steps": probe.steps}
    spaces = {
        "observation_space": describe_space(probe.observation_space),
        "action_space": describe_space(probe.action_space),
    }
    probe.close()
    num_envs = max(1, min(cfg.env.num_actors, trials))
    envs = make_vector_env(env_factory(cfg), num_envs, asynchronous=False, seed=seed)
    try:
        collector = DatasetCollector(
            envs, agent, explore=None, device=cfg.device, seed=seed, greedy=not sampled,
            env_id=cfg.env.id, epsilon=epsilon,
        )
        collector.run_trials(trials)
    finally:
        envs.close()
    per_actor = -(-trials // num_envs)
    chosen = [collector.kept[a][k] for k in range(per_actor) for a in range(num_envs)][:trials]
    good = [(stats, trial) for stats, trial in chosen if stats.nonfinite is None]
    with building_dir(out) as tmp:
        store = ReplayStore(tmp, max_fifo_trials=1, owner=False)
        for _, trial in good:
            store.add(trial, protected=True)
        info = {
            "env_id": cfg.env.id,
            "env_kwargs": cfg.env.kwargs,
            "trial": budget,
            "trial_end": cfg.env.trial_end,
            **spaces,
            "trials": len(good),
            "transitions": int(sum(s.length for s, _ in good)),
            "episodes": int(sum(len(s.episode_returns) for s, _ in good)),
            **return_summary([s.total_return for s, _ in good]),
            "dropped_nonfinite": len(chosen) - len(good),
            "source": {
                "kind": "collect",
                "run": str(Path(run_dir).resolve()),
                "checkpoint": ckpt.name,
                "updates": extra.get("updates"),
                "env_steps": extra.get("env_steps"),
                "epsilon": epsilon,
                "sampled": sampled,
                "seed": seed,
            },
        }
        write_dataset_info(tmp, info)
    return {"format": 1, **info}
