"""Defaults that learn: `icrl train ENV` with no preset and no learning options, over a matrix of envs.

Every run is `icrl train ENV [--env.KEY VALUE ...] --seed S --total-env-steps N` and nothing else that
changes learning (`--threads`, `--run-dir`, `--no-progress` and `--no-tensorboard` only say where and how
fast it runs); the memory-free control adds `--model.kind mlp`, the same defaults otherwise. `--jobs` runs
at a time, `--threads` torch threads each; a run directory that already has a `result.json` is not run
again, so an interrupted benchmark continues where it stopped.

For each env it prints the final greedy evaluation (mean ± standard error over the seeds), how many seeds
end at or above the target, and the median env steps and wall-clock seconds at which an evaluation first
reached it; then the control's final evaluation. A run that fails (an env that cannot be made, a missing
extra) is a row that says so.

    .venv/bin/python benchmarks/defaults.py                          # the whole matrix, 3 seeds
    .venv/bin/python benchmarks/defaults.py --envs tmaze-20 tmaze-50 --jobs 2
    .venv/bin/python benchmarks/defaults.py --list                   # the matrix, one line each
    .venv/bin/python benchmarks/defaults.py --report                 # the table of the runs done so far
    .venv/bin/python benchmarks/defaults.py --report --eval-trials 200   # ... with finals on 200 fresh trials

`--eval-trials N` also scores every finished run's final policy on N fresh greedy trials (`icrl eval RUN
--trials N`, written to RUN/eval_N.json and not repeated): a 16-trial evaluation is too noisy to rank
seeds against a target, and it reads the metric with today's env code (an env that gained a key, e.g.
MiniGrid's success, is scored on it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icrl.analysis.stats import first_reaching, mean_se
from icrl.train.logger import read_metrics


@dataclass(frozen=True)
class Case:
    """One env of the matrix: how to make it, its env-step budget, and the number that must reach `target`."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    steps: int = 60_000
    metric: str = "eval/return"
    target: float | None = None


MATRIX: dict[str, Case] = {
    "tmaze-20": Case("icrl/TMaze-v0", {"length": 20}, target=0.95),
    "tmaze-50": Case("icrl/TMaze-v0", {"length": 50}, target=0.95),
    # The last of 5 attempts on a 4x4 lake: what the agent learned in context about this lake's holes.
    "frozen-lake": Case(
        "icrl/MetaFrozenLake-v0", {"size": 4, "attempts": 5}, 100_000, "eval/return_episode_4", 0.75
    ),
    "dark-key-door": Case(
        "icrl/DarkKeyToDoor-v0", {"size": 4, "episode_length": 20, "trial_length": 100}, 200_000, target=12.0
    ),
    "repeat-previous": Case("popgym-RepeatPreviousEasy-v0", steps=50_000, target=0.9),
    "count-recall": Case("popgym-CountRecallEasy-v0", steps=50_000),
    "position-only-cartpole": Case("popgym-PositionOnlyCartPoleEasy-v0", steps=50_000),
    "cartpole": Case("CartPole-v1", target=475.0),
    "pendulum": Case("Pendulum-v1", steps=30_000, target=-250.0),
    "minigrid-memory": Case("MiniGrid-MemoryS7-v0", steps=150_000, metric="eval/success", target=0.9),
}
KINDS = {"default": [], "control": ["--model.kind", "mlp"]}


def train_command(case: Case, seed: int, kind: str, run_dir: Path, threads: int) -> list[str]:
    env_options = [item for key, value in case.env_kwargs.items() for item in (f"--env.{key}", str(value))]
    return [
        sys.executable, "-m", "icrl.cli", "train", case.env_id, *env_options,
        "--seed", str(seed), "--total-env-steps", str(case.steps), *KINDS[kind],
        "--run-dir", str(run_dir), "--threads", str(threads), "--no-progress", "--no-tensorboard",
    ]  # fmt: skip


def run_one(name: str, seed: int, kind: str, root: Path, threads: int) -> dict[str, Any]:
    """Train one run (unless its result.json exists) and return its summary."""
    case = MATRIX[name]
    run_dir = root / f"{name}__{kind}__{seed}"
    done = run_dir / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.with_suffix(".log")
    with log.open("w") as out:
        rc = subprocess.run(
            train_command(case, seed, kind, run_dir, threads), stdout=out, stderr=subprocess.STDOUT
        ).returncode
    if rc != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        return {"name": name, "kind": kind, "seed": seed, "failed": f"exit {rc}: {tail[0][:200]}"}
    summary = {"name": name, "kind": kind, "seed": seed, **summarize(run_dir, case)}
    done.write_text(json.dumps(summary, indent=1))
    return summary


def summarize(run_dir: Path, case: Case) -> dict[str, Any]:
    rows = [row for row in read_metrics(run_dir) if row.get(case.metric) is not None]
    if not rows:
        return {"failed": f"no {case.metric} in {run_dir}/metrics.jsonl"}
    hit = first_reaching(rows, case.metric, case.target) if case.target is not None else None
    return {
        "final": rows[-1][case.metric],
        "env_steps": rows[-1]["env_steps"],
        "wall_s": rows[-1]["wall_time_s"],
        "reached_steps": hit["env_steps"] if hit else None,
        "reached_s": hit["wall_time_s"] if hit else None,
    }


