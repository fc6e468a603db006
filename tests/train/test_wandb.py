"""`--wandb`: metrics rows mirrored to Weights & Biases, the same wandb run continued on resume, and a clear
error when wandb is not installed. A recording stand-in for the `wandb` module checks the calls; the last
test drives the real library offline when it is installed (`pip install 'icrl[wandb]'`)."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest

from icrl.train.logger import WANDB_ID, read_metrics
from icrl.train.trainer import Trainer, resume_run


class RecordingRun:
    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        self.calls = calls

    def define_metric(self, name: str, **kwargs: Any) -> None:
        self.calls.append(("define_metric", (name, kwargs)))

    def log(self, row: dict[str, Any]) -> None:
        self.calls.append(("log", dict(row)))

    def finish(self) -> None:
        self.calls.append(("finish", None))


@pytest.fixture
def fake_wandb(monkeypatch):
    """A `wandb` module that records init/log/finish calls (in `.calls`)."""
    module = types.ModuleType("wandb")
    module.calls = []

    def init(**kwargs: Any) -> RecordingRun:
        module.calls.append(("init", kwargs))
        return RecordingRun(module.calls)

    module.init = init
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def _calls(module, name: str) -> list[Any]:
    return [args for kind, args in module.calls if kind == name]


def test_rows_are_mirrored_to_wandb(tiny_config, tmp_path, fake_wandb):
    cfg = tiny_config(tmp_path / "run", wandb=True, wandb_project="proj", wandb_entity="team")
    Trainer(cfg).run()
    (init,) = _calls(fake_wandb, "init")
    run_dir = tmp_path / "run"
    assert init["project"] == "proj" and init["entity"] == "team" and init["mode"] == "offline"
    assert init["name"] == run_dir.name and init["dir"] == str(run_dir)
    assert init["id"] == (run_dir / WANDB_ID).read_text().strip() and init["resume"] == "allow"
    assert init["config"]["seed"] == cfg.seed and init["config"]["wandb_project"] == "proj"
    assert ("*", {"step_metric": "env_steps"}) in _calls(fake_wandb, "define_metric")
    rows = read_metrics(run_dir)
    logged = _calls(fake_wandb, "log")
    assert len(logged) == len(rows) > 1
    for row, sent in zip(rows, logged, strict=True):  # every number of the row, nothing else
        assert sent == {k: v for k, v in row.items() if isinstance(v, (int, float))}
    assert any("eval/return" in sent for sent in logged)
    assert fake_wandb.calls[-1] == ("finish", None)


def test_resume_continues_the_same_wandb_run(tiny_config, tmp_path, fake_wandb):
    run_dir = tmp_path / "run"
    Trainer(tiny_config(run_dir, wandb=True, total_env_steps=100)).run()
    resume_run(run_dir, {"total_env_steps": 200})
    first, second = _calls(fake_wandb, "init")
    assert first["id"] == second["id"] and second["resume"] == "allow"
    assert [kind for kind, _ in fake_wandb.calls].count("finish") == 2
    assert max(sent["env_steps"] for sent in _calls(fake_wandb, "log")) >= 200


def test_without_wandb_no_calls_and_no_id_file(tiny_config, tmp_path, fake_wandb):
    Trainer(tiny_config(tmp_path / "run")).run()
    assert fake_wandb.calls == [] and not (tmp_path / "run" / WANDB_ID).exists()


def test_missing_wandb_fails_before_the_run_exists(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'icrl\[wandb\]'"):
        Trainer(tiny_config(tmp_path / "run", wandb=True))
    assert not (tmp_path / "run").exists()

    from icrl.cli import main

    argv = ["train", "--preset", "tmaze-quick", "--wandb", "--run-dir", str(tmp_path / "cli")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert "icrl train: --wandb needs Weights & Biases" in str(exc.value)
    assert not (tmp_path / "cli").exists()


def test_a_failing_wandb_init_leaves_the_run_directory_unlocked(tiny_config, tmp_path, fake_wandb):
    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("no api key")

    fake_wandb.init = refuse
    cfg = tiny_config(tmp_path / "run", wandb=True, wandb_mode="online")
    with pytest.raises(RuntimeError, match="no api key"):
        Trainer(cfg)
    assert not (tmp_path / "run").exists()  # a failed start leaves nothing behind (nor holds the lock)
    fake_wandb.init = lambda **kwargs: RecordingRun(fake_wandb.calls)
    Trainer(cfg).run()  # the same start goes ahead there


def test_empty_project_is_refused(tiny_config, tmp_path, fake_wandb):
    with pytest.raises(ValueError, match="wandb_project must not be empty"):
        Trainer(tiny_config(tmp_path / "run", wandb=True, wandb_project=" "))


def test_real_wandb_offline(tiny_config, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")  # only where icrl[wandb] is installed
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    Trainer(tiny_config(run_dir, wandb=True)).run()
    run_id = (run_dir / WANDB_ID).read_text().strip()
    (offline,) = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    (record,) = list(offline.glob(f"run-{run_id}.wandb"))  # what `wandb sync` uploads
    keys = [key.encode() for key in ("env_steps", "eval/return", "loss/total")]  # history keys, as text
    deadline = time.monotonic() + 60
    console = offline / "files" / "output.log"

    def written() -> bool:
        logged = console.is_file() and "[eval] env_steps=200" in console.read_text()
        return logged and all(key in record.read_bytes() for key in keys)

    while not written():  # wandb's service process may still be writing after finish() returns
        assert time.monotonic() < deadline, f"{offline} holds no history or console log after 60 s"
        time.sleep(0.2)
    assert wandb.run is None  # finished
