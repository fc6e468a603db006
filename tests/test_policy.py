"""`icrl.load_policy`: a trained run acting in a plain gymnasium loop plays what `icrl eval` plays.

Each comparison trains a tiny run (a few updates: the weights only need to be the same on both sides), plays
greedy trials with `play_trials` (the evaluation path: trial-wrapped vector envs and the collector) and the
same seeded envs in a plain loop driven by the policy, and compares every action and every episode return.
The plain loop resets an env inside a trial with `env.reset()` and at a trial's end with a new task, as
the trial wrapper does, so both sides meet the same tasks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import icrl
from icrl.envs.space_record import SPACES_FILE, SpaceRecordError, space_from_json, space_to_json
from icrl.envs.trial import TrialWrapper, default_trial_of
from icrl.envs.trust import UntrustedEnvModule
from icrl.train.evaluate import load_run_agent, play_trials, resolve_checkpoint
from icrl.train.trainer import Trainer

SEED = 321
SHORT_RUN = {"total_env_steps": 40, "learning_starts": 20, "collect_steps": 10, "eval_every": 0,
             "eval_trials": 2, "checkpoint_every": 100}
TMAZE_TWO = {"env": {"kwargs": {"length": 3}, "trial_episodes": 2}}
LAKE = {"env": {"id": "icrl/MetaFrozenLake-v0",
                "kwargs": {"size": 3, "attempts": 2, "max_attempt_steps": 8}}}
DARK = {"env": {"id": "icrl/DarkKeyToDoor-v0",
                "kwargs": {"size": 3, "episode_length": 6, "trial_length": 15}}}
PENDULUM = {"env": {"id": "Pendulum-v1", "kwargs": {"max_episode_steps": 12}}}
GRID = {"env": {"id": "icrl/GoalGrid-v0", "kwargs": {"size": 3, "landmarks": 2, "goals": 2, "max_steps": 7}}}


class Recorder(gym.Wrapper):
    """Records the actions the inner env receives, one list per trial (a reset with a new task starts one)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.trials: list[list[Any]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if options and options.get("new_task"):
            self.trials.append([])
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> Any:
        self.trials[-1].append(np.array(action, copy=True))
        return self.env.step(action)


def _train(root: Path, tiny_config: Any, name: str, **overrides: Any) -> Path:
    run = root / name
    Trainer(tiny_config(run, **{**SHORT_RUN, **overrides})).run()
    return run


def _eval_trials(
    run: Path, actors: int, per_actor: int, greedy: bool = True
) -> tuple[list[list[list[Any]]], list[list[float]]]:
    """`play_trials` on `actors` actors (sampled actions drawn with a generator seeded with SEED): each
    actor's inner actions per trial (its first `per_actor` trials) and every trial's episode returns in play
    order (trial k of every actor, then k + 1)."""
    cfg, agent, _ = load_run_agent(run, resolve_checkpoint(run), device="cpu")
    recorders: list[Recorder] = []

    def env_fn() -> TrialWrapper:
        recorder = Recorder(gym.make(cfg.env.id, **cfg.env.kwargs))
        recorders.append(recorder)
        budget = {"episodes": cfg.env.trial_episodes, "steps": cfg.env.trial_steps}
        if budget["episodes"] is None and budget["steps"] is None:
            budget = default_trial_of(recorder)
        return TrialWrapper(recorder, **budget, budget_end=cfg.env.trial_end)

    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, num_actors=actors))
    played = play_trials(agent, cfg, actors * per_actor, SEED, greedy=greedy, env_fn=env_fn)
    actions = [[t for t in r.trials if t][:per_actor] for r in recorders]
    return actions, [t.episode_returns for t in played]