def evaluate_one(name: str, seed: int, kind: str, root: Path, trials: int, threads: int) -> float | None:
    """The case's metric for the run's final policy on `trials` fresh greedy trials (RUN/eval_N.json, made
    once with `icrl eval`); None for a run that has no checkpoint or whose evaluation lacks the metric."""
    run_dir = root / f"{name}__{kind}__{seed}"
    out = run_dir / f"eval_{trials}.json"
    if not out.exists():
        if not (run_dir / "checkpoints").is_dir():
            return None
        command = [sys.executable, "-m", "icrl.cli", "eval", str(run_dir), "--trials", str(trials),
                   "--out", str(out), "--threads", str(threads)]  # fmt: skip
        with out.with_suffix(".log").open("w") as log:  # why an evaluation failed (a missing extra, ...)
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                return None
    return json.loads(out.read_text()).get(MATRIX[name].metric)


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f}" if values else "-"


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"


def _final(runs: list[dict[str, Any]]) -> str:
    finals = [r["final"] for r in runs if "final" in r]
    failed = len(runs) - len(finals)
    if not finals:
        return f"failed ({runs[0]['failed']})" if runs else "-"
    estimate = mean_se(finals) if len(finals) > 1 else None
    text = f"{_number(estimate.mean)} ± {_number(estimate.se)}" if estimate else _number(finals[0])
    return text + (f" ({failed} failed)" if failed else "")


def _scored(values: list[float], target: float | None) -> str:
    """Finals on many trials: mean ± SE (one seed: the value) and how many seeds reach the target."""
    if not values:
        return "-"
    estimate = mean_se(values) if len(values) > 1 else None
    text = f"{_number(estimate.mean)} ± {_number(estimate.se)}" if estimate else _number(values[0])
    return text + ("" if target is None else f" ({sum(v >= target for v in values)}/{len(values)})")


Scores = dict[tuple[str, str], list[float]]  # (env, kind) -> finals on many trials, one per seed


def table(
    results: list[dict[str, Any]], names: list[str], scored: Scores | None = None, trials: int = 0
) -> str:
    """The benchmark's table; with `scored` ((env, kind) -> finals on `trials` trials) two more columns."""
    more = f" default: final on {trials:,} trials (seeds ≥ target) | control: final on {trials:,} trials |"
    lines = [
        "| env | steps | metric | target | default: final (mean ± SE) | seeds ≥ target | median steps / s to "
        "target | memory-free control: final |" + (more if scored is not None else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if scored is not None else ""),
    ]
    for name in names:
        case = MATRIX[name]
        default = [r for r in results if r["name"] == name and r["kind"] == "default"]
        control = [r for r in results if r["name"] == name and r["kind"] == "control"]
        ok = [r for r in default if r.get("final") is not None and case.target is not None
              and r["final"] >= case.target]  # fmt: skip
        reached = [r for r in default if r.get("reached_steps") is not None]
        kwargs = " ".join(f"{k}={v}" for k, v in case.env_kwargs.items())
        target = "-" if case.target is None else f"{case.target:g}"
        seeds_ok = "-" if case.target is None else f"{len(ok)}/{len(default)}"
        to_target = (
            f"{_median([r['reached_steps'] for r in reached])} / {_median([r['reached_s'] for r in reached])}"
            if reached else "-"
        )  # fmt: skip
        row = (
            f"| {f'{case.env_id} {kwargs}'.strip()} | {case.steps:,} | {case.metric} | {target} "
            f"| {_final(default)} | {seeds_ok} | {to_target} | {_final(control)} |"
        )
        if scored is not None:
            row += f" {_scored(scored.get((name, 'default'), []), case.target)} |"
            row += f" {_scored(scored.get((name, 'control'), []), None)} |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(MATRIX), choices=list(MATRIX))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--root", type=Path, default=Path("runs/defaults"), help="where the runs go")
    parser.add_argument("--list", action="store_true", help="print the matrix and stop")
    parser.add_argument("--report", action="store_true", help="print the table of the runs done; train none")
    parser.add_argument("--eval-trials", type=int, default=0,
                        help="also score each finished run's final policy on this many fresh trials (0: no)")
    args = parser.parse_args()
    if args.list:
        for name, case in MATRIX.items():
            print(f"{name}: {' '.join(train_command(case, 0, 'default', Path('RUN'), 1)[3:])}")
        return
    start = time.time()
    jobs = [(name, seed, kind) for name in args.envs for kind in args.kinds for seed in args.seeds]
    if args.report:
        done = [args.root / f"{name}__{kind}__{seed}" / "result.json" for name, seed, kind in jobs]
        results = [json.loads(path.read_text()) for path in done if path.exists()]
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda job: run_one(*job, args.root, args.threads), jobs))
    scored = None
    if args.eval_trials:
        # every run that trained to its end, also one whose evaluations lacked the metric (an env that
        # has gained the key since, e.g. MiniGrid's success); not one whose training failed
        finished = [(r["name"], r["seed"], r["kind"]) for r in results
                    if not str(r.get("failed", "")).startswith("exit")]  # fmt: skip
        with ThreadPoolExecutor(args.jobs) as pool:
            values = list(pool.map(
                lambda job: evaluate_one(*job, args.root, args.eval_trials, args.threads), finished
            ))  # fmt: skip
        scored = {}
        for (name, _, kind), value in zip(finished, values, strict=True):
            if value is not None:
                scored.setdefault((name, kind), []).append(value)
    print(table(results, args.envs, scored, args.eval_trials))
    if args.report:
        return
    print(f"\n{len(jobs)} runs, {time.time() - start:,.0f} s; seeds {args.seeds}, {args.jobs} at a time, "
          f"{args.threads} torch thread(s) each")  # fmt: skip


if __name__ == "__main__":
    main()
