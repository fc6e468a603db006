"""`icrl train`, `icrl resume` and `icrl bench`: the commands that build a config and run the trainer.

Where `icrl train`'s config comes from, later sources winning:
1. the defaults (`icrl.config`), or `--preset NAME` (`icrl.presets`), or `--config FILE` (a JSON or YAML
   file: a run's own config.json, or some of its fields; the others keep their defaults);
2. ENV_ID (positional or `--env.id`): another env than the preset's or file's drops their env kwargs;
3. `--env.KEY VALUE` / `--eval-env.KEY VALUE`: merged into the env's (evaluation) keyword arguments;
4. every other option (`--seed 3`, `--model.d-model 64`, ...).

A config file is typed by the user like any other option: a MODULE:EnvId env id in it is imported as it
is for `icrl train MODULE:EnvId` (the consent that `icrl eval` asks for a run directory is not needed).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import multiprocessing
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro

from icrl.cli.common import (
    Consent,
    EnvModuleConsent,
    Repeated,
    exit_stopped,
    option_value,
    parse_args,
    parse_overrides,
    parse_value,
    split_prefixed_kwargs,
    usage_error,
)
from icrl.config import Config, EnvConfig, config_from_dict
from icrl.envs.trust import env_module_of, record_imports

_ENV_FIELDS = {f.replace("_", "-") for f in EnvConfig.__dataclass_fields__} | set(
    EnvConfig.__dataclass_fields__
)
TRAIN_DESCRIPTION = (
    "Train an agent. Usage: icrl train ENV_ID [--preset NAME | --config FILE] [--env.KEY VALUE ...] "
    "[--eval-env.KEY VALUE ...] [--import MODULE ...] [options]. "
    "--import MODULE imports a module first, e.g. one that registers the env ids of a task list "
    "(repeatable). "
    "--preset NAME starts from a named config (below); --config FILE from a JSON or YAML config file (a "
    "run's config.json, or some fields of one: the rest keep their defaults); options given here win over "
    "both. "
    "--env.KEY VALUE passes KEY=VALUE to gymnasium.make (e.g. --env.length 50); "
    "--eval-env.KEY VALUE overrides it for evaluation envs only (e.g. --eval-env.split test: "
    "score on held-out tasks)."
)


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
            _, preset, i = option_value(argv, i)
        elif option == "--env.id":
            _, env_id, i = option_value(argv, i)
        elif option.startswith("--env.") and option[len("--env.") :] not in _ENV_FIELDS:
            name, value, i = option_value(argv, i)
            env_kwargs[name[len("--env.") :].replace("-", "_")] = parse_value(value)
        elif env_id is None and not arg.startswith("-") and not rest:
            env_id = arg
        else:
            rest.append(arg)
        i += 1
    return env_id, preset, env_kwargs, rest


def _read_config_data(path: Path) -> Any:
    text = path.read_text()
    if path.suffix.lower() not in (".yaml", ".yml"):
        return json.loads(text)
    try:
        import yaml
    except ImportError:
        raise ValueError("a YAML config needs PyYAML (`pip install pyyaml`); or give it as JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(" ".join(str(exc).split())) from None


def load_config_file(path: str | Path) -> Config:
    """A config from a JSON or YAML file (`.yaml`/`.yml`; needs PyYAML), each value checked against its
    field's type; fields the file leaves out keep their defaults. A run's own config.json names its run
    directory: that `run_dir` is dropped, so training from it starts a new run instead of colliding with
    the old one."""
    path = Path(path)
    try:
        data = _read_config_data(path)
        cfg = config_from_dict({} if data is None else data)
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSON or YAML syntax, a wrong type, an unknown field
        raise ValueError(f"config file {path}: {exc}") from None
    if cfg.run_dir is not None and Path(cfg.run_dir).resolve() == path.resolve().parent:
        cfg = dataclasses.replace(cfg, run_dir=None)
    return cfg


def _start_config(preset: str | None, config_file: str | None) -> Config:
    from icrl.presets import preset_config

    if preset is not None and config_file is not None:
        raise ValueError("--preset and --config both give the starting config: use one (options on the "
                         "command line go on top of either)")
    return load_config_file(config_file) if config_file is not None else preset_config(preset)


def build_train_config(argv: list[str], imported: Sequence[str] = ()) -> Config:
    """`icrl train`'s config from its arguments (the order of sources: this module's docstring);
    `imported`: the modules of `--import`, which also consent to a config file's MODULE:EnvId id."""
    from icrl.presets import apply_overrides, preset_summaries

    eval_env_kwargs, argv = split_prefixed_kwargs(argv, "eval-env.", "train")
    config_file, argv = _pop_option(argv, "--config")
    trusted = TRUST_FLAG in argv
    argv = [arg for arg in argv if arg != TRUST_FLAG]
    env_id, preset, env_kwargs, rest = split_train_args(argv)
    try:
        base = _start_config(preset, config_file)
    except ValueError as exc:  # unknown preset, a bad config file: a one-line message, not a traceback
        raise SystemExit(f"icrl train: {exc}") from None
    module = env_module_of(base.env.id) if config_file is not None and env_id is None else None
    if module is not None and not trusted and module not in imported:
        # A config file may come with a downloaded run: its env id is not one the user typed.
        raise SystemExit(
            f"icrl train: the config file's env id {base.env.id!r} would import the Python module "
            f"{module!r}, running its code: if you trust it, add {TRUST_FLAG} or --import {module} (or type "
            "the id: icrl train "
            f"{base.env.id} --config FILE)"
        )
    overrides: dict[str, Any] = {"env": {}}
    if env_id is not None and env_id != base.env.id:
        # A preset's env kwargs (training and evaluation) and tasks belong to its env.
        tasks = {"ids": [], "task_list": [], "eval_task_list": []}
        overrides["env"] = {"id": env_id, "kwargs": {}, "eval_kwargs": {}, **tasks}
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
    presets = "\n".join(f"  {name}: {summary}" for name, summary in preset_summaries().items())
    description = f"{TRAIN_DESCRIPTION}\n\nPresets:\n{presets}"
    cfg = tyro.cli(Config, default=base, args=rest, prog="icrl train", description=description)
    return _drop_replaced_task_lists(cfg, rest)


