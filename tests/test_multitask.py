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


def test_spaces_are_padded_and_actions_share_the_largest_head():
    tasks = [{"id": "icrl/TMaze-v0", "kwargs": {"length": 4}}, {"id": "CartPole-v1"}]
    env = MultiTaskEnv(tasks, task_id=True)
    # CartPole's 4 features, then a one-hot of 2 tasks; sizes differ, so the mask rides along
    assert env.observation_space["features"].shape == (4 + 2,)
    assert env.action_space.n == 4  # TMaze's 4 actions; CartPole's 2 share the head
    seen = set()
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        mask = obs["action_mask"]
        assert mask.tolist() == ([1.0] * 4 if info["task_index"] == 0 else [1.0, 1.0, 0.0, 0.0])
        obs = obs["features"]
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


def test_a_task_reward_scale_multiplies_that_task_only():
    """Two copies of the same T-Maze, one scaled by 100: the same actions give rewards 100x apart; a scale
    that is not a positive finite number is refused."""
    tasks = [
        {"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "plain"},
        {"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "scaled", "reward_scale": 100.0},
    ]
    rewards = {}
    for k in (0, 1):
        env = MultiTaskEnv(tasks, fixed_task=k)
        env.reset(seed=3)
        rewards[k] = [float(env.step(action)[1]) for action in (0, 0, 1, 1, 2, 3)]
        env.close()
    assert any(r != 0.0 for r in rewards[0])
    np.testing.assert_allclose(rewards[1], [100.0 * r for r in rewards[0]], rtol=1e-6)
    assert normalize_tasks(tasks)[0]["reward_scale"] == 1.0
    for bad in (0.0, -1.0, float("inf"), "10", True):
        with pytest.raises(ValueError, match="reward_scale"):
            normalize_tasks([{"id": "icrl/TMaze-v0", "reward_scale": bad}])


def test_ids_with_commas_and_common_kwargs():
    cfg = make_tiny_config(env={"ids": ["icrl/TMaze-v0,CartPole-v1"], "kwargs": {}})
    assert [t["name"] for t in env_tasks(cfg)] == ["icrl_TMaze-v0", "CartPole-v1"]
    assert env_tasks(make_tiny_config()) is None  # a single-env config stays single-env


def test_eviction_keeps_a_quota_per_task(tmp_path, make_marker_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=4, num_tasks=2)
    for _ in range(6):
        store.add(make_marker_trial(3, 0.0), task=0)
    store.add(make_marker_trial(3, 1.0), task=1)
    tasks = [info.task for info in store.list_trials()]
    assert sorted(tasks) == [0, 0, 1]  # task 0 kept to 4 // 2 trials, task 1's one trial not crowded out
    single = ReplayStore(tmp_path / "single", max_fifo_trials=4)
    for _ in range(6):
        single.add(make_marker_trial(3, 0.0))
    assert len(single) == 4 and all(info.task is None for info in single.list_trials())
    assert all("-K" not in info.path.name for info in single.list_trials())


def test_sampling_is_balanced_across_tasks(tmp_path, make_marker_trial):
    store = ReplayStore(tmp_path, max_fifo_trials=100, num_tasks=2)
    for _ in range(9):
        store.add(make_marker_trial(3, 0.0), task=0)
    store.add(make_marker_trial(3, 1.0), task=1)
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
    saved = json.loads((run / "config.json").read_text())["env"]
    assert saved["task_list"] == TMAZES and saved["tasks"] == str(tasks_file.resolve())
    # The run keeps its own copy: a task list changed (or gone) after the start does not change the run.
    tasks_file.write_text(json.dumps([{"id": "CartPole-v1"}]))
    resume_run(run, {"total_env_steps": 160})
    evals = [r for r in read_metrics(run) if "eval/return" in r]
    assert evals[-1]["env_steps"] == 160
    assert all("eval/tmaze4/return" in r and "eval/tmaze6/return" in r for r in evals)
    written = plot_runs([Path(run)])
    assert run / TASKS_CURVE in written


# ---------------------------------------------------------------- action masks (mixed Discrete sizes)
MIXED = [{"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "tmaze"}, {"id": "CartPole-v1"}]


def _mixed_agent(tmp_path: Path, **overrides):
    tasks_file = tmp_path / "mixed.json"
    tasks_file.write_text(json.dumps(MIXED))
    cfg = make_tiny_config(env={"tasks": str(tasks_file), "kwargs": {}, "trial_episodes": 1}, **overrides)
    env = env_factory(cfg)()
    agent = build_agent(cfg, env.observation_space, env.action_space)
    return cfg, env, agent


def _favour_action(agent, action: int, by: float = 100.0) -> None:
    """Push the actor's last bias so that `action` dominates every discount's logits."""
    import torch

    bias = agent.actor.mlp.layers[-1].bias  # (1, G * N), discount-major
    n = agent.action_kind.num_actions
    with torch.no_grad():
        bias.view(-1, n)[:, action] += by


def test_action_mask_key_only_when_discrete_sizes_differ(tmp_path):
    from icrl.nets.encoders import ACTION_MASK_KEY

    same = make_multitask_trial_env(TMAZES, episodes=1)
    assert ACTION_MASK_KEY not in same.observation_space.spaces and "obs" in same.observation_space.spaces
    assert isinstance(same.reset(seed=0)[0]["obs"], np.ndarray)
    same.close()
    _, env, agent = _mixed_agent(tmp_path)
    assert ACTION_MASK_KEY in env.observation_space.spaces
    assert ACTION_MASK_KEY not in agent.encoder.keys  # applied to the logits, not encoded as a feature
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        valid = 4 if info["task"] == "tmaze" else 2
        assert obs[ACTION_MASK_KEY].tolist() == [1.0] * valid + [0.0] * (4 - valid)
    env.close()


def test_masked_actions_are_never_picked(tmp_path):
    import torch

    from icrl.nets.encoders import ACTION_MASK_KEY

    _, env, agent = _mixed_agent(tmp_path)
    obs, _ = env.reset(seed=0)
    env.close()
    _favour_action(agent, 3)
    batch = {k: torch.as_tensor(np.stack([v] * 64)) for k, v in obs.items()}
    batch[ACTION_MASK_KEY] = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 64)
    gen = torch.Generator().manual_seed(0)
    for greedy in (True, False):
        actions, _ = agent.act(batch, agent.initial_state(64, "cpu"), greedy=greedy, generator=gen)
        assert set(actions.tolist()) <= {0, 1}
    batch[ACTION_MASK_KEY] = torch.ones(64, 4)  # the same logits unmasked pick the favoured action
    actions, _ = agent.act(batch, agent.initial_state(64, "cpu"), greedy=True)
    assert set(actions.tolist()) == {3}
    logits, _ = agent.act_logits(batch | {ACTION_MASK_KEY: torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 64)},
                                 agent.initial_state(64, "cpu"))
    assert torch.isfinite(logits).all() and (logits[:, 2:] < -1e8).all()


def test_exploration_draws_only_valid_actions():
    from gymnasium import spaces

    from icrl.train.collector import explore_actions

    rng = np.random.default_rng(0)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]] * 200, np.float32)
    actions = explore_actions(spaces.Discrete(4), np.zeros(400, np.int64), np.ones(400), rng, mask)
    assert set(actions[0::2].tolist()) == {0, 1} and set(actions[1::2].tolist()) == {0, 1, 2, 3}


