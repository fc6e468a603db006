"""The `icrl` command line: train, resume, eval, compare, select, average, plot, bench.

icrl train ENV_ID [--preset NAME] [--env.KEY VALUE ...] [--eval-env.KEY VALUE ...] [options]
           (options: icrl train --help)
icrl resume RUN_DIR [--total-env-steps N] [--set KEY=VALUE ...]
icrl eval RUN_DIR [--trials N] [--sampled] [--checkpoint C] [--acting-gamma G] [--env.KEY VALUE ...]
           [--first-steps K] [--forget-episodes] [--weights live|ema] [--device D]
icrl compare A/eval.json B/eval.json [A2 B2 ...]   (A minus B, trial by trial: same seed and env kwargs;
           several pairs: also the mean over pairs with its between-pair standard error)
icrl select RUN_DIR [--trials N] [--seed S] [--metric M] [--min-updates U] [--weights live|ema]
           [--env.KEY VALUE ...]
           (the best kept checkpoint on validation tasks -> checkpoints/best; then --checkpoint best)
icrl average RUN_DIR (--last N | --checkpoints U1 U2 ...) [--name avg]
           (the mean of those checkpoints' weights -> checkpoints/avg; then --checkpoint avg)
icrl plot RUN_DIR [RUN_DIR ...] [--out DIR]
icrl bench [--preset NAME] [--device D] [...]   (options: icrl bench --help)

resume, eval, select and average also take [--trust-env-module] [--import MODULE ...]: a run whose env id
names a Python module (MODULE:EnvId) is refused without them (a run directory is data; icrl eval --help).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import tyro

from icrl.config import Config, EnvConfig

if TYPE_CHECKING:  # the trainer imports torch: keep `icrl --help` fast
    from icrl.train.trainer import TrainingStopped

USAGE = __doc__ or ""
_ENV_FIELDS = {f.replace("_", "-") for f in EnvConfig.__dataclass_fields__} | set(
    EnvConfig.__dataclass_fields__
)


def parse_value(text: str) -> Any:
    """`--env.KEY VALUE`: JSON when it parses (numbers, true/false, lists), else the string."""
    lowered = {"true": "true", "false": "false", "none": "null"}.get(text.lower(), text)
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, an int >= 0 (what gymnasium and numpy accept)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text}")
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["model.d_model=64", "seed=1"]` -> `{"model": {"d_model": 64}, "seed": 1}` (values as on the
    `icrl train` command line: JSON where it parses, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        value = parse_value(text)
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _option_value(argv: list[str], i: int, command: str = "train") -> tuple[str, str, int]:
    """`--name=value` or `--name value` at argv[i] -> (name, value, index of the last token used)."""
    arg = argv[i]
    if "=" in arg:
        name, value = arg.split("=", 1)
        return name, value, i
    if i + 1 >= len(argv):
        raise SystemExit(f"icrl {command}: {arg} needs a value")
    return arg, argv[i + 1], i + 1


def split_train_args(argv: list[str]) -> tuple[str | None, str | None, dict[str, Any], list[str]]:
    """Pull out ENV_ID (positional or `--env.id`), --preset and the env's keyword arguments; the rest
    goes to tyro."""
    env_id = preset = None
    env_kwargs: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        option = arg.split("=", 1)[0]
        if option == "--preset":
            _, preset, i = _option_value(argv, i)
        elif option == "--env.id":
            _, env_id, i = _option_value(argv, i)
        elif option.startswith("--env.") and option[len("--env.") :] not in _ENV_FIELDS:
            name, value, i = _option_value(argv, i)
            env_kwargs[name[len("--env.") :].replace("-", "_")] = parse_value(value)
        elif env_id is None and not arg.startswith("-") and not rest:
            env_id = arg
        else:
            rest.append(arg)
        i += 1
    return env_id, preset, env_kwargs, rest


def split_prefixed_kwargs(argv: list[str], prefix: str, command: str) -> tuple[dict[str, Any], list[str]]:
    """Pull `--<prefix>KEY VALUE` / `--<prefix>KEY=VALUE` out of argv (e.g. prefix `eval-env.`):
    ({KEY: parsed VALUE}, the other arguments). Dashes in KEY become underscores."""
    flag = f"--{prefix}"
    kwargs: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        option = argv[i].split("=", 1)[0]
        if option.startswith(flag) and option != flag:
            name, value, i = _option_value(argv, i, command)
            kwargs[name[len(flag) :].replace("-", "_")] = parse_value(value)
        else:
            rest.append(argv[i])
        i += 1
    return kwargs, rest


def build_train_config(argv: list[str]) -> Config:
    from icrl.presets import apply_overrides, preset_config

    eval_env_kwargs, argv = split_prefixed_kwargs(argv, "eval-env.", "train")
    env_id, preset, env_kwargs, rest = split_train_args(argv)
    try:
        base = preset_config(preset)
    except ValueError as exc:  # unknown preset: a one-line message, not a traceback
        raise SystemExit(f"icrl train: {exc}") from None
    overrides: dict[str, Any] = {"env": {}}
    if env_id is not None and env_id != base.env.id:
        # A preset's env kwargs (training and evaluation) belong to its env.
        overrides["env"] = {"id": env_id, "kwargs": {}, "eval_kwargs": {}}
    if env_kwargs:
        overrides["env"]["kwargs"] = {
            **(base.env.kwargs if "kwargs" not in overrides["env"] else {}),
            **env_kwargs,
        }
    if eval_env_kwargs:
        overrides["env"]["eval_kwargs"] = {
            **(base.env.eval_kwargs if "eval_kwargs" not in overrides["env"] else {}),
            **eval_env_kwargs,
        }
    base = apply_overrides(base, overrides)
    description = (
        "Train an agent. Usage: icrl train ENV_ID [--preset NAME] [--env.KEY VALUE ...] "
        "[--eval-env.KEY VALUE ...] [options]. "
        "--env.KEY VALUE passes KEY=VALUE to gymnasium.make (e.g. --env.length 50); "
        "--eval-env.KEY VALUE overrides it for evaluation envs only (e.g. --eval-env.split test: "
        "score on held-out tasks)."
    )
    return tyro.cli(Config, default=base, args=rest, prog="icrl train", description=description)


def _exit_stopped(exc: TrainingStopped) -> NoReturn:
    """A run stopped by SIGTERM/SIGINT (checkpointed): say how to continue, exit with 128 + the signal."""
    print(f"icrl: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(128 + exc.signum)


def cmd_train(argv: list[str]) -> None:
    from icrl.train.distributed import shutdown
    from icrl.train.run_lock import RunInUseError
    from icrl.train.stopping import RunWriteError
    from icrl.train.trainer import NonFiniteError, Trainer, TrainingStopped
    from icrl.train.writable import check_folder_writable

    cfg = build_train_config(argv)
    try:
        # a run directory under a file, or on a read-only disk: one line before any work
        check_folder_writable(cfg.run_dir or "runs", "run directory")
        trainer = Trainer(cfg)
    except (FileExistsError, RunInUseError, ValueError, ImportError) as exc:  # a run there, a bad setting,
        # env or missing extra (--wandb without wandb)
        raise SystemExit(f"icrl train: {exc}") from None
    quiet = not trainer.dp.main  # under torchrun, rank 0 speaks for all
    if not quiet:
        print(f"icrl: run directory {trainer.run_dir}", flush=True)
    try:
        result = trainer.run()
    except TrainingStopped as exc:
        shutdown()  # every rank stopped together
        _exit_stopped(exc)
    except NonFiniteError as exc:  # NaN or inf data or updates, checkpointed: one line (every rank stops)
        shutdown()
        raise SystemExit(1 if quiet else f"icrl train: {exc}") from None
    except RunWriteError as exc:  # a full disk, a read-only folder: one line, after a checkpoint if possible
        shutdown()
        raise SystemExit(1 if quiet else f"icrl train: {exc}") from None
    shutdown()
    if quiet:
        return
    print(json.dumps({"run_dir": str(trainer.run_dir), **result}), flush=True)
    written = "metrics.jsonl, " + ("tensorboard/, " if cfg.tensorboard else "") + "checkpoints/"
    print(f"icrl: results in {trainer.run_dir} ({written}); plot them with `icrl plot {trainer.run_dir}`",
          flush=True)


def cmd_resume(argv: list[str]) -> None:
    from icrl.train.distributed import is_main_process, shutdown
    from icrl.train.run_lock import RunInUseError
    from icrl.train.stopping import RunFinished, RunWriteError
    from icrl.train.trainer import NonFiniteError, TrainingStopped, resume_run

    parser = argparse.ArgumentParser(prog="icrl resume", description="Continue an interrupted run.")
    parser.add_argument("run_dir")
    parser.add_argument("--total-env-steps", type=int, default=None, help="New env-step budget.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Change a setting for the rest of the run, e.g. --set device=cuda --set model.context_len=32 "
        "(repeatable; the network's shape must stay the same, since the checkpoint is loaded into it).",
    )
    add_trust_arguments(parser)
    args = parser.parse_args(argv)
    if not (Path(args.run_dir) / "config.json").is_file():
        raise SystemExit(f"icrl resume: {args.run_dir} holds no run (no config.json)")
    overrides = parse_overrides(args.set)
    if args.total_env_steps:
        overrides["total_env_steps"] = args.total_env_steps
    try:
        trust = {"trust_env_module": args.trust_env_module, "imports": args.imports}
        result = resume_run(args.run_dir, overrides, **trust)
    except TrainingStopped as exc:
        shutdown()
        _exit_stopped(exc)
    except NonFiniteError as exc:  # NaN or inf data or updates, checkpointed: one line (every rank stops)
        shutdown()
        raise SystemExit(f"icrl resume: {exc}" if is_main_process() else 1) from None
    except RunWriteError as exc:  # a full disk, a read-only folder: one line, after a checkpoint if possible
        shutdown()
        raise SystemExit(f"icrl resume: {exc}" if is_main_process() else 1) from None
    except RunFinished as exc:  # nothing to do, nothing touched: not an error
        if is_main_process():
            print(f"icrl resume: {exc}", file=sys.stderr, flush=True)
        shutdown()
        return
    except (RunInUseError, ValueError, ImportError) as exc:  # still training, a bad --set (key, value,
        # shape), a missing extra, an env module without consent or one that is gone: one line
        raise SystemExit(f"icrl resume: {exc}") from None
    shutdown()
    if is_main_process():
        print(json.dumps({"run_dir": args.run_dir, **result}), flush=True)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads N` for the commands that play a checkpoint (`icrl eval`, `icrl select`)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="Torch CPU threads (default: torch's). 1 beside other jobs on few cores: threads that wait for "
        "each other make play several times slower. CPU play repeats exactly only with the same count "
        "(`icrl eval` records it as `threads`).",
    )


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    """`--trust-env-module` and `--import MODULE` for the commands that load a run: a run directory is data,
    and importing a module its config names runs that module's code (`icrl.envs.trust`)."""
    group = parser.add_argument_group(
        "env modules",
        "A run directory is data: a Python module its config names is imported only with one of these. It "
        "must be installed or on PYTHONPATH; the current directory and the run directory are not searched "
        "(`python -m icrl` inside a downloaded run would otherwise run a .py file shipped in it).",
    )
    group.add_argument(
        "--trust-env-module",
        action="store_true",
        help="Import the module that the run's env id names (a MODULE:EnvId id), which runs its code: only "
        "for a run you trust. Without this or --import MODULE such a run is refused.",
    )
    group.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="Import MODULE before the run's env is made, e.g. the module that registers its env id "
        "(repeatable; runs its code). Also consents to a MODULE:EnvId id with this module.",
    )


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def cmd_eval(argv: list[str]) -> None:
    from icrl.train.evaluate import evaluate_run
    from icrl.train.factory import SetupError
    from icrl.train.stopping import EvaluationStopped, GracefulStop

    parser = argparse.ArgumentParser(prog="icrl eval", description="Evaluate a run's latest checkpoint.")
    parser.add_argument("run_dir")
    parser.add_argument(
        "--trials", type=positive_int, default=None, help="Evaluation trials (default: the run's)."
    )
    parser.add_argument("--sampled", action="store_true", help="Sample actions instead of greedy ones.")
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=12345,
        help="Seed of the evaluation environments. Actor i's env gets seed + i (gymnasium's convention), so "
        "seeds closer together than the run's num_actors share envs, and trials: space them by at least "
        "num_actors (e.g. 1, 101, 201) for independent evaluations.",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="A checkpoint other than the latest: its name (ckpt_000007000), update count (7000), best "
        "(chosen by icrl select) or avg (made by icrl average).",
    )
    parser.add_argument(
        "--acting-gamma",
        type=float,
        default=None,
        help="Act with this trained discount's actor head instead of the run's (e.g. 0.97).",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="Torch device to evaluate on (default: the run's), e.g. cpu for a run trained on a GPU.",
    )
    parser.add_argument(
        "--first-steps",
        type=positive_int,
        default=None,
        help="Also score each episode's first K steps (start_return_episode_i, start_gain): in-context "
        "adaptation shows there first.",
    )
    parser.add_argument(
        "--forget-episodes",
        action="store_true",
        help="Memory ablation: clear the agent's memory at every episode start inside a trial (written to "
        "eval-forget.json); the paired difference to a plain eval is what memory of earlier episodes adds.",
    )
    parser.add_argument(
        "--weights",
        choices=("live", "ema"),
        default="live",
        help="ema: act with the checkpoint's moving average of the weights (a run trained with "
        "--weights-ema; written to eval-ema.json) instead of the trained weights.",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="Write the result file here instead of RUN_DIR/eval*.json (e.g. for a read-only run directory).",
    )
    add_threads_argument(parser)
    parser.epilog = (
        "--env.KEY VALUE overrides an env keyword argument of the evaluation envs (over the run's env and "
        "eval-env kwargs), e.g. `icrl eval RUN --env.split test` for held-out tasks."
    )
    add_trust_arguments(parser)
    env_overrides, argv = split_prefixed_kwargs(argv, "env.", "eval")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    # Ctrl-C or SIGTERM stops the play within a step; nothing is written, and no traceback is shown.
    signals = GracefulStop()
    try:
        with signals:
            result = evaluate_run(
                args.run_dir,
                args.trials,
                greedy=not args.sampled,
                seed=args.seed,
                env_overrides=env_overrides,
                checkpoint=args.checkpoint,
                acting_gamma=args.acting_gamma,
                device=args.device,
                first_steps=args.first_steps,
                forget_episodes=args.forget_episodes,
                weights=args.weights,
                out=args.out,
                trust_env_module=args.trust_env_module,
                imports=args.imports,
                should_stop=lambda: signals.received is not None,
            )
    except (EvaluationStopped, KeyboardInterrupt):  # a second Ctrl-C interrupts at once: the same line
        signum = signals.received or signal.SIGINT
        print(f"icrl eval: stopped by {signal.Signals(signum).name}; nothing was written", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    # No run / checkpoint, a bad --env.KEY or device, a saved moving average of another model: one line.
    except (FileNotFoundError, SetupError, ValueError) as exc:
        raise SystemExit(f"icrl eval: {exc}") from None
    print(json.dumps(result), flush=True)


def cmd_compare(argv: list[str]) -> None:
    from icrl.train.evaluate import compare_eval_files, summarize_across

    parser = argparse.ArgumentParser(
        prog="icrl compare",
        description="Evaluation file A minus evaluation file B, trial by trial on the same tasks (both from "
        "icrl eval with the same --seed, env kwargs and trial count): mean differences of the trial return, "
        "of each episode's return and of the episode gain, with standard errors. E.g. a run against its "
        "memory-free control, or RUN/eval.json against RUN/eval-forget.json (what memory adds). With several "
        "pairs (A1 B1 A2 B2 ...; e.g. the same two runs at several checkpoints, or one pair per training "
        "seed) one line per pair, then a line with the mean over pairs and its standard error from the "
        "spread between pairs (`_sd`, `_se`; `_trial_se` is the pairs' mean trial-level standard error).",
    )
    parser.add_argument("files", nargs="+", metavar="A B", help="Evaluation files, in pairs: A then B.")
    args = parser.parse_args(argv)
    if len(args.files) % 2:
        got = len(args.files)
        raise SystemExit(f"icrl compare: needs evaluation files in pairs (A B [A B ...]), got {got}")
    try:
        results = [compare_eval_files(a, b) for a, b in zip(args.files[::2], args.files[1::2], strict=True)]
        across = summarize_across(results) if len(results) > 1 else None
    except (OSError, ValueError) as exc:  # a missing / unreadable file or unpaired evaluations: one line
        raise SystemExit(f"icrl compare: {exc}") from None
    for result in results:
        print(json.dumps(result), flush=True)
    if across is not None:
        print(json.dumps(across), flush=True)


def cmd_select(argv: list[str]) -> None:
    from icrl.train.factory import SetupError
    from icrl.train.select import select_checkpoint

    parser = argparse.ArgumentParser(
        prog="icrl select",
        description="Choose a run's checkpoint on validation tasks: play every kept checkpoint (see "
        "--checkpoint-keep-every) on the same trials of the run's TRAINING env kwargs (never its "
        "eval_kwargs, often the test tasks), copy the best to checkpoints/best and write select.json; then "
        "`icrl eval RUN --checkpoint best` scores it on the test tasks.",
    )
    parser.add_argument("run_dir")
    parser.add_argument("--trials", type=positive_int, default=64, help="Validation trials per checkpoint.")
    parser.add_argument("--seed", type=seed_int, default=2024, help="Seed of the validation environments.")
    parser.add_argument(
        "--metric", default="eval/return", help="What to maximise, e.g. eval/return or eval/success."
    )
    parser.add_argument(
        "--min-updates", type=int, default=0, help="Only checkpoints from this many updates on."
    )
    parser.add_argument("--device", default=None, help="Torch device to play on (default: the run's).")
    parser.add_argument(
        "--weights",
        choices=("live", "ema"),
        default="live",
        help="ema: choose among the checkpoints' moving averages of the weights (--weights-ema); then "
        "`icrl eval RUN --checkpoint best --weights ema`.",
    )
    add_threads_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.epilog = "--env.KEY VALUE overrides a keyword argument of the validation envs."
    add_trust_arguments(parser)
    env_overrides, argv = split_prefixed_kwargs(argv, "env.", "select")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    try:
        result = select_checkpoint(
            args.run_dir,
            args.trials,
            seed=args.seed,
            env_overrides=env_overrides,
            metric=args.metric,
            min_updates=args.min_updates,
            device=args.device,
            progress=not args.no_progress,
            weights=args.weights,
            trust_env_module=args.trust_env_module,
            imports=args.imports,
        )
    except (FileNotFoundError, SetupError, ValueError) as exc:  # no checkpoints, a bad --env.KEY/metric
        raise SystemExit(f"icrl select: {exc}") from None
    print(json.dumps({k: v for k, v in result.items() if k != "candidates"}), flush=True)


def cmd_average(argv: list[str]) -> None:
    from icrl.train.checkpoint import average_checkpoints, check_average_name
    from icrl.train.evaluate import load_run_agent, resolve_checkpoint
    from icrl.train.factory import SetupError
    from icrl.train.select import kept_checkpoints

    parser = argparse.ArgumentParser(
        prog="icrl average",
        description="Average the agent weights of several of a run's checkpoints into checkpoints/NAME (for "
        "evaluation: `icrl eval RUN --checkpoint NAME`), to smooth the swings between a run's late "
        "checkpoints. Keep earlier checkpoints with --checkpoint-keep-every.",
    )
    parser.add_argument("run_dir")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=positive_int, help="Average the newest N kept checkpoints.")
    which.add_argument("--checkpoints", type=int, nargs="+", metavar="UPDATES",
                       help="Average these checkpoints (their update counts).")
    parser.add_argument("--name", default="avg", help="Name of the averaged checkpoint (default: avg).")
    add_trust_arguments(parser)
    args = parser.parse_args(argv)
    try:  # a bad --name fails before any checkpoint is read
        check_average_name(Path(args.run_dir) / "checkpoints", args.name)
    except ValueError as exc:
        raise SystemExit(f"icrl average: {exc}") from None
    kept = kept_checkpoints(args.run_dir)
    if args.last is not None:
        if len(kept) < args.last:
            raise SystemExit(f"icrl average: --last {args.last}, but the run keeps {len(kept)} checkpoints")
        names = [path.name for path in kept[-args.last:]]
    else:
        names = [f"ckpt_{updates:09d}" for updates in sorted(set(args.checkpoints))]
    try:
        # every checkpoint checked before the agent is built: a missing one is a one-line error
        newest = [resolve_checkpoint(args.run_dir, name) for name in names][-1]
        _, agent, _ = load_run_agent(
            args.run_dir, newest, device="cpu", trust_env_module=args.trust_env_module, imports=args.imports
        )
        out = average_checkpoints(Path(args.run_dir) / "checkpoints", names, agent, args.name)
    except (FileNotFoundError, SetupError, ValueError) as exc:
        raise SystemExit(f"icrl average: {exc}") from None
    print(json.dumps({"checkpoint": str(out), "averaged_from": names}), flush=True)


