"""Rollouts: N parallel actors driven by the cached policy, trials written whole to the replay store.

The collector owns resets (vector envs run with gymnasium's autoreset disabled): when an actor's trial
ends, its trial is saved, only that actor's env is reset and only its sequence-model state is cleared.

Evaluation plays with the same machinery (`run_trials`); its ablations (`first_steps`, `forget_episodes`)
live in a subclass beside the rest of evaluation (`icrl.train.evaluate.EvalCollector`), through two hooks
called at every step (`_after_step`, `_after_reset`) and one per finished trial (`_trial_stats`).

Non-finite data (NaN or inf in an observation, a reward or an action) is caught as it enters, step by step:
the agent sees such values as 0 (its memory of the actor is not poisoned until the trial ends) and the env
receives 0 for a non-finite action, the trial is flagged (`TrialStats.nonfinite`, the first kind seen) and,
when it ends, it is not written to the replay store. `NonFiniteTrials` counts such trials per kind, warns
once per kind and says when the env keeps producing them; `summarize_trials` leaves them out of the means
(training and evaluation alike) and reports their counts as `<prefix>/nonfinite_trials_<kind>`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from icrl.config import ExplorationConfig
from icrl.nets.encoders import ACTION_MASK_KEY
from icrl.replay.relabel import ACHIEVED_KEY
from icrl.train.stopping import EvaluationStopped

OBS_TIME = "time"
OBS_FIRST = "first"
PREV_INPUTS = ("prev_action", "prev_reward")  # what a trial's first observation zeroes (TrialWrapper)
NONFINITE_KINDS = ("obs", "reward", "action")
TASK_INDEX_KEY = "task_index"  # info key of multi-task envs (icrl.envs.multitask): the current task's index
# A training run stops once this many finished trials in a row held non-finite data. A broken env produces
# them in every trial; an env that glitches in a fraction p of its trials does so 20 times in a row only
# with probability p**20 (one in a million at p = 1/2), so a run that can still learn is not stopped by a
# run of bad luck, and a broken one stops after a few seconds of collection instead of at its budget.
NONFINITE_TRIALS_IN_A_ROW = 20


@dataclass
class TrialStats:
    """Outcome of one finished trial."""

    total_return: float
    length: int
    episode_returns: list[float]
    episode_successes: list[float] = field(default_factory=list)
    actor: int = -1
    episode_start_returns: list[float] = field(default_factory=list)
    """Return of each episode's first `first_steps` transitions (filled only when asked for)."""
    nonfinite: str | None = None
    """The first kind of non-finite value (NaN or inf) the trial held ("obs", "reward" or "action"), None for
    a clean trial. Such a trial is neither stored nor scored (`summarize_trials` only counts it)."""


class NonFiniteTrials:
    """Counts finished trials that held non-finite data, per kind; warns once per kind (naming the env);
    with `stop_after`, `failure` says when that many trials in a row held some.

    The warning's text depends only on the env id and the kind, and it is issued from one place, so under
    Python's default warning filter (each text shown once per place) a process shows it once per kind:
    the evaluations during a training run, each with a counter of its own, add no line."""

    def __init__(self, env_id: str, stop_after: int | None = None, warn: bool = True) -> None:
        self.env_id, self.stop_after, self.warn = env_id, stop_after, warn
        self.counts = dict.fromkeys(NONFINITE_KINDS, 0)
        self.in_a_row = 0
        self.last_kind: str | None = None

    def record(self, stats: TrialStats) -> None:
        kind = stats.nonfinite
        if kind is None:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.last_kind = kind
        self.counts[kind] += 1
        if self.warn and self.counts[kind] == 1:
            warnings.warn(
                f"env {self.env_id!r} gave a trial with a non-finite {kind} (NaN or inf): it was dropped, "
                f"neither stored nor scored, and such trials are counted as */nonfinite_trials_{kind} "
                "(warned once per kind)",
                RuntimeWarning,
                stacklevel=1,  # this line, whoever counts: the same text is then shown once per process
            )

    @property
    def failure(self) -> str | None:
        """Why the run must stop (the env keeps producing non-finite data), or None."""
        if self.stop_after is None or self.in_a_row < self.stop_after:
            return None
        return (
            f"env {self.env_id!r} gave a non-finite {self.last_kind} (NaN or inf) in each of the last "
            f"{self.in_a_row} trials"
        )


