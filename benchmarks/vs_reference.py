"""icrl against the reference AMAGO, side by side: config S on T-Maze, CPU.

The reference is a peer that this script installs and runs, never code this repo contains: point
`--reference-src` at a source checkout of it (its `amago/` package and `pyproject.toml`). The script

1. builds a virtual environment for the reference under `--work-dir` (default `runs/vs_reference/venv`,
   git-ignored): torch 2.13.0 first (the local CPU wheel), then gymnasium <= 0.29.1 and the reference's
   required dependencies, then the reference itself (not editable, so that the patch below touches only
   the venv's copy). Its optional extras (environment suites, flash-attn, mamba) are skipped: the T-Maze
   path needs none of them;
2. patches the venv's copy for `torch.compile` on CPU: the σReparam layer keeps the power-iteration vectors
   taken from an SVD (`U[:, 0]`, `Vh[0]`) as strided views, and inductor's stride check fails at the first
   update; a text substitution appends `.contiguous()` and the script prints what it changed;
3. writes a small launcher (`--work-dir/reference_launcher.py`) that builds the reference's T-Maze experiment
   through its public API (gin bindings + `Experiment`) with config S, times rollouts and updates after
   warm-up, and prints one JSON line;
4. runs icrl fp32, icrl bf16 (`icrl bench --preset bench-s`), the reference eager (`TORCHDYNAMO_DISABLE=1`)
   and the reference compiled, alternating, each run a separate process, `--repeats` rounds, and prints one
   table of min / median / max per cell.

Config S: T-Maze passive, corridor 255 (one 256-step episode fills the context), 256 timesteps of context,
d_model 128, 3 layers, 8 heads, feed-forward 512, batch 24, 4 critics, 7 discounts, 8 synchronous actors.

    nice .venv/bin/python benchmarks/vs_reference.py --reference-src /path/to/amago --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TORCH_PIN = "torch==2.13.0"
# The reference's required dependencies (its pyproject), gymnasium capped as it asks; wandb and gym are
# imported unconditionally by its modules, so they stay although the benchmark never logs anything.
REFERENCE_DEPS = [
    "gymnasium>=0.26,<=0.29.1",
    "numpy>=1.21,<3",
    "gin-config",
    "wandb",
    "einops",
    "tqdm",
    "gym",
    "accelerate>=1.0",
    "termcolor",
    "matplotlib",  # in the reference's `envs` extra, but imported on the T-Maze path
]
SKIPPED = "optional extras envs (metaworld, popgym, procgen, ...), flash (flash-attn), mamba (mamba-ssm)"
# (text in the reference's nets/transformer.py, replacement): see the module docstring, point 2.
CONTIGUITY_PATCH = [
    ("u = U[:, 0].detach()\n", "u = U[:, 0].detach().contiguous()\n"),
    ("v = Vh[0].detach()\n", "v = Vh[0].detach().contiguous()\n"),
]
VARIANTS = ("icrl fp32", "icrl bf16", "reference eager", "reference compiled")
METRICS = (
    ("updates_per_s", "updates/s", 2),
    ("env_steps_per_s", "env steps/s", 0),
    ("peak_rss_mb", "peak RSS (MB)", 0),
)

# The launcher runs in the reference's venv; it is written out at benchmark time, never imported here.
LAUNCHER = r'''"""Config S on the reference AMAGO: time rollouts and updates, print one JSON line."""
import argparse, json, os, resource, sys, tempfile, time, warnings

p = argparse.ArgumentParser()
p.add_argument("--updates", type=int, default=20)
p.add_argument("--warmup-updates", type=int, default=5)
p.add_argument("--rollout-steps", type=int, default=255)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--loader-workers", type=int, default=0)
a = p.parse_args()

import torch
torch.set_num_threads(a.threads)
warnings.filterwarnings("ignore")
import amago
from amago import cli_utils
from amago.envs import AMAGOEnv
from amago.envs.builtin.tmaze import TMazeAltPassive
from amago.loading import DiskTrajDataset
from amago.nets import transformer

HORIZON = 255  # one episode = HORIZON + 1 steps = the context
config = {}
traj = cli_utils.switch_traj_encoder(config, arch="transformer", memory_size=128, layers=3,
                                     n_heads=8, attention_type=transformer.VanillaAttention)
tstep = cli_utils.switch_tstep_encoder(config, arch="ff", n_layers=2, d_hidden=128, d_output=128,
                                       normalize_inputs=False)
agent = cli_utils.switch_agent(config, "agent", reward_multiplier=100.0, gamma=0.9999, num_critics=4)
cli_utils.use_config(config)
make_env = lambda: AMAGOEnv(env=TMazeAltPassive(corridor_length=HORIZON, penalty=-1.0 / HORIZON),
                            env_name=f"TMazePassive-H{HORIZON}")
tmp = tempfile.mkdtemp(prefix="amago-ref-bench-")
exp = amago.Experiment(
    run_name="bench", ckpt_base_dir=tmp, max_seq_len=HORIZON + 1, traj_save_len=HORIZON + 1,
    dataset=DiskTrajDataset(dset_root=tmp, dset_name="bench", dset_max_size=10_000),
    tstep_encoder_type=tstep, traj_encoder_type=traj, agent_type=agent,
    make_train_env=make_env, make_val_env=make_env, val_timesteps_per_epoch=0,
    parallel_actors=8, env_mode="sync", batch_size=24, dloader_workers=a.loader_workers,
    train_batches_per_epoch=a.updates + a.warmup_updates + 8, train_timesteps_per_epoch=8,
    log_to_wandb=False, verbose=False, sample_actions_train=False,
)
exp.start()
exp.collect_new_training_data()  # warm-up: 8 steps per actor
exp.train_timesteps_per_epoch = a.rollout_steps
t0 = time.perf_counter()
exp.collect_new_training_data()
rollout_s = time.perf_counter() - t0
exp.dataset.on_end_of_collection(experiment=exp)
exp.init_dloaders()
exp.policy_aclr.train()
batches = iter(exp.train_dloader)
for _ in range(a.warmup_updates):
    exp.train_step(next(batches), log_step=False)
t0 = time.perf_counter()
for _ in range(a.updates):
    exp.train_step(next(batches), log_step=False)
update_s = (time.perf_counter() - t0) / a.updates
print(json.dumps({
    "updates_per_s": round(1.0 / update_s, 3),
    "env_steps_per_s": round(8 * a.rollout_steps / rollout_s, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "compiled": os.environ.get("TORCHDYNAMO_DISABLE") != "1",
    "gammas": len(exp.policy.gammas), "num_critics": exp.policy.num_critics,
    "threads": torch.get_num_threads(), "torch": torch.__version__,
}), flush=True)
'''


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float | None = None) -> tuple[int, str]:
    """Run `cmd`; return (exit status, stdout + stderr)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