def test_losses_are_finite_and_ignore_invalid_actions_with_masks(tmp_path):
    import torch

    from icrl.agent.action_kinds import DiscreteActions
    from icrl.nets.encoders import ACTION_MASK_KEY

    _, env, agent = _mixed_agent(tmp_path)
    space = env.observation_space
    env.close()
    _favour_action(agent, 3)  # the unmasked policy puts nearly all its mass on an invalid action
    B, L = 3, 5
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.randn(B, L + 1, *space[k].shape, generator=gen) for k in space.spaces if k != "time"}
    batch["time"] = torch.arange(L + 1).expand(B, L + 1)
    batch[ACTION_MASK_KEY] = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(B, L + 1, 4).clone()
    batch["action"] = torch.tensor([3, 0, 1, 2, 3]).expand(B, L)  # 2 and 3 invalid: ran as 0 and 1
    batch["reward"] = torch.ones(B, L)
    batch["terminated"] = torch.zeros(B, L, dtype=torch.bool)
    batch["mask"] = torch.ones(B, L)
    out = agent.loss(batch, generator=gen)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in agent.parameters() if p.grad is not None)
    assert all(np.isfinite(float(v)) for v in out.stats.values())
    action = agent.action_kind.batch_action(batch["action"])
    mask = batch[ACTION_MASK_KEY][:, :-1]
    assert DiscreteActions.executed_action(action, mask)[0].tolist() == [1, 0, 1, 0, 1]
    s = agent.encode(batch)[:, :-1].detach()
    kind = agent.action_kind
    terms = kind.terms(agent.actor, agent.critics, s, action, batch["mask"], gen, action_mask=mask)
    assert (terms.logp_taken > -50).all()  # the stored invalid actions were scored as the ones that ran
    assert (terms.entropy <= np.log(2) + 1e-5).all()  # entropy over the 2 valid actions only
    unmasked = kind.terms(agent.actor, agent.critics, s, action, batch["mask"], gen)
    assert (unmasked.logp_taken[:, 1] < -50).all()  # without the mask action 0 is all but ruled out
    # The conservative critic term's soft maximum runs over the task's valid actions only.
    kind.conservative = True
    terms = kind.terms(agent.actor, agent.critics, s, action, batch["mask"], gen, action_mask=mask)
    q = agent.critics(s)  # (B, L, C, G, 4), regression: the critic's own scale
    ran = DiscreteActions.executed_action(action, mask)[:, :, None, None, None].expand(*q.shape[:-1], 1)
    want = (torch.logsumexp(q[..., :2], -1) - q.gather(-1, ran).squeeze(-1)).mean()
    torch.testing.assert_close(terms.conservative, want)


