"""POPGym memory benchmark on CPU: icrl's Transformer agent vs the memory-free control vs recurrent PPO.

For every environment and seed, at the same env-step budget:
- `icrl`: `icrl train popgym-<Env>-v0 --preset popgym-cpu` (a small Transformer, off-policy);
- `mlp`: the same with `--model.kind mlp`, the memory-free control (same timestep features, no memory);
- `ppo`: sb3-contrib's `RecurrentPPO` with `MlpLstmPolicy` (on-policy, LSTM memory), on the same
  adapted env (`icrl.envs.popgym_adapter`), its observation extended with the one-hot previous action and
  the previous reward, the extra inputs icrl's timesteps carry.

Every method is evaluated on fresh episodes every `--eval-every` env steps (icrl: greedy actions on
`eval_trials` trials; PPO: deterministic actions on `--eval-episodes` episodes). Each run's "final
return" is one more evaluation of its final policy on `--final-episodes` fresh episodes (default 200, the
same seed for every method; icrl: `icrl eval RUN --trials N`), so that a 32-episode curve point's noise
does not decide the table; with `--final-episodes 0` it is the curve's last point. Writes into `--out`
(default benchmarks/results/): `<name>.md` (mean ± std over seeds of the final return, and wall time),
`<name>.json` (every curve) and `<name>_<Env>.png` (learning curves, mean ± std over seeds); `--name`
defaults to `popgym_cpu`.
`--icrl-args "..."` adds `icrl train` options to the icrl and control runs (e.g. a per-env recipe; the
table's command line records them). Runs live in `--root`; a finished run is not run again, a stopped one
with a checkpoint is resumed (`icrl resume`), so an interrupted benchmark continues where it stopped.

    .venv/bin/python benchmarks/popgym_cpu.py --envs RepeatPreviousEasy --seeds 0 1 --steps 30000

Needs the `popgym` and `bench` extras (`pip install -e '.[popgym,bench]'`).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from icrl.analysis.stats import mean_sd

DEFAULT_ENVS = [
    "RepeatPreviousEasy",
    "RepeatFirstEasy",
    "AutoencodeEasy",
    "CountRecallEasy",
    "PositionOnlyCartPoleEasy",
    "MineSweeperEasy",
]
METHODS = ("icrl", "mlp", "ppo")
LABELS = {
    "icrl": "icrl Transformer (popgym-cpu)",
    "mlp": "memory-free control (model.kind mlp)",
    "ppo": "RecurrentPPO (MlpLstmPolicy)",
}
PRESET = "popgym-cpu"
# RecurrentPPO settings for small CPU budgets (sb3-contrib defaults otherwise: one LSTM layer of 256
# units shared by actor and critic, clip 0.2, GAE lambda 0.95).
PPO_HPARAMS: dict[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
}
PPO_ENVS = 8
FINAL_SEED = 12345  # the final evaluation's episodes, the same for every method and run


def env_id(name: str) -> str:
    """`RepeatPreviousEasy` -> `popgym-RepeatPreviousEasy-v0` (full ids pass through)."""
    return name if name.startswith("popgym-") else f"popgym-{name}-v0"


def short_name(name: str) -> str:
    """`popgym-RepeatPreviousEasy-v0` -> `RepeatPreviousEasy`."""
    if name.startswith("popgym-"):
        name = name[len("popgym-") :]
        name = name.rsplit("-v", 1)[0]
    return name


# ---------------------------------------------------------------------------------------------- icrl runs
def icrl_eval_every_updates(eval_every_steps: int, train_args: list[str]) -> int:
    """The run's updates per env step (its config, built from the same `icrl train` arguments), turned
    into an evaluation period in updates."""
    from icrl.cli import build_train_config

    cfg = build_train_config(train_args)
    updates_per_step = cfg.updates_per_collect / (cfg.collect_steps * cfg.env.num_actors)
    return max(1, round(eval_every_steps * updates_per_step))


def run_icrl(env: str, seed: int, kind: str, args: argparse.Namespace) -> Path:
    """Train icrl (`kind` transformer or mlp) on one env and seed in a subprocess; return the run dir."""
    from icrl.train.checkpoint import latest_checkpoint

    run_dir = Path(args.root) / short_name(env) / f"{'icrl' if kind == 'transformer' else 'mlp'}__{seed}"
    curve = _icrl_curve(run_dir)  # [] when the run never wrote metrics
    if curve and curve[-1]["env_steps"] >= args.steps:  # finished: the trainer evaluates at the very end
        return run_dir
    if latest_checkpoint(run_dir / "checkpoints") is not None:  # stopped (Ctrl-C, SIGTERM): continue it
        with run_dir.with_suffix(".log").open("a") as log:
            cmd = [sys.executable, "-m", "icrl.cli", "resume", str(run_dir)]
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
        return run_dir
    if run_dir.exists():  # an attempt that never wrote a checkpoint (e.g. killed hard): start over
        shutil.rmtree(run_dir)
    config_args = [env_id(env), "--preset", PRESET, *shlex.split(args.icrl_args)]
    cmd = [
        sys.executable, "-m", "icrl.cli", "train", *config_args,
        "--seed", str(seed),
        "--model.kind", kind,
        "--total-env-steps", str(args.steps),
        "--eval-every", str(icrl_eval_every_updates(args.eval_every, config_args)),
        "--checkpoint-every", "0",
        "--run-dir", str(run_dir),
        "--threads", str(args.threads),
        "--no-progress", "--no-tensorboard",
    ]  # fmt: skip
    if args.box_action_bins:
        cmd += ["--env.box_action_bins", str(args.box_action_bins)]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with run_dir.with_suffix(".log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return run_dir


def icrl_final_eval(run_dir: Path, episodes: int) -> None:
    """`icrl eval RUN_DIR --trials N --seed FINAL_SEED` into `<run_dir>/final_eval.json` (once)."""
    out = run_dir / "final_eval.json"
    if out.exists() and json.loads(out.read_text()).get("trials") == episodes:
        return
    from icrl.train.evaluate import evaluate_run

    result = evaluate_run(run_dir, trials=episodes, seed=FINAL_SEED)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"trials": episodes, "seed": FINAL_SEED, "return": result["eval/return"]}))
    tmp.replace(out)


def _icrl_curve(run_dir: Path) -> list[dict[str, float]]:
    from icrl.train.logger import read_metrics

    return [
        {"env_steps": r["env_steps"], "return": r["eval/return"], "wall_s": r["wall_time_s"]}
        for r in read_metrics(run_dir)
        if r.get("eval/return") is not None
    ]


# ----------------------------------------------------------------------------------------------- PPO runs
def ppo_env(env: str, box_action_bins: int | None = None) -> Any:
    """The adapted POPGym env with the one-hot previous action and the previous reward appended."""
    import gymnasium as gym
    from gymnasium import spaces

    from icrl.envs.popgym_adapter import make_popgym_env

    class PrevActionRewardObs(gym.Wrapper):
        """Flat Box observation: flatten(obs) ++ flatten(previous action) ++ [previous reward]."""

        def __init__(self, inner: gym.Env) -> None:
            super().__init__(inner)
            self._obs_space, self._act_space = inner.observation_space, inner.action_space
            size = spaces.flatdim(self._obs_space) + spaces.flatdim(self._act_space) + 1
            self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
            self._no_action = np.zeros(spaces.flatdim(self._act_space), dtype=np.float32)

        def _obs(self, obs: Any, prev_action: np.ndarray, prev_reward: float) -> np.ndarray:
            flat = spaces.flatten(self._obs_space, obs).astype(np.float32)
            return np.concatenate([flat, prev_action, np.array([prev_reward], dtype=np.float32)])

        def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
            obs, info = self.env.reset(**kwargs)
            return self._obs(obs, self._no_action, 0.0), info

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
            obs, reward, terminated, truncated, info = self.env.step(action)
            prev = spaces.flatten(self._act_space, action).astype(np.float32)
            return self._obs(obs, prev, float(reward)), float(reward), terminated, truncated, info

    kwargs = {"box_action_bins": box_action_bins} if box_action_bins else {}
    return PrevActionRewardObs(make_popgym_env(env_id(env), **kwargs))


def evaluate_ppo(model: Any, env: str, episodes: int, seed: int, box_action_bins: int | None) -> float:
    """Mean return of `episodes` episodes (run side by side, deterministic actions, fresh LSTM states)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: ppo_env(env, box_action_bins)] * episodes)
    venv.seed(seed)
    obs = venv.reset()
    state = None
    starts = np.ones(episodes, dtype=bool)
    returns = np.zeros(episodes)
    finished = np.zeros(episodes, dtype=bool)
    while not finished.all():
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, reward, done, _ = venv.step(action)
        returns += np.where(finished, 0.0, reward)
        finished |= done
        starts = done
    venv.close()
    return float(returns.mean())


