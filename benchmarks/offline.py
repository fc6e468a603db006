"""Learning from data: offline icrl against plain imitation and the data; offline-to-online from random data.

For each env and seed, the source policy is the run of `benchmarks/defaults.py` (`icrl train ENV --seed S`
with the defaults, trained here if its directory has no `result.json`). From it `icrl collect` writes four
datasets of 1,000 trials: greedy, epsilon 0.3, and two of random actions (epsilon 1, two seeds). They make
three datasets of 2,000 trials:

- mixed-0.3: greedy + epsilon 0.3;  mixed-1: greedy + random;  random: the two random ones.

On each mixed dataset, offline only (`--total-env-steps 0 --offline-updates U`): icrl with the defaults (which
turn the conservative critic term on for a run that trains from data), and plain imitation
(`--agent.pg-weight 0 --agent.filter none --agent.conservative-weight 0`: every action cloned, no -Q
term); each final policy is scored by `icrl eval RUN --trials 200`. Then offline-to-online:
`--offline-data random --offline-updates U0 [--replay.offline-fraction F]` followed by the online budget
of the defaults, against the source run itself (online from scratch with the same defaults and seed): env
steps at which a 16-trial evaluation first reaches the online target.

    .venv/bin/python benchmarks/offline.py --jobs 2 --threads 1           # both envs, 3 seeds
    .venv/bin/python benchmarks/offline.py --envs tmaze-50 --seeds 0
    .venv/bin/python benchmarks/offline.py --report                        # the tables of the runs done

Runs live under `--root` (default runs/offline) and the source runs under `--sources` (runs/defaults); a run
with a `result.json` is not run again, one without is started afresh.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defaults import MATRIX, Case, run_one, summarize  # benchmarks/defaults.py, beside this file

from icrl.analysis.stats import mean_se


@dataclass(frozen=True)
class OfflineCase:
    """One env: its `benchmarks/defaults.py` entry, the offline update budget and the online target."""

    defaults_name: str
    offline_updates: int
    pretrain_updates: int
    online_metric: str
    online_target: float
    online_steps: int | None = None
    """Env-step budget of the offline-to-online run (None: the defaults' budget). Past the env steps at
    which the run from scratch got there, a later arrival changes no verdict."""
    online_offline_fraction: float | None = 0.1
    """`--replay.offline-fraction` of the offline-to-online run: the share of each batch drawn from the
    (random) data once online trials exist. None: the library's default (uniform over all trials, so the
    2,000 data trials fill most early batches and crowd out the first online ones: see RESULTS.md)."""


CASES: dict[str, OfflineCase] = {
    # Recalling the cue at the junction is learned late and at once: offline icrl (seed 0) got there at
    # ~1,400 updates on mixed-0.3 but ~3,800 on mixed-1, where only the greedy half of the trials reach
    # the junction at all; 2,000 updates ended both methods at 0.5 (the turn guessed).
    "tmaze-50": OfflineCase("tmaze-50", 6_000, 1_000, "eval/return", 0.95),
    # The last of 5 attempts: what was learned in context about this lake.
    # From scratch it first reaches 0.8 at 39k-46k env steps (seeds 0-2 at decd832, of a 100k budget).
    "frozen-lake": OfflineCase("frozen-lake", 4_000, 1_000, "eval/return_episode_4", 0.8, 50_000),
}
# part -> (epsilon, collect seed offset); a dataset is two parts.
PARTS = {"greedy": (0.0, 1), "eps0.3": (0.3, 2), "random": (1.0, 3), "random-b": (1.0, 4)}
DATASETS = {
    "mixed-0.3": ("greedy", "eps0.3"),
    "mixed-1": ("greedy", "random"),
    "random": ("random", "random-b"),
}
# Plain imitation needs no critic at all; its conservative term is set off so that the critic, which only
# shapes the shared sequence model there, is the plain TD one.
METHODS = {
    "icrl": [],
    "imitation": ["--agent.pg-weight", "0", "--agent.filter", "none", "--agent.conservative-weight", "0"],
}
PART_TRIALS = 1_000
EVAL_TRIALS = 200


def icrl_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "icrl.cli", *args]


def run_logged(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        rc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"exit {rc}: {' '.join(command[3:6])}... (see {log})")


class Bench:
    def __init__(self, root: Path, sources: Path, threads: int) -> None:
        self.root, self.sources, self.threads = root, sources, threads
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str, seed: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((name, seed), threading.Lock())

    def source(self, name: str, seed: int) -> Path:
        return self.sources / f"{CASES[name].defaults_name}__default__{seed}"

    def part_dir(self, name: str, seed: int, part: str) -> Path:
        return self.root / "data" / f"{name}__{seed}" / part

    def prepare(self, name: str, seed: int) -> None:
        """The source run and the four dataset parts of (env, seed), made once."""
        with self._lock(name, seed):
            if not (self.source(name, seed) / "result.json").exists():
                run_one(CASES[name].defaults_name, seed, "default", self.sources, self.threads)
            for part, (epsilon, offset) in PARTS.items():
                out = self.part_dir(name, seed, part)
                if (out / "dataset.json").exists():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                run_logged(
                    icrl_command(
                        "collect", str(self.source(name, seed)), "--trials", str(PART_TRIALS),
                        "--out", str(out),
                        "--epsilon", str(epsilon), "--seed", str(100_000 * offset + 1_000 * seed),
                        "--threads", str(self.threads),
                    ),
                    out.parent / "collect.log",
                )  # fmt: skip

    def train(self, name: str, seed: int, dataset: str, method: str) -> dict[str, Any]:
        """One offline-only run (method icrl/imitation) or the offline-to-online run (method online)."""
        case = CASES[name]
        run_dir = self.root / f"{name}__{dataset}__{method}__{seed}"
        done = run_dir / "result.json"
        if done.exists():
            return json.loads(done.read_text())
        self.prepare(name, seed)
        if run_dir.exists():  # interrupted: start it afresh
            shutil.rmtree(run_dir)
        defaults = MATRIX[case.defaults_name]
        env_options = [
            item for key, value in defaults.env_kwargs.items() for item in (f"--env.{key}", str(value))
        ]
        data = [str(self.part_dir(name, seed, part)) for part in DATASETS[dataset]]
        if method == "online":
            budget = [
                "--total-env-steps",
                str(case.online_steps or defaults.steps),
                "--offline-updates",
                str(case.pretrain_updates),
            ]
            if case.online_offline_fraction is not None:
                budget += ["--replay.offline-fraction", str(case.online_offline_fraction)]
        else:
            budget = [
                "--total-env-steps",
                "0",
                "--offline-updates",
                str(case.offline_updates),
                *METHODS[method],
            ]
        log = run_dir.parent / f"{run_dir.name}.log"  # not with_suffix: the name has dots (mixed-0.3)
        log.unlink(missing_ok=True)
        run_logged(
            icrl_command(
                "train", defaults.env_id, *env_options, "--offline-data", *data, *budget, "--seed", str(seed),
                "--run-dir", str(run_dir), "--threads", str(self.threads),
                "--no-progress", "--no-tensorboard",
            ),
            log,
        )  # fmt: skip
        result: dict[str, Any] = {"name": name, "dataset": dataset, "method": method, "seed": seed}
        if method == "online":
            result.update(summarize(run_dir, self.online_case(name)))
        else:
            run_logged(
                icrl_command(
                    "eval", str(run_dir), "--trials", str(EVAL_TRIALS), "--threads", str(self.threads)
                ),
                log,
            )
            result.update(json.loads((run_dir / "eval.json").read_text()))
        done.write_text(json.dumps(result, indent=1))
        return result

    def online_case(self, name: str) -> Case:
        case = CASES[name]
        defaults = MATRIX[case.defaults_name]
        return Case(
            defaults.env_id, defaults.env_kwargs, defaults.steps, case.online_metric, case.online_target
        )

    def dataset_info(self, name: str, seed: int, dataset: str) -> dict[str, float] | None:
        """Mean trial return of a dataset (its parts weighted by trials), or None if not collected."""
        infos = []
        for part in DATASETS[dataset]:
            path = self.part_dir(name, seed, part) / "dataset.json"
            if not path.exists():
                return None
            infos.append(json.loads(path.read_text()))
        trials = sum(info["trials"] for info in infos)
        return {"return": sum(info["return_mean"] * info["trials"] for info in infos) / trials}

    def policy_return(self, name: str, seed: int) -> float | None:
        path = self.part_dir(name, seed, "greedy") / "dataset.json"
        return json.loads(path.read_text())["return_mean"] if path.exists() else None

    def result(self, name: str, seed: int, dataset: str, method: str) -> dict[str, Any] | None:
        path = self.root / f"{name}__{dataset}__{method}__{seed}" / "result.json"
        return json.loads(path.read_text()) if path.exists() else None


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    estimate = mean_se(values)
    return f"{estimate.mean:.3f} ± {estimate.se:.3f}"


def offline_table(bench: Bench, names: list[str], seeds: list[int]) -> str:
    lines = [
        f"| env | dataset | trained policy | dataset mean | offline icrl ({EVAL_TRIALS} trials) "
        "| icrl / policy | "
        "imitation only | seeds: icrl ≥ 0.9 policy, > dataset, > imitation (≥ imitation) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for dataset in ("mixed-0.3", "mixed-1"):
            policy, data, icrl, imitation, ratio, wins, wins_or_ties, counted = [], [], [], [], [], 0, 0, 0
            for seed in seeds:
                p, d = bench.policy_return(name, seed), bench.dataset_info(name, seed, dataset)
                a, b = (
                    bench.result(name, seed, dataset, "icrl"),
                    bench.result(name, seed, dataset, "imitation"),
                )
                if p is None or d is None:
                    continue
                policy.append(p)
                data.append(d["return"])
                if a:
                    icrl.append(a["eval/return"])
                    ratio.append(a["eval/return"] / p if p else float("nan"))
                if b:
                    imitation.append(b["eval/return"])
                if a and b:
                    counted += 1
                    ret = a["eval/return"]
                    good = ret >= 0.9 * p and ret > d["return"]
                    wins += int(good and ret > b["eval/return"])
                    wins_or_ties += int(good and ret >= b["eval/return"])  # a tie at the policy's own return
            lines.append(
                f"| {name} | {dataset} | {_cell(policy)} | {_cell(data)} | {_cell(icrl)} | {_cell(ratio)} | "
                f"{_cell(imitation)} | {wins}/{counted} ({wins_or_ties}/{counted}) |"
            )
    return "\n".join(lines)


def online_table(bench: Bench, names: list[str], seeds: list[int]) -> str:
    lines = [
        "| env | target | offline-to-online (random data): env steps to target, per seed "
        "| online from scratch "
        "| seeds where offline-to-online is sooner |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        case, o2o, scratch, sooner, counted = CASES[name], [], [], 0, 0
        for seed in seeds:
            mixed = bench.result(name, seed, "random", "online")
            source = bench.source(name, seed)
            from_scratch = (
                summarize(source, bench.online_case(name)) if (source / "metrics.jsonl").exists() else None
            )
            a = mixed.get("reached_steps") if mixed else None
            b = from_scratch.get("reached_steps") if from_scratch else None
            missed = f"not by {mixed['env_steps']:,}" if mixed else "-"
            o2o.append("-" if mixed is None else f"{a:,}" if a is not None else missed)
            scratch.append("-" if from_scratch is None else f"{b:,}" if b is not None else "not reached")
            if mixed and from_scratch:
                counted += 1
                sooner += int(a is not None and (b is None or a < b))
        lines.append(
            f"| {name} | {case.online_metric} ≥ {case.online_target} | {' / '.join(o2o)} "
            f"| {' / '.join(scratch)} | "
            f"{sooner}/{counted} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path("runs/offline"))
    parser.add_argument("--sources", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-online", action="store_true", help="offline runs only")
    parser.add_argument(
        "--report", action="store_true", help="print the tables of the runs done, run nothing"
    )
    args = parser.parse_args()
    bench = Bench(args.root, args.sources, args.threads)
    if not args.report:
        jobs = [
            (name, seed, dataset, method)
            for name in args.envs
            for seed in args.seeds
            for dataset, method in [("random", "online")] * (not args.skip_online)
            + [(d, m) for d in ("mixed-0.3", "mixed-1") for m in METHODS]
        ]
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {job: pool.submit(bench.train, *job) for job in jobs}
            for job, future in futures.items():
                try:
                    future.result()
                except RuntimeError as error:
                    print(f"{'/'.join(map(str, job))}: failed: {error}", flush=True)
                else:
                    print(f"{'/'.join(map(str, job))}: done", flush=True)
    print(offline_table(bench, args.envs, args.seeds))
    print()
    print(online_table(bench, args.envs, args.seeds))


if __name__ == "__main__":
    main()
