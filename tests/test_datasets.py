"""Datasets: `icrl collect` from a trained run, `icrl dataset import` of .npz episodes (icrl.data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from icrl.cli import main
from icrl.data.collect import collect_dataset, random_actions
from icrl.data.dataset import DatasetError, dataset_trial_paths
from icrl.data.importer import import_episodes
from icrl.envs.trial import make_trial_env
from icrl.replay import ReplayStore, load_trial
from icrl.train.trainer import Trainer

TMAZE_LENGTH = 4


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_config) -> Path:
    """A tiny T-Maze run with a checkpoint (about a second on one thread)."""
    run = tmp_path_factory.mktemp("run") / "run"
    Trainer(tiny_config(run, total_env_steps=60, eval_every=0), run).run()
    return run


def test_collect_writes_trials_that_match_dataset_json(trained_run, tmp_path):
    out = tmp_path / "data"
    info = collect_dataset(trained_run, trials=5, out=out, epsilon=0.5, seed=3)
    saved = json.loads((out / "dataset.json").read_text())
    assert saved == json.loads(json.dumps(info))
    paths = dataset_trial_paths(out)
    trials = [load_trial(p) for p in paths]  # validated on load
    assert len(trials) == saved["trials"] == 5
    assert sum(len(t["reward"]) for t in trials) == saved["transitions"]
    returns = [float(t["reward"].sum()) for t in trials]
    assert saved["return_mean"] == pytest.approx(np.mean(returns))
    assert saved["return_min"] == pytest.approx(min(returns))
    assert saved["return_max"] == pytest.approx(max(returns))
    assert saved["source"]["epsilon"] == 0.5 and saved["source"]["checkpoint"].startswith("ckpt_")
    assert saved["env_id"] == "icrl/TMaze-v0" and saved["trial"] == {"episodes": 1}
    assert saved["action_space"] == {"type": "Discrete", "n": 4, "start": 0}
    assert ReplayStore(out, max_fifo_trials=1, owner=False).counts() == {"fifo": 0, "protected": 5}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary directory left


def test_collect_cli_refuses_an_existing_out(trained_run, tmp_path, capsys):
    out = tmp_path / "data"
    main(["collect", str(trained_run), "--trials", "2", "--out", str(out), "--epsilon", "1.0"])
    assert json.loads(capsys.readouterr().out)["trials"] == 2
    with pytest.raises(SystemExit, match="already exists"):
        main(["collect", str(trained_run), "--trials", "2", "--out", str(out)])


def test_random_actions_replace_at_the_rate_epsilon():
    rng = np.random.default_rng(0)
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    actions = np.zeros((4000, 2), np.float32)
    out = random_actions(box, actions, 0.25, rng)
    assert abs((out != 0).any(axis=1).mean() - 0.25) < 0.03 and np.abs(out).max() <= 1.0
    assert random_actions(box, actions, 0.0, rng) is actions  # off: nothing drawn


class EpisodeRecorder(gym.Wrapper):
    """Records every inner episode: observations (T + 1), actions, rewards and flags."""

    def __init__(self, env: gym.Env, episodes: list[dict[str, list]]) -> None:
        super().__init__(env)
        self.episodes = episodes

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.episodes.append({"obs": [obs], "action": [], "reward": [], "terminated": [], "truncated": []})
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        episode = self.episodes[-1]
        episode["obs"].append(obs)
        episode["action"].append(action)
        episode["reward"].append(reward)
        episode["terminated"].append(terminated)
        episode["truncated"].append(truncated)
        return obs, reward, terminated, truncated, info


def record_trials(num_trials: int, episodes_per_trial: int, seed: int = 0, env_id: str = "icrl/TMaze-v0"):
    """Trials of random play through make_trial_env, stored as the collector stores them, and the inner
    episodes behind them."""
    episodes: list[dict[str, list]] = []
    kwargs = {"length": TMAZE_LENGTH} if env_id == "icrl/TMaze-v0" else {}
    env = make_trial_env(
        lambda: EpisodeRecorder(gym.make(env_id, **kwargs), episodes), episodes=episodes_per_trial
    )
    env.action_space.seed(seed)
    trials = []
    for i in range(num_trials):
        obs, _ = env.reset(seed=seed + i)
        rows, actions, rewards, done, terminated = [obs], [], [], False, False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            rows.append(obs)
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        trial = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
        box = isinstance(env.action_space, gym.spaces.Box)
        trial["action"] = np.asarray(actions, dtype=np.float32 if box else np.int64)
        trial["reward"] = np.asarray(rewards, dtype=np.float32)
        trial["terminated"] = np.zeros(len(rewards), bool)
        trial["terminated"][-1] = terminated
        trials.append(trial)
    env.close()
    return trials, episodes


def save_episodes(episodes: list[dict[str, list]], folder: Path) -> None:
    folder.mkdir()
    for i, episode in enumerate(episodes):
        np.savez(folder / f"ep{i:04d}.npz", **{k: np.asarray(v) for k, v in episode.items()})


def test_import_builds_the_trials_the_wrapper_builds(tmp_path):
    trials, episodes = record_trials(num_trials=4, episodes_per_trial=2)
    assert len(episodes) == 8
    save_episodes(episodes, tmp_path / "episodes")
    out = tmp_path / "data"
    info = import_episodes(tmp_path / "episodes", out, "icrl/TMaze-v0", {"length": TMAZE_LENGTH}, 2)
    imported = [load_trial(p) for p in dataset_trial_paths(out)]
    assert info["trials"] == len(imported) == 4 and info["dropped_episodes"] == 0
    for got, want in zip(imported, trials, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype, key
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert info["observation_space"] == json.loads((out / "dataset.json").read_text())["observation_space"]


def test_import_of_box_actions_stores_them_as_the_agent_acts(tmp_path):
    """Pendulum's [-2, 2] actions are rescaled back to the agent's [-1, 1] exactly (a power-of-two range)."""
    trials, episodes = record_trials(num_trials=1, episodes_per_trial=2, env_id="Pendulum-v1")
    save_episodes(episodes, tmp_path / "episodes")
    import_episodes(tmp_path / "episodes", tmp_path / "data", "Pendulum-v1", trial_episodes=2)
    (got,) = [load_trial(p) for p in dataset_trial_paths(tmp_path / "data")]
    for key in trials[0]:
        assert got[key].dtype == trials[0][key].dtype, key
        np.testing.assert_array_equal(got[key], trials[0][key], err_msg=key)


def test_import_cli_drops_the_episodes_of_an_incomplete_trial(tmp_path, capsys):
    _, episodes = record_trials(num_trials=3, episodes_per_trial=1)
    save_episodes(episodes, tmp_path / "episodes")
    main([
        "dataset", "import", str(tmp_path / "episodes"), "--out", str(tmp_path / "data"),
        "--env", "icrl/TMaze-v0", "--env.length", str(TMAZE_LENGTH), "--trial-episodes", "2",
    ])
    info = json.loads(capsys.readouterr().out)
    assert info["trials"] == 1 and info["episodes"] == 2 and info["dropped_episodes"] == 1


@pytest.mark.parametrize(
    ("damage", "key"),
    [
        (lambda e: e.pop("reward"), "reward"),
        (lambda e: e.update(obs=e["obs"][:-1]), "obs"),
        (lambda e: e.update(action=np.stack([e["action"], e["action"]], axis=1)), "action"),
        (lambda e: e.update(terminated=np.ones(len(e["reward"]) + 2, bool)), "terminated"),
    ],
)
def test_a_bad_episode_file_is_one_line_naming_file_and_key_and_leaves_nothing(tmp_path, damage, key):
    _, episodes = record_trials(num_trials=3, episodes_per_trial=1)
    save_episodes(episodes, tmp_path / "episodes")
    bad = tmp_path / "episodes" / "ep0001.npz"
    with np.load(bad) as npz:
        episode = {k: npz[k] for k in npz.files}
    damage(episode)
    np.savez(bad, **episode)
    out = tmp_path / "data"
    with pytest.raises(DatasetError) as caught:
        import_episodes(tmp_path / "episodes", out, "icrl/TMaze-v0", {"length": TMAZE_LENGTH}, 1)
    message = str(caught.value)
    assert "\n" not in message and str(bad) in message and repr(key) in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes"]  # no DIR, no temporary directory
    with pytest.raises(SystemExit, match="ep0001.npz"):
        main(["dataset", "import", str(tmp_path / "episodes"), "--out", str(out), "--env", "icrl/TMaze-v0",
              "--env.length", str(TMAZE_LENGTH)])
    assert not out.exists()


def test_import_of_a_local_minari_dataset_builds_the_same_trials(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))  # local only, nothing downloaded
    trials, episodes = record_trials(num_trials=2, episodes_per_trial=2)
    buffers = [
        EpisodeBuffer(
            observations=np.asarray(e["obs"]), actions=np.asarray(e["action"]), rewards=list(e["reward"]),
            terminations=list(e["terminated"]), truncations=list(e["truncated"]),
        )
        for e in episodes
    ]
    env = gym.make("icrl/TMaze-v0", length=TMAZE_LENGTH)
    with pytest.warns(UserWarning):  # minari asks for an author, a description, ...
        minari.create_dataset_from_buffers("tmaze/random-v0", buffers, env=env, data_format="hdf5")
    out = tmp_path / "data"
    info = import_episodes("minari:tmaze/random-v0", out, trial_episodes=2)  # env and kwargs: the dataset's
    assert info["env_id"] == "icrl/TMaze-v0" and info["env_kwargs"] == {"length": TMAZE_LENGTH}
    imported = [load_trial(p) for p in dataset_trial_paths(out)]
    assert len(imported) == len(trials) == 2
    for got, want in zip(imported, trials, strict=True):
        for key in want:
            assert got[key].dtype == want[key].dtype, key
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    with pytest.raises(DatasetError, match="no local Minari dataset"):
        import_episodes("minari:tmaze/absent-v0", tmp_path / "other", "icrl/TMaze-v0")


def test_a_minari_dataset_cannot_choose_a_module_to_import(tmp_path, monkeypatch):
    """A dataset is data: the env id it records is used only when it names no Python module (a
    `MODULE:EnvId` id would import MODULE and run its code); the user may still give that id with --env."""
    import sys
    import types

    from icrl.data import importer

    spec = types.SimpleNamespace(id="icrl_test_evil_module:Env-v0", kwargs={})
    monkeypatch.setattr(importer, "_minari_source", lambda dataset_id: (spec, []))
    with pytest.raises(DatasetError, match="names a Python module to import"):
        import_episodes("minari:evil/data-v0", tmp_path / "out", trial_episodes=1)
    assert "icrl_test_evil_module" not in sys.modules and not (tmp_path / "out").exists()
