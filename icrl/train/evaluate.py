"""Evaluation: the current policy on separate env instances, greedy or sampled, nothing stored.

Evaluation envs are built with the run's env kwargs updated by `cfg.env.eval_kwargs` (e.g.
`{"split": "test"}`: held-out tasks), so a run can train on some variations and be scored on others.

Two ablations exist only here (`EvalCollector`, the training `Collector` knows nothing of them):
`first_steps=K` also scores each episode's first K steps, where memory of earlier episodes acts first;
`forget_episodes` is the memory ablation: at every episode start inside a trial the actor's sequence-model
state is cleared too, and its observation is made to look like a trial's first one (previous action and
reward zeroed, the time index counted from the episode start). Every episode is then played as if it were
the trial's first, so its difference to a normal evaluation on the same tasks (`icrl compare`) is what the
agent's memory of earlier episodes adds.

Comparing evaluations (`icrl compare`), choosing or averaging checkpoints and plotting are analysis, in
`icrl.analysis`.
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
from icrl.envs.multitask import load_task_file
from icrl.envs.trust import load_run_config
from icrl.envs.vector import make_vector_env
from icrl.train.collector import OBS_FIRST, OBS_TIME, PREV_INPUTS, Collector, TrialStats, trial_stats
from icrl.train.factory import (
    SetupError,
    build_agent,
    check_device,
    check_env_config,
    env_factory,
    env_tasks,
    make_checked_env,
)
from icrl.train.stopping import EvaluationStopped
from icrl.train.writable import NotWritableError, check_file_writable


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of `values` (sample standard deviation / sqrt(n)); needs n >= 2."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


class EvalCollector(Collector):
    """A `Collector` with evaluation's ablations: `first_steps=K` also records each episode's return over
    its first K steps (`TrialStats.episode_start_returns`); `forget_episodes` plays every episode of a
    trial as if it were the trial's first (the module docstring). The other arguments are `Collector`'s;
    a `forget_episodes` collector stores nothing (ValueError with a `store`)."""

    def __init__(
        self, *args: Any, first_steps: int | None = None, forget_episodes: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if forget_episodes and self.store is not None:
            raise ValueError("forget_episodes is an evaluation ablation: its trials are not stored")
        self.first_steps = first_steps
        self.forget_episodes = forget_episodes
        self._starts: np.ndarray | None = None  # (N,) actors at an episode start this step (forget only)

    def start(self, env_steps: int = 0) -> None:
        super().start(env_steps)
        self.episode_start_time = np.zeros(self.num, dtype=np.int64)  # (N,) time index of the episode start

    def _after_step(self, done: np.ndarray) -> None:
        if self.forget_episodes:
            self._starts = self._forget_earlier_episodes(done)
            self._show_as_first_episode(self._starts)

    def _after_reset(self, done: np.ndarray) -> None:
        self.episode_start_time[done] = 0
        if self.forget_episodes:
            self._show_as_first_episode(self._starts)

    def _trial_stats(self, trial: dict[str, np.ndarray], success: np.ndarray | None) -> TrialStats:
        return trial_stats(trial, success, self.first_steps)

    def _forget_earlier_episodes(self, done: np.ndarray) -> np.ndarray:
        """Actors that start a new episode inside their trial (not those whose trial just ended: the reset
        that follows clears them anyway) lose their state; returns them as a mask (N,)."""
        starts = (self.obs[OBS_FIRST].reshape(self.num, -1)[:, 0] > 0.5) & ~done  # (N,)
        if starts.any():
            self.state = self.agent.reset_state(self.state, torch.as_tensor(starts, device=self.device))
            self.episode_start_time[starts] = self.obs[OBS_TIME][starts]
        return starts

    def _show_as_first_episode(self, starts: np.ndarray) -> None:
        """The time index counts from the episode start, and actors at an episode start see no previous
        action or reward, as at a trial's first step. Applied again after a partial reset, which hands back
        the env's own (unchanged) observations of the other actors."""
        obs = dict(self.obs)
        if starts.any():
            for key in PREV_INPUTS:
                obs[key] = obs[key].copy()
                obs[key][starts] = 0
        obs[OBS_TIME] = obs[OBS_TIME] - self.episode_start_time  # (N,) time since the episode started
        self.obs = obs


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
    (e.g. `icrl eval RUN --env.split test`); `eval_kwargs` is emptied (already applied). A multi-task run's
    evaluation task list (`eval_task_list` or the `eval_tasks` file) replaces its training tasks, and its
    `eval_kwargs` and `env_overrides` go over every task's own kwargs (common `kwargs` go under them). Without
    `use_eval_kwargs`, the training kwargs and tasks with the overrides (validation envs: `icrl select`)."""
    over = {**(cfg.env.eval_kwargs if use_eval_kwargs else {}), **(env_overrides or {})}
    kwargs = {**cfg.env.kwargs, **over}
    env = dataclasses.replace(cfg.env, kwargs=kwargs, eval_kwargs={}, eval_tasks=None, eval_task_list=())
    eval_tasks = cfg.env.eval_task_list or (load_task_file(cfg.env.eval_tasks) if cfg.env.eval_tasks else ())
    if use_eval_kwargs and eval_tasks:  # held-out tasks replace the training ones
        env = dataclasses.replace(env, ids=(), tasks=None, task_list=tuple(eval_tasks))
    if over and env.multitask:  # what evaluation asks for wins over a task's own setting
        tasks = env_tasks(dataclasses.replace(cfg, env=env)) or []
        listed = tuple({**task, "kwargs": {**task["kwargs"], **over}} for task in tasks)
        env = dataclasses.replace(env, ids=(), tasks=None, task_list=listed)
    return dataclasses.replace(cfg, env=env)


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
    `forget_episodes` plays every episode as if it were the trial's first (`EvalCollector`: memory ablation).
    A trial whose env gave a NaN or inf comes back flagged (`TrialStats.nonfinite`, warned once per kind)
    instead of failing the evaluation; `summarize_trials` counts it and scores the others.
    `should_stop` (e.g. "a stop signal came") is asked at every step: EvaluationStopped when it says yes."""
    num_envs = max(1, min(cfg.env.num_actors, num_trials))
    env_fn = env_fn or env_factory(eval_env_config(cfg))
    envs = make_vector_env(env_fn, num_envs, asynchronous=False, seed=seed)
    try:
        device = next(agent.parameters()).device
        collector = EvalCollector(
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
    """`play_trials`, summarised as `eval/...` metrics (EvaluationStopped when `should_stop` says so). A
    multi-task config plays `num_trials` trials of every evaluation task (`play_tasks`)."""
    eval_cfg = eval_env_config(cfg)  # the held-out tasks where the run names some
    if eval_cfg.env.multitask:
        return summarize_tasks(play_tasks(agent, eval_cfg, num_trials, seed, greedy, should_stop=should_stop))
    played = play_trials(agent, cfg, num_trials, seed, greedy, should_stop=should_stop)
    return summarize_trials(played, "eval")


def normalized_return(value: float, random_return: float | None, best_return: float | None) -> float | None:
    """(value - random) / (best - random): 0 at the random policy, 1 at the best known; None without both
    references (or when they coincide)."""
    if random_return is None or best_return is None or best_return == random_return:
        return None
    return (value - float(random_return)) / (float(best_return) - float(random_return))


def play_tasks(
    agent: Agent,
    eval_cfg: Config,
    num_trials: int,
    seed: int,
    greedy: bool = True,
    **play: Any,
) -> list[tuple[dict[str, Any], list[TrialStats]]]:
    """`num_trials` trials of each task of a multi-task evaluation config (`eval_env_config`'s), task k
    pinned and seeded `seed + k`, with its normalised task spec; `play` goes to `play_trials`
    (first_steps, forget_episodes, should_stop)."""
    per_task = []
    for k, task in enumerate(env_tasks(eval_cfg) or []):
        env_fn = env_factory(eval_cfg, fixed_task=k)
        played = play_trials(agent, eval_cfg, num_trials, seed + k, greedy, env_fn=env_fn, **play)
        per_task.append((task, played))
    return per_task


def summarize_tasks(per_task: list[tuple[dict[str, Any], list[TrialStats]]]) -> dict[str, float]:
    """Rows: `eval/<task>/...` per task (`summarize_trials`), `eval/<task>/normalized` where the task list
    gives `random_return` and `best_return`, the pooled `eval/...` over all trials with `eval/return` the
    mean over tasks, and `eval/normalized_mean` over the tasks that have references."""
    out: dict[str, float] = {}
    task_returns: list[float] = []
    normalized: list[float] = []
    for task, played in per_task:
        prefix = f"eval/{task['name']}"
        summary = summarize_trials(played, prefix)
        out.update(summary)
        value = summary.get(f"{prefix}/return")
        if value is None:
            continue
        task_returns.append(value)
        score = normalized_return(value, task.get("random_return"), task.get("best_return"))
        if score is not None:
            out[f"{prefix}/normalized"] = score
            normalized.append(score)
    out.update(summarize_trials([trial for _, played in per_task for trial in played], "eval"))
    if task_returns:
        out["eval/return"] = float(np.mean(task_returns))
    if normalized:
        out["eval/normalized_mean"] = float(np.mean(normalized))
    return out


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
    trial (`EvalCollector`), so `icrl compare` (`icrl.analysis.compare`) against a normal evaluation with
    the same seed gives what memory of earlier episodes adds (its first episodes are the same play, so
    their difference is zero).
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
    play = {"first_steps": first_steps, "forget_episodes": forget_episodes, "should_stop": should_stop}
    if not eval_cfg.env.multitask:
        played = play_trials(agent, eval_cfg, trials or cfg.eval_trials, seed=seed, greedy=greedy, **play)
        summary = summarize_trials(played, "eval")
    else:  # every task, `trials` each, as the training-time evaluations play them
        per_task = play_tasks(agent, eval_cfg, trials or cfg.eval_trials, seed, greedy, **play)
        played = [trial for _, task_played in per_task for trial in task_played]
        summary = summarize_tasks(per_task)
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
        **summary,
    }
    # The file also keeps every trial's episode returns, in play order (trial k of every actor, then
    # k + 1): two runs evaluated with the same seed and env kwargs meet the same tasks in the same order,
    # so `icrl compare` can pair them trial by trial. Only scored trials (no NaN or inf data, as
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