def _drop_replaced_task_lists(cfg: Config, argv: list[str]) -> Config:
    """A task file or ids typed on the command line replace the starting config's inline task list (which
    would otherwise win over the file), and an eval-tasks file its inline evaluation list."""
    typed = {arg.split("=", 1)[0].replace("_", "-") for arg in argv if arg.startswith("--env.")}
    env = cfg.env
    if typed & {"--env.tasks", "--env.ids"}:
        env = dataclasses.replace(env, task_list=())
    if "--env.eval-tasks" in typed:
        env = dataclasses.replace(env, eval_task_list=())
    return dataclasses.replace(cfg, env=env)


TRUST_FLAG = "--trust-env-module"  # consent to the module a --config file's env id names


def _pop_options(argv: list[str], flag: str) -> tuple[list[str], list[str]]:
    """(every value of `flag` in argv, in order; argv without them)."""
    rest: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i].split("=", 1)[0] == flag:
            _, value, i = option_value(argv, i)
            values.append(value)
        else:
            rest.append(argv[i])
        i += 1
    return values, rest


def _pop_option(argv: list[str], flag: str) -> tuple[str | None, list[str]]:
    """(the last value of `flag` in argv or None, argv without it)."""
    values, rest = _pop_options(argv, flag)
    return (values[-1] if values else None), rest


def import_env_modules(modules: list[str]) -> None:
    """`icrl train --import MODULE`: import each module the user named (e.g. one that registers the env
    ids of a task list) before any env is made; one line, exit status 2, for a module that is not there."""
    for name in modules:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            usage_error("train", f"--import {name!r}: not a module name (a dotted name such as my_envs.grid)")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise  # the module is there; something it imports is not: its own traceback says what
            usage_error("train", f"--import {name}: no module named {exc.name!r} (install it, or put its "
                        "folder on PYTHONPATH)")


