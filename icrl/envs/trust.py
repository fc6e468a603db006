"""A run directory is data: playing or resuming a run never runs code that came with it.

A run's `config.json` names its env by a gymnasium id, and gymnasium imports the module in front of the
colon of a `MODULE:EnvId` id. So `icrl eval`, `icrl resume`, `icrl select` and `icrl average` (and their
library functions) import a module named in a run's config only with the user's consent, given on the
command line: `--trust-env-module` (import the module the run's env id names) or `--import MODULE`
(import MODULE first, e.g. the module that registers a plain id; it also consents to a `MODULE:EnvId` id
with that module). In Python: `trust_env_module=True` / `imports=["MODULE"]`. Without consent the command
stops with one line that names the module and says how to consent (`UntrustedEnvModule`).

Even with consent, the module is not looked for in the current directory or the run directory: while a
run's env modules are imported and its envs are made (in every process: the learner, AsyncVectorEnv
workers, collector processes), those entries (`''`, the current directory, the run directory) are off
`sys.path`. `python -m icrl` started inside a downloaded run would otherwise import a `.py` file shipped
in it. A directory named in `PYTHONPATH` stays searched, even the current one: the user put it there.
A module already imported (e.g. by the script that calls `evaluate_run`) is used as it is.

Training a new run (`icrl train MODULE:EnvId`, `Trainer(cfg)`) is unchanged: the user typed the id.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from icrl.envs.popgym_adapter import is_popgym_id

if TYPE_CHECKING:
    from icrl.config import Config
    from icrl.envs.trial import TrialWrapper

NOT_SEARCHED = "the current and run directories are not searched"


class UntrustedEnvModule(ValueError):
    """A run's env id names a Python module, and the user has not consented to importing it."""


class EnvUnavailable(ValueError):
    """A run's env cannot be made here: a module it needs cannot be imported."""


@dataclass(frozen=True)
class RunEnv:
    """How the envs of a loaded run are made in every process: these modules are imported first, and
    `sys.path` holds neither the current directory nor these run directories meanwhile."""

    modules: tuple[str, ...] = ()
    run_dirs: tuple[str, ...] = ()
    trained_with: tuple[str, ...] = ()  # the run's `--import` modules (IMPORTS_FILE): named, never imported


# Env ids of runs loaded in this process (`load_run_config`) -> how their envs are made. `env_factory`
# reads it, so every env of such a run (probes, vector envs, evaluation envs) is made the safe way;
# collector processes get a copy (`run_env_state`).
_RUN_ENVS: dict[str, RunEnv] = {}

# `icrl train --import MODULE` writes the module names here, so that a failure to make the run's env can
# say which modules to consent to; reading it never imports them.
IMPORTS_FILE = "imports.json"


def record_imports(run_dir: str | os.PathLike[str], modules: Sequence[str]) -> None:
    """Add `modules` (the `--import` names a run was trained or resumed with) to the run's IMPORTS_FILE;
    the file is written only when that adds a name."""
    recorded = recorded_imports(run_dir)
    merged = tuple(dict.fromkeys(recorded + tuple(modules)))
    if merged != recorded:
        (Path(run_dir) / IMPORTS_FILE).write_text(json.dumps({"modules": list(merged)}) + "\n")


def recorded_imports(run_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """The dotted module names a run's IMPORTS_FILE lists; () when it has none, is unreadable or lists
    anything else (it only feeds a hint)."""
    path = Path(run_dir) / IMPORTS_FILE
    try:
        if path.stat().st_size > 65_536:  # a few module names; anything larger is not ours
            return ()
        names = json.loads(path.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return ()
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n and all(p.isidentifier() for p in n.split(".")))


def env_module_of(env_id: str) -> str | None:
    """The module that gymnasium imports to make `env_id` (`MODULE:EnvId`), or None for a plain id.
    POPGym ids (`popgym-*`) import only popgym, a known package, whatever they contain."""
    if is_popgym_id(env_id) or ":" not in env_id:
        return None
    return env_id.split(":", 1)[0]


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path) or os.curdir)  # '' on sys.path is the current directory


@contextlib.contextmanager
def import_path_without_cwd(run_dirs: Sequence[str | os.PathLike[str]] = ()) -> Iterator[None]:
    """`sys.path` without the current directory (`''`, its absolute path, as `python -m` and `python -c`
    put it there) and without `run_dirs`, for the duration; a directory named in `PYTHONPATH` stays. Entries
    added meanwhile (by an imported module) are kept after the ones that were there before."""
    unsafe = {_real(os.getcwd()), *(_real(d) for d in run_dirs)}
    unsafe -= {_real(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if not isinstance(p, str) or _real(p) not in unsafe]
    kept = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved + [p for p in sys.path if p not in kept and p not in saved]


def import_env_module(name: str, run_dirs: Sequence[str | os.PathLike[str]] = ()) -> ModuleType:
    """Import module `name` without searching the current directory or `run_dirs`. EnvUnavailable (one
    line) when it is no module name or cannot be imported."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise EnvUnavailable(f"{name!r} is not a Python module name")
    with import_path_without_cwd(run_dirs):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise EnvUnavailable(_missing(name, exc)) from exc


def _missing(name: str, exc: ImportError) -> str:
    """Why `name` failed to import, and what to do, as one line."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and (name + ".").startswith(exc.name + "."):
        return (f"module {name!r} is not installed or on PYTHONPATH: install it or put its folder on "
                f"PYTHONPATH ({NOT_SEARCHED})")
    # the module is there but fails, e.g. it needs a package or an extra that is missing
    return f"importing module {name!r} failed: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def consented_modules(
    env_id: str, trust_env_module: bool = False, imports: Sequence[str] = ()
) -> tuple[str, ...]:
    """The modules to import before `env_id` is made: `imports`, then the id's own module. Raises
    UntrustedEnvModule (one line) when the id names a module that neither `trust_env_module` nor `imports`
    consents to."""
    module = env_module_of(env_id)
    if module is not None and not trust_env_module and module not in imports:
        raise UntrustedEnvModule(
            f"the run's env id {env_id!r} would import the Python module {module!r}, running its code: if "
            f"you trust the run, consent with --trust-env-module or --import {module} (Python: "
            f"trust_env_module=True); the module must be installed or on PYTHONPATH ({NOT_SEARCHED})"
        )
    names = list(dict.fromkeys(imports))
    if module is not None and module not in names:
        names.append(module)
    return tuple(names)


