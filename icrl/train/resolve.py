"""Settings left to the env, resolved when a run starts, and the key choices a run prints at its start.

A field left at None in the config is decided from what the env states (`EnvProbe`), never from its name:

    model.context_len   the trial's length (`icrl.envs.trial.trial_horizon`), at most DEFAULT_CONTEXT_LEN;
                        DEFAULT_CONTEXT_LEN when the env states no episode limit
    model.max_time      learned positions over trials longer than the context: the trial's length + 1, so
                        every time index of the trial keeps an embedding of its own

    agent.extra_gammas, agent.num_critics, agent.num_action_samples
                        the action kind's (`icrl.config.ACTION_KIND_DEFAULTS`): fewer for Box and
                        MultiBinary actions, whose critics judge sampled actions

    agent.conservative_weight
                        DATA_CONSERVATIVE_WEIGHT for an offline-only run (`offline_data` and no env steps
                        to train on), else 0: online experience corrects the critic, and the penalty would
                        hold it to the data's actions

The resolved config is what `config.json` records, so a resume, `icrl eval` and `icrl.load_policy` see
numbers, not None.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gymnasium import spaces

from icrl.config import (
    DATA_CONSERVATIVE_WEIGHT,
    DEFAULT_CONTEXT_LEN,
    Config,
    agent_for_action_kind,
    conservative_weight,
)


def resolve_action_defaults(cfg: Config, action_space: Any) -> Config:
    """`cfg` with its agent fields left to the action kind filled in (`icrl.config.ACTION_KIND_DEFAULTS`):
    Box and MultiBinary actions are sampled to be judged, Discrete ones all scored at once."""
    sampled = not isinstance(action_space, spaces.Discrete)
    agent = agent_for_action_kind(cfg.agent, sampled)
    return cfg if agent is cfg.agent else dataclasses.replace(cfg, agent=agent)


def resolve_data_defaults(cfg: Config) -> Config:
    """`cfg` with `agent.conservative_weight` filled in: on for an offline-only run, else off."""
    if cfg.agent.conservative_weight is not None:
        return cfg
    weight = DATA_CONSERVATIVE_WEIGHT if cfg.offline_data and cfg.total_env_steps == 0 else 0.0
    return dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, conservative_weight=weight))


def going_online(recorded: Config, overrides: dict[str, Any]) -> dict[str, Any]:
    """`icrl resume` overrides for a run: an offline-only run that a new budget takes online turns its
    conservative critic term off, as a run started online would, unless the overrides set it."""
    agent = overrides.get("agent") if isinstance(overrides.get("agent"), dict) else {}
    budget = overrides.get("total_env_steps")
    if recorded.total_env_steps != 0 or not budget or "conservative_weight" in agent:
        return overrides
    return {**overrides, "agent": {**agent, "conservative_weight": 0.0}}


def resolve_env_kwargs(cfg: Config) -> Config:
    """`cfg` with the env kwargs an adapter defaults recorded: a MiniGrid id's `spread_codes` (true), so
    that a run records which image codes it saw (runs from before lack it and load as false)."""
    from icrl.envs.minigrid_adapter import SPREAD_CODES, is_minigrid_id

    if cfg.env.multitask or not is_minigrid_id(cfg.env.id) or SPREAD_CODES in cfg.env.kwargs:
        return cfg
    env = dataclasses.replace(cfg.env, kwargs={**cfg.env.kwargs, SPREAD_CODES: True})
    return dataclasses.replace(cfg, env=env)


def resolve_env_defaults(cfg: Config, horizon: int | None, action_space: Any = None) -> Config:
    """`cfg` with its env-derived fields filled in from the trial length `horizon` (None: unknown) and,
    given one, the agent-facing `action_space`; with the settings that follow from training from data and
    the adapter kwargs a run records (`resolve_env_kwargs`)."""
    cfg = resolve_env_kwargs(resolve_data_defaults(cfg))
    if action_space is not None:
        cfg = resolve_action_defaults(cfg, action_space)
    model = cfg.model
    if model.context_len is not None:
        return cfg
    context = DEFAULT_CONTEXT_LEN if horizon is None else min(horizon, DEFAULT_CONTEXT_LEN)
    max_time = model.max_time
    if max_time is None and horizon is not None and horizon > context and model.pos_emb == "learned":
        max_time = horizon + 1  # time indices 0..horizon
    return dataclasses.replace(cfg, model=dataclasses.replace(model, context_len=context, max_time=max_time))


def _env_name(cfg: Config) -> str:
    return f"multi-task {cfg.env.describe_tasks()}" if cfg.env.multitask else cfg.env.id


def _samples_text(action_space: Any, samples: int | None) -> str:
    return "" if isinstance(action_space, spaces.Discrete) else f", {samples} sampled actions per discount"


def _trial_text(budget: dict[str, Any], horizon: int | None) -> str:
    if budget.get("steps") is not None:
        return f"trials of {budget['steps']} steps"
    episodes = budget.get("episodes", 1)
    longest = f"at most {horizon:,} steps" if horizon is not None else "no step limit stated by the env"
    return f"trials of {episodes} episode{'s' if episodes != 1 else ''} ({longest})"


def _policy_text(action_space: Any, cfg: Config) -> str:
    if isinstance(action_space, spaces.Discrete):
        return f"Discrete({int(action_space.n)}) actions: categorical policy"
    if isinstance(action_space, spaces.Box):
        return f"Box{tuple(action_space.shape)} actions: {cfg.model.box_policy} policy"
    if isinstance(action_space, spaces.MultiBinary):
        return f"MultiBinary({action_space.n}) actions: Bernoulli policy"
    return f"{action_space} actions"


def key_choices(given: Config, resolved: Config, budget: dict[str, Any], horizon: int | None,
                action_space: Any) -> list[str]:
    """The run's key settings as a few lines (`icrl train` prints them at the start): what the env gave,
    and which values were derived from it rather than set."""
    model, agent, explore = resolved.model, resolved.agent, resolved.explore
    if given.model.context_len is not None:
        context_why = "as set"
    elif horizon is None:
        context_why = "the default: the env states no episode limit"
    elif horizon > DEFAULT_CONTEXT_LEN:
        context_why = f"the trial is longer ({horizon:,}): sliding windows"
    else:
        context_why = "the trial's length"
    round_steps = resolved.collect_steps * resolved.env.num_actors
    ratio = resolved.updates_per_collect / round_steps
    ratio_text = f"1/{1 / ratio:.3g}" if 0 < ratio < 1 else f"{ratio:.3g}"
    size = f"d_model {model.d_model} x {model.n_layers} layers" if model.kind != "mlp" else "memory-free"
    sampled = "sampled actions" if explore.sample_actions else "greedy actions"
    data = []
    if resolved.offline_data:
        if given.agent.conservative_weight is not None:
            weight_why = "as set"
        else:
            weight_why = "offline only" if resolved.total_env_steps == 0 else "off: the run goes online"
        data = [
            f"data: {len(resolved.offline_data)} dataset(s), {resolved.offline_updates:,} updates on them "
            f"first; conservative critic weight {conservative_weight(agent):g} ({weight_why})"
        ]
    return [
        f"env {_env_name(resolved)}: {_trial_text(budget, horizon)}; {_policy_text(action_space, resolved)}",
        f"model {model.kind} ({size}), context {model.context_len} steps ({context_why}), "
        f"precision {model.precision}",
        f"updates: {resolved.updates_per_collect} per {round_steps:,} env steps (update-to-data "
        f"{ratio_text}), batch {resolved.replay.batch_size}, lr {agent.lr:g} after {agent.warmup_updates} "
        f"warm-up updates, discounts {', '.join(f'{g:g}' for g in resolved.gammas)}, "
        f"{agent.num_critics} critics{_samples_text(action_space, agent.num_action_samples)}",
        f"exploration: {sampled}, epsilon {explore.eps_start:g} -> {explore.eps_end:g} over "
        f"{explore.anneal_env_steps:,} env steps",
        f"budget {resolved.total_env_steps:,} env steps, first update after {resolved.learning_starts:,}; "
        f"evaluation every {resolved.eval_every} updates on {resolved.eval_trials} trials",
        *data,
    ]
