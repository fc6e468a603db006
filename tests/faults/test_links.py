"""Links and files a downloaded run may carry: a run writes only inside its own directory (a symbolic link
where it writes is refused, and the file it points to is never touched), and a config file's env module is
imported only with consent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from icrl.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_config) -> Path:
    from icrl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("links") / "run"
    Trainer(tiny_config(run, total_env_steps=60, eval_every=0, checkpoint_every=4)).run()
    return run


def _refusal(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    text = str(raised.value.code)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.fault(probe="a run's .lock is a symlink to a user file, then icrl resume",
                   expected="refused in one line; the file is untouched")
def test_a_lock_symlink_never_overwrites_its_target(tmp_path, trained, record_property) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    precious = tmp_path / "precious.txt"
    precious.write_text("precious user data\n")
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(precious)
    line = _refusal(["resume", str(run), "--total-env-steps", "200"])
    record_property("observed", line)
    assert "symbolic link" in line and precious.read_text() == "precious user data\n"


@pytest.mark.parametrize("entry", ["checkpoints", "metrics.jsonl"])
@pytest.mark.fault(probe="a run's checkpoints/ or metrics.jsonl links to another run's, then icrl resume",
                   expected="refused in one line; the other run untouched")
def test_linked_entries_are_refused(tmp_path, trained, entry, record_property) -> None:
    victim, run = tmp_path / "victim", tmp_path / "run"
    shutil.copytree(trained, victim)
    shutil.copytree(trained, run)
    before = {p.relative_to(victim): p.read_bytes() for p in victim.rglob("*") if p.is_file()}
    target = run / entry
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(victim / entry)
    line = _refusal(["resume", str(run), "--total-env-steps", "200", "--set", "checkpoint_every=2"])
    record_property("observed", line)
    assert "symbolic link" in line
    after = {p.relative_to(victim): p.read_bytes() for p in victim.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.fault(probe="icrl select / average on a run whose checkpoints/ is a symlink",
                   expected="refused: nothing written or removed through the link")
def test_select_and_average_refuse_a_linked_checkpoints_folder(tmp_path, trained, record_property) -> None:
    victim, run = tmp_path / "victim", tmp_path / "run"
    shutil.copytree(trained, victim)
    shutil.copytree(trained, run)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(victim / "checkpoints")
    before = sorted(p.name for p in (victim / "checkpoints").iterdir())
    lines = [_refusal(["select", str(run), "--trials", "2"]),
             _refusal(["average", str(run), "--last", "2", "--name", "avg"])]  # fmt: skip
    record_property("observed", " | ".join(lines))
    assert all("symbolic link" in line for line in lines)
    assert sorted(p.name for p in (victim / "checkpoints").iterdir()) == before


@pytest.mark.fault(probe="icrl train --config FILE whose env id is MODULE:EnvId",
                   expected="refused without --trust-env-module; the module is not imported")
def test_a_config_files_env_module_needs_consent(tmp_path, trained, monkeypatch, record_property) -> None:
    folder = tmp_path / "downloaded"
    folder.mkdir()
    marker = tmp_path / "PWNED"
    (folder / "evilcfg.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    config = (trained / "config.json").read_text().replace('"icrl/TMaze-v0"', '"evilcfg:Env-v0"')
    (folder / "config.json").write_text(config)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))  # as `python -m icrl` started inside the folder would have it
    line = _refusal(["train", "--config", "config.json", "--run-dir", str(tmp_path / "new")])
    record_property("observed", line)
    assert "--trust-env-module" in line and not marker.exists() and not (tmp_path / "new").exists()