def cmd_plot(argv: list[str]) -> None:
    from icrl.train.plots import plot_runs

    parser = argparse.ArgumentParser(prog="icrl plot", description="PNG learning and adaptation curves.")
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--out", default=None, help="Output folder (default: the first run directory).")
    args = parser.parse_args(argv)
    try:
        written = plot_runs([Path(p) for p in args.run_dirs], args.out)
    except (FileNotFoundError, ValueError) as exc:  # no run, or no evaluations yet: one line
        raise SystemExit(f"icrl plot: {exc}") from None
    for path in written:
        print(path)


def cmd_bench(argv: list[str]) -> None:
    from icrl.bench import main as bench_main

    bench_main(argv)


# Commands that build a new config from what the user typed (`icrl train MODULE:EnvId` with MODULE in the
# current directory works as before); all the others read runs (see `main`).
TYPED_CONFIG_COMMANDS = ("train", "bench")
COMMANDS = {
    "train": cmd_train,
    "resume": cmd_resume,
    "eval": cmd_eval,
    "compare": cmd_compare,
    "select": cmd_select,
    "average": cmd_average,
    "plot": cmd_plot,
    "bench": cmd_bench,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.strip())
        return
    command = COMMANDS.get(argv[0])
    if command is None:
        raise SystemExit(f"icrl: unknown command {argv[0]!r}\n\n{USAGE.strip()}")
    if argv[0] in TYPED_CONFIG_COMMANDS:
        command(argv[1:])
        return
    from icrl.envs.trust import import_path_without_cwd

    # The other commands read what a run directory holds, often started inside it: nothing they import
    # later (an env module, matplotlib, wandb, ...) is looked for in the current directory, which
    # `python -m icrl` puts first on sys.path. Spawned processes (collectors) inherit this sys.path, and
    # PYTHONSAFEPATH keeps the current directory off theirs from their first import (`python -c` would put
    # it first while the child imports multiprocessing, before it receives that sys.path).
    previous = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        with import_path_without_cwd():
            command(argv[1:])
    finally:  # `main` called in-process (a script, a test) leaves the environment as it found it
        if previous is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = previous


if __name__ == "__main__":
    main()
