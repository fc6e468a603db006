"""Mistakes a user can make on the command line: each is one line that says what is wrong, before any work,
and leaves nothing behind (no traceback, no half-made folder, no evaluation computed and then lost)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from icrl.cli import main


def _error_line(capsys, argv: list[str]) -> str:
    """Run the CLI, expect a user error (SystemExit with a message or argparse's exit 2); its one line."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    code = raised.value.code
    text = code if isinstance(code, str) else capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_config) -> Path:
    """One tiny trained run with 2 checkpoints; tests that change it work on a copy."""
    from icrl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("cli") / "run"
    cfg = tiny_config(run, total_env_steps=100, eval_every=0, eval_trials=2, checkpoint_every=4)
    Trainer(cfg).run()
    return run


@pytest.mark.fault(probe="icrl eval --seed -5", expected="argparse error: seed must be >= 0")
def test_negative_eval_seed(capsys, record_property) -> None:
    line = _error_line(capsys, ["eval", "no-such-run", "--seed", "-5"])
    record_property("observed", line)
    assert "--seed" in line and ">= 0" in line


@pytest.mark.fault(probe="icrl select --seed -1", expected="argparse error: seed must be >= 0")
def test_negative_select_seed(capsys, record_property) -> None:
    line = _error_line(capsys, ["select", "no-such-run", "--seed", "-1"])
    record_property("observed", line)
    assert "--seed" in line and ">= 0" in line


@pytest.mark.fault(probe="icrl train --run-dir FILE/sub", expected="one line: FILE is a file; nothing made")
def test_run_dir_under_a_file(tmp_path, tiny_cli, capsys, record_property) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    line = _error_line(capsys, ["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(blocker / "sub")])
    record_property("observed", line)
    assert "is a file, not a folder" in line
    assert blocker.read_text() == "not a folder"


@pytest.mark.fault(probe="icrl plot --out EXISTING_FILE", expected="one line before any plot; file intact")
def test_plot_out_is_a_file(tmp_path, run_dir, capsys, record_property) -> None:
    from icrl.train.logger import RunLogger

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    logger = RunLogger(run, tensorboard=False)  # one evaluation row, so that there is something to plot
    logger.log({"eval/return": 0.5}, 100, 8)
    logger.close()
    target = tmp_path / "plots.png"
    target.write_bytes(b"keep me")
    line = _error_line(capsys, ["plot", str(run), "--out", str(target)])
    record_property("observed", line)
    assert "is a file, not a folder" in line and target.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("name", "why"),
    [("best", "reserved"), ("latest.json", "reserved"), ("ckpt_000000004", "trainer's"),
     ("ckpt_x", "trainer's"), ("../outside", "path"), (".hidden", "temporary"), ("", "empty")],
)
@pytest.mark.fault(probe="icrl average --name COLLIDING", expected="refused first; checkpoints intact")
def test_average_name_collisions(tmp_path, run_dir, capsys, record_property, name, why) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    line = _error_line(capsys, ["average", str(run), "--last", "2", "--name", name])
    record_property("observed", line)
    assert "cannot name an averaged checkpoint" in line
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before
    assert not (tmp_path / "outside").exists()


@pytest.mark.fault(probe="icrl average --name over select's best", expected="refused: best is not an average")
def test_average_does_not_replace_a_non_average(tmp_path, run_dir, capsys, record_property) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    other = run / "checkpoints" / "mine"
    shutil.copytree(run / "checkpoints" / "ckpt_000000004", other)  # a hand-made copy, not an average
    line = _error_line(capsys, ["average", str(run), "--last", "2", "--name", "mine"])
    record_property("observed", line)
    assert "is not an averaged checkpoint" in line
    main(["average", str(run), "--last", "2", "--name", "avg"])  # a new name works, and again (replaced)
    main(["average", str(run), "--last", "2", "--name", "avg"])
    extra = json.loads((run / "checkpoints" / "avg" / "state.json").read_text())["extra"]
    assert len(extra["averaged_from"]) == 2


@pytest.mark.fault(
    probe="icrl eval into an unwritable run dir", expected="one line before playing; --out writes elsewhere"
)
def test_eval_checks_its_output_before_playing(tmp_path, run_dir, capsys, monkeypatch, record_property):
    import icrl.train.evaluate as evaluate

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "eval.json").mkdir()  # eval.json cannot be written, even by root (a folder is in the way)
    played = []
    original = evaluate.play_trials
    monkeypatch.setattr(evaluate, "play_trials", lambda *a, **k: played.append(1) or original(*a, **k))
    line = _error_line(capsys, ["eval", str(run), "--trials", "2"])
    record_property("observed", line)
    assert "--out" in line and not played  # refused before any trial was played
    out = tmp_path / "elsewhere" / "eval.json"
    main(["eval", str(run), "--trials", "2", "--out", str(out)])
    assert json.loads(out.read_text())["eval/trials"] == 2
