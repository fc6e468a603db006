"""`icrl eval`, `icrl select` and `icrl average`: the commands that load a run's checkpoints and play them."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from icrl.cli.common import (
    Consent,
    EnvModuleConsent,
    Threads,
    parse_args,
    set_threads,
    split_prefixed_kwargs,
    usage_error,
)
from icrl.cli.train import RunDir
from icrl.config import NON_NEGATIVE, POSITIVE, show_ranges_in_help


@show_ranges_in_help
@dataclass
class EvalArgs:
    """Evaluate a run's latest checkpoint."""

    run_dir: RunDir
    """The run directory."""
    trials: Annotated[int | None, POSITIVE] = None
    """Evaluation trials (default: the run's)."""
    sampled: bool = False
    """Sample actions instead of greedy ones."""
    seed: Annotated[int, NON_NEGATIVE] = 12345
    """Seed of the evaluation environments. Actor i's env gets seed + i (gymnasium's convention), so seeds
    closer together than the run's num_actors share envs, and trials: space them by at least
    num_actors (e.g. 1, 101, 201) for independent evaluations."""
    checkpoint: str | None = None
    """A checkpoint other than the latest: its name (ckpt_000007000), update count (7000), best (chosen by
    icrl select) or avg (made by icrl average)."""
    acting_gamma: float | None = None
    """Act with this trained discount's actor head instead of the run's (e.g. 0.97)."""
    device: str | None = None
    """Torch device to evaluate on (default: the run's), e.g. cpu for a run trained on a GPU."""
    first_steps: Annotated[int | None, POSITIVE] = None
    """Also score each episode's first K steps (start_return_episode_i, start_gain): in-context
    adaptation shows there first."""
    forget_episodes: bool = False
    """Memory ablation: clear the agent's memory at every episode start inside a trial (written to
    eval-forget.json); the paired difference to a plain eval is what memory of earlier episodes adds."""
    weights: Literal["live", "ema"] = "live"
    """ema: act with the checkpoint's moving average of the weights (a run trained with --weights-ema;
    written to eval-ema.json) instead of the trained weights."""
    out: str | None = None
    """Write the result file here instead of RUN_DIR/eval*.json (e.g. for a read-only run directory)."""
    threads: Threads = None
    env_modules: Consent = dataclasses.field(default_factory=EnvModuleConsent)


EVAL_DESCRIPTION = (
    "Evaluate a run's latest checkpoint. --env.KEY VALUE overrides an env keyword argument of the evaluation "
    "envs (over the run's env and eval-env kwargs), e.g. `icrl eval RUN --env.split test` for held-out tasks."
)