def cmd_train(argv: list[str]) -> None:
    from icrl.train.distributed import shutdown
    from icrl.train.run_lock import RunInUseError
    from icrl.train.stopping import RunWriteError
    from icrl.train.trainer import NonFiniteError, Trainer, TrainingStopped
    from icrl.train.writable import check_folder_writable

    modules, argv = _pop_options(argv, "--import")
    import_env_modules(modules)
    cfg = build_train_config(argv, imported=modules)
    spawned = cfg.collectors or (cfg.env.asynchronous and multiprocessing.get_start_method() != "fork")
    if modules and spawned:  # a spawned process starts afresh: the module's registrations are not there
        usage_error(
            "train",
            "--import registers envs in this process only; its collector or actor processes start afresh: "
            "drop --collectors / --env.asynchronous, or name a single env as MODULE:EnvId",
        )
    try:
        # a run directory under a file, or on a read-only disk: one line before any work
        check_folder_writable(cfg.run_dir or "runs", "run directory")
        trainer = Trainer(cfg)
    except (FileExistsError, RunInUseError, ValueError, ImportError) as exc:  # a run there, a bad setting,
        # env or missing extra (--wandb without wandb)
        raise SystemExit(f"icrl train: {exc}") from None
    quiet = not trainer.dp.main  # under torchrun, rank 0 speaks for all
    if not quiet:
        record_imports(trainer.run_dir, modules)  # for the hint of `icrl eval/resume` without them
        print(f"icrl: run directory {trainer.run_dir}", flush=True)
        for line in trainer.key_choices:
            print(f"icrl: {line}", flush=True)
    try:
        result = trainer.run()
    except TrainingStopped as exc:
        shutdown()  # every rank stopped together
        exit_stopped(exc)
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


RunDir = Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]


@dataclass
class ResumeArgs:
    """Continue an interrupted run."""

    run_dir: RunDir
    """The run directory."""
    total_env_steps: int | None = None
    """New env-step budget."""
    set: Annotated[tuple[str, ...], tyro.conf.arg(metavar="KEY=VALUE"), Repeated] = ()
    """Change a setting for the rest of the run, e.g. --set device=cuda --set model.context_len=32
    (repeatable; the network's shape must stay the same, since the checkpoint is loaded into it)."""
    env_modules: Consent = dataclasses.field(default_factory=EnvModuleConsent)


def cmd_resume(argv: list[str]) -> None:
    from icrl.train.distributed import is_main_process, shutdown
    from icrl.train.run_lock import RunInUseError
    from icrl.train.stopping import RunFinished, RunWriteError
    from icrl.train.trainer import NonFiniteError, TrainingStopped, resume_run

    args = parse_args(ResumeArgs, argv, "resume")
    if not (Path(args.run_dir) / "config.json").is_file():
        raise SystemExit(f"icrl resume: {args.run_dir} holds no run (no config.json)")
    overrides = parse_overrides(args.set)
    if args.total_env_steps:
        overrides["total_env_steps"] = args.total_env_steps
    try:
        result = resume_run(args.run_dir, overrides, **args.env_modules.as_kwargs())
    except TrainingStopped as exc:
        shutdown()
        exit_stopped(exc)
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


@dataclass
class BenchArgs:
    """Learner and rollout throughput of a named configuration, as one JSON line: a real Trainer in a
    temporary directory times rollouts through the KV-cached policy and steady-state updates with the data
    loader in the loop; FLOPs per update over the measured matmul peak give `peak_fraction`."""

    preset: str = "bench-s"
    """Named configuration (see icrl.presets)."""
    updates: int = 20
    """Timed updates (after 3 warm-up ones)."""
    rollout_steps: int | None = None
    """Timed env steps per actor (default: the context length)."""
    threads: int | None = None
    """Torch threads (default: torch's)."""
    device: str | None = None
    """Torch device (default: the preset's, i.e. cpu)."""
    set: Annotated[tuple[str, ...], tyro.conf.arg(metavar="KEY=VALUE"), Repeated] = ()
    """Config override, e.g. --set model.precision=bfloat16 --set replay.batch_size=12 (repeatable)."""


def cmd_bench(argv: list[str]) -> None:
    args = parse_args(BenchArgs, argv, "bench")
    from icrl.bench import run_bench

    overrides = parse_overrides(args.set)
    if args.device:
        overrides["device"] = args.device
    try:
        result = run_bench(args.preset, args.updates, args.rollout_steps, args.threads, overrides)
    except ValueError as exc:  # unknown preset, bad setting, missing device: one line, not a traceback
        raise SystemExit(f"icrl bench: {exc}") from None
    print(json.dumps(result), flush=True)
