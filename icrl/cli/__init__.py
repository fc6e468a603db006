"""The `icrl` command line: train, resume, eval, compare, select, average, plot, bench, collect, dataset.

icrl train ENV_ID [--preset NAME | --config FILE] [--env.KEY VALUE ...] [--eval-env.KEY VALUE ...]
           [--import MODULE ...] [options]   (options: icrl train --help; they win over the preset or file)
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
icrl collect RUN_DIR --trials N --out DIR [--epsilon E] [--sampled] [--seed S]   (a dataset of trials)
icrl dataset import SRC --out DIR --env ID [--trial-episodes K]   (.npz episodes -> a dataset)
icrl --version

resume, eval, select, average and collect also take [--trust-env-module] [--import MODULE ...]: a run whose
env id names a Python module (MODULE:EnvId) is refused without them (a run directory is data; see
icrl eval --help).
Every command's options: icrl COMMAND --help.
"""

from __future__ import annotations

import os
import sys

from icrl.cli.analysis import cmd_compare, cmd_plot
from icrl.cli.common import parse_overrides, parse_value, split_prefixed_kwargs
from icrl.cli.data import cmd_collect, cmd_dataset
from icrl.cli.play import cmd_average, cmd_eval, cmd_select
from icrl.cli.train import build_train_config, cmd_bench, cmd_resume, cmd_train, split_train_args

__all__ = [  # the command line's building blocks, for scripts and tests
    "build_train_config",
    "main",
    "parse_overrides",
    "parse_value",
    "split_prefixed_kwargs",
    "split_train_args",
    "version",
]

USAGE = __doc__ or ""


def version() -> str:
    """The installed package's version (the source tree's `icrl.__version__` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("icrl")
    except PackageNotFoundError:
        import icrl

        return icrl.__version__


# Commands that build a new config from what the user typed, a `--config FILE` included (`icrl train
# MODULE:EnvId` with MODULE in the current directory works as before), and `icrl dataset import`, whose env id
# is typed too; all the others read runs (`main`).
TYPED_CONFIG_COMMANDS = ("train", "bench", "dataset")
COMMANDS = {
    "train": cmd_train,
    "resume": cmd_resume,
    "eval": cmd_eval,
    "compare": cmd_compare,
    "select": cmd_select,
    "average": cmd_average,
    "plot": cmd_plot,
    "bench": cmd_bench,
    "collect": cmd_collect,
    "dataset": cmd_dataset,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.strip())
        return
    if argv[0] in ("-V", "--version"):
        print(f"icrl {version()}")
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