class EpsilonSchedule:
    """Epsilon that is annealed over training, differs per actor and shrinks within a trial.

    `env_multiplier(time)` replaces the default within-trial decay when the env supplies its own
    schedule (e.g. T-Maze: explore at the turn, barely in the corridor).
    """

    def __init__(
        self,
        cfg: ExplorationConfig,
        rng: np.random.Generator,
        env_multiplier: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.cfg, self.rng, self.env_multiplier = cfg, rng, env_multiplier

    def max_epsilon(self, env_steps: int) -> float:
        frac = min(1.0, env_steps / max(1, self.cfg.anneal_env_steps))
        return self.cfg.eps_start + frac * (self.cfg.eps_end - self.cfg.eps_start)

    def draw(self, num: int, env_steps: int) -> np.ndarray:
        """Per-actor epsilon for newly started trials: uniform in [eps_min, current max]."""
        high = self.max_epsilon(env_steps)
        low = min(self.cfg.eps_min, high)
        return self.rng.uniform(low, high, size=num)

    def within_trial(self, eps: np.ndarray, time: np.ndarray, horizon: float) -> np.ndarray:
        """More exploration early in a trial, less late: linear decay to `late_trial_fraction`."""
        if self.env_multiplier is not None:
            return eps * self.env_multiplier(time)
        progress = np.minimum(1.0, time / max(1.0, horizon))
        return eps * (1.0 - (1.0 - self.cfg.late_trial_fraction) * progress)


def explore_actions(
    space: gym.Space,
    actions: np.ndarray,
    eps: np.ndarray,
    rng: np.random.Generator,
    action_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Exploration on env-ready actions (N, ...) with a per-actor scale eps (N,).

    Discrete: a uniformly random action with probability eps; with a valid-action mask (N, n) (1 = valid,
    a prefix [0, n_k) per actor, from a multi-task env of mixed action counts) drawn among the valid ones.
    Box (the agent's [-1, 1] space): Gaussian noise of std eps, then clipped to [-1, 1]. MultiBinary: each
    bit flips with probability eps.
    """
    if isinstance(space, gym.spaces.Discrete):
        explore = rng.random(len(actions)) < eps
        if explore.any():
            actions = actions.copy()
            if action_mask is None:
                high: int | np.ndarray = int(space.n)
            else:
                high = np.maximum((np.asarray(action_mask)[explore] > 0.5).sum(-1), 1)
            actions[explore] = int(space.start) + rng.integers(0, high, size=int(explore.sum()))
        return actions
    scale = eps.reshape(-1, *([1] * (actions.ndim - 1)))
    if isinstance(space, gym.spaces.Box):
        noisy = actions + scale * rng.standard_normal(actions.shape)
        return np.clip(noisy, -1.0, 1.0).astype(actions.dtype)
    if isinstance(space, gym.spaces.MultiBinary):
        flip = rng.random(actions.shape) < scale
        return np.where(flip, 1 - actions, actions).astype(actions.dtype)
    raise NotImplementedError(f"no exploration for action space {space}")


def _nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """(N,) bool: the rows of `values` (N, ...) that hold a NaN or inf (none for integer or bool data)."""
    if not np.issubdtype(values.dtype, np.floating):
        return np.zeros(len(values), dtype=bool)
    return ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)


def zero_nonfinite(values: np.ndarray) -> np.ndarray:
    """`values` with NaN and inf replaced by 0 (the array itself when it holds none, or is not floating).
    What the policy is shown and the env is sent in place of non-finite data: one NaN in a recurrent state
    or an attention cache would reach every later step, and a NaN action could crash the env."""
    if not np.issubdtype(values.dtype, np.floating) or np.isfinite(values).all():
        return values
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def _index_info(info: dict[str, Any], key: str, i: int) -> Any:
    if key in info and info.get(f"_{key}", np.ones(len(info[key]), bool))[i]:
        return info[key][i]
    return None


class Collector:
    """Steps a vector env with the agent's cached policy and stores every finished trial."""

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        agent: Any,
        explore: ExplorationConfig | None,
        device: torch.device | str = "cpu",
        store: Any = None,
        seed: int = 0,
        greedy: bool = False,
        horizon: float = 256.0,
        within_trial: Callable[[np.ndarray], np.ndarray] | None = None,
        env_id: str = "env",
        nonfinite: NonFiniteTrials | None = None,
    ) -> None:
        """`env_id` names the env in warnings; `nonfinite` counts the trials with non-finite data (default: a
        counter of this collector's own that warns once per kind and never asks to stop)."""
        self.envs, self.agent, self.store, self.device = envs, agent, store, torch.device(device)
        self.num = envs.num_envs
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.explore = explore
        self.schedule = EpsilonSchedule(explore, self.rng, within_trial) if explore is not None else None
        self.greedy = greedy
        self.horizon = float(horizon)
        self.seed = seed
        self.nonfinite = nonfinite if nonfinite is not None else NonFiniteTrials(env_id)
        self.obs: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ state
    def start(self, env_steps: int = 0) -> None:
        """Start a fresh trial in every actor."""
        self.obs, _ = self.envs.reset(seed=self.seed)
        self.bad: list[str | None] = [None] * self.num  # per actor: the trial's first non-finite kind
        self._check_obs()
        self.state = self.agent.initial_state(self.num, self.device)
        self.buffers: list[dict[str, list]] = [self._new_buffer() for _ in range(self.num)]
        for i in range(self.num):
            self._append_obs(i)
        self.eps = self.schedule.draw(self.num, env_steps) if self.schedule else np.zeros(self.num)

    @staticmethod
    def _new_buffer() -> dict[str, list]:
        keys = ("obs", "action", "reward", "success", "reported", "achieved", "task")
        return {key: [] for key in keys}

    def _append_obs(self, i: int) -> None:
        self.buffers[i]["obs"].append({k: v[i].copy() for k, v in self.obs.items()})

    def _flag(self, rows: np.ndarray, kind: str) -> None:
        """Mark the current trials of actors `rows` (N,) bool as holding non-finite `kind` data."""
        for i in np.flatnonzero(rows):
            if self.bad[i] is None:
                self.bad[i] = kind

    def _check_obs(self) -> None:
        """Flag actors whose new observation holds a NaN or inf, and show the agent 0 there instead: their
        trials are dropped anyway, and one NaN in a recurrent state or an attention cache would reach every
        later step of the actor (and a sampled action would fail on NaN probabilities). `prev_action` and
        `prev_reward` echo the action and reward, already flagged under their own kinds."""
        clean = None
        for key, value in self.obs.items():
            rows = _nonfinite_rows(value)
            if not rows.any():
                continue
            if key not in PREV_INPUTS:
                self._flag(rows, "obs")
            clean = clean if clean is not None else dict(self.obs)
            clean[key] = zero_nonfinite(value)
        if clean is not None:
            self.obs = clean

    # ------------------------------------------------------------------ acting
    def _policy(self, env_steps: int) -> np.ndarray:
        obs_t = {k: torch.as_tensor(v, device=self.device) for k, v in self.obs.items()}
        greedy = self.greedy or (self.explore is not None and not self.explore.sample_actions)
        actions, self.state = self.agent.act(obs_t, self.state, greedy=greedy, generator=self.torch_gen)
        if self.schedule is not None:
            eps = self.schedule.within_trial(self.eps, self.obs[OBS_TIME].astype(np.float64), self.horizon)
            actions = explore_actions(
                self.envs.single_action_space, actions, eps, self.rng, self.obs.get(ACTION_MASK_KEY)
            )
        return actions

    def collect(self, steps_per_actor: int, env_steps: int = 0) -> list[TrialStats]:
        """Run every actor for `steps_per_actor` steps; returns the trials that finished."""
        if self.obs is None:
            self.start(env_steps)
        self.agent.eval()
        finished: list[TrialStats] = []
        for step in range(steps_per_actor):
            finished.extend(self._step(env_steps + step * self.num))
        return finished

    def run_trials(self, num_trials: int, should_stop: Callable[[], bool] | None = None) -> list[TrialStats]:
        """Evaluation: the first `ceil(num_trials / N)` trials of every actor (`num_trials` in all).

        Taking whichever trials finish first would over-represent short (often failed) trials; a fixed
        number per actor keeps the estimate unbiased. `should_stop` is asked before every step; when it
        says yes, EvaluationStopped is raised and the trials played so far are dropped (a stop signal
        during a long evaluation then takes one step, not the whole evaluation).
        """
        self.start()
        self.agent.eval()
        per_actor = -(-num_trials // self.num)
        finished: list[list[TrialStats]] = [[] for _ in range(self.num)]
        while min(len(f) for f in finished) < per_actor:
            if should_stop is not None and should_stop():
                raise EvaluationStopped(f"evaluation stopped after {sum(map(len, finished))} trials")
            for stats in self._step(0):
                finished[stats.actor].append(stats)
        ordered = [f[k] for k in range(per_actor) for f in finished]
        return ordered[:num_trials]

    def _step(self, env_steps: int) -> list[TrialStats]:
        actions = self._policy(env_steps)
        bad_actions = _nonfinite_rows(actions)
        if bad_actions.any():  # the env gets 0 instead (a NaN could crash it); the trial is dropped
            self._flag(bad_actions, "action")
            actions = zero_nonfinite(actions)
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        self._flag(~np.isfinite(np.asarray(reward, dtype=np.float64)), "reward")
        self.obs = obs
        self._check_obs()
        done = np.logical_or(terminated, truncated)
        self._after_step(done)
        finished = []
        for i in range(self.num):
            buf = self.buffers[i]
            buf["action"].append(actions[i])
            buf["reward"].append(float(reward[i]))
            value = _index_info(info, "success", i)  # None where the env said nothing this step
            buf["success"].append(float(value or 0.0))
            buf["reported"].append(value is not None)
            goal = _index_info(info, ACHIEVED_KEY, i)  # goal-conditioned envs: for hindsight relabelling
            buf["achieved"].append(None if goal is None else int(goal))
            task = _index_info(info, TASK_INDEX_KEY, i)  # multi-task envs: the trial's task, for the replay
            if task is not None:
                buf["task"].append(int(task))
            self._append_obs(i)
            if done[i]:
                finished.append(self._finish(i, bool(terminated[i])))
        if done.any():
            for i in np.flatnonzero(done):
                self.bad[i] = None
            self.obs, _ = self.envs.reset(options={"reset_mask": done})
            self._check_obs()  # the new trials' first observations (the others' are flagged already)
            done_t = torch.as_tensor(done, device=self.device)
            self.state = self.agent.reset_state(self.state, done_t)
            new_eps = self.schedule.draw(int(done.sum()), env_steps) if self.schedule else 0.0
            self.eps[done] = new_eps
            self._after_reset(done)
            for i in np.flatnonzero(done):
                self.buffers[i] = self._new_buffer()
                self._append_obs(i)
        return finished

    def _after_step(self, done: np.ndarray) -> None:
        """Called after every env step, before the step is recorded; `done` (N,) marks the actors whose
        trial just ended (their reset comes later). Nothing here; evaluation's ablations hook in."""

    def _after_reset(self, done: np.ndarray) -> None:
        """Called after the actors `done` (N,) were reset to a new trial, before its first observation is
        recorded. Nothing here; evaluation's ablations hook in."""

    def _trial_stats(self, trial: dict[str, np.ndarray], success: np.ndarray | None) -> TrialStats:
        """The statistics of a finished trial (`trial_stats`)."""
        return trial_stats(trial, success)

    def _finish(self, i: int, terminated: bool) -> TrialStats:
        buf = self.buffers[i]
        keys = buf["obs"][0].keys()
        trial = {k: np.stack([o[k] for o in buf["obs"]]) for k in keys}
        length = len(buf["action"])
        trial["action"] = np.asarray(buf["action"])
        if isinstance(self.envs.single_action_space, gym.spaces.MultiBinary):
            trial["action"] = trial["action"].astype(np.float32)  # stored as float 0/1 (ARCHITECTURE §2)
        trial["reward"] = np.asarray(buf["reward"], dtype=np.float32)
        trial["terminated"] = np.zeros(length, dtype=bool)
        trial["terminated"][-1] = terminated
        if any(goal is not None for goal in buf["achieved"]):  # (T + 1,) rows, aligned as observations
            achieved = [-1 if goal is None else goal for goal in buf["achieved"]]
            trial[ACHIEVED_KEY] = np.asarray([-1, *achieved], dtype=np.int64)
        kind = self.bad[i]
        if self.store is not None and kind is None:  # a trial with NaN or inf is never written
            # A multi-task trial keeps its task (the replay's per-task quota and balanced sampling).
            task = buf["task"][-1] if buf["task"] else None
            if task is None:
                self.store.add(trial)
            else:
                self.store.add(trial, task=task)
        self.horizon = max(self.horizon, float(length))
        # Successes count only for envs that report them; then a trial without one scores 0, not nothing.
        success = np.asarray(buf["success"], dtype=np.float32) if any(buf["reported"]) else None
        stats = self._trial_stats(trial, success)
        stats.actor, stats.nonfinite = i, kind
        self.nonfinite.record(stats)
        return stats


def trial_stats(
    trial: dict[str, np.ndarray], success: np.ndarray | None = None, first_steps: int | None = None
) -> TrialStats:
    """Total and per-episode returns (and successes) of a stored trial; with `first_steps=K` also the
    return of each episode's first K transitions (fewer where the episode is shorter)."""
    reward = trial["reward"]
    first = trial["first"].reshape(len(trial["first"]), -1)[:-1, 0]  # (T,)
    episode = np.maximum(np.cumsum(first > 0.5) - 1, 0)  # episode index of each transition
    count = int(episode[-1]) + 1 if len(episode) else 0
    episode_returns = np.bincount(episode, weights=reward, minlength=count).tolist()
    successes: list[float] = []
    if success is not None:
        successes = [float(success[episode == e].max()) for e in range(count)]
    stats = TrialStats(float(reward.sum()), int(len(reward)), episode_returns, successes)
    if first_steps is not None and count:
        _, episode_start = np.unique(episode, return_index=True)  # first transition of each episode
        step_in_episode = np.arange(len(episode)) - episode_start[episode]  # (T,)
        early = step_in_episode < first_steps
        starts = np.bincount(episode[early], weights=reward[early], minlength=count)
        stats.episode_start_returns = starts.tolist()
    return stats
