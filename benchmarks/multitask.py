"""Multi-task benchmarks: the reward-scale stress test (`--suite stress`, the default) and one agent over
the POPGym Easy envs against RecurrentPPO trained per env (`--suite popgym`).

**Stress test.** One agent over the `multitask-grid` tasks. Each task's rewards are multiplied by its own
factor (`SCALES`, 0.01 to 100, through the task list's `reward_scale`), so the tasks' returns differ by
four orders of magnitude. Arms, each `icrl train --preset multitask-grid --env.tasks SCALED.json
--total-env-steps N --seed S` plus:

- `amago`: `--agent.critic regression --agent.actor-objective amago --agent.popart` (AMAGO's update);
- `amago2`: nothing (the preset: classification critic + filtered imitation, AMAGO-2's update);
- `amago2-control`: `--model.kind mlp` (the same update, no memory);
- `specialist`: one run per task on that task alone (a one-task list, same scale), N / tasks env steps:
  the same env steps per task as the multi-task runs give each task on average.

Scores: the last evaluation's per-task greedy return (`eval/<task>/return`, the preset's 32 trials per
task); normalised per task and seed with random = 0 (uniform random actions, `--random-trials` trials in
the same trial budget) and specialist = 1. Prints one table per suite (mean ± standard error over seeds)
and writes it with a bar chart of the normalised scores to `--out` (default benchmarks/results).

    .venv/bin/python benchmarks/multitask.py --jobs 2 --threads 1                 # 3 seeds, the preset's 400k
    .venv/bin/python benchmarks/multitask.py --steps 40000 --seeds 0 --root runs/mt_small --name mt_small
    .venv/bin/python benchmarks/multitask.py --report                             # tables of the runs done

**POPGym.** `icrl train --preset multitask-popgym --total-env-steps 6 x N --seed S` (one agent, N env steps
per env on average; a task is drawn per episode, so envs with longer episodes get more: the table gives
what each env got, counted in the run's buffer) against sb3-contrib's RecurrentPPO trained on each env
alone for N env steps (`benchmarks/popgym_cpu.py`'s runs, its settings and its `--root`, so runs of that
benchmark are reused). Both are scored on 200 fresh episodes per env with the same seed
(`icrl eval RUN --trials 200`: every task of a multi-task run). Prints the per-env table (mean ± population
SD over seeds, and on how many seeds the one agent is at or above PPO's mean, ties within 1e-6 included)
and writes it with a bar chart. Options for the one agent's runs: `--icrl-args="--env.task-id"` (with `=`).

    .venv/bin/python benchmarks/multitask.py --suite popgym --jobs 2 --threads 1   # 3 seeds, 50k per env

A run with a `result.json` is not run again; one without is started afresh.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from icrl.analysis.stats import mean_se
from icrl.envs.multitask import make_multitask_trial_env, normalize_tasks, task_name_of
from icrl.presets import MULTITASK_GRID_TASKS, preset_config
from icrl.train.logger import read_metrics

PRESET = "multitask-grid"
SCALES = {"tmaze-20": 0.01, "frozen-lake": 100.0, "dark-key-door": 0.1, "goal-grid": 10.0}
ARMS = {
    "amago": ["--agent.critic", "regression", "--agent.actor-objective", "amago", "--agent.popart"],
    "amago2": [],
    "amago2-control": ["--model.kind", "mlp"],
}


def scaled_tasks() -> list[dict[str, Any]]:
    return [{**task, "reward_scale": SCALES[task["name"]]} for task in MULTITASK_GRID_TASKS]


def random_return(task: dict[str, Any], trials: int, seed: int) -> float:
    """Mean trial return of uniformly random actions on one (scaled) task, in the preset's trial budget."""
    cfg = preset_config(PRESET)
    env = make_multitask_trial_env([task], steps=cfg.env.trial_steps, episodes=cfg.env.trial_episodes)
    env.action_space.seed(seed)
    returns = []
    for k in range(trials):
        env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