def test_mixed_action_sizes_train_and_evaluate(tmp_path):
    from icrl.train.evaluate import evaluate
    from icrl.train.trainer import Trainer

    tasks_file = tmp_path / "mixed.json"
    tasks_file.write_text(json.dumps(MIXED))
    run = tmp_path / "run"
    cfg = make_tiny_config(
        run, env={"tasks": str(tasks_file), "kwargs": {}, "trial_episodes": 1}, total_env_steps=100,
        eval_every=4, eval_trials=2,
    )
    trainer = Trainer(cfg)
    trainer.run()
    result = evaluate(trainer.agent, cfg, num_trials=2, seed=0)
    trainer.close()
    assert result["eval/tmaze/trials"] == result["eval/CartPole-v1/trials"] == 2
    assert np.isfinite(result["eval/return"])
    from icrl.train.evaluate import evaluate_run

    saved = evaluate_run(run, trials=3)  # `icrl eval`: N trials of every task, per-task keys as in training
    assert saved["eval/tmaze/trials"] == saved["eval/CartPole-v1/trials"] == 3 and saved["eval/trials"] == 6
    assert len(json.loads((run / "eval.json").read_text())["trial_episode_returns"]) == 6
    from icrl.train.logger import read_metrics

    losses = [r["loss/total"] for r in read_metrics(run) if "loss/total" in r]
    assert losses and np.isfinite(losses).all()
    stored = np.load(next((run / "buffer" / "fifo").iterdir()))
    assert stored["obs.action_mask"].shape[1] == 4 and "obs" not in stored  # the mask is replayed per step


# Every task's trials must stay readable in one replay (GoalGrid reports achieved goals, the others don't).
@pytest.mark.filterwarnings("error:icrl.replay. skipping unreadable trial file:RuntimeWarning")
@pytest.mark.parametrize("name", ["multitask-grid", "multitask-popgym"])
def test_multitask_presets_train_and_evaluate_every_task(tmp_path, name):
    from icrl.presets import apply_overrides, preset_config
    from icrl.train.trainer import Trainer

    small = {
        "env": {"num_actors": 2}, "total_env_steps": 400, "learning_starts": 200, "collect_steps": 100,
        "updates_per_collect": 2, "eval_every": 0, "eval_trials": 1, "checkpoint_every": 0,
        "tensorboard": False, "progress": False, "run_dir": str(tmp_path / name),
    }  # fmt: skip
    cfg = apply_overrides(preset_config(name), small)
    result = Trainer(cfg).run()
    names = [task["name"] for task in env_tasks(cfg)]
    assert len(names) == (4 if name == "multitask-grid" else 6)
    assert all(f"eval/{task}/return" in result for task in names), sorted(result)