def train_ppo(env: str, seed: int, steps: int, out: Path, eval_every: int, eval_episodes: int,
              threads: int, box_action_bins: int | None, final_episodes: int = 0) -> None:  # fmt: skip
    """Train RecurrentPPO for `steps` env steps, evaluating every `eval_every`; write the curve (and the
    final policy's return on `final_episodes` episodes) to `out`."""
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(threads)
    venv = DummyVecEnv([lambda: ppo_env(env, box_action_bins)] * PPO_ENVS)
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, device="cpu", verbose=0, **PPO_HPARAMS)
    curve: list[dict[str, float]] = []
    start = time.perf_counter()

    def record(env_steps: int) -> None:
        ret = evaluate_ppo(model, env, eval_episodes, 10_000 + len(curve), box_action_bins)
        curve.append({"env_steps": env_steps, "return": ret, "wall_s": time.perf_counter() - start})
        print(f"[ppo eval] env_steps={env_steps} return={ret:.3f}", flush=True)

    class Evaluate(BaseCallback):
        """Evaluate between rollouts once `eval_every` more env steps were collected."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = eval_every

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if self.num_timesteps >= self.next_eval:
                record(self.num_timesteps)
                self.next_eval += eval_every

    model.learn(total_timesteps=steps, callback=Evaluate())
    if not curve or curve[-1]["env_steps"] != model.num_timesteps:
        record(model.num_timesteps)
    venv.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "env": env_id(env),
        "seed": seed,
        "hparams": {**PPO_HPARAMS, "n_envs": PPO_ENVS},
        "curve": curve,
    }
    if final_episodes:
        final = evaluate_ppo(model, env, final_episodes, FINAL_SEED, box_action_bins)
        payload["final"] = {"episodes": final_episodes, "seed": FINAL_SEED, "return": final}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out)


def run_ppo(env: str, seed: int, args: argparse.Namespace) -> Path:
    """Train RecurrentPPO in a subprocess (own torch threads, like the icrl runs); return its JSON."""
    out = Path(args.root) / short_name(env) / f"ppo__{seed}.json"
    if out.exists() and (not args.final_episodes or ppo_final(out, args.final_episodes) is not None):
        return out
    cmd = [
        sys.executable, __file__, "ppo-worker", env, str(seed), str(args.steps), str(out),
        "--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes),
        "--threads", str(args.threads), "--box-action-bins", str(args.box_action_bins or 0),
        "--final-episodes", str(args.final_episodes),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def ppo_final(out: Path, episodes: int) -> float | None:
    """The final return a finished PPO run recorded for `episodes` episodes (None: not recorded)."""
    final = json.loads(out.read_text()).get("final")
    return final["return"] if final and final["episodes"] == episodes else None


# ----------------------------------------------------------------------------------------------- results
def curve_of(method: str, env: str, seed: int, root: Path) -> list[dict[str, float]]:
    if method == "ppo":
        return json.loads((root / short_name(env) / f"ppo__{seed}.json").read_text())["curve"]
    return _icrl_curve(root / short_name(env) / f"{method}__{seed}")


def final_of(method: str, env: str, seed: int, root: Path, episodes: int) -> float | None:
    """The run's final return on `episodes` (> 0) fresh episodes (None: not recorded for that many)."""
    if method == "ppo":
        return ppo_final(root / short_name(env) / f"ppo__{seed}.json", episodes)
    final = json.loads((root / short_name(env) / f"{method}__{seed}" / "final_eval.json").read_text())
    return final["return"] if final["trials"] == episodes else None