class Bench:
    def __init__(self, root: Path, steps: int, threads: int) -> None:
        self.root, self.steps, self.threads = root, steps, threads
        self.tasks = scaled_tasks()
        self.names = [task["name"] for task in self.tasks]

    def task_file(self, names: list[str]) -> Path:
        path = self.root / f"tasks__{'+'.join(names)}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps([t for t in self.tasks if t["name"] in names], indent=1))
        return path

    def run_dir(self, arm: str, seed: int, task: str | None = None) -> Path:
        return self.root / (f"specialist-{task}__{seed}" if task else f"{arm}__{seed}")

    def train(self, arm: str, seed: int, task: str | None = None) -> dict[str, Any]:
        run_dir = self.run_dir(arm, seed, task)
        done = run_dir / "result.json"
        if done.exists():
            return json.loads(done.read_text())
        if run_dir.exists():
            shutil.rmtree(run_dir)
        names = [task] if task else self.names
        steps = self.steps // len(self.names) if task else self.steps
        command = [
            sys.executable, "-m", "icrl.cli", "train", "--preset", PRESET,
            "--env.tasks", str(self.task_file(names)),
            "--total-env-steps", str(steps), "--seed", str(seed), *([] if task else ARMS[arm]),
            "--run-dir", str(run_dir), "--threads", str(self.threads), "--no-progress", "--no-tensorboard",
        ]  # fmt: skip
        log = run_dir.parent / f"{run_dir.name}.log"
        with log.open("w") as out:
            rc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise RuntimeError(f"exit {rc} (see {log})")
        rows = [row for row in read_metrics(run_dir) if any(f"eval/{n}/return" in row for n in names)]
        result = {"arm": arm, "task": task, "seed": seed, "env_steps": rows[-1]["env_steps"]}
        result.update({n: rows[-1][f"eval/{n}/return"] for n in names})
        done.write_text(json.dumps(result, indent=1))
        return result

    def finals(self, arm: str, seed: int, task: str | None = None) -> dict[str, float] | None:
        path = self.run_dir(arm, seed, task) / "result.json"
        return json.loads(path.read_text()) if path.exists() else None


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    estimate = mean_se(values)
    return f"{estimate.mean:.3g} ± {estimate.se:.2g}"


def suite_table(bench: Bench, seeds: list[int], randoms: dict[str, float]) -> tuple[str, dict[str, Any]]:
    """The table (markdown) and, per arm and task, the normalised scores over seeds."""
    scores: dict[str, dict[str, list[float]]] = {arm: {n: [] for n in bench.names} for arm in ARMS}
    raw: dict[str, dict[str, list[float]]] = {
        arm: {n: [] for n in bench.names} for arm in [*ARMS, "specialist"]
    }
    for name in bench.names:
        for seed in seeds:
            specialist = bench.finals("specialist", seed, name)
            if specialist is not None:
                raw["specialist"][name].append(specialist[name])
            for arm in ARMS:
                result = bench.finals(arm, seed)
                if result is None:
                    continue
                raw[arm][name].append(result[name])
                if specialist is not None and specialist[name] != randoms[name]:
                    scores[arm][name].append(
                        (result[name] - randoms[name]) / (specialist[name] - randoms[name])
                    )
    header = (
        "| task | scale | random | specialist | " + " | ".join(f"{arm} (normalised)" for arm in ARMS) + " |"
    )
    lines = [header, "|" + "---|" * (4 + len(ARMS))]
    for name in bench.names:
        cells = [f"{_cell(raw[arm][name])} ({_cell(scores[arm][name])})" for arm in ARMS]
        lines.append(
            f"| {name} | {SCALES[name]:g} | {randoms[name]:.3g} | {_cell(raw['specialist'][name])} | "
            + " | ".join(cells)
            + " |"
        )
    means = []
    for arm in ARMS:
        per_seed = [
            float(np.mean([scores[arm][n][i] for n in bench.names]))
            for i in range(min(len(scores[arm][n]) for n in bench.names))
        ]
        means.append(_cell(per_seed))
    lines.append("| **mean normalised** | | | 1 | " + " | ".join(means) + " |")
    return "\n".join(lines), scores