def test_held_out_tasks_are_what_evaluation_plays(tmp_path):
    """`env.eval_tasks`: training plays the training tasks, evaluation (during the run and `icrl eval`)
    the held-out ones, from the run's own copy of the file; spaces that differ fail before the run."""
    from icrl.train.evaluate import evaluate_run
    from icrl.train.factory import SetupError
    from icrl.train.trainer import Trainer

    train = [{"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "short"}]
    held_out = [{"id": "icrl/TMaze-v0", "kwargs": {"length": 6}, "name": "long"}]
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "test.json").write_text(json.dumps(held_out))
    run = tmp_path / "run"
    env = {"tasks": str(tmp_path / "train.json"), "eval_tasks": str(tmp_path / "test.json"), "kwargs": {}}
    cfg = make_tiny_config(run, env=env, total_env_steps=100, eval_every=4, eval_trials=2)
    result = Trainer(cfg).run()
    assert "eval/long/return" in result and not any(key.startswith("eval/short/") for key in result)
    saved = json.loads((run / "config.json").read_text())["env"]
    assert [t["name"] for t in saved["eval_task_list"]] == ["long"]
    (tmp_path / "test.json").unlink()  # the run keeps its copy
    held_out = evaluate_run(run, trials=1)  # `icrl eval`: every held-out task, per task
    assert held_out["eval/long/trials"] == held_out["eval/trials"] == 1

    with pytest.raises(SetupError, match="evaluation env's observation space"):
        wider = [{"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 4}, "name": "lake"}]
        env = {"task_list": train, "eval_task_list": wider, "kwargs": {}, "trial_episodes": 1}
        Trainer(make_tiny_config(tmp_path / "mismatch", env=env))
    assert not (tmp_path / "mismatch").exists()
    with pytest.raises(ValueError, match="eval_tasks replaces the training tasks"):
        check_config(make_tiny_config(env={"eval_tasks": "x.json"}))


@pytest.mark.filterwarnings("ignore:.*maximum and minimum values are equal")  # Meta-World's goal slots
def test_metaworld_ml10_trains_on_ten_families_and_evaluates_the_five_held_out():
    pytest.importorskip("metaworld")
    from icrl.presets import ML10_TEST, ML10_TRAIN, apply_overrides, preset_config
    from icrl.train.evaluate import eval_env_config
    from icrl.train.factory import env_factory

    cfg = preset_config("metaworld-ml10")
    assert [t["kwargs"]["task"] for t in env_tasks(cfg)] == list(ML10_TRAIN)
    assert [t["kwargs"]["task"] for t in env_tasks(eval_env_config(cfg))] == list(ML10_TEST)
    assert not set(ML10_TRAIN) & set(ML10_TEST)
    small = {
        "env": {"num_actors": 1}, "model": {"d_model": 32, "n_heads": 2, "d_ff": 64, "n_layers": 1},
        "total_env_steps": 300, "learning_starts": 150, "collect_steps": 150, "updates_per_collect": 1,
        "eval_every": 0, "eval_trials": 1, "checkpoint_every": 0, "tensorboard": False, "progress": False,
    }  # fmt: skip
    cfg = apply_overrides(cfg, small)
    env = env_factory(cfg)()
    assert env.observation_space["obs"].shape == (39,) and env.steps is None and env.episodes == 3
    env.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*maximum and minimum values are equal")
def test_metaworld_ml10_runs(tmp_path):
    pytest.importorskip("metaworld")
    from icrl.presets import apply_overrides, preset_config
    from icrl.train.trainer import Trainer

    small = {
        "env": {"num_actors": 1}, "model": {"d_model": 32, "n_heads": 2, "d_ff": 64, "n_layers": 1},
        "total_env_steps": 300, "learning_starts": 150, "collect_steps": 150, "updates_per_collect": 1,
        "eval_every": 0, "eval_trials": 1, "checkpoint_every": 0, "tensorboard": False, "progress": False,
        "run_dir": str(tmp_path / "ml10"),
    }  # fmt: skip
    result = Trainer(apply_overrides(preset_config("metaworld-ml10"), small)).run()
    assert sorted(k.split("/")[1] for k in result if k.endswith("/trials") and k.count("/") == 2) == sorted(
        ["drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull"]
    )


def test_evaluation_kwargs_win_over_a_tasks_own():
    """`eval_kwargs` and `icrl eval --env.KEY` overrides apply to every task, over its own kwargs (common
    `--env.KEY` training kwargs stay under them); training and validation envs keep the tasks' own."""
    from icrl.train.evaluate import eval_env_config

    tasks = [
        {"id": "icrl/TMaze-v0", "kwargs": {"length": 4}, "name": "short"},
        {"id": "icrl/TMaze-v0", "kwargs": {"length": 6}, "name": "long"},
    ]
    cfg = make_tiny_config(env={"task_list": tasks, "kwargs": {"length": 9}, "eval_kwargs": {}})
    assert [t["kwargs"]["length"] for t in env_tasks(eval_env_config(cfg))] == [4, 6]
    assert [t["kwargs"]["length"] for t in env_tasks(eval_env_config(cfg, {"length": 8}))] == [8, 8]
    with_eval = make_tiny_config(env={"task_list": tasks, "kwargs": {}, "eval_kwargs": {"length": 7}})
    assert [t["kwargs"]["length"] for t in env_tasks(eval_env_config(with_eval))] == [7, 7]
    assert [t["kwargs"]["length"] for t in env_tasks(with_eval)] == [4, 6]  # training
    validation = eval_env_config(with_eval, use_eval_kwargs=False)
    assert [t["kwargs"]["length"] for t in env_tasks(validation)] == [4, 6]
    twice = eval_env_config(eval_env_config(cfg, {"length": 8}))  # applying it again changes nothing
    assert [t["kwargs"]["length"] for t in env_tasks(twice)] == [8, 8]
