"""A trained agent as a policy for your own gymnasium loop: `icrl.load_policy(run_dir)`.

    policy = icrl.load_policy("runs/my-run")
    obs, _ = env.reset()
    policy.reset()
    while True:
        action = policy.act(obs)                        # the inner env's observation and action space
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward, terminated, truncated)
        if terminated or truncated:
            obs, _ = env.reset()

The agent reads trial observations (docs/ARCHITECTURE.md §1); the policy builds them itself, as
`TrialWrapper` does: it keeps the previous action and reward, the time index inside the trial, the
episode-start flag and the sequence model's memory, counts episodes (or steps) against the run's trial
budget, and starts a new trial's memory when the budget is used up. A Box action comes back rescaled to the
inner env's bounds. With N envs, `reset(num_envs=N)`, then batched observations (a leading N axis) and
arrays of rewards and flags; each env is tracked on its own, so their episodes may end at different steps.

Hidden-task envs (MetaFrozenLake, HalfCheetahVel, ...) keep their task until they are reset with
`options={"new_task": True}`: reset the env that way where `policy.trial_ended` is True to play what
`icrl eval` plays (a step-budget trial can end inside an episode; then that reset also starts its first).

Loading needs the run directory only: `config.json`, a checkpoint and `spaces.json` (the env's spaces and
trial budget, recorded when the run started). A run without `spaces.json` makes one env of the run for
them, under the rules of `icrl.envs.trust` (a `MODULE:EnvId` id needs `trust_env_module` or `imports`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import create_empty_array

from icrl.config import Config, load_config
from icrl.envs.space_record import read_spaces_record, space_from_json, spaces_record
from icrl.envs.spaces import (
    action_feature_dim,
    agent_action_space,
    dict_obs_paths,
    make_action_encoder,
    make_box_action_adapter,
    trial_observation_space,
)
from icrl.envs.trial import trial_observation
from icrl.train.collector import zero_nonfinite


class Policy:
    """A loaded agent acting in N envs of your own (see the module docstring for the loop).

    Attributes: `agent` (the `Agent`, eval mode), `config` (the run's `Config`), `checkpoint` (its folder;
    `updates` and `env_steps` the checkpoint's counts),
    `observation_space` / `action_space` (the inner env's spaces), `episodes` or `steps` (the trial
    budget; the other is None), `num_envs`, `trial_ended` ((N,) bool, or a bool with one env: the last
    `observe` ended that env's trial)."""

    def __init__(
        self,
        agent: Any,
        config: Config,
        checkpoint: Path,
        observation_space: gym.Space,
        action_space: gym.Space,
        trial: dict[str, int],
        greedy: bool = True,
        seed: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.agent, self.config, self.checkpoint = agent, config, checkpoint
        self.updates: int | None = (extra or {}).get("updates")
        self.env_steps: int | None = (extra or {}).get("env_steps")
        self.observation_space, self.action_space = observation_space, action_space
        self.episodes: int | None = trial.get("episodes")
        self.steps: int | None = trial.get("steps")
        self.greedy = greedy
        self.device = next(agent.parameters()).device
        self.generator = torch.Generator().manual_seed(seed)  # draws sampled actions (greedy=False)
        self.trial_space = trial_observation_space(observation_space, action_space)
        is_dict = isinstance(observation_space, spaces.Dict)
        self._obs_paths = dict_obs_paths(observation_space) if is_dict else None
        # The leaf whose rank tells a single observation from a batch (the first one of a Dict).
        self._probe_path, self._probe_space = (
            (self._obs_paths[0][1], self.trial_space[self._obs_paths[0][0]])
            if self._obs_paths is not None else ((), observation_space)
        )
        # As TrialWrapper: an agent action -> (the inner env's action, its `prev_action` feature).
        self._adapt: Callable[[Any], tuple[Any, np.ndarray]]
        if isinstance(action_space, spaces.Box):
            self._adapt = make_box_action_adapter(action_space)
        else:
            encode = make_action_encoder(agent_action_space(action_space))
            self._adapt = lambda action: (action, encode(action))
        self._action_dim = action_feature_dim(action_space)
        self.reset(1)

    # ------------------------------------------------------------------ trials
    def reset(self, num_envs: int | None = None, mask: Sequence[bool] | np.ndarray | None = None) -> None:
        """Start a new trial in every env (`num_envs` of them: default the current count, 1 at first), or,
        with `mask` ((N,) bool), only in those envs (e.g. ones you reset with a new task yourself)."""
        if mask is not None:
            done = np.asarray(mask, dtype=bool).reshape(-1)
            if done.shape != (self.num_envs,) or (num_envs is not None and num_envs != self.num_envs):
                raise ValueError(f"mask needs one entry per env ({self.num_envs}), got shape {done.shape}")
            self._start_trials(done)
            self._pending = None
            return
        n = self.num_envs if num_envs is None else num_envs
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = int(n)
        self.state = self.agent.initial_state(self.num_envs, self.device)
        self._time = np.zeros(self.num_envs, dtype=np.int64)  # (N,) time index inside the trial
        self._episode = np.zeros(self.num_envs, dtype=np.int64)  # (N,) episode index inside the trial
        self._prev_action = np.zeros((self.num_envs, self._action_dim), dtype=np.float32)  # (N, A)
        self._prev_reward = np.zeros(self.num_envs, dtype=np.float64)  # (N,)
        self._first = np.ones(self.num_envs, dtype=bool)  # (N,)
        self._ended = np.zeros(self.num_envs, dtype=bool)  # (N,)
        self._pending: list[np.ndarray] | None = None  # the `prev_action` rows of the actions last returned
        self._batch = create_empty_array(self.trial_space, self.num_envs, fn=np.zeros)  # as the vector env
        self._batched = self.num_envs > 1  # whether `act` was last given a batch

    def _start_trials(self, done: np.ndarray) -> None:
        """Envs `done` (N,) bool start a new trial: no previous action or reward, time 0, a fresh memory."""
        if not done.any():
            return
        self._time[done] = 0
        self._episode[done] = 0
        self._prev_action[done] = 0.0
        self._prev_reward[done] = 0.0
        self._first[done] = True
        self.state = self.agent.reset_state(self.state, torch.as_tensor(done, device=self.device))

    @property
    def trial_ended(self) -> np.ndarray | bool:
        return self._ended if self._batched else bool(self._ended[0])

    # ------------------------------------------------------------------ acting
    def _is_batch(self, obs: Any) -> bool:
        leaf = obs
        for key in self._probe_path:
            leaf = leaf[key]
        rank, single = np.ndim(leaf), len(self._probe_space.shape)
        if rank not in (single, single + 1):
            raise ValueError(
                f"observation of shape {np.shape(leaf)} fits neither the env's observation space "
                f"{self._probe_space} nor a batch of it"
            )
        if rank == single:
            if self.num_envs != 1:
                raise ValueError(f"one observation for {self.num_envs} envs: pass a batch (a leading "
                                 f"{self.num_envs} axis) or call reset(num_envs=1)")
            return False
        if np.shape(leaf)[0] != self.num_envs:
            raise ValueError(f"a batch of {np.shape(leaf)[0]} observations for {self.num_envs} envs: call "
                             f"reset(num_envs={np.shape(leaf)[0]}) first")
        return True

    def _row(self, obs: Any, i: int) -> Any:
        """Env i's inner observation out of a batch (a Dict observation: every leaf indexed)."""
        if isinstance(obs, dict):
            return {key: self._row(value, i) for key, value in obs.items()}
        return obs[i]

    def act(self, obs: Any) -> Any:
        """The action for the inner env's observation `obs` (one, or a batch with a leading N axis: then
        a batch of actions). Box actions lie in the inner Box's bounds. Call `observe` after the step."""
        batched = self._is_batch(obs)
        self._batched = batched
        for i in range(self.num_envs):
            inner = self._row(obs, i) if batched else obs
            row = trial_observation(inner, self._obs_paths, self._prev_action[i], float(self._prev_reward[i]),
                                    int(self._time[i]), bool(self._first[i]))
            for key, value in row.items():
                self._batch[key][i] = value  # cast to the space's dtype, as `icrl eval`'s vector env does
        obs_t = {}
        for key, value in self._batch.items():
            obs_t[key] = torch.as_tensor(zero_nonfinite(value), device=self.device)  # as the collector
        actions, self.state = self.agent.act(obs_t, self.state, greedy=self.greedy, generator=self.generator)
        actions = zero_nonfinite(actions)
        inner_actions, self._pending = [], []
        for i in range(self.num_envs):
            inner_action, prev_action = self._adapt(actions[i])
            inner_actions.append(inner_action)
            self._pending.append(prev_action)
        return np.stack(inner_actions) if batched else inner_actions[0]

    def observe(self, reward: Any, terminated: Any, truncated: Any) -> None:
        """Record the outcome of the step taken with the last actions (scalars, or (N,) arrays). An env
        whose episode ended starts its next episode inside the trial; one whose trial budget is used up
        starts a new trial (`trial_ended`)."""
        if self._pending is None:
            raise RuntimeError("observe() needs an act() before it (one observe per step)")
        rewards = np.asarray(reward, dtype=np.float64).reshape(-1)
        term = np.asarray(terminated, dtype=bool).reshape(-1)
        trunc = np.asarray(truncated, dtype=bool).reshape(-1)
        for name, values in (("reward", rewards), ("terminated", term), ("truncated", trunc)):
            if values.shape != (self.num_envs,):
                raise ValueError(f"{name} needs one value per env ({self.num_envs}), got {values.shape[0]}")
        self._time += 1
        self._prev_action[:] = np.stack(self._pending)
        self._prev_reward[:] = rewards
        self._pending = None
        episode_done = term | trunc
        if self.steps is not None:
            trial_over = self._time >= self.steps
        else:
            trial_over = episode_done & (self._episode + 1 >= self.episodes)
        next_episode = episode_done & ~trial_over
        self._episode[next_episode] += 1
        self._first = next_episode.copy()
        self._ended = trial_over
        self._start_trials(trial_over)


def _trial_budget(cfg: Config, recorded: dict[str, int]) -> dict[str, int]:
    """The config's own budget when it names one, else the one the run's envs ran with."""
    if cfg.env.trial_steps is not None:
        return {"steps": cfg.env.trial_steps}
    if cfg.env.trial_episodes is not None:
        return {"episodes": cfg.env.trial_episodes}
    return dict(recorded)


def load_policy(
    run_dir: str | Path,
    checkpoint: str | int | None = None,
    device: str = "cpu",
    greedy: bool = True,
    acting_gamma: float | None = None,
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
    weights: Literal["live", "ema"] = "live",
    seed: int = 0,
) -> Policy:
    """A run's trained agent as a `Policy` for a plain gymnasium loop over the run's env.

    `checkpoint`: a name (`ckpt_000007000`, `best`, `avg`) or an update count; default the newest intact
    one. `greedy=False` samples actions (drawn with a generator seeded by `seed`). `acting_gamma` acts with
    another trained discount's actor head; `weights="ema"` with the checkpoint's moving average. The
    spaces and trial budget come from `RUN/spaces.json`; only a run without it (or whose env changed
    since it was written) makes one env of the run, which imports a `MODULE:EnvId` id's module only with
    `trust_env_module` or MODULE in `imports` (UntrustedEnvModule otherwise)."""
    from icrl.agent.agent import acting_head
    from icrl.envs.trust import load_run_config
    from icrl.train.checkpoint import load_checkpoint
    from icrl.train.evaluate import resolve_checkpoint
    from icrl.train.factory import SetupError, build_agent, check_device, make_checked_env

    if weights not in ("live", "ema"):
        raise SetupError(f"weights must be 'live' or 'ema', got {weights!r}")
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir, checkpoint)
    cfg = load_config(run_dir / "config.json")  # data only: nothing is imported
    record = read_spaces_record(run_dir)
    if record is None or (record["env_id"], record["env_kwargs"]) != (cfg.env.id, cfg.env.kwargs):
        cfg = load_run_config(run_dir, trust_env_module, imports)  # the consent rule, then one env
        env = make_checked_env(cfg)
        try:
            record = spaces_record(env, cfg.env.id, cfg.env.kwargs)
        finally:
            env.close()
        record["observation_space"] = space_from_json(record["observation_space"])
        record["action_space"] = space_from_json(record["action_space"])
    if acting_gamma is not None:
        cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, acting_gamma=acting_gamma))
    cfg = dataclasses.replace(cfg, device=device)
    check_device(device)
    try:
        acting_head(cfg.gammas, cfg.agent.acting_gamma)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    obs_space, action_space = record["observation_space"], record["action_space"]
    trial_space = trial_observation_space(obs_space, action_space)
    agent = build_agent(cfg, trial_space, agent_action_space(action_space))
    extra = load_checkpoint(ckpt, agent, restore_rng=False, weights=weights)
    agent = agent.to(torch.device(device)).eval()
    budget = _trial_budget(cfg, record["trial"])
    return Policy(agent, cfg, ckpt, obs_space, action_space, budget, greedy, seed, extra)