def _plain_loop(
    policy: Any, run_cfg: Any, actors: int, per_actor: int, batched: bool
) -> tuple[list, list, list]:
    """The user's loop over `actors` plain envs (seeded as `play_trials` seeds its actors): each env's
    actions per trial, every trial's episode returns in play order, and the steps at which trials ended."""
    envs = [gym.make(run_cfg.env.id, **run_cfg.env.kwargs) for _ in range(actors)]
    obs = [env.reset(seed=SEED + i, options={"new_task": True})[0] for i, env in enumerate(envs)]
    policy.reset(num_envs=actors)
    actions: list[list[list[Any]]] = [[[]] for _ in range(actors)]
    returns: list[list[list[float]]] = [[[0.0]] for _ in range(actors)]
    ends: list[tuple[int, int]] = []
    step = 0
    while min(len(a) for a in actions) <= per_actor:
        chosen = policy.act(_stack(obs)) if batched else [policy.act(obs[0])]
        outcome = [env.step(a) for env, a in zip(envs, chosen, strict=True)]
        rewards, terms, truncs = (np.array([o[k] for o in outcome]) for k in (1, 2, 3))
        policy.observe(rewards if batched else rewards[0], terms if batched else terms[0],
                       truncs if batched else truncs[0])
        ended = np.atleast_1d(policy.trial_ended)
        for i, env in enumerate(envs):
            actions[i][-1].append(np.array(chosen[i], copy=True))
            returns[i][-1][-1] += float(rewards[i])
            if ended[i]:  # a new trial: a new task, as the trial wrapper resets at a trial start
                ends.append((i, step))
                obs[i] = env.reset(options={"new_task": True})[0]
                actions[i].append([])
                returns[i].append([0.0])
            elif terms[i] or truncs[i]:  # the next episode of the same trial
                obs[i] = env.reset()[0]
                returns[i][-1].append(0.0)
            else:
                obs[i] = outcome[i][0]
        step += 1
    in_order = [returns[i][k] for k in range(per_actor) for i in range(actors)]
    return [a[:per_actor] for a in actions], in_order, ends