def prepare_run_env(
    env_id: str,
    run_dir: str | os.PathLike[str],
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
) -> RunEnv:
    """Apply the consent rule to a run's `env_id`, import the consented modules (not from the current or
    run directory) and remember, for `env_factory`, that this id's envs are made the safe way."""
    modules = consented_modules(env_id, trust_env_module, imports)
    earlier = _RUN_ENVS.get(env_id, RunEnv())
    run_env = RunEnv(
        modules=tuple(dict.fromkeys(earlier.modules + modules)),
        run_dirs=tuple(dict.fromkeys(earlier.run_dirs + (_real(run_dir),))),
        trained_with=tuple(dict.fromkeys(earlier.trained_with + recorded_imports(run_dir))),
    )
    for name in modules:
        try:
            import_env_module(name, run_env.run_dirs)
        except EnvUnavailable as exc:
            raise EnvUnavailable(f"the run's env id {env_id!r} cannot be made: {exc}") from exc
    _RUN_ENVS[env_id] = run_env
    return run_env


def load_run_config(
    run_dir: str | os.PathLike[str],
    trust_env_module: bool = False,
    imports: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
) -> Config:
    """A run's config (with `overrides`, e.g. `icrl resume --set`), ready to make its envs: the consent
    rule applied and the consented modules imported (`prepare_run_env`). An env id typed in `overrides`
    counts as consented, as `icrl train MODULE:EnvId` does."""
    from icrl.config import load_config

    cfg = load_config(Path(run_dir) / "config.json")
    if overrides:
        from icrl.presets import apply_overrides

        cfg = apply_overrides(cfg, overrides)
    env_overrides = (overrides or {}).get("env")
    typed = isinstance(env_overrides, dict) and "id" in env_overrides
    prepare_run_env(cfg.env.id, run_dir, trust_env_module or typed, imports)
    return cfg


def run_env_of(env_id: str) -> RunEnv | None:
    """How envs of `env_id` are made when it belongs to a run loaded in this process, else None."""
    return _RUN_ENVS.get(env_id)


def run_env_state() -> dict[str, RunEnv]:
    """This process's loaded-run env ids, for a spawned process (`restore_run_env_state`)."""
    return dict(_RUN_ENVS)


def restore_run_env_state(state: dict[str, RunEnv] | None) -> None:
    """In a spawned process (a collector): make the loaded runs' envs the safe way here too."""
    _RUN_ENVS.update(state or {})


def make_run_env(run_env: RunEnv, env_id: str, **kwargs: Any) -> TrialWrapper:
    """`make_trial_env(env_id, **kwargs)` for a loaded run, in whatever process: its consented modules are
    imported first, and the current and run directories are off `sys.path` while the env is made (also
    for what the env imports lazily, e.g. an entry point's module or a simulator)."""
    from icrl.envs.trial import make_trial_env

    with import_path_without_cwd(run_env.run_dirs):
        for name in run_env.modules:
            importlib.import_module(name)
        return make_trial_env(env_id, **kwargs)


def env_failure_hint(env_id: str, exc: BaseException) -> str:
    """What to do when `env_id` cannot be made (`exc`), as a clause for a one-line message; '' if there is
    nothing specific to say (e.g. a missing extra, whose message already says what to install)."""
    from_run = env_id in _RUN_ENVS
    module = env_module_of(env_id)
    if isinstance(exc, gym.error.UnregisteredEnv) or (
        isinstance(exc, gym.error.Error) and "No registered env" in str(exc)
    ):
        if module is not None:
            return f"; importing module {module!r} did not register it"
        if is_popgym_id(env_id):
            return ""  # the POPGym adapter lists the registered ids
        if from_run:
            run_env = _RUN_ENVS[env_id]
            missing = [name for name in run_env.trained_with if name not in run_env.modules]
            if missing:
                flags = " ".join(f"--import {name}" for name in missing)
                return f"; the run was trained with {flags}: add it if you trust the module(s)"
            return "; if a module registers it, name it with --import MODULE (installed or on PYTHONPATH)"
        return f"; if a module registers it, give the id as MODULE:{env_id} so that it is imported first"
    if isinstance(exc, ModuleNotFoundError) and module is not None and exc.name == module.split(".")[0]:
        where = f" ({NOT_SEARCHED})" if from_run else ""
        return f"; install module {module!r} or put its folder on PYTHONPATH{where}"
    return ""


def describe_env_failure(what: str, cfg: Config, exc: BaseException) -> str:
    """`{what} {id} with kwargs {...} cannot be made: {reason}{hint}` on one line."""
    made = f"{what} {cfg.env.id!r} with kwargs {cfg.env.kwargs}"
    hint = env_failure_hint(cfg.env.id, exc)
    return f"{made} cannot be made: {_one_line(exc).rstrip('.') if hint else _one_line(exc)}{hint}"
