"""POPGym through `icrl.envs.popgym_adapter`: every non-navigation env builds, steps and trains.

Skipped when `popgym` is not installed (`pip install -e '.[popgym]'`; `make test` installs it).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from icrl.config import Config
from icrl.envs import make_trial_env, optional
from icrl.envs import popgym_adapter as adapter
from icrl.presets import apply_overrides, preset_config
from icrl.train.factory import build_agent

pytest.importorskip("popgym")

torch.set_num_threads(1)

ALL_IDS = adapter.popgym_env_ids()
PENDULUM_BINS = 5
# A tiny agent: one update takes milliseconds.
TINY = apply_overrides(
    Config(),
    {
        "model": {
            "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "context_len": 32, "pos_emb": "rope",
            "encoder_hidden": [16], "actor_hidden": [16], "critic_hidden": [16],
        },
        "agent": {"num_critics": 2, "extra_gammas": [0.9], "warmup_updates": 1},
    },
)  # fmt: skip


def env_kwargs(env_id: str) -> dict[str, Any]:
    """The Pendulum envs have Box actions; the agent needs them discretised."""
    return {"box_action_bins": PENDULUM_BINS} if "Pendulum" in env_id else {}


def test_the_whole_non_navigation_suite_is_listed() -> None:
    assert len(ALL_IDS) == 42  # 14 envs x Easy / Medium / Hard
    assert "popgym-RepeatPreviousEasy-v0" in ALL_IDS
    assert not any("Labyrinth" in env_id for env_id in ALL_IDS)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_env_runs_one_trial_through_the_wrapper_and_the_agent_takes_an_update(env_id: str) -> None:
    """Random actions for one whole trial (= one POPGym episode), then one agent update on that trial.

    Every env, the Pendulum ones binned, exposes Discrete actions here; Box Pendulum trains in
    `test_trainer_runs_a_few_updates`.
    """
    env = make_trial_env(env_id, **env_kwargs(env_id))
    assert isinstance(env.action_space, spaces.Discrete)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    rows, actions, rewards = [obs], [], []
    while True:
        action = env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs), (env_id, obs)
        rows.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        if terminated or truncated:
            break
        assert not info["episode_done"]  # one episode per trial: the first episode end ends the trial
    assert info["episode_done"] and info["episode_index"] == 0
    assert -1.0 - 1e-6 <= sum(rewards) <= 1.0 + 1e-6  # POPGym's normalised returns

    # One update of a tiny agent on the first (up to) 24 transitions of the trial.
    t = min(24, len(actions))
    batch = {key: torch.as_tensor(np.stack([row[key] for row in rows[: t + 1]]))[None] for key in rows[0]}
    batch = {k: v.float() if v.dtype == torch.float64 else v for k, v in batch.items()}
    batch["action"] = torch.as_tensor(np.asarray(actions[:t], dtype=np.int64))[None]
    batch["reward"] = torch.as_tensor(np.asarray(rewards[:t], dtype=np.float32))[None]
    ended = np.zeros(t, dtype=np.float32)
    ended[-1] = float(terminated and t == len(actions))
    batch["terminated"] = torch.as_tensor(ended)[None]
    batch["mask"] = torch.ones(1, t, dtype=torch.bool)
    torch.manual_seed(0)
    agent = build_agent(TINY, env.observation_space, env.action_space)
    out = agent.loss(batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in agent.trainable_parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_tuple_observation_becomes_multidiscrete() -> None:
    env = adapter.make_popgym_env("popgym-AutoencodeEasy-v0")
    assert env.observation_space == spaces.MultiDiscrete([2, 4])
    obs, _ = env.reset(seed=1)
    assert isinstance(obs, np.ndarray) and obs.dtype == np.int64 and env.observation_space.contains(obs)


def test_mixed_tuple_observation_becomes_a_dict() -> None:
    space = spaces.Tuple((spaces.Discrete(3), spaces.Box(0.0, 1.0, (2,), np.float32)))
    adapted = adapter.adapt_observation_space(space)
    assert isinstance(adapted, spaces.Dict) and list(adapted.spaces) == ["0", "1"]


def test_multidiscrete_actions_flatten_row_major() -> None:
    env = adapter.make_popgym_env("popgym-MineSweeperEasy-v0")
    assert env.unwrapped.action_space == spaces.MultiDiscrete([4, 4])
    assert env.action_space == spaces.Discrete(16)
    for row in range(4):
        for col in range(4):
            np.testing.assert_array_equal(env.action(4 * row + col), [row, col])


def test_flattened_actions_reach_the_inner_env() -> None:
    env = adapter.make_popgym_env("popgym-BattleshipEasy-v0")  # MultiDiscrete([8, 8])
    env.reset(seed=0)
    env.step(8 * 3 + 5)
    guesses = env.unwrapped.guesses
    assert guesses[3, 5] == 1 and guesses.sum() == 1


def test_too_many_flat_actions_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="max_flat_actions"):
        adapter.make_popgym_env("popgym-MineSweeperEasy-v0", max_flat_actions=10)


def test_box_actions_stay_box_unless_binned() -> None:
    env = adapter.make_popgym_env("popgym-PositionOnlyPendulumEasy-v0")
    assert isinstance(env.action_space, spaces.Box)
    binned = adapter.make_popgym_env("popgym-PositionOnlyPendulumEasy-v0", box_action_bins=PENDULUM_BINS)
    assert binned.action_space == spaces.Discrete(PENDULUM_BINS)
    values = [float(binned.action(k)[0]) for k in range(PENDULUM_BINS)]
    np.testing.assert_allclose(values, [-2.0, -1.0, 0.0, 1.0, 2.0])


def test_episode_ends_keep_terminated_and_truncated_apart() -> None:
    """RepeatPrevious ends its game (terminated); the bandit hits its step limit (truncated)."""
    for env_id, expect_terminated in [
        ("popgym-RepeatPreviousEasy-v0", True),
        ("popgym-MultiarmedBanditEasy-v0", False),
    ]:
        env = make_trial_env(env_id)
        env.reset(seed=0)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        assert terminated is expect_terminated and truncated is not expect_terminated, env_id


def test_unknown_id_and_missing_package_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(gym.error.NameNotFound, match="unknown POPGym env id"):
        make_trial_env("popgym-NoSuchEnv-v0")

    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(optional.importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r"pip install 'icrl\[popgym\]'"):
        make_trial_env("popgym-RepeatPreviousEasy-v0")


def test_presets_build_agents() -> None:
    for name, d_model in [("popgym-cpu", 64), ("popgym-paper", 256)]:
        cfg = preset_config(name)
        assert cfg.env.id.startswith("popgym-") and cfg.model.d_model == d_model
        env = make_trial_env(cfg.env.id)
        agent = build_agent(cfg, env.observation_space, env.action_space)
        assert sum(p.numel() for p in agent.parameters()) > 0
    paper = preset_config("popgym-paper")
    assert len(paper.gammas) == 18 and paper.agent.reward_multiplier == 100.0
    assert paper.model.encoder_hidden == (512, 512, 200)


@pytest.mark.parametrize(
    "env_id,kwargs,steps",
    [
        ("popgym-RepeatFirstEasy-v0", {}, 120),  # 52-step episodes
        ("popgym-MineSweeperEasy-v0", {}, 120),
        ("popgym-PositionOnlyPendulumEasy-v0", {"box_action_bins": 3}, 440),  # 200-step episodes
        ("popgym-PositionOnlyPendulumEasy-v0", {}, 440),  # Box actions: the continuous policy
    ],
)
def test_trainer_runs_a_few_updates(tmp_path, env_id: str, kwargs: dict[str, Any], steps: int) -> None:
    from icrl.train.trainer import Trainer

    cfg = apply_overrides(
        TINY,
        {
            "env": {"id": env_id, "kwargs": kwargs, "num_actors": 2},
            "replay": {"batch_size": 4, "cache_gb": 0.01},
            "total_env_steps": steps,
            "collect_steps": 20,
            "updates_per_collect": 2,
            "learning_starts": 40,
            "eval_every": 0,
            "eval_trials": 2,
            "checkpoint_every": 0,
            "tensorboard": False,
            "progress": False,
            "threads": 1,
            "run_dir": str(tmp_path / "run"),
        },
    )
    trainer = Trainer(cfg)
    result = trainer.run()
    assert trainer.updates >= 2  # updates start once the first trials are in the buffer
    assert -1.0 <= result["eval/return"] <= 1.0


def test_cli_takes_a_popgym_id_and_adapter_options() -> None:
    from icrl.cli import build_train_config

    cfg = build_train_config(
        ["popgym-PositionOnlyPendulumEasy-v0", "--preset", "popgym-cpu", "--env.box_action_bins", "7"]
    )
    assert cfg.env.id == "popgym-PositionOnlyPendulumEasy-v0"
    assert cfg.env.kwargs == {"box_action_bins": 7}
    assert cfg.model.pos_emb == "rope"
    assert make_trial_env(cfg.env.id, **cfg.env.kwargs).action_space == spaces.Discrete(7)
