"""GPU checks of the run-level tools: the device check, `icrl eval --device cpu` of a run trained on a
GPU, the moving average of a GPU run's weights (`--weights-ema`, `--eval-ema`, `icrl eval --weights ema`),
and the memory ablation (`forget_episodes`) with the rollout state on the GPU. Skipped without CUDA.

    python -m pytest tests/gpu -q
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from icrl.cli import main
from icrl.config import Config
from icrl.envs.vector import make_vector_env
from icrl.presets import build_config
from icrl.train.ema import EMA_FILE
from icrl.train.evaluate import EvalCollector, load_run_agent
from icrl.train.factory import SetupError, build_agent, check_device, env_factory

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _train_tiny_on_cuda(run, tiny_cli, *extra):
    """Two-episode T-Maze trials, 60 env steps, on the GPU."""
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--env.trial-episodes", "2", "--total-env-steps", "60",
          "--eval-every", "0", "--checkpoint-every", "0", "--device", "cuda", "--run-dir", str(run), *extra])


def test_device_check_on_a_gpu_machine():
    assert check_device("cuda").type == "cuda"
    assert check_device("cuda:0").index == 0
    count = torch.cuda.device_count()
    with pytest.raises(SetupError, match=f"has {count} CUDA device"):
        check_device(f"cuda:{count}")


def test_a_gpu_run_evaluates_on_the_cpu(tmp_path, tiny_cli, capsys):
    run = tmp_path / "run"
    _train_tiny_on_cuda(run, tiny_cli)
    assert json.loads((run / "config.json").read_text())["device"] == "cuda"
    results = {}
    for device in ("cpu", "cuda"):
        capsys.readouterr()
        main(["eval", str(run), "--trials", "4", "--device", device])
        results[device] = json.loads(capsys.readouterr().out)
        assert results[device]["device"] == device
    assert results["cpu"]["eval/trials"] == results["cuda"]["eval/trials"] == 4
    capsys.readouterr()
    main(["eval", str(run), "--trials", "4", "--forget-episodes"])
    forget = json.loads((run / "eval-forget.json").read_text())
    plain = json.loads((run / "eval.json").read_text())  # the cuda evaluation just above
    assert forget["device"] == "cuda" and forget["forget_episodes"] is True
    assert [r[0] for r in forget["trial_episode_returns"]] == [r[0] for r in plain["trial_episode_returns"]]


def test_the_moving_average_of_a_gpu_run(tmp_path, tiny_cli, capsys):
    run = tmp_path / "run"
    _train_tiny_on_cuda(run, tiny_cli, "--weights-ema", "0.9", "--eval-ema")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_ema/return" in row and "eval/return" in row for row in rows)  # swapped in on the GPU
    ckpt = sorted((run / "checkpoints").glob("ckpt_*"))[-1]
    saved, live = load_file(str(ckpt / EMA_FILE)), load_file(str(ckpt / "agent.safetensors"))
    assert saved and all(t.device.type == "cpu" for t in saved.values())
    assert any(not torch.equal(value, live[name]) for name, value in saved.items())  # it averaged
    for device in ("cpu", "cuda"):
        _, agent, _ = load_run_agent(run, ckpt, device=device, weights="ema")
        for name, param in agent.named_parameters():
            assert param.device.type == device
            assert torch.equal(param.detach().cpu(), saved[name]), name
        capsys.readouterr()
        main(["eval", str(run), "--trials", "2", "--weights", "ema", "--device", device])
        printed = json.loads(capsys.readouterr().out)
        assert printed["weights"] == "ema" and printed["device"] == device and printed["eval/trials"] == 2


def test_forget_episodes_with_the_state_on_the_gpu():
    # As tests/train/test_collector.py: a deterministic lake, greedy play, memory cleared at each attempt:
    # attempt 2 repeats attempt 1 (same return); the reset masks go to the GPU state.
    lake = {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 3, "attempts": 2}, "num_actors": 3}
    cfg: Config = build_config({"env": lake, "model": {"d_model": 32, "n_heads": 2, "context_len": 16}}, {})
    envs = make_vector_env(env_factory(cfg), 3, seed=5)
    torch.manual_seed(0)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space).to("cuda")
    collector = EvalCollector(
        envs, agent, explore=None, device="cuda", seed=3, greedy=True, forget_episodes=True
    )
    trials = collector.run_trials(9)
    envs.close()
    returns = np.array([t.episode_returns for t in trials])  # (9, 2)
    lengths = {len(t.episode_returns) for t in trials}
    assert lengths == {2}
    np.testing.assert_array_equal(returns[:, 0], returns[:, 1])


def test_a_gpu_learner_with_cpu_collectors(tmp_path, tiny_cli):
    """`--collectors`: the learner on the GPU publishes CPU weights that the collector processes act with."""
    run = tmp_path / "run"
    _train_tiny_on_cuda(run, tiny_cli, "--collectors", "2")  # one actor each
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] >= 60 and rows[-1]["updates"] > 0
    published = load_file(str(run / "policy" / "agent.safetensors"))
    assert published and all(t.device.type == "cpu" for t in published.values())
    names = [p.name for p in (run / "buffer" / "fifo").glob("*.npz")]
    assert len({int(name.split("-")[1]) for name in names}) == 2  # both collectors wrote trials
