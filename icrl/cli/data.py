"""`icrl collect` and `icrl dataset import`: the commands that make datasets for `--offline-data`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

from icrl.cli.common import Consent, EnvModuleConsent, Threads, parse_args, set_threads, split_prefixed_kwargs
from icrl.cli.train import RunDir
from icrl.config import NON_NEGATIVE, POSITIVE, UNIT, show_ranges_in_help


@show_ranges_in_help
@dataclass
class CollectArgs:
    """Play a trained run's policy and write its trials as a dataset (DIR/dataset.json, DIR/protected/*.npz)
    for `icrl train ENV --offline-data DIR`. --env.KEY VALUE overrides a keyword argument of the run's
    training env kwargs."""

    run_dir: RunDir
    """The run directory."""
    trials: Annotated[int, POSITIVE]
    """Trials to write."""
    out: str
    """The dataset directory to create (it must not exist)."""
    epsilon: Annotated[float, UNIT] = 0.0
    """Replace each action, with this probability, by a uniformly random one."""
    sampled: bool = False
    """Sample the policy's actions instead of taking its greedy ones."""
    seed: Annotated[int, NON_NEGATIVE] = 0
    """Seed of the envs (actor i: seed + i) and of the random actions."""
    checkpoint: str | None = None
    """A checkpoint other than the latest (its name, update count, best or avg)."""
    device: str | None = None
    """Torch device to act on (default: the run's)."""
    threads: Threads = None
    env_modules: Consent = dataclasses.field(default_factory=EnvModuleConsent)


def cmd_collect(argv: list[str]) -> None:
    from icrl.data.collect import collect_dataset
    from icrl.train.factory import SetupError

    env_overrides, argv = split_prefixed_kwargs(argv, "env.", "collect")
    args = parse_args(CollectArgs, argv, "collect")
    set_threads(args.threads)
    try:
        info = collect_dataset(
            args.run_dir,
            args.trials,
            args.out,
            epsilon=args.epsilon,
            sampled=args.sampled,
            seed=args.seed,
            checkpoint=args.checkpoint,
            device=args.device,
            env_overrides=env_overrides,
            **args.env_modules.as_kwargs(),
        )
    except (FileNotFoundError, SetupError, ValueError) as exc:
        raise SystemExit(f"icrl collect: {exc}") from None
    print(json.dumps(info), flush=True)


@show_ranges_in_help
@dataclass
class ImportArgs:
    """Convert a folder of .npz episodes (keys obs or obs/<key>, action, reward, terminated; see
    docs/datasets.md) into a dataset of trials built as the trial wrapper builds them. --env.KEY VALUE
    passes KEY=VALUE to the env (made once for its spaces)."""

    source: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SRC")]
    """The folder of episode files, read in name order; or minari:DATASET_ID, a local Minari dataset
    (`pip install 'icrl[minari]'`; nothing is downloaded)."""
    out: str
    """The dataset directory to create (it must not exist)."""
    env: str | None = None
    """Gymnasium id of the env the episodes come from (a Minari dataset: default, the env it records)."""
    trial_episodes: Annotated[int | None, POSITIVE] = None
    """Episodes per trial (default: the env's own)."""
    trial_end: Literal["truncated", "terminated"] = "truncated"
    """A trial ended by its budget: truncated (bootstrapped) or terminated, as `--env.trial-end` trains."""


def cmd_dataset(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: icrl dataset import SRC --out DIR [--env ID] [--trial-episodes K] [--env.KEY V ...]")
        return
    if argv[0] != "import":
        raise SystemExit(f"icrl dataset: unknown subcommand {argv[0]!r}; the one there is: import")
    from icrl.data.importer import import_episodes

    env_kwargs, rest = split_prefixed_kwargs(argv[1:], "env.", "dataset import")
    args = parse_args(ImportArgs, rest, "dataset import")
    try:
        info = import_episodes(
            args.source, args.out, args.env, env_kwargs, args.trial_episodes, args.trial_end
        )
    except (FileNotFoundError, ValueError, ImportError) as exc:
        raise SystemExit(f"icrl dataset import: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - gymnasium's errors for a bad env id or keyword
        raise SystemExit(f"icrl dataset import: {type(exc).__name__}: {exc}") from None
    print(json.dumps(info), flush=True)
