"""The `icrl` command line: argument splitting, config building, help, train -> eval -> plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icrl.cli import build_train_config, main, parse_value, split_train_args
from icrl.config import load_config
from icrl.presets import preset_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_split_train_args():
    argv = ["icrl/TMaze-v0", "--env.length", "50", "--seed", "3", "--run-dir", "X",
            "--total-env-steps", "100", "--model.kind", "mlp", "--preset", "tmaze-quick",
            "--env.num-actors", "3", "--env.p=0.5"]
    env_id, preset, env_kwargs, rest = split_train_args(argv)
    assert env_id == "icrl/TMaze-v0"
    assert preset == "tmaze-quick"
    assert env_kwargs == {"length": 50, "p": 0.5}
    assert type(env_kwargs["length"]) is int
    # EnvConfig's own fields (num_actors, ...) and everything else go to tyro.
    assert rest == ["--seed", "3", "--run-dir", "X", "--total-env-steps", "100", "--model.kind", "mlp",
                    "--env.num-actors", "3"]
    assert split_train_args(["--preset=tmaze-50"]) == (None, "tmaze-50", {}, [])
    with pytest.raises(SystemExit):
        split_train_args(["--preset"])
    with pytest.raises(SystemExit):
        split_train_args(["icrl/TMaze-v0", "--env.length"])


@pytest.mark.parametrize(
    ("text", "value"),
    [("50", 50), ("2.5", 2.5), ("true", True), ("False", False), ("none", None), ("[1, 2]", [1, 2]),
     ("abc", "abc"), ("icrl/TMaze-v0", "icrl/TMaze-v0")],
)
def test_parse_env_values(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_build_train_config_from_preset_and_flags():
    cfg = build_train_config(["icrl/TMaze-v0", "--env.length", "50", "--seed", "3", "--run-dir", "X",
                              "--total-env-steps", "100", "--model.kind", "mlp", "--preset", "tmaze-quick"])
    assert cfg.env.id == "icrl/TMaze-v0"
    assert cfg.env.kwargs == {"length": 50} and type(cfg.env.kwargs["length"]) is int
    assert cfg.seed == 3 and cfg.run_dir == "X"
    assert cfg.total_env_steps == 100  # the command line beats the preset's 30_000
    assert cfg.model.kind == "mlp"
    assert cfg.model.context_len == 51 and cfg.exp_name == "tmaze-quick"  # from the preset
    assert cfg.target_return == 0.99


def test_env_kwargs_follow_the_env():
    # The preset's env kwargs (TMaze length) must not leak into another env.
    cfg = build_train_config(["icrl/MetaFrozenLake-v0", "--preset", "tmaze-quick", "--env.size", "3"])
    assert cfg.env.id == "icrl/MetaFrozenLake-v0" and cfg.env.kwargs == {"size": 3}
    # Same env as the preset: flags merge into the preset's kwargs.
    cfg = build_train_config(["--preset", "dark-key-door", "--env.size", "5", "--env.num-actors", "3"])
    assert cfg.env.kwargs == {"size": 5, "episode_length": 20, "trial_length": 100}
    assert cfg.env.num_actors == 3
    # No preset: defaults plus flags.
    cfg = build_train_config(["icrl/TMaze-v0", "--env.length", "7", "--model.encoder-hidden", "16", "16"])
    assert cfg.env.kwargs == {"length": 7} and cfg.model.encoder_hidden == (16, 16)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(SystemExit) as info:
        build_train_config(["--preset", "no-such-preset"])
    message = str(info.value.code)
    assert "unknown preset 'no-such-preset'" in message and "tmaze-quick" in message


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--total-env-steps", "--seed", "--run-dir", "--env.num-actors", "--model.kind",
                   "--model.d-model", "--agent.gamma", "--explore.eps-start", "--replay.batch-size",
                   "--checkpoint-every", "--preset", "--env.KEY"):
        assert option in out, option
    main(["--help"])
    assert "icrl resume RUN_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert "unknown command 'frobnicate'" in str(info.value.code)


def _cli_train(run_dir, tiny_cli, *extra):
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "60", "--eval-every", "0",
          "--checkpoint-every", "0", "--run-dir", str(run_dir), *extra])


def test_train_eval_plot(tmp_path, tiny_cli, capsys):
    run = tmp_path / "tmaze"
    _cli_train(run, tiny_cli, "--seed", "4")
    out = capsys.readouterr().out
    assert f"icrl: run directory {run}" in out
    summary = json.loads(out.splitlines()[-2])
    assert summary["run_dir"] == str(run) and "eval/return" in summary
    cfg = load_config(run / "config.json")
    assert cfg.seed == 4 and cfg.env.kwargs == {"length": 5} and cfg.model.d_model == 32
    assert cfg.total_env_steps == 60 and cfg.tensorboard is False
    assert "(metrics.jsonl, checkpoints/)" in out.splitlines()[-1]  # no tensorboard/ named: none written
    assert not (run / "tensorboard").exists()

    # A second `train` into the same directory refuses to overwrite the run, in one line.
    with pytest.raises(SystemExit, match="icrl train: .* already holds a run; use `icrl resume"):
        _cli_train(run, tiny_cli)

    main(["eval", str(run), "--trials", "3"])
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "eval.json").read_text())
    per_trial = saved.pop("trial_episode_returns")  # the file adds every trial's episode returns
    successes = saved.pop("trial_episode_successes")  # ...and, as T-Maze reports success, their successes
    assert saved == printed and printed["seed"] == 12345
    assert len(per_trial) == 3
    assert np.mean([max(s) for s in successes]) == pytest.approx(printed["eval/success"])
    assert np.mean([sum(r) for r in per_trial]) == pytest.approx(printed["eval/return"])
    assert printed["checkpoint"] == "ckpt_000000006"
    assert printed["env_steps"] == 60 and printed["updates"] == 6
    assert printed["eval/trials"] == 3 and printed["greedy"] is True
    assert -2.0 <= printed["eval/return"] <= 1.0
    assert printed["threads"] == torch.get_num_threads()
    threads = torch.get_num_threads()
    try:  # --threads sets torch's CPU threads and is recorded
        main(["eval", str(run), "--trials", "3", "--threads", "1"])
        assert json.loads(capsys.readouterr().out)["threads"] == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(SystemExit):
        main(["eval", str(run), "--threads", "0"])
    capsys.readouterr()

    # A bad --env.KEY for the evaluation envs is a one-line error, and nothing is written.
    with pytest.raises(SystemExit, match="icrl eval: evaluation env 'icrl/TMaze-v0' .*no_such_kwarg"):
        main(["eval", str(run), "--trials", "3", "--env.no_such_kwarg", "1"])
    assert json.loads((run / "eval.json").read_text())["eval/trials"] == 3

    main(["plot", str(run)])
    assert capsys.readouterr().out.split() == [str(run / "learning_curve.png")]
    assert (run / "learning_curve.png").read_bytes()[:8] == PNG_MAGIC
    assert not (run / "adaptation_curve.png").exists()  # one episode per trial

    lake = tmp_path / "lake"
    main(["train", "icrl/MetaFrozenLake-v0", "--env.size", "3", "--env.attempts", "2", *tiny_cli[2:],
          "--total-env-steps", "40", "--eval-every", "0", "--run-dir", str(lake)])
    capsys.readouterr()
    # Episode starts: with K beyond any episode's length they are the whole episodes.
    main(["eval", str(lake), "--trials", "4", "--first-steps", "1000"])
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((lake / "eval.json").read_text())
    assert printed["first_steps"] == 1000
    assert saved["trial_episode_start_returns"] == saved["trial_episode_returns"]
    assert printed["eval/start_return_episode_0"] == pytest.approx(printed["eval/return_episode_0"])
    assert printed["eval/start_gain"] == pytest.approx(printed["eval/episode_gain"])
    main(["eval", str(lake), "--trials", "4", "--first-steps", "1"])
    saved = json.loads((lake / "eval.json").read_text())
    assert all(len(r) == 2 for r in saved["trial_episode_start_returns"])
    assert json.loads(capsys.readouterr().out)["first_steps"] == 1
    out_dir = tmp_path / "plots"
    main(["plot", str(lake), str(run), "--out", str(out_dir)])
    written = capsys.readouterr().out.split()
    assert written == [str(out_dir / "learning_curve.png"), str(out_dir / "adaptation_curve.png")]
    for path in written:
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC


@pytest.mark.parametrize("command", ["resume", "eval"])
def test_missing_run_is_a_one_line_error(tmp_path, command):
    with pytest.raises(SystemExit) as info:
        main([command, str(tmp_path / "nothing")])
    assert str(info.value).startswith(f"icrl {command}: ") and "nothing" in str(info.value)


def test_parse_overrides():
    from icrl.cli import parse_overrides

    assert parse_overrides(["model.context_len=32", "device=cuda", "model.actor_hidden=[64,64]"]) == {
        "model": {"context_len": 32, "actor_hidden": [64, 64]}, "device": "cuda"}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_overrides(["=3"])


def test_plot_without_evaluations_fails_clearly(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"env_steps": 1, "updates": 0, "wall_time_s": 0.1}) + "\n")
    with pytest.raises(SystemExit, match="icrl plot: .* has no evaluation rows"):
        main(["plot", str(run)])
    missing = tmp_path / "missing"
    with pytest.raises(SystemExit, match="icrl plot: .*missing holds no run"):
        main(["plot", str(missing)])
    assert not missing.exists()  # nothing is written for a bad input


def test_bench_with_an_unknown_preset_is_a_one_line_error():
    with pytest.raises(SystemExit, match="icrl bench: unknown preset 'nope'; choose from"):
        main(["bench", "--preset", "nope"])


def test_eval_rejects_a_non_positive_trial_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", str(tmp_path), "--trials", "0"])
    assert info.value.code == 2 and "must be a positive int, got 0" in capsys.readouterr().err


def test_env_id_option_replaces_the_presets_env_and_its_kwargs():
    from icrl.cli import build_train_config

    cfg = build_train_config(["--preset", "tmaze-quick", "--env.id", "CartPole-v1", "--seed", "2"])
    assert cfg.env.id == "CartPole-v1" and cfg.env.kwargs == {} and cfg.seed == 2
    cfg = build_train_config(["--preset=tmaze-quick", "--env.id=icrl/TMaze-v0", "--env.length=7"])
    assert cfg.env.id == "icrl/TMaze-v0" and cfg.env.kwargs == {"length": 7}


def test_eval_a_named_checkpoint(tmp_path, tiny_cli, capsys, eval_summary):
    run = tmp_path / "tmaze"
    _cli_train(run, tiny_cli, "--checkpoint-every", "2")
    capsys.readouterr()
    main(["eval", str(run), "--trials", "2", "--checkpoint", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["checkpoint"] == "ckpt_000000002" and printed["updates"] == 2
    assert eval_summary(run / "eval-ckpt_000000002.json") == printed
    assert not (run / "eval.json").exists()  # the latest checkpoint's result file is left alone
    with pytest.raises(SystemExit, match="icrl eval: .*ckpt_000000003.*found"):
        main(["eval", str(run), "--checkpoint", "ckpt_000000003"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env.no_such_kwarg", "1"], "icrl train: env 'icrl/TMaze-v0' with kwargs .*no_such_kwarg"),
        (["--env.length", "0"], "icrl train: env 'icrl/TMaze-v0' .* cannot be made"),
    ],
)
def test_a_bad_env_kwarg_fails_before_the_run_directory_exists(tmp_path, tiny_cli, flags, message):
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match=message):
        _cli_train(run, tiny_cli, *flags)
    assert not run.exists()


def test_eval_forget_episodes(tmp_path, tiny_cli, capsys):
    # Two T-Maze episodes per trial. The ablation writes its own file and plays every trial's first
    # episode exactly as the plain evaluation does (same seed: same tasks, same play until memory matters).
    run = tmp_path / "tmaze"
    _cli_train(run, tiny_cli, "--env.trial-episodes", "2")
    main(["eval", str(run), "--trials", "6"])
    main(["eval", str(run), "--trials", "6", "--forget-episodes"])
    capsys.readouterr()
    plain = json.loads((run / "eval.json").read_text())
    forget = json.loads((run / "eval-forget.json").read_text())
    assert forget["forget_episodes"] is True and "forget_episodes" not in plain
    first = [[returns[0] for returns in f["trial_episode_returns"]] for f in (plain, forget)]
    assert first[0] == first[1] and len(first[0]) == 6
    assert all(len(returns) == 2 for returns in forget["trial_episode_returns"])
    # icrl compare pairs them: episode 1 is the same play, so its difference is exactly zero.
    main(["compare", str(run / "eval.json"), str(run / "eval-forget.json")])
    paired = json.loads(capsys.readouterr().out)
    assert paired["trials"] == 6 and paired["return_episode_0"] == 0.0 == paired["return_episode_0_se"]
    expected = np.mean([sum(a) - sum(b) for a, b in zip(plain["trial_episode_returns"],
                                                          forget["trial_episode_returns"], strict=True)])
    assert paired["return"] == pytest.approx(expected)
    # T-Maze reports success, so the pairing covers it too (`paired_success_difference`).
    assert paired["success_episode_0"] == 0.0 == paired["success_episode_0_se"]
    expected = np.mean([max(a) - max(b) for a, b in zip(plain["trial_episode_successes"],
                                                         forget["trial_episode_successes"], strict=True)])
    assert paired["success"] == pytest.approx(expected)
    # Evaluations of other tasks (another seed) are not paired: a one-line error, not a number.
    main(["eval", str(run), "--trials", "6", "--seed", "7"])
    with pytest.raises(SystemExit, match="icrl compare: seed differs"):
        main(["compare", str(run / "eval.json"), str(run / "eval-forget.json")])
    with pytest.raises(SystemExit, match="icrl compare: .*No such file"):
        main(["compare", str(run / "eval.json"), str(run / "missing.json")])
    (run / "list.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="icrl compare: .*list.json is not an evaluation file"):
        main(["compare", str(run / "list.json"), str(run / "eval.json")])


def _eval_file(path, trial_returns, seed=5):
    path.write_text(json.dumps({"seed": seed, "env_kwargs": {}, "greedy": True, "updates": 1,
                                "eval/trials": len(trial_returns), "trial_episode_returns": trial_returns}))
    return str(path)


def test_compare_several_pairs_adds_the_between_pair_estimate(tmp_path, capsys):
    # Two checkpoints of A against B on the same 2 trials: trial-return differences (2, 2) and (6, 6), so
    # each pair's own SE is 0 while the estimate across the two pairs has mean 4 and SE 2.
    b = _eval_file(tmp_path / "b.json", [[0.0, 0.0], [1.0, 1.0]])
    a1 = _eval_file(tmp_path / "a1.json", [[1.0, 1.0], [2.0, 2.0]])
    a2 = _eval_file(tmp_path / "a2.json", [[3.0, 3.0], [4.0, 4.0]])
    main(["compare", a1, b, a2, b])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("return") for line in lines[:2]] == [2.0, 6.0] and lines[0]["return_se"] == 0.0
    assert lines[2]["across"] == 2 and lines[2]["return"] == pytest.approx(4.0)
    assert lines[2]["return_se"] == pytest.approx(2.0) and lines[2]["return_trial_se"] == 0.0
    main(["compare", a1, b])  # one pair: one line, as before
    assert len(capsys.readouterr().out.splitlines()) == 1
    with pytest.raises(SystemExit, match="in pairs"):
        main(["compare", a1, b, a2])
    with pytest.raises(SystemExit, match="icrl compare: seed differs"):
        main(["compare", a1, b, _eval_file(tmp_path / "a3.json", [[0.0], [0.0]], seed=6), b])


def test_tasks_typed_on_the_command_line_replace_a_presets_task_list(tmp_path):
    from icrl.cli import build_train_config

    tasks = tmp_path / "tasks.json"
    cfg = build_train_config(["--preset", "multitask-grid", "--env.tasks", str(tasks)])
    assert cfg.env.tasks == str(tasks) and cfg.env.task_list == ()
    cfg = build_train_config(["--preset", "multitask-grid", "--env.ids", "icrl/TMaze-v0,CartPole-v1"])
    assert cfg.env.task_list == () and cfg.env.ids == ("icrl/TMaze-v0,CartPole-v1",)
    cfg = build_train_config(["--preset", "metaworld-ml10", "--env.eval-tasks", str(tasks)])
    assert cfg.env.eval_task_list == () and len(cfg.env.task_list) == 10  # the training tasks stay
    cfg = build_train_config(["--preset", "multitask-popgym", "--env.ids", "popgym-RepeatFirstEasy-v0"])
    assert cfg.env.ids == ("popgym-RepeatFirstEasy-v0",)
    cfg = build_train_config(["CartPole-v1", "--preset", "multitask-grid"])  # a single env of its settings
    assert not cfg.env.multitask and cfg.model == preset_config("multitask-grid").model
    assert len(build_train_config(["--preset", "multitask-grid"]).env.task_list) == 4


def test_train_imports_a_module_that_registers_task_ids(tmp_path, tiny_cli, monkeypatch, capsys):
    """`icrl train --import MODULE`: the module registers a plain id that a task list then names (a
    MODULE:EnvId id in a task list is refused with a message that points to this option)."""
    import gymnasium as gym

    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "icrl_test_registers.py").write_text(
        "import gymnasium as gym\n"
        "from icrl.envs.tmaze import TMazeEnv\n"
        "if 'icrl-test/Imported-v0' not in gym.registry:\n"
        "    gym.register('icrl-test/Imported-v0', entry_point=TMazeEnv, kwargs={'length': 4})\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    assert "icrl-test/Imported-v0" not in gym.registry
    run = tmp_path / "run"
    args = ["train", "--env.ids", "icrl-test/Imported-v0,icrl/TMaze-v0", "--env.trial-episodes", "1",
            *tiny_cli, "--total-env-steps", "60", "--eval-every", "0", "--checkpoint-every", "0",
            "--run-dir", str(run)]
    try:
        main([*args[:1], "--import", "icrl_test_registers", *args[1:]])
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["env_steps"] >= 60 and "eval/icrl-test_Imported-v0/return" in rows[-1]
    finally:
        gym.registry.pop("icrl-test/Imported-v0", None)
    with pytest.raises(SystemExit) as info:
        main(["train", "--import", "icrl_test_no_such_module", *args[1:-1], str(tmp_path / "other")])
    assert info.value.code == 2
    assert "--import icrl_test_no_such_module: no module named 'icrl_test_no_such_module'" in (
        capsys.readouterr().err
    )
    for bad in ("", ".relative"):
        with pytest.raises(SystemExit) as info:
            main(["train", f"--import={bad}", *args[1:-1], str(tmp_path / "other")])
        assert info.value.code == 2 and "not a module name" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # collector processes would not have the module's envs
        main(["train", "--import", "icrl_test_registers", *args[1:-1], str(tmp_path / "other"),
              "--collectors", "1"])
    assert info.value.code == 2 and "start afresh" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_a_run_records_its_imports_and_names_them_when_its_env_is_missing(tmp_path, tiny_cli, monkeypatch,
                                                                          capsys):
    """A run trained with --import records the names (imports.json, never imported from there); eval
    without them says which to add; with them it plays."""
    import sys

    import gymnasium as gym

    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "icrl_test_records.py").write_text(
        "import gymnasium as gym\n"
        "from icrl.envs.tmaze import TMazeEnv\n"
        "gym.register('icrl-test/Recorded-v0', entry_point=TMazeEnv, kwargs={'length': 4})\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    run = tmp_path / "run"
    try:
        main(["train", "--import", "icrl_test_records", "icrl-test/Recorded-v0", *tiny_cli,
              "--total-env-steps", "40", "--eval-every", "0", "--run-dir", str(run)])
        assert json.loads((run / "imports.json").read_text()) == {"modules": ["icrl_test_records"]}
    finally:
        gym.registry.pop("icrl-test/Recorded-v0", None)
        sys.modules.pop("icrl_test_records", None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["eval", str(run), "--trials", "1"])
    message = str(info.value.code) + capsys.readouterr().err
    assert "the run was trained with --import icrl_test_records" in message
    assert "icrl_test_records" not in sys.modules and "icrl-test/Recorded-v0" not in gym.registry
    try:
        main(["eval", str(run), "--trials", "1", "--import", "icrl_test_records"])
        assert "return" in capsys.readouterr().out
        # a run from before imports.json: resuming it with the module records it for the next time
        (run / "imports.json").unlink()
        main(["resume", str(run), "--total-env-steps", "80", "--import", "icrl_test_records"])
        assert json.loads((run / "imports.json").read_text()) == {"modules": ["icrl_test_records"]}
    finally:
        gym.registry.pop("icrl-test/Recorded-v0", None)
        sys.modules.pop("icrl_test_records", None)


def test_import_consents_to_a_config_files_module_env_id(tmp_path):
    from icrl.cli.train import build_train_config
    from icrl.config import Config

    path = tmp_path / "config.json"
    data = json.loads(Config().to_json())
    data["env"]["id"] = "icrl_test_cfgmod:Env-v0"
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="--import icrl_test_cfgmod"):
        build_train_config(["--config", str(path)])  # not typed by the user: refused, nothing imported
    cfg = build_train_config(["--config", str(path)], imported=["icrl_test_cfgmod"])
    assert cfg.env.id == "icrl_test_cfgmod:Env-v0"


@pytest.mark.parametrize("content", [
    "not json", "[1, 2]", '{"modules": "a"}', '{"modules": [1, "", ".x", "os; rm"]}', "[" * 60_000,
    '{"modules": ["ok.name"' + ', "x"' * 20_000 + "]}",
])  # fmt: skip
def test_a_damaged_imports_file_is_only_a_missing_hint(tmp_path, content):
    from icrl.envs.trust import recorded_imports

    (tmp_path / "imports.json").write_text(content)
    assert recorded_imports(tmp_path) == ()
    (tmp_path / "imports.json").write_text('{"modules": ["a.b", 3, "c"]}')
    assert recorded_imports(tmp_path) == ("a.b", "c")
