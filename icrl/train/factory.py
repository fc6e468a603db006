"""Builders shared by training and evaluation: environments and agents from a Config."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from icrl.agent.agent import Agent, resolve_precision
from icrl.config import Config
from icrl.envs.multitask import load_task_file, make_multitask_trial_env, normalize_tasks
from icrl.envs.space_record import spaces_record
from icrl.envs.trial import make_trial_env, trial_horizon
from icrl.envs.trust import describe_env_failure, make_run_env, run_env_of
from icrl.replay.relabel import RelabelSpec
from icrl.train.resolve import resolve_action_defaults


def env_tasks(cfg: Config) -> list[dict[str, Any]] | None:
    """The run's normalised task list (`icrl.envs.multitask.normalize_tasks`) when it is multi-task
    (`env.ids`, `env.task_list` or an `env.tasks` file), else None. `env.kwargs` go to every task."""
    if cfg.env.task_list:
        return normalize_tasks(list(cfg.env.task_list), cfg.env.kwargs)
    if cfg.env.tasks:
        return normalize_tasks(load_task_file(cfg.env.tasks), cfg.env.kwargs)
    if cfg.env.ids:
        # `--env.ids A,B` and `--env.ids A B` both work: ids hold no commas.
        ids = [env_id for item in cfg.env.ids for env_id in item.split(",") if env_id]
        return normalize_tasks([{"id": env_id} for env_id in ids], cfg.env.kwargs)
    return None


def env_factory(cfg: Config, fixed_task: int | None = None):
    """A picklable zero-argument env constructor (AsyncVectorEnv sends it to subprocesses). The env of a run
    loaded from its directory (`icrl.envs.trust.load_run_config`) is made, in whatever process, with its
    consented modules imported first and without the current or run directory on `sys.path`. A multi-task
    config gives a `MultiTaskEnv` in a trial (its task pinned to `fixed_task` when given)."""
    tasks = env_tasks(cfg)
    if tasks is not None:
        return functools.partial(
            make_multitask_trial_env,
            tasks,
            task_id=cfg.env.task_id,
            fixed_task=fixed_task,
            episodes=cfg.env.trial_episodes,
            steps=cfg.env.trial_steps,
            budget_end=cfg.env.trial_end,
        )
    run_env = run_env_of(cfg.env.id)
    make = make_trial_env if run_env is None else functools.partial(make_run_env, run_env)
    return functools.partial(
        make,
        cfg.env.id,
        episodes=cfg.env.trial_episodes,
        steps=cfg.env.trial_steps,
        budget_end=cfg.env.trial_end,
        **cfg.env.kwargs,
    )


class SetupError(ValueError):
    """The config cannot run here: its env cannot be made, or its torch device is not available. Raised
    before anything is written; the CLI prints it as one line."""


def check_device(name: str) -> torch.device:
    """`name` as a torch device, checked to exist on this machine (a clear error, not a CUDA assert)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SetupError(f"device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    missing = None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = "a CUDA" if torch.backends.cuda.is_built() else "a CPU-only"
            missing = f"no CUDA device is available ({built} build of torch {torch.__version__})"
        elif device.index is not None and device.index >= count:
            missing = f"this machine has {count} CUDA device(s)"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        missing = "MPS is not available"
    if missing:
        raise SetupError(
            f"device {name!r}: {missing}; use device cpu instead "
            "(`--device cpu` for icrl train and icrl eval, `--set device=cpu` for icrl resume)"
        )
    return device


def make_checked_env(cfg: Config, what: str = "env") -> gym.Env:
    """One env of `cfg`; a wrong id or keyword argument raises SetupError with the env's own message."""
    try:
        return env_factory(cfg)()
    except (ValueError, TypeError, ImportError, gym.error.Error) as exc:  # also: a module or an extra missing
        if cfg.env.multitask:  # the tasks, not the unused single-env id, are what failed
            reason, tasks = " ".join(str(exc).split()), cfg.env.describe_tasks()
            raise SetupError(f"multi-task {what} ({tasks}) cannot be made: {reason}") from exc
        raise SetupError(describe_env_failure(what, cfg, exc)) from exc


def check_eval_env(eval_cfg: Config, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Make one evaluation env (`eval_cfg`: the run's config as `eval_env_config` made it) and check that it
    fits the agent trained on the training env's spaces; SetupError naming both spaces otherwise."""
    env = make_checked_env(eval_cfg, "evaluation env")
    try:
        for what, theirs, ours in (
            ("observation", env.observation_space, observation_space),
            ("action", env.action_space, action_space),
        ):
            if theirs != ours:
                raise SetupError(
                    f"the evaluation env's {what} space {theirs} differs from the training env's {ours}: "
                    "an agent trained on one cannot act in the other"
                )
    finally:
        env.close()


def check_env_config(cfg: Config, what: str = "env") -> None:
    """Make and close one env of `cfg`, so that a wrong id or keyword argument fails at once, before a
    run directory exists (not at the first evaluation, thousands of updates later, for `eval_kwargs`)."""
    make_checked_env(cfg, what).close()


def env_relabel_spec(cfg: Config, probe: EnvProbe) -> RelabelSpec | None:
    """The probed env's hindsight relabelling spec when `replay.relabel` is on (None when off); SetupError
    when it has none or its trials hold more than one episode (a completed instruction ends the episode)."""
    if cfg.replay.relabel == 0:
        return None
    if probe.relabel_spec is None:
        raise SetupError(
            f"replay.relabel needs a goal-conditioned env with a relabel_spec (e.g. icrl/GoalGrid-v0); "
            f"{cfg.env.id!r} has none"
        )
    if not probe.one_episode:
        raise SetupError("replay.relabel needs trials of one episode (--env.trial-episodes 1)")
    return probe.relabel_spec


def build_agent(cfg: Config, obs_space: Any, action_space: Any) -> Agent:
    """The agent of `cfg` for these (trial-wrapped) spaces; fields left to the env are resolved as a run
    resolves them (`icrl.train.resolve`), so an agent built from an unresolved config is the run's."""
    cfg = resolve_action_defaults(cfg, action_space)
    model = resolve_precision(cfg.model, cfg.device)
    return Agent(obs_space, action_space, model, cfg.agent, cfg.gammas)


@dataclass(frozen=True)
class EnvProbe:
    """What the trainer reads from one env of its config before it starts."""

    within_trial: Callable[[np.ndarray], np.ndarray] | None
    """The env's own within-trial exploration schedule (`exploration_multiplier(time)`), if it has one."""
    relabel_spec: RelabelSpec | None
    """Its hindsight relabelling spec, if it is goal-conditioned."""
    one_episode: bool
    """Whether its trials hold exactly one episode."""
    observation_space: Any = None
    action_space: Any = None
    """Its spaces (the trainer checks the agent they give before the run directory exists)."""
    spaces_record: dict[str, Any] | None = None
    """Its inner spaces and trial budget as data (`RUN/spaces.json`, `icrl.envs.space_record`)."""
    trial_budget: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Its trial budget: `{"episodes": k}` or `{"steps": H}`."""
    trial_horizon: int | None = None
    """The most steps one of its trials can take, when the env states it (`icrl.envs.trial.trial_horizon`)."""


def probe_env(cfg: Config) -> EnvProbe:
    """Make one env of `cfg`, read what the trainer needs from it and close it. Making it doubles as the
    check of the env config (SetupError, see `make_checked_env`)."""
    probe = make_checked_env(cfg)
    try:
        return EnvProbe(
            within_trial=getattr(probe.unwrapped, "exploration_multiplier", None),
            relabel_spec=getattr(probe.unwrapped, "relabel_spec", None),
            one_episode=getattr(probe, "episodes", None) == 1 and getattr(probe, "steps", None) is None,
            observation_space=probe.observation_space,
            action_space=probe.action_space,
            spaces_record=spaces_record(probe, cfg.env.id, cfg.env.kwargs),
            trial_budget={"episodes": probe.episodes} if probe.steps is None else {"steps": probe.steps},
            trial_horizon=trial_horizon(probe),
        )
    finally:
        probe.close()