def reference_commit(src: Path) -> str:
    """The checkout's commit if `src` is a git work tree, else a note that it is an exported tree."""
    rc, out = _run(["git", "-C", str(src), "rev-parse", "HEAD"])
    return out.strip() if rc == 0 else "unknown (not a git work tree)"


def install_reference(src: Path, work: Path) -> Path:
    """Create `work/venv` with the reference installed; return its python. Idempotent: a marker file records
    a finished install. Raises RuntimeError with a one-line reason."""
    if not (src / "amago" / "__init__.py").is_file() or not (src / "pyproject.toml").is_file():
        raise RuntimeError(
            f"{src} is not a source checkout of the reference (needs amago/ and pyproject.toml)"
        )
    venv = work / "venv"
    py = venv / "bin" / "python"
    marker = venv / ".icrl-vs-reference-installed"
    if marker.is_file():
        return py
    work.mkdir(parents=True, exist_ok=True)
    log = work / "install.log"
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "-q", TORCH_PIN],  # first, so nothing pulls a CUDA build
        [str(py), "-m", "pip", "install", "-q", TORCH_PIN, *REFERENCE_DEPS, "psutil"],
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(src)],
    ]
    with log.open("w") as fh:
        for cmd in steps:
            print(f"[vs_reference] {' '.join(cmd)}", file=sys.stderr, flush=True)
            rc, out = _run(cmd)
            fh.write(f"$ {' '.join(cmd)}\n{out}\n")
            if rc != 0:
                raise RuntimeError(f"installing the reference failed at `{' '.join(cmd[-2:])}`: see {log}")
    marker.write_text(TORCH_PIN + "\n")
    print(f"[vs_reference] skipped (not needed for T-Maze): {SKIPPED}", file=sys.stderr, flush=True)
    return py


def patch_contiguity(py: Path) -> str:
    """Apply the σReparam contiguity fix to the venv's installed copy; return what was done, in one line."""
    code = "import importlib.util as u; print(u.find_spec('amago').submodule_search_locations[0])"
    rc, out = _run([str(py), "-c", code])
    if rc != 0:
        raise RuntimeError(f"the reference's venv cannot locate amago: {out.strip().splitlines()[-1:]}")
    path = Path(out.strip().splitlines()[-1]) / "nets" / "transformer.py"
    if py.parent.parent.resolve() not in path.resolve().parents:
        raise RuntimeError(f"refusing to patch {path}: it is not the reference venv's copy (reinstall it)")
    text = path.read_text()
    done = []
    for old, new in CONTIGUITY_PATCH:
        if new in text:
            done.append(f"`{new.strip()}` already there")
        elif text.count(old) == 1:
            text = text.replace(old, new)
            done.append(f"`{old.strip()}` -> `{new.strip()}`")
        else:
            done.append(f"`{old.strip()}` not found (the reference changed?)")
    path.write_text(text)
    return f"{path}: " + "; ".join(done)