def _stack(observations: list[Any]) -> Any:
    """A batch of observations (Dict observations: a dict of batches, as gymnasium's vector envs give)."""
    if isinstance(observations[0], dict):
        return {key: _stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def _assert_same_play(
    run: Path, actors: int, per_actor: int, batched: bool, greedy: bool = True
) -> list[tuple[int, int]]:
    expected_actions, expected_returns = _eval_trials(run, actors, per_actor, greedy)
    policy = icrl.load_policy(run, greedy=greedy, seed=SEED)
    actions, returns, ends = _plain_loop(policy, policy.config, actors, per_actor, batched)
    assert [len(r) for r in returns] == [len(r) for r in expected_returns]  # episodes per trial
    np.testing.assert_allclose(np.concatenate(returns), np.concatenate(expected_returns), atol=1e-5)
    for mine, theirs in zip(actions, expected_actions, strict=True):
        assert [len(t) for t in mine] == [len(t) for t in theirs]
        for trial_mine, trial_theirs in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(np.stack(trial_mine), np.stack(trial_theirs))
    return ends


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("policy_runs")


@pytest.mark.parametrize("kind", ["transformer", "gru", "ssm", "mlp"])
def test_single_env_plays_as_eval(root, tiny_config, kind) -> None:
    """Two-episode T-Maze trials, one env, single (unbatched) observations and actions."""
    run = _train(root, tiny_config, f"tmaze-{kind}", model={"kind": kind}, **TMAZE_TWO)
    assert (run / SPACES_FILE).is_file()
    policy = icrl.load_policy(run)
    assert (policy.episodes, policy.steps) == (2, None)
    _assert_same_play(run, actors=1, per_actor=3, batched=False)


def test_batched_envs_with_staggered_resets(root, tiny_config) -> None:
    """MetaFrozenLake (its own default: 2 attempts per trial) in 3 envs whose episodes end at different steps
    (sampled actions: the same draws as evaluation's, from a generator seeded alike)."""
    run = _train(root, tiny_config, "lake", **LAKE)
    assert json.loads((run / SPACES_FILE).read_text())["trial"] == {"episodes": 2}  # the env's default
    ends = _assert_same_play(run, actors=3, per_actor=3, batched=True, greedy=False)
    first_end = {i: min(s for j, s in ends if j == i) for i in range(3)}
    assert len(set(first_end.values())) > 1, f"the trials ended together ({ends}): nothing was staggered"


def test_step_budget_trials_end_inside_an_episode(root, tiny_config) -> None:
    """DarkKeyToDoor: a 15-step trial of 6-step episodes ends inside its third episode."""
    run = _train(root, tiny_config, "dark", **DARK)
    policy = icrl.load_policy(run)
    assert (policy.episodes, policy.steps) == (None, 15)
    ends = _assert_same_play(run, actors=2, per_actor=2, batched=True)
    assert {s for _, s in ends} == {14, 29}


def test_dict_observations(root, tiny_config) -> None:
    """GoalGrid's Dict observation (agent position, instruction) in 2 batched envs."""
    run = _train(root, tiny_config, "grid", **GRID)
    _assert_same_play(run, actors=2, per_actor=2, batched=True)


def test_reset_with_a_mask_restarts_only_those_envs(root, tiny_config) -> None:
    run = root / "lake"
    if not run.exists():
        _train(root, tiny_config, "lake", **LAKE)
    policy = icrl.load_policy(run)
    env = gym.make("icrl/MetaFrozenLake-v0", size=3, attempts=2, max_attempt_steps=8)
    obs, _ = env.reset(seed=0)
    policy.reset(num_envs=2)
    for _ in range(3):
        policy.act(np.stack([obs, obs]))
        policy.observe(np.array([0.0, 0.5]), np.zeros(2, bool), np.zeros(2, bool))
    policy.reset(mask=[True, False])
    np.testing.assert_array_equal(policy._time, [0, 3])
    np.testing.assert_array_equal(policy._prev_reward, [0.0, 0.5])
    np.testing.assert_array_equal(policy._first, [True, False])


def test_continuous_actions_in_the_inner_bounds(root, tiny_config) -> None:
    run = _train(root, tiny_config, "pendulum", **PENDULUM)
    policy = icrl.load_policy(run)
    assert policy.action_space == gym.make("Pendulum-v1").action_space  # Box(-2, 2, (1,))
    _assert_same_play(run, actors=2, per_actor=2, batched=True)
    env = gym.make("Pendulum-v1", max_episode_steps=12)
    obs, _ = env.reset(seed=0)
    policy.reset()
    seen = []
    for _ in range(24):
        action = policy.act(obs)
        assert action.shape == (1,) and action.dtype == np.float32
        seen.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward, terminated, truncated)
        if terminated or truncated:
            obs, _ = env.reset()
    seen = np.concatenate(seen)
    assert np.all(seen >= -2.0) and np.all(seen <= 2.0)
    # The agent's [-1, 1] actions are rescaled to the inner bounds, and its prev_action feature is the
    # [-1, 1] action, as the trial wrapper has them.
    agent_actions = iter([np.array([[0.75]], np.float32), np.array([[-1.0]], np.float32)])
    policy.agent.act = lambda obs, state, greedy, generator: (next(agent_actions), state)
    assert policy.act(obs) == pytest.approx([1.5])
    policy.observe(0.0, False, False)
    np.testing.assert_array_equal(policy._prev_action, [[0.75]])
    assert policy.act(obs) == pytest.approx([-2.0])


def test_sampled_actions_are_reproducible(root, tiny_config) -> None:
    run = root / "tmaze-transformer"
    if not run.exists():
        _train(root, tiny_config, "tmaze-transformer", model={"kind": "transformer"}, **TMAZE_TWO)

    def play(seed: int) -> list[int]:
        policy = icrl.load_policy(run, greedy=False, seed=seed)
        env = gym.make("icrl/TMaze-v0", length=3)
        obs, _ = env.reset(seed=0)
        out = []
        for _ in range(40):
            action = policy.act(obs)
            out.append(int(action))
            obs, reward, terminated, truncated, _ = env.step(action)
            policy.observe(reward, terminated, truncated)
            if terminated or truncated:
                obs, _ = env.reset()
        return out

    assert play(1) == play(1)