def mean_std(values: list[float]) -> str:
    """Final returns over seeds as printed in the table: mean ± population standard deviation."""
    if not values:
        return "-"
    mean, sd = mean_sd(values, ddof=0)
    return f"{mean:.3f} ± {sd:.3f}"


def plot_env(env: str, curves: dict[str, list[list[dict[str, float]]]], path: Path) -> None:
    """Learning curves of every method on one env: mean over seeds (line) ± std (band), seeds faint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        first = max(r[0]["env_steps"] for r in runs)
        end = min(r[-1]["env_steps"] for r in runs)
        grid = np.linspace(first, max(first, end), 100)
        ys = np.stack([np.interp(grid, [p["env_steps"] for p in r], [p["return"] for p in r]) for r in runs])
        (line,) = ax.plot(grid, ys.mean(0), label=f"{LABELS[method]} (n={len(runs)})")
        ax.fill_between(
            grid, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), alpha=0.2, color=line.get_color()
        )
        for r in runs:
            ax.plot(
                [p["env_steps"] for p in r],
                [p["return"] for p in r],
                lw=0.5,
                alpha=0.35,
                color=line.get_color(),
            )
    ax.set_title(env_id(env))
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.set_ylim(-1.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(args: argparse.Namespace, started: float) -> Path:
    root, out = Path(args.root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = "| env | " + " | ".join(LABELS[m] for m in args.methods) + " |"
    lines = [
        f"# POPGym CPU benchmark ({time.strftime('%Y-%m-%d %H:%M %Z')})",
        "",
        f"Machine: {platform.processor() or platform.machine()}, `nproc`={_nproc()}, torch threads per run "
        f"{args.threads}, {args.jobs} run(s) at a time. Budget {args.steps:,} env steps per run; seeds "
        f"{args.seeds}; evaluation every ~{args.eval_every:,} env steps. Final return "
        + (
            f"(the final policy on {args.final_episodes} fresh episodes, seed {FINAL_SEED})"
            if args.final_episodes
            else "(the last evaluation)"
        )
        + ", mean ± std over seeds (population std); wall time per run in brackets (mean, seconds).",
        "",
        f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`",
        "",
        header,
        "|---" * (len(args.methods) + 1) + "|",
    ]
    everything: dict[str, Any] = {}
    for env in args.envs:
        cells, curves = [], {}
        for method in args.methods:
            runs, finals = [], []
            for seed in args.seeds:
                try:
                    runs.append(curve_of(method, env, seed, root))
                    if args.final_episodes:
                        final = final_of(method, env, seed, root, args.final_episodes)
                    else:  # the curve's last point
                        final = runs[-1][-1]["return"] if runs[-1] else None
                except (FileNotFoundError, KeyError, json.JSONDecodeError):
                    runs.append([])
                    final = None
                if final is not None:
                    finals.append(final)
            curves[method] = runs
            walls = [r[-1]["wall_s"] for r in runs if r]
            cell = mean_std(finals)
            if walls:
                cell += f" ({np.mean(walls):.0f} s)"
            if len(finals) < len(args.seeds):
                cell += f" [{len(finals)}/{len(args.seeds)} seeds]"
            cells.append(cell)
        lines.append(f"| {short_name(env)} | " + " | ".join(cells) + " |")
        everything[env_id(env)] = curves
        plot_env(env, curves, out / f"{args.name}_{short_name(env)}.png")
    lines += ["", f"Total wall time of this invocation: {time.time() - started:.0f} s."]
    md = out / f"{args.name}.md"
    md.write_text("\n".join(lines) + "\n")
    (out / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "curves": everything}, indent=1))
    return md


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


# -------------------------------------------------------------------------------------------------- main
def ppo_worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="popgym_cpu.py ppo-worker")
    parser.add_argument("env")
    parser.add_argument("seed", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("out")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--box-action-bins", type=int, default=0)
    parser.add_argument("--final-episodes", type=int, default=0)
    a = parser.parse_args(argv)
    train_ppo(a.env, a.seed, a.steps, Path(a.out), a.eval_every, a.eval_episodes, a.threads,
              a.box_action_bins or None, a.final_episodes)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "ppo-worker":
        ppo_worker(argv[1:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=DEFAULT_ENVS, help="POPGym names or full ids.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--steps", type=int, default=100_000, help="Env steps per run (every method).")
    parser.add_argument("--eval-every", type=int, default=5_000, help="Env steps between evaluations.")
    parser.add_argument("--eval-episodes", type=int, default=32, help="PPO evaluation episodes.")
    parser.add_argument(
        "--final-episodes", type=int, default=200,
        help="Episodes of the final evaluation of each run (0: use the curve's last point).",
    )  # fmt: skip
    parser.add_argument("--box-action-bins", type=int, default=None, help="For the Pendulum envs.")
    parser.add_argument(
        "--icrl-args", default="",
        help="Extra `icrl train` options for the icrl and control runs, after the preset's (one quoted "
        "string, e.g. \"--model.context-len 128 --updates-per-collect 64\").",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="Runs at a time.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--root", default="runs/popgym_cpu", help="Where the runs live.")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default="popgym_cpu", help="Prefix of the result files.")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild table and plots.")
    args = parser.parse_args(argv)
    started = time.time()
    if not args.report_only:
        jobs = [(env, seed, method) for env in args.envs for seed in args.seeds for method in args.methods]

        def run(job: tuple[str, int, str]) -> None:
            env, seed, method = job
            t0 = time.time()
            if method == "ppo":
                run_ppo(env, seed, args)
            else:
                run_dir = run_icrl(env, seed, "transformer" if method == "icrl" else "mlp", args)
                if args.final_episodes:
                    icrl_final_eval(run_dir, args.final_episodes)
            print(f"done {short_name(env)} {method} seed {seed} in {time.time() - t0:.0f} s", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(run, jobs))
    print(write_results(args, started).read_text())


if __name__ == "__main__":
    main()
