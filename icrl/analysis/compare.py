"""Paired comparisons of evaluation files: run A minus run B trial by trial, on the same tasks.

`icrl eval` with the same seed and env kwargs meets the same tasks in the same order, and its file keeps
every trial's per-episode returns (and successes). Pairing trial k of A with trial k of B removes the
task-to-task spread that dominates unpaired comparisons:

- `paired_difference`, `paired_success_difference`: A - B per trial, with standard errors over the trials.
- `compare_eval_files` (`icrl compare A B`): the same from two evaluation files, after checking they pair.
- `summarize_across` (`icrl compare A1 B1 A2 B2 ...`): one estimate from several such comparisons, with
  the standard error from the spread between them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from icrl.train.evaluate import standard_error


def paired_difference(returns_a: list[list[float]], returns_b: list[list[float]]) -> dict[str, float]:
    """Run A minus run B on the same tasks: `returns_*[k]` are trial k's episode returns (as in an eval
    file's `trial_episode_returns`, same seed and env kwargs). The mean difference of the trial returns
    and of each episode index's return, with standard errors over the trials; pairing removes the
    task-to-task spread that dominates unpaired comparisons. With more than one episode per trial also
    `episode_gain`: A's (last - first episode) minus B's, per trial, i.e. how much more A improves within
    a trial than B on the same tasks (against a memory-free B, the part of A's gain that memory explains)."""
    return {"trials": len(returns_a), **_paired_means(returns_a, returns_b, "return", sum, "episode_gain")}


def paired_success_difference(
    successes_a: list[list[float]], successes_b: list[list[float]]
) -> dict[str, float]:
    """`paired_difference` for success (an eval file's `trial_episode_successes`, 1.0 or 0.0 per episode):
    `success` is the difference in trial success (the task succeeded in any episode), `success_episode_i`
    in episode i's success rate and `success_episode_gain` in (last - first episode success), each with its
    standard error over the trials (e.g. against a `forget_episodes` ablation: what memory adds to the last
    episode's success)."""
    return _paired_means(successes_a, successes_b, "success", max, "success_episode_gain")


def _paired_means(
    per_trial_a: list[list[float]],
    per_trial_b: list[list[float]],
    name: str,
    trial_value: Callable[[list[float]], float],
    gain_name: str,
) -> dict[str, float]:
    """Mean and standard error of A - B over paired trials: of `trial_value` of each trial's per-episode
    values (`name`), of each episode index's value (`name_episode_i`) and of (last - first episode)
    (`gain_name`, with more than one episode per trial)."""
    if len(per_trial_a) != len(per_trial_b) or len(per_trial_a) < 2:
        raise ValueError(
            f"need the same number (>= 2) of trials, got {len(per_trial_a)} and {len(per_trial_b)}"
        )
    pairs = list(zip(per_trial_a, per_trial_b, strict=True))
    diffs = {name: [trial_value(a) - trial_value(b) for a, b in pairs]}
    episodes = min(min(len(a), len(b)) for a, b in pairs)
    for i in range(episodes):
        diffs[f"{name}_episode_{i}"] = [a[i] - b[i] for a, b in pairs]
    if episodes > 1:
        last = episodes - 1
        diffs[gain_name] = [(a[last] - a[0]) - (b[last] - b[0]) for a, b in pairs]
    out: dict[str, float] = {}
    for key, values in diffs.items():
        out[key] = float(np.mean(values))
        out[f"{key}_se"] = standard_error(values)
    return out


PAIRING_KEYS = ("seed", "env_kwargs", "greedy", "eval/trials")


def compare_eval_files(path_a: str | Path, path_b: str | Path) -> dict[str, Any]:
    """Evaluation file A minus B, trial by trial (`paired_difference`), e.g. a run against a control or
    against its own `forget_episodes` ablation. Both must come from `evaluate_run` with the same seed, env
    kwargs, greedy flag and trial count (checked: ValueError otherwise), so that trial k met the same task
    in both; exact where every trial has the same number of episodes (agent-dependent episode counts, as in
    step-budget trials, may draw the env's RNG differently). Where both were scored with the same
    `first_steps`, the same differences over each episode's first steps come as `start_...` keys, and where
    both recorded success (`trial_episode_successes`) the `paired_success_difference` keys."""
    a, b = (json.loads(Path(path).read_text()) for path in (path_a, path_b))
    for path, data in ((path_a, a), (path_b, b)):
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not an evaluation file of icrl eval (a JSON object)")
    for key in PAIRING_KEYS:
        if a.get(key) != b.get(key):
            raise ValueError(f"{key} differs ({a.get(key)!r} vs {b.get(key)!r}): the trials are not paired")
    if "trial_episode_returns" not in a or "trial_episode_returns" not in b:
        raise ValueError("both files need `trial_episode_returns` (evaluation files of icrl eval)")
    out = paired_difference(a["trial_episode_returns"], b["trial_episode_returns"])
    if a.get("first_steps") is not None and a.get("first_steps") == b.get("first_steps"):
        starts = paired_difference(a["trial_episode_start_returns"], b["trial_episode_start_returns"])
        out.update({f"start_{key}": value for key, value in starts.items() if key != "trials"})
    if "trial_episode_successes" in a and "trial_episode_successes" in b:
        out.update(paired_success_difference(a["trial_episode_successes"], b["trial_episode_successes"]))
    return {
        "a": str(path_a),
        "b": str(path_b),
        "a_updates": a.get("updates"),
        "b_updates": b.get("updates"),
        **out,
    }


def summarize_across(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One estimate from several paired comparisons (or evaluation files) of the same quantity, e.g.
    Transformer minus control at each of a run's last checkpoints, or one difference per training seed. For
    every key that all rows report with a standard error (`key` and `key_se`): the mean over rows, the
    standard deviation between rows (`key_sd`), the standard error of that mean (`key_se`, from the
    between-row spread, so it counts checkpoint-to-checkpoint or run-to-run variation that one evaluation's
    trial-level standard error cannot see) and the rows' mean trial-level standard error (`key_trial_se`),
    to compare the two."""
    if len(rows) < 2:
        raise ValueError(f"need at least 2 comparisons to summarize across, got {len(rows)}")
    keys = [k for k in rows[0] if f"{k}_se" in rows[0] and all(k in r and f"{k}_se" in r for r in rows)]
    if not keys:
        raise ValueError("the rows share no key with a standard error (`key` and `key_se`)")
    out: dict[str, Any] = {"across": len(rows)}
    for key in keys:
        values = [float(r[key]) for r in rows]
        out[key] = float(np.mean(values))
        out[f"{key}_sd"] = float(np.std(values, ddof=1))
        out[f"{key}_se"] = standard_error(values)
        out[f"{key}_trial_se"] = float(np.mean([float(r[f"{key}_se"]) for r in rows]))
    return out