def test_module_env_id_needs_consent_without_spaces_record(root, tiny_config, tmp_path) -> None:
    """A run whose env id names a module: with spaces.json nothing is imported and no consent is needed;
    without it (an older run) the env must be made, which is refused without consent."""
    run = root / "tmaze-mlp"
    if not run.exists():
        _train(root, tiny_config, "tmaze-mlp", model={"kind": "mlp"}, **TMAZE_TWO)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    env_id = "icrl_policy_test_evil:icrl/TMaze-v0"
    (tmp_path / "icrl_policy_test_evil.py").write_text("raise SystemExit('imported')\n")
    for name in ("config.json", SPACES_FILE):
        data = json.loads((copy / name).read_text())
        if name == "config.json":
            data["env"]["id"] = env_id
        else:
            data["env_id"] = env_id
        (copy / name).write_text(json.dumps(data))
    policy = icrl.load_policy(copy)  # the record suffices: nothing imported
    assert "icrl_policy_test_evil" not in sys.modules
    obs, _ = gym.make("icrl/TMaze-v0", length=3).reset(seed=0)
    assert policy.action_space.contains(policy.act(obs))
    (copy / SPACES_FILE).unlink()
    with pytest.raises(UntrustedEnvModule, match="icrl_policy_test_evil"):
        icrl.load_policy(copy)
    assert "icrl_policy_test_evil" not in sys.modules


def test_bad_inputs_say_what_to_do(root, tiny_config) -> None:
    run = root / "tmaze-mlp"
    if not run.exists():
        _train(root, tiny_config, "tmaze-mlp", model={"kind": "mlp"}, **TMAZE_TWO)
    policy = icrl.load_policy(run)
    obs, _ = gym.make("icrl/TMaze-v0", length=3).reset(seed=0)
    with pytest.raises(RuntimeError, match="act"):
        policy.observe(0.0, False, False)
    policy.reset(num_envs=2)
    with pytest.raises(ValueError, match="reset\\(num_envs=1\\)"):
        policy.act(obs)
    with pytest.raises(ValueError, match="reset\\(num_envs=3\\)"):
        policy.act(np.stack([obs] * 3))
    policy.act(np.stack([obs] * 2))
    with pytest.raises(ValueError, match="one value per env"):
        policy.observe(np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))


def test_space_records_round_trip() -> None:
    cases = [
        gym.spaces.Box(0, 255, (4, 4, 3), np.uint8),
        gym.spaces.Box(np.array([-1.0, -np.inf]), np.array([2.5, np.inf]), (2,), np.float64),
        gym.spaces.Discrete(5, start=-2),
        gym.spaces.MultiDiscrete([3, 4], start=[1, 0]),
        gym.spaces.MultiBinary(6),
        gym.spaces.Dict({"a": gym.spaces.Discrete(2),
                         "b": gym.spaces.Dict({"c": gym.spaces.MultiBinary([2, 2])})}),
    ]
    for space in cases:
        back = space_from_json(json.loads(json.dumps(space_to_json(space))))
        assert back == space and back.dtype == space.dtype


def test_damaged_spaces_record_is_one_line(root, tiny_config, tmp_path) -> None:
    run = root / "tmaze-mlp"
    if not run.exists():
        _train(root, tiny_config, "tmaze-mlp", model={"kind": "mlp"}, **TMAZE_TWO)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / SPACES_FILE).write_text('{"version": 1, "trial": {"episodes": 2}')  # cut short
    with pytest.raises(SpaceRecordError, match="delete it") as raised:
        icrl.load_policy(copy)
    assert len(str(raised.value).splitlines()) == 1


def test_import_icrl_stays_light() -> None:
    """`import icrl` registers the envs; the trainer and the policy module load on first use."""
    code = "import sys, icrl; print(sorted(m for m in ('icrl.train', 'icrl.policy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