def cmd_eval(argv: list[str]) -> None:
    from icrl.train.evaluate import evaluate_run
    from icrl.train.factory import SetupError
    from icrl.train.stopping import EvaluationStopped, GracefulStop

    env_overrides, argv = split_prefixed_kwargs(argv, "env.", "eval")
    args = parse_args(EvalArgs, argv, "eval", EVAL_DESCRIPTION)
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
                should_stop=lambda: signals.received is not None,
                **args.env_modules.as_kwargs(),
            )
    except (EvaluationStopped, KeyboardInterrupt):  # a second Ctrl-C interrupts at once: the same line
        signum = signals.received or signal.SIGINT
        print(f"icrl eval: stopped by {signal.Signals(signum).name}; nothing was written", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    # No run / checkpoint, a bad --env.KEY or device, a saved moving average of another model: one line.
    except (FileNotFoundError, SetupError, ValueError) as exc:
        raise SystemExit(f"icrl eval: {exc}") from None
    print(json.dumps(result), flush=True)


@show_ranges_in_help
@dataclass
class SelectArgs:
    """Choose a run's checkpoint on validation tasks: play every kept checkpoint (see
    --checkpoint-keep-every) on the same trials of the run's TRAINING env kwargs (never its eval_kwargs,
    often the test tasks), copy the best to checkpoints/best and write select.json; then
    `icrl eval RUN --checkpoint best` scores it on the test tasks. --env.KEY VALUE overrides a keyword
    argument of the validation envs."""

    run_dir: RunDir
    """The run directory."""
    trials: Annotated[int, POSITIVE] = 64
    """Validation trials per checkpoint."""
    seed: Annotated[int, NON_NEGATIVE] = 2024
    """Seed of the validation environments."""
    metric: str = "eval/return"
    """What to maximise, e.g. eval/return or eval/success."""
    min_updates: int = 0
    """Only checkpoints from this many updates on."""
    device: str | None = None
    """Torch device to play on (default: the run's)."""
    weights: Literal["live", "ema"] = "live"
    """ema: choose among the checkpoints' moving averages of the weights (--weights-ema); then run
    `icrl eval RUN --checkpoint best --weights ema`."""
    threads: Threads = None
    progress: bool = True
    """Show a progress bar (--no-progress: none)."""
    env_modules: Consent = dataclasses.field(default_factory=EnvModuleConsent)


def cmd_select(argv: list[str]) -> None:
    from icrl.analysis.select import select_checkpoint
    from icrl.train.factory import SetupError

    env_overrides, argv = split_prefixed_kwargs(argv, "env.", "select")
    args = parse_args(SelectArgs, argv, "select")
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
            progress=args.progress,
            weights=args.weights,
            **args.env_modules.as_kwargs(),
        )
    except (FileNotFoundError, SetupError, ValueError) as exc:  # no checkpoints, a bad --env.KEY/metric
        raise SystemExit(f"icrl select: {exc}") from None
    print(json.dumps({k: v for k, v in result.items() if k != "candidates"}), flush=True)


@show_ranges_in_help
@dataclass
class AverageArgs:
    """Average the agent weights of several of a run's checkpoints into checkpoints/NAME (for evaluation:
    `icrl eval RUN --checkpoint NAME`), to smooth the swings between a run's late checkpoints. Keep earlier
    checkpoints with --checkpoint-keep-every. Give one of --last and --checkpoints."""

    run_dir: RunDir
    """The run directory."""
    last: Annotated[int | None, POSITIVE] = None
    """Average the newest N kept checkpoints."""
    checkpoints: Annotated[tuple[int, ...] | None, tyro.conf.arg(metavar="UPDATES")] = None
    """Average these checkpoints (their update counts)."""
    name: str = "avg"
    """Name of the averaged checkpoint."""
    env_modules: Consent = dataclasses.field(default_factory=EnvModuleConsent)


def cmd_average(argv: list[str]) -> None:
    from icrl.analysis.average import average_checkpoints, check_average_name
    from icrl.analysis.select import kept_checkpoints
    from icrl.train.evaluate import load_run_agent, resolve_checkpoint
    from icrl.train.factory import SetupError

    args = parse_args(AverageArgs, argv, "average")
    if (args.last is None) == (args.checkpoints is None):  # exactly one of the two
        usage_error("average", "give one of the arguments --last N or --checkpoints U1 U2 ...")
    try:  # a bad --name fails before any checkpoint is read
        check_average_name(Path(args.run_dir) / "checkpoints", args.name)
    except ValueError as exc:
        raise SystemExit(f"icrl average: {exc}") from None
    kept = kept_checkpoints(args.run_dir)
    if args.last is not None:
        if len(kept) < args.last:
            raise SystemExit(f"icrl average: --last {args.last}, but the run keeps {len(kept)} checkpoints")
        names = [path.name for path in kept[-args.last :]]
    else:
        names = [f"ckpt_{updates:09d}" for updates in sorted(set(args.checkpoints or ()))]
    try:
        # every checkpoint checked before the agent is built: a missing one is a one-line error
        newest = [resolve_checkpoint(args.run_dir, name) for name in names][-1]
        _, agent, _ = load_run_agent(args.run_dir, newest, device="cpu", **args.env_modules.as_kwargs())
        out = average_checkpoints(Path(args.run_dir) / "checkpoints", names, agent, args.name)
    except (FileNotFoundError, SetupError, ValueError) as exc:
        raise SystemExit(f"icrl average: {exc}") from None
    print(json.dumps({"checkpoint": str(out), "averaged_from": names}), flush=True)
