"""A run directory is data: its config's env id (`MODULE:EnvId`) makes gymnasium import MODULE, so playing or
resuming a downloaded run must not run a `.py` file shipped in it. Without consent (`--trust-env-module`,
`--import MODULE`) the command is refused in one line; with consent the module is still not looked for in
the current or run directory; a run whose env cannot be made any more says so in one line.

The subprocess tests start `python -m icrl` inside the run directory, as a user who downloaded it would:
Python then puts that directory first on `sys.path`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from icrl.cli import main

GOOD_ID = "goodenv:icrl-test/Good-v0"
EVIL_ID = "evil:Env-v0"


def _evil_source(marker: Path) -> str:
    """A module that leaves `marker` behind when imported (and registers an env, so play would go on)."""
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "import gymnasium as gym\n"
        "from icrl.envs.tmaze import TMazeEnv\n"
        "for env_id in ('Env-v0', 'icrl-test/Good-v0'):\n"
        "    if env_id not in gym.registry:\n"
        "        gym.register(env_id, entry_point=TMazeEnv)\n"
    )


GOOD_SOURCE = (
    "import gymnasium as gym\n"
    "from icrl.envs.tmaze import TMazeEnv\n"
    "if 'icrl-test/Good-v0' not in gym.registry:\n"
    "    gym.register('icrl-test/Good-v0', entry_point=TMazeEnv)\n"
)


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> Path:
    """A folder outside any run with the trusted `goodenv` module (registers icrl-test/Good-v0)."""
    folder = tmp_path_factory.mktemp("modules")
    (folder / "goodenv.py").write_text(GOOD_SOURCE)
    return folder


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, tiny_config, modules) -> Path:
    """A tiny run trained with `goodenv:icrl-test/Good-v0` (a T-Maze) and 2 kept checkpoints."""
    from icrl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("env_module") / "run"
    cfg = tiny_config(run, env={"id": GOOD_ID}, total_env_steps=100, eval_every=0, eval_trials=2,
                      checkpoint_every=4, checkpoint_keep_every=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(modules))  # the user typed the id when training: imported as usual
        Trainer(cfg).run()
    return run


def _copy_run(run: Path, dest: Path, env_id: str) -> Path:
    """A copy of `run` whose config names `env_id`."""
    shutil.copytree(run, dest)
    config = json.loads((dest / "config.json").read_text())
    config["env"]["id"] = env_id
    (dest / "config.json").write_text(json.dumps(config))
    return dest


@pytest.fixture
def evil_run(good_run, tmp_path) -> tuple[Path, Path]:
    """(a copy of the run whose env id is `evil:Env-v0` and that ships `evil.py`, the marker its import
    would write)."""
    marker = tmp_path / "evil-was-imported"
    run = _copy_run(good_run, tmp_path / "downloaded", EVIL_ID)
    (run / "evil.py").write_text(_evil_source(marker))
    return run, marker


def _icrl(args: list[str], cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m icrl ARGS` started in `cwd` (so `cwd` is first on its sys.path)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "icrl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else ""


COMMANDS = {
    "eval": ["eval", ".", "--trials", "2", "--threads", "1"],
    "resume": ["resume", ".", "--total-env-steps", "200"],
    "select": ["select", ".", "--trials", "2", "--threads", "1", "--no-progress"],
    "average": ["average", ".", "--last", "2"],
}


def _fault_cases(name: str, cases: dict[str, tuple[tuple, str]], expected: str) -> Any:
    """`pytest.mark.parametrize(name, ...)` with one fault probe per case: {id: (values, probe)}."""
    params = [pytest.param(*values, id=case, marks=pytest.mark.fault(probe=probe, expected=expected))
              for case, (values, probe) in cases.items()]
    return pytest.mark.parametrize(name, params)


@_fault_cases(
    "command",
    {c: ((c,), f"python -m icrl {c} inside a run with env id evil:Env-v0 and evil.py") for c in COMMANDS},
    expected="refused in one line; evil.py never imported",
)
def test_no_env_module_is_imported_without_consent(evil_run, command, record_property) -> None:
    run, marker = evil_run
    done = _icrl(COMMANDS[command], cwd=run)
    line = _last_line(done)
    record_property("observed", f"exit {done.returncode}: {line}")
    assert not marker.exists(), "the run's own evil.py was imported"
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert line.startswith(f"icrl {command}: ") and "'evil'" in line
    assert "--trust-env-module" in line and "--import evil" in line


@_fault_cases(
    "consent",
    {
        "trust": ((["--trust-env-module"],), "icrl eval --trust-env-module inside it (evil.py only there)"),
        "import": ((["--import", "evil"],), "icrl eval --import evil inside it (evil.py only there)"),
    },
    expected="one line: module not found (cwd not searched)",
)
def test_consent_does_not_search_the_run_directory(evil_run, consent, record_property) -> None:
    run, marker = evil_run
    done = _icrl([*COMMANDS["eval"], *consent], cwd=run)
    line = _last_line(done)
    record_property("observed", f"exit {done.returncode}: {line}")
    assert not marker.exists(), "evil.py was imported from the current directory"
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "module 'evil' is not installed or on PYTHONPATH" in line and "not searched" in line


@_fault_cases(
    ("env_id", "consent"),
    {
        "trust": ((GOOD_ID, ["--trust-env-module"]),
                  "eval goodenv:Id --trust-env-module, goodenv on PYTHONPATH, a decoy in the run"),
        "import": (("icrl-test/Good-v0", ["--import", "goodenv"]),
                   "eval plain id --import goodenv, goodenv on PYTHONPATH, a decoy in the run"),
    },
    expected="evaluates with the PYTHONPATH module; decoy never imported",
)
def test_consent_imports_the_module_from_pythonpath(good_run, modules, tmp_path, env_id, consent,
                                                    record_property) -> None:
    run = _copy_run(good_run, tmp_path / "run", env_id)
    marker = tmp_path / "decoy-was-imported"
    (run / "goodenv.py").write_text(_evil_source(marker))  # shadows the real one if cwd were searched
    done = _icrl([*COMMANDS["eval"], *consent], cwd=run, pythonpath=modules)
    record_property("observed", f"exit {done.returncode}: {done.stdout.strip()[:80] or _last_line(done)}")
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the run's goodenv.py was imported instead of the one on PYTHONPATH"
    assert json.loads(done.stdout.strip().splitlines()[-1])["eval/trials"] == 2


@pytest.mark.fault(probe="python -m icrl eval inside a run that ships safetensors.py",
                   expected="evaluates with the installed package; the run's file never imported")
def test_no_file_of_the_run_shadows_a_package(good_run, tmp_path, record_property) -> None:
    """Not only the env module: nothing a command imports after it starts (safetensors, matplotlib, wandb)
    is looked for in the current directory, which `python -m` puts before the installed packages."""
    run = _copy_run(good_run, tmp_path / "run", "icrl/TMaze-v0")  # the same env, built in: no consent needed
    marker = tmp_path / "shadow-was-imported"
    (run / "safetensors.py").write_text(_evil_source(marker))
    done = _icrl(COMMANDS["eval"], cwd=run)
    record_property("observed", f"exit {done.returncode}, run's safetensors.py imported: {marker.exists()}")
    assert not marker.exists(), "the run's safetensors.py was imported"
    assert done.returncode == 0, done.stderr


@pytest.mark.fault(probe="resume_run(trust_env_module=True), collectors, run dir first on sys.path",
                   expected="learner and collector import the module from PYTHONPATH only")
def test_resumed_collectors_do_not_import_from_the_run_directory(good_run, modules, tmp_path, monkeypatch,
                                                                 record_property) -> None:
    """Spawned collectors copy the learner's sys.path, run directory and all; they make the run's env the
    same safe way."""
    from icrl.train.trainer import resume_run

    run = _copy_run(good_run, tmp_path / "run", GOOD_ID)
    marker = tmp_path / "decoy-was-imported"
    (run / "goodenv.py").write_text(_evil_source(marker))
    monkeypatch.setenv("PYTHONPATH", str(modules))  # what the user named
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.syspath_prepend(str(run))  # as `python -m` / `python -c` started inside the run put it
    monkeypatch.chdir(run)
    monkeypatch.delitem(sys.modules, "goodenv", raising=False)  # the learner imports it afresh, too
    resume_run(run, {"collectors": 1, "total_env_steps": 140}, trust_env_module=True)
    last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
    record_property("observed", f"resumed to {last['env_steps']} env steps, decoy imported {marker.exists()}")
    assert not marker.exists(), "a process imported the run's goodenv.py"
    assert last["env_steps"] >= 140
    assert sys.modules["goodenv"].__file__ == str(modules / "goodenv.py")


@_fault_cases(
    "call",
    {c: ((c,), f"{c}() on a run with evil:Env-v0, run dir on sys.path")
     for c in ("evaluate_run", "select_checkpoint", "load_run_agent", "resume_run")},
    expected="UntrustedEnvModule; evil.py never imported",
)
def test_library_calls_need_consent(evil_run, monkeypatch, call, record_property) -> None:
    from icrl.analysis.select import select_checkpoint
    from icrl.envs.trust import UntrustedEnvModule
    from icrl.train.evaluate import evaluate_run, load_run_agent, resolve_checkpoint
    from icrl.train.trainer import resume_run

    run, marker = evil_run
    monkeypatch.syspath_prepend(str(run))
    monkeypatch.chdir(run)
    calls = {
        "evaluate_run": lambda: evaluate_run(run, 2),
        "select_checkpoint": lambda: select_checkpoint(run, 2, progress=False),
        "load_run_agent": lambda: load_run_agent(run, resolve_checkpoint(run)),
        "resume_run": lambda: resume_run(run),
    }
    with pytest.raises(UntrustedEnvModule) as raised:
        calls[call]()
    record_property("observed", str(raised.value))
    assert not marker.exists() and "evil" not in sys.modules
    assert "trust_env_module=True" in str(raised.value)


GONE = {
    "module-gone": ("gonemod:icrl-test/Gone-v0", ["--trust-env-module"],
                    "module 'gonemod' is not installed or on PYTHONPATH: install it"),
    "id-unregistered": ("icrl-test/Gone-v0", [], "name it with --import MODULE"),
}


@_fault_cases(
    ("command", "env_id", "consent", "expected"),
    {f"{case}-{c}": ((c, *GONE[case]), f"icrl {c} on a run whose env {what}")
     for case, what in (("module-gone", "module is gone"), ("id-unregistered", "id is not registered"))
     for c in ("eval", "resume", "select")},
    expected="one line: env cannot be made + the fix",
)
def test_a_run_whose_env_is_gone_says_so(good_run, tmp_path, capsys, command, env_id, consent, expected,
                                         record_property) -> None:
    run = _copy_run(good_run, tmp_path / "run", env_id)
    extra = {"eval": ["--trials", "2"], "select": ["--trials", "2", "--no-progress"],
             "resume": ["--total-env-steps", "1000000"]}.get(command, [])  # (a finished run is left alone)
    argv = [command, str(run), *consent, *extra]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    line = str(raised.value.code)
    record_property("observed", line)
    assert len(line.splitlines()) == 1 and "Traceback" not in capsys.readouterr().err
    assert line.startswith(f"icrl {command}: ") and env_id in line and "cannot be" in line
    assert expected in line


@pytest.mark.fault(probe="import_path_without_cwd: '', cwd, run dir, a PYTHONPATH dir on sys.path",
                   expected="cwd and run dir dropped, PYTHONPATH dir kept, all restored")
def test_only_the_current_and_run_directories_leave_sys_path(tmp_path, monkeypatch, record_property) -> None:
    from icrl.envs.trust import import_path_without_cwd

    run, named, here = tmp_path / "run", tmp_path / "named", tmp_path / "here"
    for folder in (run, named, here):
        folder.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("PYTHONPATH", str(named))
    monkeypatch.setattr(sys, "path", ["", str(here), str(run), str(named), *sys.path])
    before = list(sys.path)
    with import_path_without_cwd([run]):
        inside = list(sys.path)
    record_property("observed", f"first entries inside: {inside[:2]}")
    assert inside[0] == str(named) and not {"", str(here), str(run)} & set(inside)
    assert sys.path == before
