"""Evaluation: the current policy on separate env instances, greedy or sampled, nothing stored.

Evaluation envs are built with the run's env kwargs updated by `cfg.env.eval_kwargs` (e.g.
`{"split": "test"}`: held-out tasks), so a run can train on some variations and be scored on others.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from icrl.agent.agent import Agent, acting_head
from icrl.config import Config
from icrl.envs.trust import load_run_config
from icrl.envs.vector import make_vector_env
from icrl.train.collector import Collector, TrialStats
from icrl.train.factory import (
    SetupError,
    build_agent,
    check_device,
    check_env_config,
    env_factory,
    make_checked_env,
)
from icrl.train.stopping import EvaluationStopped
from icrl.train.writable import NotWritableError, check_file_writable


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of `values` (sample standard deviation / sqrt(n)); needs n >= 2."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def summarize_trials(trials: list[TrialStats], prefix: str) -> dict[str, float]:
    """Mean return, per-episode-index returns and success rates of finished trials, with standard errors.

    With step-budget trials (e.g. DarkKeyToDoor) not every trial reaches episode i: `return_episode_i` is
    then the mean over the trials that did, a conditional mean, and `trials_episode_i` says how many.
    `episode_gain` is the in-context improvement: the last episode's return minus the first's, paired
    within each trial that reached the last episode (pairing removes the task-to-task spread). Trials
    played with `first_steps` add `start_return_episode_i` and `start_gain`: the same over each episode's
    first steps only, which can show adaptation that whole-episode returns drown in noise.

    Trials that held non-finite data (`TrialStats.nonfinite`) have no meaningful return: they are left out
    of every mean and of `trials`, and counted as `nonfinite_trials_<kind>` (obs, reward, action); when
    every trial held some, only those counts are returned (no `return`)."""
    dropped = Counter(t.nonfinite for t in trials if t.nonfinite)
    counts = {f"{prefix}/nonfinite_trials_{kind}": n for kind, n in sorted(dropped.items())}
    trials = [t for t in trials if not t.nonfinite]
    if not trials:
        return dict(counts)
    totals = [t.total_return for t in trials]
    out = {f"{prefix}/return": float(np.mean(totals)), f"{prefix}/trials": len(trials), **counts}
    if len(trials) > 1:
        out[f"{prefix}/return_se"] = standard_error(totals)
    max_eps = max(len(t.episode_returns) for t in trials)
    if max_eps > 1:
        for i in range(max_eps):
            values = [t.episode_returns[i] for t in trials if len(t.episode_returns) > i]
            out[f"{prefix}/return_episode_{i}"] = float(np.mean(values))
            if len(values) < len(trials):
                out[f"{prefix}/trials_episode_{i}"] = len(values)
        complete = [t.episode_returns for t in trials if len(t.episode_returns) == max_eps]
        gains = [returns[-1] - returns[0] for returns in complete]
        out[f"{prefix}/episode_gain"] = float(np.mean(gains))
        if len(gains) > 1:
            out[f"{prefix}/episode_gain_se"] = standard_error(gains)
    with_starts = [t.episode_start_returns for t in trials if len(t.episode_start_returns) == max_eps > 1]
    if with_starts:  # episode starts (`first_steps`), where memory of earlier episodes acts first
        for i in range(max_eps):
            out[f"{prefix}/start_return_episode_{i}"] = float(np.mean([r[i] for r in with_starts]))
        start_gains = [r[-1] - r[0] for r in with_starts]
        out[f"{prefix}/start_gain"] = float(np.mean(start_gains))
        if len(start_gains) > 1:
            out[f"{prefix}/start_gain_se"] = standard_error(start_gains)
    with_success = [t for t in trials if t.episode_successes]
    if with_success:
        out[f"{prefix}/success"] = float(np.mean([max(t.episode_successes) for t in with_success]))
        if max_eps > 1:
            for i in range(max_eps):
                values = [t.episode_successes[i] for t in with_success if len(t.episode_successes) > i]
                if values:
                    out[f"{prefix}/success_episode_{i}"] = float(np.mean(values))
            complete = [t.episode_successes for t in with_success if len(t.episode_successes) == max_eps]
            if len(complete) > 1:  # the in-context gain in success, paired within each trial
                success_gains = [s[-1] - s[0] for s in complete]
                out[f"{prefix}/success_episode_gain"] = float(np.mean(success_gains))
                out[f"{prefix}/success_episode_gain_se"] = standard_error(success_gains)
    return out


def eval_env_config(
    cfg: Config, env_overrides: dict[str, Any] | None = None, use_eval_kwargs: bool = True
) -> Config:
    """`cfg` with the env kwargs that evaluation uses: `kwargs`, then `eval_kwargs`, then `env_overrides`
    (e.g. `icrl eval RUN --env.split test`); `eval_kwargs` is emptied (already applied). Without
    `use_eval_kwargs`, the training kwargs with the overrides (validation envs: `icrl select`)."""
    eval_kwargs = cfg.env.eval_kwargs if use_eval_kwargs else {}
    kwargs = {**cfg.env.kwargs, **eval_kwargs, **(env_overrides or {})}
    return dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, kwargs=kwargs, eval_kwargs={}))


def play_trials(
    agent: Agent,
    cfg: Config,
    num_trials: int,
    seed: int,
    greedy: bool = True,
    env_fn: Callable[[], gym.Env] | None = None,
    first_steps: int | None = None,
    forget_episodes: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> list[TrialStats]:
    """Run the current policy on fresh env instances (no exploration, nothing stored); the envs get
    `cfg.env.eval_kwargs` merged over `cfg.env.kwargs`, or come from `env_fn` (trial-wrapped envs, e.g.
    with a recorder inside). `first_steps=K` also records each episode's return over its first K steps.
    `forget_episodes` plays every episode as if it were the trial's first (`Collector`: memory ablation).
    A trial whose env gave a NaN or inf comes back flagged (`TrialStats.nonfinite`, warned once per kind)
    instead of failing the evaluation; `summarize_trials` counts it and scores the others.
    `should_stop` (e.g. "a stop signal came") is asked at every step: EvaluationStopped when it says yes."""
    num_envs = max(1, min(cfg.env.num_actors, num_trials))
    env_fn = env_fn or env_factory(eval_env_config(cfg))
    envs = make_vector_env(env_fn, num_envs, asynchronous=False, seed=seed)
    try:
        device = next(agent.parameters()).device
        collector = Collector(
            envs,
            agent,
            explore=None,
            device=device,
            seed=seed,
            greedy=greedy,
            first_steps=first_steps,
            forget_episodes=forget_episodes,
            env_id=cfg.env.id,
        )
        return collector.run_trials(num_trials, should_stop=should_stop)
    finally:
        envs.close()


def evaluate(
    agent: Agent,
    cfg: Config,
    num_trials: int,
    seed: int,
    greedy: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """`play_trials`, summarised as `eval/...` metrics (EvaluationStopped when `should_stop` says so)."""
    played = play_trials(agent, cfg, num_trials, seed, greedy, should_stop=should_stop)
    return summarize_trials(played, "eval")


def resolve_checkpoint(run_dir: str | Path, checkpoint: str | int | None = None) -> Path:
    """A run's checkpoint directory: the latest, or `checkpoint` (a name such as `ckpt_000007000`, or its
    update count), which must be complete, intact and inside the run. The latest falls back to the newest
    intact one with a warning when it is damaged (`latest_checkpoint`); a named one that is damaged is a
    CheckpointError naming the bad file (asked for by name, it is not silently replaced by another)."""
    from icrl.train.checkpoint import CheckpointError, checkpoint_in_run, latest_checkpoint, verify_checkpoint

    root = Path(run_dir) / "checkpoints"
    if checkpoint is None:
        ckpt = latest_checkpoint(root)
        if ckpt is None:
            raise FileNotFoundError(f"no checkpoint in {root}")
        return ckpt
    name = f"ckpt_{int(checkpoint):09d}" if str(checkpoint).isdigit() else str(checkpoint)
    ckpt = checkpoint_in_run(root, name)
    if not (ckpt / "state.json").is_file():
        found = sorted(p.name for p in root.glob("ckpt_*") if (p / "state.json").is_file())
        raise FileNotFoundError(f"no complete checkpoint {name} in {root}; found: {found}")
    try:
        verify_checkpoint(ckpt)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; choose another checkpoint, or none for the newest intact") from None
    return ckpt


def load_run_agent(
    run_dir: str | Path,
    ckpt: Path,
    acting_gamma: float | None = None,
    device: str | None = None,
    weights: Literal["live", "ema"] = "live",
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> tuple[Config, Agent, dict[str, Any]]:
    """A run's config and its agent with checkpoint `ckpt` loaded, on the run's device (or `device`, e.g.
    "cpu" for a run trained on a GPU); also the checkpoint's extra state (`env_steps`, `updates`).
    `acting_gamma` acts with another trained discount's actor head than the run's. `weights="ema"` loads
    the checkpoint's moving average of the weights (a run trained with `--weights-ema`) instead.
    A `MODULE:EnvId` env id is imported only with `trust_env_module` or MODULE in `imports` (modules imported
    first), never from the current or run directory (`icrl.envs.trust`); else UntrustedEnvModule."""
    from icrl.train.checkpoint import load_checkpoint

    if weights not in ("live", "ema"):
        raise SetupError(f"weights must be 'live' or 'ema', got {weights!r}")

    cfg = load_run_config(run_dir, trust_env_module, imports)
    if acting_gamma is not None:
        cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, acting_gamma=acting_gamma))
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    check_device(cfg.device)
    try:
        acting_head(cfg.gammas, cfg.agent.acting_gamma)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    probe = make_checked_env(cfg)  # an env that can no longer be made: one SetupError that says why
    agent = build_agent(cfg, probe.observation_space, probe.action_space)
    probe.close()
    extra = load_checkpoint(ckpt, agent, restore_rng=False, weights=weights)
    return cfg, agent.to(torch.device(cfg.device)), extra


def evaluate_run(
    run_dir: str | Path,
    trials: int | None = None,
    greedy: bool = True,
    seed: int = 12345,
    env_overrides: dict[str, Any] | None = None,
    checkpoint: str | int | None = None,
    acting_gamma: float | None = None,
    device: str | None = None,
    first_steps: int | None = None,
    forget_episodes: bool = False,
    weights: Literal["live", "ema"] = "live",
    out: str | Path | None = None,
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Evaluate a run's latest checkpoint (or `checkpoint`: a name such as `ckpt_000007000`, or its update
    count); the result is also written to `<run_dir>/eval.json` (`eval-<name>.json` for a named one,
    `eval-acting<gamma>.json` with `acting_gamma`, `eval-forget.json` with `forget_episodes`, `eval-ema.json`
    with `weights="ema"` (the checkpoint's moving average of the weights), or several suffixes).

    `env_overrides` update the evaluation env kwargs (after the run's `eval_kwargs`), e.g.
    `{"split": "test"}`; the result records the kwargs used as `env_kwargs`. `acting_gamma` acts with
    another trained discount's actor head (recorded as `acting_gamma`). `device` evaluates on another
    torch device than the run's (e.g. "cpu" for a run trained on a GPU). `first_steps=K` adds the returns
    of each episode's first K steps and their gain (`summarize_trials`), per trial in the file too.
    `forget_episodes` is the memory ablation: the agent's memory is cleared at every episode start inside a
    trial (`Collector`), so `paired_difference` against a normal evaluation with the same seed gives what
    memory of earlier episodes adds (its first episodes are the same play, so their difference is zero).
    `out` writes the result file there instead (e.g. for a run directory that is read-only); whether it can
    be written is checked before anything is played (`NotWritableError`). `trust_env_module` / `imports`:
    consent to importing the module the run's env id names / modules to import first (`load_run_agent`).
    `should_stop` is asked at every step of play and before the file is written: EvaluationStopped when it
    says yes, and nothing is written (`icrl eval` stopped by Ctrl-C)."""
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir, checkpoint)
    suffix = (
        ("" if checkpoint is None else f"-{ckpt.name}")
        + ("" if acting_gamma is None else f"-acting{acting_gamma:g}")
        + ("-forget" if forget_episodes else "")
        + ("-ema" if weights == "ema" else "")
    )
    out_path = Path(out) if out is not None else run_dir / f"eval{suffix}.json"
    try:  # before minutes of play, not after
        check_file_writable(out_path, "evaluation file")
    except NotWritableError as exc:
        raise NotWritableError(f"{exc}; nothing was evaluated (write elsewhere with --out FILE)") from None
    cfg, agent, extra = load_run_agent(
        run_dir, ckpt, acting_gamma, device, weights, trust_env_module=trust_env_module, imports=imports
    )
    eval_cfg = eval_env_config(cfg, env_overrides)
    check_env_config(eval_cfg, "evaluation env")  # a bad --env.KEY: one SetupError, not a traceback
    played = play_trials(
        agent,
        eval_cfg,
        trials or cfg.eval_trials,
        seed=seed,
        greedy=greedy,
        first_steps=first_steps,
        forget_episodes=forget_episodes,
        should_stop=should_stop,
    )
    result = {
        "checkpoint": ckpt.name,
        "env_steps": extra.get("env_steps"),
        "updates": extra.get("updates"),
        "greedy": greedy,
        "seed": seed,
        "env_kwargs": eval_cfg.env.kwargs,
        "acting_gamma": cfg.gammas[agent.acting_head],
        "device": cfg.device,
        "threads": torch.get_num_threads(),  # CPU play repeats exactly only with the same count
        **({} if first_steps is None else {"first_steps": first_steps}),
        **({"forget_episodes": True} if forget_episodes else {}),
        **({"weights": "ema"} if weights == "ema" else {}),
        **summarize_trials(played, "eval"),
    }
    # The file also keeps every trial's episode returns, in play order (trial k of every actor, then
    # k + 1): two runs evaluated with the same seed and env kwargs meet the same tasks in the same order,
    # so `paired_difference` can compare them trial by trial. Only scored trials (no NaN or inf data, as
    # `eval/trials` counts them): a pairing check on `eval/trials` then sees when one file lost some.
    played = [t for t in played if not t.nonfinite]
    per_trial = {"trial_episode_returns": [t.episode_returns for t in played]}
    if any(t.episode_successes for t in played):
        per_trial["trial_episode_successes"] = [t.episode_successes for t in played]
    if first_steps is not None:
        per_trial["trial_episode_start_returns"] = [t.episode_start_returns for t in played]
    if should_stop is not None and should_stop():  # a stop that came as play ended: still write nothing
        raise EvaluationStopped("evaluation stopped before its result was written")
    out_path.parent.mkdir(parents=True, exist_ok=True)  # an --out folder that does not exist yet
    from icrl.train.checkpoint import write_text_atomic

    write_text_atomic(out_path, json.dumps({**result, **per_trial}))  # a rerun never leaves half a file
    return result


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
