"""Multi-task: the reward-scale stress test of one agent over the `multitask-grid` tasks.

Each task's rewards are multiplied by its own factor (`SCALES`, 0.01 to 100, through the task list's
`reward_scale`), so the tasks' returns differ by four orders of magnitude. Arms, each `icrl train --preset
multitask-grid --env.tasks SCALED.json --total-env-steps N --seed S` plus:

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

A run with a `result.json` is not run again; one without is started afresh.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from icrl.analysis.stats import mean_se
from icrl.envs.multitask import make_multitask_trial_env, normalize_tasks
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


def plot(scores: dict[str, dict[str, list[float]]], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(scores)
    for i, (arm, per_task) in enumerate(scores.items()):
        means = [float(np.mean(per_task[n])) if per_task[n] else np.nan for n in names]
        errors = [mean_se(per_task[n]).se if len(per_task[n]) > 1 else 0.0 for n in names]
        xs = np.arange(len(names)) + (i - (len(scores) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=errors, label=arm, capsize=2)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(names)), [f"{n}\n(x{SCALES[n]:g})" for n in names])
    ax.set_ylabel("normalised return (random 0, specialist 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=preset_config(PRESET).total_env_steps)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=[*ARMS, "specialist"], choices=[*ARMS, "specialist"])
    parser.add_argument("--root", type=Path, default=Path("runs/multitask"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="multitask_stress")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--random-trials", type=int, default=200)
    parser.add_argument(
        "--report", action="store_true", help="tables and chart of the runs done, run nothing"
    )
    args = parser.parse_args()
    normalize_tasks(scaled_tasks())  # a bad scale fails here, not in every run
    bench = Bench(args.root, args.steps, args.threads)
    if not args.report:
        jobs = [(arm, seed, None) for seed in args.seeds for arm in ARMS if arm in args.arms]
        if "specialist" in args.arms:
            jobs += [("specialist", seed, name) for seed in args.seeds for name in bench.names]
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {job: pool.submit(bench.train, *job) for job in jobs}
            for job, future in futures.items():
                label = "/".join(str(part) for part in job if part is not None)
                try:
                    future.result()
                    print(f"{label}: done", flush=True)
                except RuntimeError as error:
                    print(f"{label}: failed: {error}", flush=True)
    randoms = {t["name"]: random_return(t, args.random_trials, seed=10_000) for t in bench.tasks}
    table, scores = suite_table(bench, args.seeds, randoms)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(sys.argv)
    (args.out / f"{args.name}.md").write_text(
        f"`{command}`, {args.steps:,} env steps per multi-task run\n\n{table}\n"
    )
    plot(scores, bench.names, args.out / f"{args.name}.png")
    print(f"wrote {args.out / args.name}.md and .png")


if __name__ == "__main__":
    main()