def bar_chart(
    per_method: dict[str, dict[str, list[float]]],
    keys: list[str],
    tick_labels: list[str],
    error: Callable[[list[float]], float],
    ylabel: str,
    reference: dict[str, Any],
    path: Path,
    figsize: tuple[float, float] = (7, 3.5),
    tick_fontsize: float | None = None,
) -> None:
    """Grouped bars: per key (task or env) one bar per method, the mean over seeds with `error(values)` as
    its error bar; `reference` are the keyword arguments of a horizontal line (`axhline`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    width = 0.8 / len(per_method)
    for i, (method, values) in enumerate(per_method.items()):
        means = [float(np.mean(values[k])) if values[k] else np.nan for k in keys]
        errors = [error(values[k]) if values[k] else 0.0 for k in keys]
        xs = np.arange(len(keys)) + (i - (len(per_method) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=errors, label=method, capsize=2)
    ax.axhline(color="k", **reference)
    ax.set_xticks(
        np.arange(len(keys)), tick_labels, **({} if tick_fontsize is None else {"fontsize": tick_fontsize})
    )
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(scores: dict[str, dict[str, list[float]]], names: list[str], path: Path) -> None:
    bar_chart(
        scores,
        names,
        [f"{n}\n(x{SCALES[n]:g})" for n in names],
        lambda values: mean_se(values).se if len(values) > 1 else 0.0,
        "normalised return (random 0, specialist 1)",
        {"y": 1.0, "lw": 0.8, "ls": "--"},
        path,
    )


def run_jobs(jobs: list[tuple[str, Callable[[], object]]], workers: int) -> None:
    """Run `(label, job)` pairs on `workers` threads, in order; a job that fails (a run that exited with an
    error) is reported by its label and does not stop the others."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [(label, pool.submit(job)) for label, job in jobs]
        for label, future in futures:
            try:
                future.result()
                print(f"{label}: done", flush=True)
            except (RuntimeError, subprocess.CalledProcessError) as error:
                print(f"{label}: failed: {error}", flush=True)


# ------------------------------------------------------------------------------------------ POPGym suite
POPGYM_PRESET = "multitask-popgym"
POPGYM_FINAL_EPISODES = 200  # per env, the POPGym benchmark's final evaluation
# Returns this close count as equal: two policies that always give the same answer (AutoencodeEasy's -0.5 for
# both methods) differ only in how the float rewards of 200 episodes were summed.
TIE = 1e-6


def _popgym_cpu() -> Any:
    """benchmarks/popgym_cpu.py (RecurrentPPO's runs and their scores), imported from beside this script."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import popgym_cpu

    return popgym_cpu


def popgym_args(args: argparse.Namespace) -> argparse.Namespace:
    """The settings `benchmarks/popgym_cpu.py` trains and scores RecurrentPPO with, at `--steps-per-task`."""
    return argparse.Namespace(
        root=str(args.ppo_root), steps=args.steps_per_task, eval_every=5_000, eval_episodes=32,
        threads=args.threads, box_action_bins=None, final_episodes=POPGYM_FINAL_EPISODES,
    )  # fmt: skip


def task_env_steps(run_dir: Path) -> dict[int, int]:
    """Env steps per task index in a multi-task run's buffer (all it collected unless trials were evicted)."""
    from icrl.replay.store import ReplayStore

    store = ReplayStore(run_dir / "buffer", max_fifo_trials=10**9, owner=False)
    steps: dict[int, int] = {}
    for info in store.list_trials():
        if info.task is not None:
            steps[info.task] = steps.get(info.task, 0) + info.length
    return steps


