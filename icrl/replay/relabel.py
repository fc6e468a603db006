"""Hindsight instruction relabelling: rewrite a stored trial as if its instruction had named goals
it did achieve.

A goal-conditioned env (e.g. `icrl/GoalGrid-v0`) gives the agent an *instruction*, a sequence of goals to
achieve in order, as part of its observation, and reports in `info["achieved_goal"]` the goal (an integer
id) that each step achieved, or -1. The collector stores those ids as the trial key `achieved_goal` (T + 1
rows, row t + 1 for transition t, row 0 = -1). The env's reward must be exactly "goal_reward when a step
achieves the next goal of the instruction", and the episode must end when the last one is achieved; the env
declares this with a `relabel_spec` attribute (a `RelabelSpec`).

Because learning is off-policy, a trial whose agent missed its instruction still shows how to reach the
goals it happened to achieve. `relabel_trial` picks an ordered selection of those achieved goals as the new
instruction, writes it into every observation row, recomputes the rewards (and the previous-reward inputs)
for it, and ends the trial, terminated, at the step that completes it. The sampler does this at sampling time
for a configurable fraction of windows (`--replay.relabel`), so the stored trials never change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from icrl.replay.format import is_observation_key

ACHIEVED_KEY = "achieved_goal"
"""Trial key of the goal achieved by each transition (-1: none), T + 1 rows aligned with the observations."""

Trial = dict[str, np.ndarray]


@dataclass(frozen=True)
class RelabelSpec:
    """What an env tells the relabeller (its `relabel_spec` attribute)."""

    instruction_key: str
    """Trial key of the instruction observation (after TrialWrapper's flattening, e.g. `obs.instruction`)."""
    max_goals: int
    """Goals in an instruction, n; relabelled instructions hold 1..n goals."""
    encode: Callable[[np.ndarray], np.ndarray]
    """Goal ids (n,), padded with -1 after the last goal -> one row of the instruction observation."""
    goal_reward: float = 1.0
    """Reward of a step that achieves the next goal of the instruction (the env's only reward)."""


def goal_rewards(
    achieved: np.ndarray, goals: np.ndarray, goal_reward: float
) -> tuple[np.ndarray, int | None]:
    """Rewards (T,) of the transitions whose achieved goals are `achieved` (T,) under the instruction `goals`
    (ordered ids, no padding), and the transition that completes it (None: never completed)."""
    rewards = np.zeros(len(achieved), dtype=np.float32)
    next_goal = 0
    for t, goal in enumerate(achieved):
        if goal >= 0 and goal == goals[next_goal]:
            rewards[t] = goal_reward
            next_goal += 1
            if next_goal == len(goals):
                return rewards, t
    return rewards, None


def relabel_trial(trial: Trial, spec: RelabelSpec, rng: np.random.Generator) -> Trial:
    """`trial` with a new instruction made of goals it achieved (a new dict; `trial` is not modified).

    The new instruction takes m goals, m uniform in 1..min(n, number of achievements), from the trial's
    achievements in the order they happened (a uniform choice of m of them). A trial that achieved nothing is
    returned as it is. Only one-episode trials can be rewritten (the end of a completed instruction ends
    the episode): a trial with a second episode raises ValueError.
    """
    if ACHIEVED_KEY not in trial:
        raise ValueError(f"trial has no {ACHIEVED_KEY!r} key: its env does not report achieved goals")
    first = trial["first"].reshape(len(trial["first"]), -1)[1:-1, 0]  # episode starts after the first row
    if (first > 0.5).any():
        raise ValueError("relabelling needs trials of one episode (a completed instruction ends the episode)")
    achieved = trial[ACHIEVED_KEY][1:].astype(np.int64)  # (T,) goal achieved by each transition
    events = np.flatnonzero(achieved >= 0)
    if len(events) == 0:
        return trial
    count = int(rng.integers(1, min(spec.max_goals, len(events)) + 1))
    chosen = np.sort(rng.choice(len(events), size=count, replace=False))
    goals = achieved[events[chosen]]  # (m,) in the order they were achieved
    rewards, end = goal_rewards(achieved, goals, spec.goal_reward)
    assert end is not None  # the chosen achievements themselves complete it, if nothing earlier does
    padded = np.full(spec.max_goals, -1, dtype=np.int64)
    padded[:count] = goals
    steps = end + 1  # transitions kept: the trial ends at the one that completes the new instruction
    out = {key: value[: steps + 1 if is_observation_key(key) else steps] for key, value in trial.items()}
    row = np.asarray(spec.encode(padded), dtype=trial[spec.instruction_key].dtype)
    out[spec.instruction_key] = np.broadcast_to(row, out[spec.instruction_key].shape).copy()
    out["reward"] = rewards[:steps].astype(trial["reward"].dtype)
    out["terminated"] = np.zeros(steps, dtype=bool)
    out["terminated"][-1] = True
    if "prev_reward" in out:  # the reward inputs the agent sees are the new rewards, one step later
        prev = out["prev_reward"].copy()
        prev[1:] = out["reward"].reshape(steps, *prev.shape[1:])
        out["prev_reward"] = prev
    return out
