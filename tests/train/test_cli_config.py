"""`icrl train --config FILE`, `icrl --version`, and every command's typed arguments (help, ranges)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from icrl.cli import build_train_config, main, version
from icrl.presets import preset_config


def test_version(capsys):
    import icrl

    main(["--version"])
    assert capsys.readouterr().out.strip() == f"icrl {version()}"
    assert version() == icrl.__version__  # pyproject and the package agree
    out = subprocess.run([sys.executable, "-m", "icrl.cli", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"icrl {icrl.__version__}"


def test_a_runs_config_json_trains_as_is_in_a_new_directory(tmp_path):
    run = tmp_path / "old-run"
    run.mkdir()
    saved = dataclasses.replace(preset_config("frozen-lake"), run_dir=str(run), seed=7)
    (run / "config.json").write_text(saved.to_json())
    cfg = build_train_config(["--config", str(run / "config.json")])
    assert cfg == dataclasses.replace(saved, run_dir=None)  # its own run directory is not reused
    # Options on the command line win over the file, the env kwargs merging as over a preset.
    cfg = build_train_config([f"--config={run / 'config.json'}", "--seed", "2", "--env.size", "3",
                              "--run-dir", str(tmp_path / "new")])
    assert cfg.seed == 2 and cfg.env.kwargs == {"size": 3, "attempts": 5}
    assert cfg.run_dir == str(tmp_path / "new") and cfg.model == saved.model
    # Another env id drops the file's env kwargs, as it drops a preset's.
    assert build_train_config(["icrl/TMaze-v0", "--config", str(run / "config.json")]).env.kwargs == {}


def test_a_partial_yaml_config(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "mine.yaml"
    path.write_text("env:\n  id: icrl/TMaze-v0\n  kwargs: {length: 9}\nmodel:\n  d_model: 32\n"
                    "  encoder_hidden: [16, 16]\nagent:\n  lr: 3.0e-4\nrun_dir: runs/mine\n")
    cfg = build_train_config(["--config", str(path), "--agent.gamma", "0.99"])
    assert cfg.env.kwargs == {"length": 9} and cfg.model.d_model == 32
    assert cfg.model.encoder_hidden == (16, 16)
    assert cfg.agent.lr == 3e-4 and cfg.agent.gamma == 0.99
    assert cfg.run_dir == "runs/mine"  # a hand-written file's run directory is kept
    assert cfg.replay == preset_config(None).replay  # what the file leaves out keeps its default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model:\n  d_model: big\n", "icrl train: config file .*mine.yaml: config field model.d_model"),
        ("nope: 1\n", "unknown config field Config.nope"),
        ("model: [1\n", "icrl train: config file .*mine.yaml: "),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, text, message):
    pytest.importorskip("yaml")
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit, match=message) as info:
        build_train_config(["--config", str(path)])
    assert len(str(info.value.code).splitlines()) == 1


def test_config_file_errors(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="icrl train: cannot read config file .*missing.json"):
        build_train_config(["--config", str(tmp_path / "missing.json")])
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(SystemExit, match="--preset and --config both give the starting config"):
        build_train_config(["--config", str(tmp_path / "c.json"), "--preset", "tmaze-50"])
    assert build_train_config(["--config", str(tmp_path / "c.json")]) == preset_config(None)
    (tmp_path / "c.yaml").write_text("seed: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    with pytest.raises(SystemExit, match="a YAML config needs PyYAML"):
        build_train_config(["--config", str(tmp_path / "c.yaml")])


@pytest.mark.parametrize("command", ["train", "resume", "eval", "compare", "select", "average", "plot",
                                     "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and f"icrl {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["average", "RUN"], "icrl average: error: give one of the arguments --last N or --checkpoints"),
        (["average", "RUN", "--last", "2", "--checkpoints", "4", "8"], "give one of the arguments"),
        (["average", "RUN", "--last", "0"], "argument --last: must be a positive int, got 0"),
        (["select", "RUN", "--trials", "0"], "argument --trials: must be a positive int, got 0"),
        (["eval", "RUN", "--first-steps", "0"], "argument --first-steps: must be a positive int, got 0"),
    ],
)
def test_argument_errors_are_one_line_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_consent_flags_reach_the_command(monkeypatch, tmp_path):
    import icrl.train.evaluate as evaluate

    seen = {}
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: seen.update(k) or {})
    main(["eval", str(tmp_path), "--import", "a.b", "--import", "c", "--trust-env-module", "--env.size", "3"])
    assert seen["imports"] == ["a.b", "c"] and seen["trust_env_module"] is True
    assert seen["env_overrides"] == {"size": 3}


def test_train_help_lists_the_presets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "--config FILE" in text and "metaworld-reach-w16:" in text and "tmaze-quick:" in text
