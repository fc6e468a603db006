"""Multi-task training (docs/multitask.md): MultiTaskEnv's spaces and task draws, the replay's per-task
quota and balanced sampling, per-task evaluation rows, and a tiny two-task run that resumes and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import icrl.envs  # noqa: F401  (registers the built-in envs)
from icrl.config import check_config
from icrl.envs.multitask import MultiTaskEnv, make_multitask_trial_env, normalize_tasks
from icrl.replay.sampler import TrialSampler
from icrl.replay.store import ReplayStore
from icrl.train.factory import SetupError, build_agent, env_factory, env_tasks, make_checked_env
from tests.conftest import make_tiny_config

TMAZES = [
    {"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "tmaze4", "random_return": -1.0,
     "best_return": 1.0},
    {"id": "icrl/TMaze-v0", "kwargs": {"length": 6}, "name": "tmaze6"},
]


def _trial(length: int, marker: float) -> dict[str, np.ndarray]:
    return {
        "obs": np.full((length + 1, 1), marker, np.float32),
        "action": np.zeros(length, np.int64),
        "reward": np.full(length, marker, np.float32),
        "terminated": np.zeros(length, bool),
    }


def test_spaces_are_padded_and_actions_share_the_largest_head():
    tasks = [{"id": "icrl/TMaze-v0", "kwargs": {"length": 4}}, {"id": "CartPole-v1"}]
    env = MultiTaskEnv(tasks, task_id=True)
    assert env.observation_space.shape == (4 + 2,)  # CartPole's 4 features, then a one-hot of 2 tasks
    assert env.action_space.n == 4  # TMaze's 4 actions; CartPole's 2 share the head
    seen = set()
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        seen.add(info["task_index"])
        assert obs.dtype == np.float32 and obs[4 + info["task_index"]] == 1.0 and obs[4:].sum() == 1.0
        if info["task_index"] == 0:
            assert np.all(obs[2:4] == 0.0)  # TMaze's 2 features zero-padded to CartPole's 4
        else:
            assert env.map_action(3) == 1  # an action CartPole does not have wraps around
            env.step(3)
        assert env.map_action(1) == 1
    assert seen == {0, 1}
    env.close()


def test_task_is_drawn_per_trial_not_per_episode_and_is_seeded():
    def task_sequence(seed: int) -> list[str]:
        env = make_multitask_trial_env(TMAZES, episodes=3)
        rng = np.random.default_rng(0)
        tasks = []
        env.reset(seed=seed)
        for _ in range(12):
            in_trial = []
            _, info = env.reset()
            in_trial.append(info["task"])
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
                in_trial.append(info["task"])
                done = terminated or truncated
            assert info["episode_index"] == 2  # the trial held 3 episodes...
            assert len(set(in_trial)) == 1  # ...all of one task
            tasks.append(in_trial[0])
        env.close()
        return tasks

    first = task_sequence(3)
    assert set(first) == {"tmaze4", "tmaze6"}
    assert task_sequence(3) == first
    assert task_sequence(4) != first


def test_disagreeing_default_budgets_need_a_budget_and_names_are_checked():
    tasks = [{"id": "icrl/TMaze-v0"}, {"id": "icrl/MetaFrozenLake-v0", "name": "lake"}]
    with pytest.raises(ValueError, match="--env.trial-episodes"):
        make_multitask_trial_env(tasks)
    assert make_multitask_trial_env(tasks, episodes=2).episodes == 2
    with pytest.raises(ValueError, match="unique"):
        normalize_tasks([{"id": "icrl/TMaze-v0"}, {"id": "icrl/TMaze-v0"}])
    with pytest.raises(ValueError, match="--import MODULE"):
        normalize_tasks([{"id": "some.module:Env-v0"}])
    with pytest.raises(SetupError, match="multi-task env .*--env.trial-episodes"):  # one line, before a run
        ids = ["icrl/TMaze-v0", "icrl/MetaFrozenLake-v0"]
        make_checked_env(make_tiny_config(env={"ids": ids, "kwargs": {}}))
    with pytest.raises(ValueError, match="not both"):
        check_config(make_tiny_config(env={"ids": ["icrl/TMaze-v0"], "tasks": "tasks.json"}))


def test_ids_with_commas_and_common_kwargs():
    cfg = make_tiny_config(env={"ids": ["icrl/TMaze-v0,CartPole-v1"], "kwargs": {}})
    assert [t["name"] for t in env_tasks(cfg)] == ["icrl_TMaze-v0", "CartPole-v1"]
    assert env_tasks(make_tiny_config()) is None  # a single-env config stays single-env


def test_eviction_keeps_a_quota_per_task(tmp_path):
    store = ReplayStore(tmp_path, max_fifo_trials=4, num_tasks=2)
    for _ in range(6):
        store.add(_trial(3, 0.0), task=0)
    store.add(_trial(3, 1.0), task=1)
    tasks = [info.task for info in store.list_trials()]
    assert sorted(tasks) == [0, 0, 1]  # task 0 kept to 4 // 2 trials, task 1's one trial not crowded out
    single = ReplayStore(tmp_path / "single", max_fifo_trials=4)
    for _ in range(6):
        single.add(_trial(3, 0.0))
    assert len(single) == 4 and all(info.task is None for info in single.list_trials())
    assert all("-K" not in info.path.name for info in single.list_trials())


def test_sampling_is_balanced_across_tasks(tmp_path):
    store = ReplayStore(tmp_path, max_fifo_trials=100, num_tasks=2)
    for _ in range(9):
        store.add(_trial(3, 0.0), task=0)
    store.add(_trial(3, 1.0), task=1)
    sampler = TrialSampler(store, batch_size=400, seq_len=3, seed=0)
    share = float(sampler.sample_numpy()["reward"][:, 0].mean())  # 1.0 only in task 1's trial
    assert 0.4 < share < 0.6
    plain = TrialSampler(store, batch_size=400, seq_len=3, seed=0, balance_tasks=False)
    assert float(plain.sample_numpy()["reward"][:, 0].mean()) < 0.2


def test_evaluation_gives_rows_per_task(tmp_path):
    from icrl.train.evaluate import evaluate

    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps(TMAZES))
    cfg = make_tiny_config(env={"tasks": str(tasks_file), "kwargs": {}})
    env = env_factory(cfg)()
    agent = build_agent(cfg, env.observation_space, env.action_space)
    env.close()
    result = evaluate(agent, cfg, num_trials=2, seed=0)
    assert result["eval/tmaze4/trials"] == result["eval/tmaze6/trials"] == 2
    mean = (result["eval/tmaze4/return"] + result["eval/tmaze6/return"]) / 2
    assert result["eval/return"] == pytest.approx(mean)
    assert result["eval/tmaze4/normalized"] == pytest.approx((result["eval/tmaze4/return"] + 1.0) / 2.0)
    assert result["eval/normalized_mean"] == result["eval/tmaze4/normalized"]  # only tmaze4 has references
    assert "eval/tmaze6/normalized" not in result


def test_two_task_run_trains_resumes_and_plots(tmp_path):
    from icrl.analysis.plots import TASKS_CURVE, plot_runs
    from icrl.train.logger import read_metrics
    from icrl.train.trainer import Trainer, resume_run

    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps(TMAZES))
    run = tmp_path / "run"
    cfg = make_tiny_config(
        run, env={"tasks": str(tasks_file), "kwargs": {}}, total_env_steps=100, eval_every=4, eval_trials=2
    )
    trainer = Trainer(cfg)
    trainer.run()
    trainer.close()
    names = [p.name for p in (run / "buffer" / "fifo").iterdir()]
    assert any(n.endswith("-K0000.npz") for n in names) and any(n.endswith("-K0001.npz") for n in names)
    resume_run(run, {"total_env_steps": 160})
    evals = [r for r in read_metrics(run) if "eval/return" in r]
    assert evals[-1]["env_steps"] == 160
    assert all("eval/tmaze4/return" in r and "eval/tmaze6/return" in r for r in evals)
    written = plot_runs([Path(run)])
    assert run / TASKS_CURVE in written
