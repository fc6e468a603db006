"""What every `icrl` command shares: parsing a command's typed arguments with tyro, free-form `--env.KEY
VALUE` options, `--set KEY=VALUE` overrides, and the env-module consent flags."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import tyro

from icrl.config import NON_NEGATIVE, POSITIVE, range_of

if TYPE_CHECKING:  # the trainer imports torch: keep `icrl --help` fast
    from icrl.train.trainer import TrainingStopped

Args = TypeVar("Args")

# How a range reads in an argument error (`icrl eval --trials 0`: "must be a positive int, got 0").
_RANGE_WORDS = {POSITIVE: "a positive int", NON_NEGATIVE: "an int >= 0"}

Repeated = tyro.conf.UseAppendAction  # `--set A --set B`: one value per use, collected in order


@dataclasses.dataclass
class EnvModuleConsent:
    """A run directory is data: a Python module its config names is imported only with one of these. It
    must be installed or on PYTHONPATH; the current directory and the run directory are not searched (else
    `python -m icrl` inside a downloaded run would run a .py file shipped in it)."""

    trust_env_module: bool = False
    """Import the module that the run's env id names (a MODULE:EnvId id), which runs its code: only for a
    run you trust. Without this or --import MODULE such a run is refused."""
    imports: Annotated[tuple[str, ...], tyro.conf.arg(name="import", metavar="MODULE"), Repeated] = ()
    """Import MODULE before the run's env is made, e.g. the module that registers its env id (repeatable;
    runs its code). Also consents to a MODULE:EnvId id with this module."""

    def as_kwargs(self) -> dict[str, Any]:
        return {"trust_env_module": self.trust_env_module, "imports": list(self.imports)}


# A command's consent flags, as `--trust-env-module` / `--import` (no prefix) in their own help group.
Consent = tyro.conf.OmitArgPrefixes[EnvModuleConsent]
# `--threads N` of the commands that play a checkpoint (`icrl eval`, `icrl select`).
Threads = Annotated[
    int | None,
    POSITIVE,
    tyro.conf.arg(
        help="Torch CPU threads (default: torch's). 1 beside other jobs on few cores: threads that wait for "
        "each other make play several times slower. CPU play repeats exactly only with the same count "
        "(`icrl eval` records it as `threads`).",
        help_behavior_hint=f"(default: None; {POSITIVE})",
    ),
]


def usage_error(command: str, message: str) -> NoReturn:
    """A mistake on the command line: one line on stderr and exit status 2, as argparse does."""
    print(f"icrl {command}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def parse_args(cls: type[Args], argv: Sequence[str], command: str, description: str | None = None) -> Args:
    """`argv` parsed into the dataclass `cls` by tyro (`icrl COMMAND --help` shows its fields' docs), then
    each field with a `Range` in its type checked: a value out of range is one line, exit status 2."""
    # One paragraph: tyro would keep the docstring's line breaks before lines that start with a backtick.
    description = description or " ".join((cls.__doc__ or "").split())
    args = tyro.cli(cls, args=list(argv), prog=f"icrl {command}", description=description)
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        bounds = range_of(hint)
        value = getattr(args, name)
        if bounds is not None and value is not None and value not in bounds:
            flag = "--" + name.replace("_", "-")
            usage_error(command, f"argument {flag}: must be {_RANGE_WORDS.get(bounds, bounds)}, got {value}")
    return args


def parse_value(text: str) -> Any:
    """`--env.KEY VALUE`: JSON when it parses (numbers, true/false, lists), else the string."""
    lowered = {"true": "true", "false": "false", "none": "null"}.get(text.lower(), text)
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
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


def option_value(argv: list[str], i: int, command: str = "train") -> tuple[str, str, int]:
    """`--name=value` or `--name value` at argv[i] -> (name, value, index of the last token used)."""
    arg = argv[i]
    if "=" in arg:
        name, value = arg.split("=", 1)
        return name, value, i
    if i + 1 >= len(argv):
        raise SystemExit(f"icrl {command}: {arg} needs a value")
    return arg, argv[i + 1], i + 1


def split_prefixed_kwargs(argv: list[str], prefix: str, command: str) -> tuple[dict[str, Any], list[str]]:
    """Pull `--<prefix>KEY VALUE` / `--<prefix>KEY=VALUE` out of argv (e.g. prefix `eval-env.`):
    ({KEY: parsed VALUE}, the other arguments). Dashes in KEY become underscores. These free-form env
    keyword arguments are taken out before tyro parses the rest, which has a typed field for each option."""
    flag = f"--{prefix}"
    kwargs: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        option = argv[i].split("=", 1)[0]
        if option.startswith(flag) and option != flag:
            name, value, i = option_value(argv, i, command)
            kwargs[name[len(flag) :].replace("-", "_")] = parse_value(value)
        else:
            rest.append(argv[i])
        i += 1
    return kwargs, rest


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def exit_stopped(exc: TrainingStopped) -> NoReturn:
    """A run stopped by SIGTERM/SIGINT (checkpointed): say how to continue, exit with 128 + the signal."""
    print(f"icrl: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(128 + exc.signum)
