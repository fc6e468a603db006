"""Builders shared by training and evaluation: environments and agents from a Config."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from icrl.agent.agent import Agent, resolve_precision
from icrl.config import Config
from icrl.envs.trial import make_trial_env


def env_factory(cfg: Config):
    """A picklable zero-argument env constructor (AsyncVectorEnv sends it to subprocesses)."""
    return functools.partial(
        make_trial_env,
        cfg.env.id,
        episodes=cfg.env.trial_episodes,
        steps=cfg.env.trial_steps,
        budget_end=cfg.env.trial_end,
        **cfg.env.kwargs,
    )


class EnvConfigError(ValueError):
    """The config's env id or keyword arguments do not make an env (the CLI prints it as one line)."""


def check_env_config(cfg: Config, what: str = "env") -> None:
    """Make and close one env of `cfg`, so that a wrong id or keyword argument fails at once, before a
    run directory exists, with the env's own message (not at the first evaluation, thousands of updates
    later, for `eval_kwargs`)."""
    try:
        env = env_factory(cfg)()
    except (ValueError, TypeError, ImportError, gym.error.Error) as exc:
        made = f"{what} {cfg.env.id!r} with kwargs {cfg.env.kwargs}"
        raise EnvConfigError(f"{made} cannot be made: {exc}") from exc
    env.close()


def build_agent(cfg: Config, obs_space: Any, action_space: Any) -> Agent:
    model = resolve_precision(cfg.model, cfg.device)
    return Agent(obs_space, action_space, model, cfg.agent, cfg.gammas)


def env_exploration_schedule(cfg: Config) -> Callable[[np.ndarray], np.ndarray] | None:
    """The env's own within-trial exploration schedule (`exploration_multiplier(time)`), if it has one."""
    probe = env_factory(cfg)()
    try:
        return getattr(probe.unwrapped, "exploration_multiplier", None)
    finally:
        probe.close()