def train_popgym_agent(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One multi-task icrl run over the POPGym envs, scored on `POPGYM_FINAL_EPISODES` episodes per env."""
    run_dir = args.root / f"{POPGYM_PRESET}__{seed}"
    done = run_dir / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    if run_dir.exists():
        shutil.rmtree(run_dir)
    ids = preset_config(POPGYM_PRESET).env.ids
    command = [
        sys.executable, "-m", "icrl.cli", "train", "--preset", POPGYM_PRESET,
        "--total-env-steps", str(args.steps_per_task * len(ids)), "--seed", str(seed),
        *shlex.split(args.icrl_args),
        "--run-dir", str(run_dir), "--threads", str(args.threads), "--no-progress", "--no-tensorboard",
    ]  # fmt: skip
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    with log.open("w") as out:
        rc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"exit {rc} (see {log})")
    return score_popgym_run(run_dir, seed)


def score_popgym_run(run_dir: Path, seed: int) -> dict[str, Any]:
    """A finished multi-task POPGym run's final policy on `POPGYM_FINAL_EPISODES` episodes of each env (the
    seed of `benchmarks/popgym_cpu.py`'s final evaluation), with the env steps each env got, into
    `<run_dir>/result.json`."""
    from icrl.train.evaluate import evaluate_run

    final = evaluate_run(run_dir, trials=POPGYM_FINAL_EPISODES, seed=_popgym_cpu().FINAL_SEED)
    per_task_steps = task_env_steps(run_dir)
    ids = json.loads((run_dir / "config.json").read_text())["env"]["ids"]
    result = {"seed": seed, "env_steps": final["env_steps"], "updates": final["updates"]}
    for k, env in enumerate(ids):
        result[env] = final[f"eval/{task_name_of(env)}/return"]
        result[f"{env}/env_steps"] = per_task_steps.get(k, 0)
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def popgym_table(args: argparse.Namespace) -> tuple[str, dict[str, dict[str, list[float]]]]:
    """The per-env table (markdown) and the final returns per method and env, over seeds."""
    popgym_cpu = _popgym_cpu()
    ppo_final, short_name, mean_std = popgym_cpu.ppo_final, popgym_cpu.short_name, popgym_cpu.mean_std
    ids = preset_config(POPGYM_PRESET).env.ids
    finals: dict[str, dict[str, list[float]]] = {"RecurrentPPO": {}, "icrl, one agent": {}}
    steps: dict[str, list[int]] = {env: [] for env in ids}
    wins: dict[str, int] = dict.fromkeys(ids, 0)
    for env in ids:
        ppo = []
        for seed in args.seeds:
            path = args.ppo_root / short_name(env) / f"ppo__{seed}.json"
            value = ppo_final(path, POPGYM_FINAL_EPISODES) if path.exists() else None
            if value is not None:
                ppo.append(value)
        finals["RecurrentPPO"][env] = ppo
        finals["icrl, one agent"][env] = []
        for seed in args.seeds:
            path = args.root / f"{POPGYM_PRESET}__{seed}" / "result.json"
            if path.exists():
                result = json.loads(path.read_text())
                finals["icrl, one agent"][env].append(result[env])
                steps[env].append(result[f"{env}/env_steps"])
                wins[env] += bool(ppo) and result[env] >= float(np.mean(ppo)) - TIE
    lines = [
        f"| env | RecurrentPPO, one per env ({args.steps_per_task:,} env steps) | icrl, one agent over the "
        f"{len(ids)} envs | its env steps on the env | icrl seeds ≥ PPO's mean |",
        "|---|---|---|---|---|",
    ]
    for env in ids:
        icrl = finals["icrl, one agent"][env]
        env_steps = f"{np.mean(steps[env]):,.0f}" if steps[env] else "-"
        ppo = mean_std(finals["RecurrentPPO"][env])
        lines.append(
            f"| {short_name(env)} | {ppo} | {mean_std(icrl)} | {env_steps} | {wins[env]}/{len(icrl)} |"
        )
    return "\n".join(lines), finals


def plot_popgym(finals: dict[str, dict[str, list[float]]], path: Path) -> None:
    ids = list(next(iter(finals.values())))
    bar_chart(
        finals,
        ids,
        [_popgym_cpu().short_name(e).replace("Easy", "") for e in ids],
        lambda values: float(np.std(values)),
        f"return, {POPGYM_FINAL_EPISODES} episodes",
        {"y": 0.0, "lw": 0.6},
        path,
        figsize=(8, 3.5),
        tick_fontsize=8,
    )


def run_popgym_suite(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)  # final evaluations run here; CPU play repeats at one thread count
    run_ppo = _popgym_cpu().run_ppo
    if not args.report:
        ppo = popgym_args(args)
        jobs = [(f"icrl/{seed}", partial(train_popgym_agent, args, seed)) for seed in args.seeds]
        jobs += [
            (f"ppo/{env}/{seed}", partial(run_ppo, env, seed, ppo))
            for env in preset_config(POPGYM_PRESET).env.ids
            for seed in args.seeds
        ]
        run_jobs(jobs, args.jobs)
    table, finals = popgym_table(args)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or "multitask_popgym"
    (args.out / f"{name}.md").write_text(f"`{' '.join(sys.argv)}`\n\n{table}\n")
    plot_popgym(finals, args.out / f"{name}.png")
    print(f"wrote {args.out / name}.md and .png")


def run_stress_suite(args: argparse.Namespace) -> None:
    normalize_tasks(scaled_tasks())  # a bad scale fails here, not in every run
    bench = Bench(args.root, args.steps, args.threads)
    if not args.report:
        runs = [(arm, seed, None) for seed in args.seeds for arm in ARMS if arm in args.arms]
        if "specialist" in args.arms:
            runs += [("specialist", seed, name) for seed in args.seeds for name in bench.names]
        jobs = [
            ("/".join(str(part) for part in run if part is not None), partial(bench.train, *run))
            for run in runs
        ]
        run_jobs(jobs, args.jobs)
    randoms = {t["name"]: random_return(t, args.random_trials, seed=10_000) for t in bench.tasks}
    table, scores = suite_table(bench, args.seeds, randoms)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or "multitask_stress"
    command = " ".join(sys.argv)
    (args.out / f"{name}.md").write_text(
        f"`{command}`, {args.steps:,} env steps per multi-task run\n\n{table}\n"
    )
    plot(scores, bench.names, args.out / f"{name}.png")
    print(f"wrote {args.out / name}.md and .png")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", choices=("stress", "popgym"), default="stress")
    parser.add_argument(
        "--steps",
        type=int,
        default=preset_config(PRESET).total_env_steps,
        help="stress: env steps per multi-task run",
    )
    parser.add_argument(
        "--steps-per-task",
        type=int,
        default=50_000,
        help="popgym: env steps per env (PPO's per run; the one agent gets 6x)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--arms",
        nargs="+",
        default=[*ARMS, "specialist"],
        choices=[*ARMS, "specialist"],
        help="stress: which arms to run",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where the runs live (default runs/multitask or runs/multitask_popgym)",
    )
    parser.add_argument(
        "--ppo-root",
        type=Path,
        default=Path("runs/popgym_cpu_50k"),
        help="popgym: RecurrentPPO runs (benchmarks/popgym_cpu.py's --root)",
    )
    parser.add_argument(
        "--icrl-args", default="", help="popgym: more `icrl train` options, one quoted string"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--name", default=None, help="result files (default multitask_stress / multitask_popgym)"
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--random-trials", type=int, default=200)
    parser.add_argument(
        "--report", action="store_true", help="tables and chart of the runs done, run nothing"
    )
    args = parser.parse_args()
    if args.suite == "popgym":
        args.root = args.root or Path("runs/multitask_popgym")
        run_popgym_suite(args)
    else:
        args.root = args.root or Path("runs/multitask")
        run_stress_suite(args)


if __name__ == "__main__":
    main()