def run_variant(variant: str, args: argparse.Namespace, ref_py: Path | None, launcher: Path) -> dict | str:
    """One run of `variant` in its own process: its JSON result, or a one-line error."""
    env = dict(os.environ)
    if variant.startswith("icrl"):
        precision = "float32" if variant == "icrl fp32" else "bfloat16"
        cmd = [
            str(Path(sys.executable).parent / "icrl"),
            "bench",
            "--preset",
            "bench-s",
            "--updates",
            str(args.updates),
            "--rollout-steps",
            str(args.rollout_steps),
            "--threads",
            str(args.threads),
            "--set",
            f"model.precision={precision}",
        ]
    else:
        assert ref_py is not None
        cmd = [
            str(ref_py),
            str(launcher),
            "--updates",
            str(args.updates),
            "--warmup-updates",
            str(args.warmup_updates),
            "--rollout-steps",
            str(args.rollout_steps),
            "--threads",
            str(args.threads),
            "--loader-workers",
            str(args.loader_workers),
        ]
        if variant == "reference eager":
            env["TORCHDYNAMO_DISABLE"] = "1"  # the reference's @torch.compile decorators become no-ops
    try:
        rc, out = _run(cmd, env=env, timeout=args.run_timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {args.run_timeout} s"
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{") and "updates_per_s" in line:
            return json.loads(line)
    tail = out.strip().splitlines()[-1] if out.strip() else "no output"
    return f"exit {rc}: {tail[:200]}"


def cell(values: list[float], digits: int) -> str:
    """`median (min–max)` of the runs, or the single value."""
    if not values:
        return "–"
    fmt = f"{{:,.{digits}f}}"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-src", type=Path, default=None, help="source checkout of the reference")
    parser.add_argument(
        "--reference-commit", default=None, help="commit to report when the source is an export"
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "vs_reference")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each round runs every variant once")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--updates", type=int, default=20, help="timed updates per run")
    parser.add_argument(
        "--warmup-updates",
        type=int,
        default=5,
        help="reference updates before timing (compiled: recompiles end by the 3rd)",
    )
    parser.add_argument(
        "--rollout-steps", type=int, default=1024,
        help="timed env steps per actor (255, one episode, lasts under a second for icrl, so one burst of "
        "the machine swung a run's rate 2x; 1024 dilutes it)",
    )  # fmt: skip
    parser.add_argument("--loader-workers", type=int, default=0, help="reference DataLoader workers")
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()

    variants = list(args.variants)
    ref_py: Path | None = None
    launcher = args.work_dir / "reference_launcher.py"
    if any(v.startswith("reference") for v in variants):
        try:
            if args.reference_src is None:
                raise RuntimeError("no --reference-src given")
            ref_py = install_reference(args.reference_src.resolve(), args.work_dir)
            print(f"[vs_reference] patch: {patch_contiguity(ref_py)}", file=sys.stderr, flush=True)
            launcher.write_text(LAUNCHER)
            commit = args.reference_commit or reference_commit(args.reference_src)
            print(f"[vs_reference] reference commit: {commit}", file=sys.stderr)
        except RuntimeError as err:
            print(f"reference not run: {err}; icrl's rows only.", flush=True)
            variants = [v for v in variants if v.startswith("icrl")]

    results: dict[str, list[dict]] = {v: [] for v in variants}
    errors: dict[str, list[str]] = {v: [] for v in variants}
    for r in range(args.repeats):
        # Alternate the order each round so that slow phases of a shared machine spread over all variants.
        order = variants if r % 2 == 0 else variants[::-1]
        for variant in order:
            start = time.perf_counter()
            res = run_variant(variant, args, ref_py, launcher)
            took = time.perf_counter() - start
            if isinstance(res, dict):
                results[variant].append(res)
                summary = ", ".join(f"{k} {res[k]}" for k, _, _ in METRICS)
            else:
                errors[variant].append(res)
                summary = f"FAILED: {res}"
            print(
                f"[vs_reference] round {r + 1}/{args.repeats} {variant}: {summary} ({took:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    print(
        f"\nconfig S, T-Maze 255, {args.threads} threads, {args.updates} timed updates, "
        f"{args.rollout_steps} timed steps x 8 actors; median (min–max) of {args.repeats} run(s)\n"
    )
    print("| variant | " + " | ".join(label for _, label, _ in METRICS) + " | runs |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for variant in variants:
        runs = results[variant]
        cells = [cell([float(x[key]) for x in runs], digits) for key, _, digits in METRICS]
        note = f"{len(runs)} ok" + (
            f", {len(errors[variant])} failed: {errors[variant][0]}" if errors[variant] else ""
        )
        print(f"| {variant} | " + " | ".join(cells) + f" | {note} |")


if __name__ == "__main__":
    main()
