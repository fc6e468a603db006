"""The AMAGO-2 update: the two-hot classification critic (`agent.critic classification`) and the imitation
actor objective (`agent.actor_objective imitation`), on hand-computed cases and tiny agents."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from icrl.agent import losses
from icrl.agent.action_kinds import make_action_kind, taken_layout
from icrl.agent.agent import Agent
from icrl.config import AgentConfig, ModelConfig, check_config
from icrl.envs.spaces import trial_observation_space
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.evaluate import evaluate_run, load_run_agent
from icrl.train.trainer import Trainer

B, L = 3, 6
GAMMAS = (0.5, 0.9, 0.99)
SPACES = {
    "discrete": gym.spaces.Discrete(3),
    "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "binary": gym.spaces.MultiBinary(3),
}
AMAGO2 = {"critic": "classification", "actor_objective": "imitation", "popart": False}


# ------------------------------------------------------------------------------------------ two-hot
def test_two_hot_on_bin_edges_puts_all_weight_on_that_bin():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    got = losses.two_hot(torch.tensor([-1.0, 0.0, 1.0, 2.0]), bins)
    torch.testing.assert_close(got, torch.eye(4), rtol=0, atol=0)


def test_two_hot_between_bins_is_linear_in_the_distance():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    got = losses.two_hot(torch.tensor([0.25, 1.5, -0.9]), bins)
    want = torch.tensor([[0.0, 0.75, 0.25, 0.0], [0.0, 0.0, 0.5, 0.5], [0.9, 0.1, 0.0, 0.0]])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got @ bins, torch.tensor([0.25, 1.5, -0.9]))  # the expectation is x


def test_two_hot_outside_the_range_is_clamped_to_the_end_bins():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    got = losses.two_hot(torch.tensor([-5.0, 7.0, float("inf")]), bins)
    want = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(got, want, rtol=0, atol=0)


# ------------------------------------------------------------------------------------- the readout
def test_classifier_value_is_symexp_of_the_expected_symlog_bin():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    # softmax = (0.25, 0.75, 0, 0): expected symlog bin -0.25, value -(e^0.25 - 1)
    logits = torch.tensor([math.log(0.25), math.log(0.75), -math.inf, -math.inf])
    torch.testing.assert_close(losses.bins_to_value(logits, bins), torch.tensor(-math.expm1(0.25)))
    # (0, 0, 0.5, 0.5): 1.5 -> e^1.5 - 1, not the mean of symexp'd bins ((e - 1 + e^2 - 1) / 2)
    logits = torch.tensor([-math.inf, -math.inf, 0.0, 0.0])
    torch.testing.assert_close(losses.bins_to_value(logits, bins), torch.tensor(math.expm1(1.5)))


def test_value_two_hot_value_round_trip_with_the_default_bins():
    """value -> two_hot(symlog(value)) -> read as a classifier -> the same value, for returns in the
    default bins' range (about +-2.2e4); beyond it the value clamps to the end bin."""
    cfg = AgentConfig()
    bins = losses.symlog_bins(cfg.critic_bins, cfg.critic_bins_low, cfg.critic_bins_high).double()
    values = torch.tensor([-1e4, -9000.0, -3.7, -1e-3, 0.0, 0.5, 1.0, 123.4, 9999.0, 1e4]).double()
    logits = losses.two_hot(losses.symlog(values), bins).log()  # log 0 = -inf: no mass on the other bins
    torch.testing.assert_close(losses.bins_to_value(logits, bins), values, rtol=1e-9, atol=1e-9)
    far = losses.two_hot(losses.symlog(torch.tensor([1e6, -1e6]).double()), bins).log()
    ends = torch.tensor([math.expm1(10.0), -math.expm1(10.0)]).double()
    torch.testing.assert_close(losses.bins_to_value(far, bins), ends)


def test_classification_critic_loss_hand_computed_and_masked():
    bins = torch.tensor([-1.0, 0.0, 1.0])
    logits = torch.zeros(1, 2, 1, 1, 3)  # (B, L, C, G, Kb): uniform, CE = log 3 whatever the target
    logits[0, 1, 0, 0] = torch.tensor([0.0, 0.0, math.log(2.0)])  # softmax (1/4, 1/4, 1/2)
    # symlog(e - 1) = 1: the whole target on the last bin; position 1 is masked out
    target = torch.tensor([[[math.e - 1.0], [math.e - 1.0]]])  # (B, L, G)
    mask = torch.tensor([[True, False]])
    loss = losses.classification_critic_loss(logits, target, bins, mask)
    torch.testing.assert_close(loss, torch.tensor(math.log(3.0)))
    loss = losses.classification_critic_loss(logits, target, bins, None)
    torch.testing.assert_close(loss, torch.tensor((math.log(3.0) + math.log(2.0)) / 2))


# ------------------------------------------------------------------------------------------ filter
class _Fixed(nn.Module):
    """A head that returns a fixed tensor (B, L, ...) whatever the state."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = nn.Parameter(out)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.out.expand(s.shape[0], s.shape[1], *self.out.shape[2:])


class _FixedCritics(_Fixed):
    """Fixed critic logits (B, L, C, G, N, Kb) behind the critic ensemble's member-major interface
    (features -> all_actions / taken_actions), which the classification critic's update reads."""

    def features(self, s: torch.Tensor) -> torch.Tensor:
        out = self(s).flatten(0, 1).transpose(0, 1)  # (C, T, G, N, Kb)
        return out.reshape(*out.shape[:2], -1)  # stands in for the hidden features

    def all_actions(self, h: torch.Tensor, readout=None) -> torch.Tensor:
        out = h.view(*h.shape[:2], *self.out.shape[3:])  # (C, T, G, N, Kb)
        return out if readout is None else readout(out)

    def taken_actions(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.all_actions(h)  # (C, T, G, N, Kb)
        index = action[None, :, None, None, None].expand(*out.shape[:3], 1, out.shape[-1])
        return out.gather(3, index).squeeze(3), torch.arange(out.shape[1])  # (C, T, G, Kb) in time order


@pytest.mark.parametrize("objective", ["amago", "imitation"])
def test_filter_reads_the_classifier_values(objective):
    """Two actions whose classifier puts all mass on one bin each: Q(a0) = symexp(1) = e - 1 and
    Q(a1) = symexp(-2) = -(e^2 - 1); a uniform policy has V = (Q0 + Q1) / 2, so A(a0) = -A(a1) =
    (Q0 - Q1) / 2 = 4.05..."""
    agent_cfg = AgentConfig(
        critic="classification",
        critic_bins=5,
        critic_bins_low=-2.0,
        critic_bins_high=2.0,
        popart=False,
        actor_objective=objective,
    )
    kind = make_action_kind(gym.spaces.Discrete(2), agent_cfg)
    logits = torch.full((1, 1, 2, 1, 2, 5), -math.inf)  # (B, L, C, G, N, Kb), two critics that agree
    logits[..., 0, 3] = 0.0  # bin 1.0
    logits[..., 1, 0] = 0.0  # bin -2.0
    critics, actor = _FixedCritics(logits), _Fixed(torch.zeros(1, 1, 1, 2))
    s_t = torch.zeros(2, 1, 4)
    action = torch.tensor([[0], [1]])
    mask = torch.ones(2, 1, dtype=torch.bool)
    terms = kind.terms(actor, critics, s_t, action, mask, None)
    adv = (math.e - 1.0 + math.expm1(2.0)) / 2
    torch.testing.assert_close(terms.advantage[:, 0, 0], torch.tensor([adv, -adv]))
    assert terms.q_taken.shape == (2, 2, 1, 5)  # the taken actions' logits, member-major (C, T, G, Kb)
    binary_w = losses.filter_weights(terms.advantage, "binary")[:, 0, 0]
    torch.testing.assert_close(binary_w, torch.tensor([1.0, 0.0]))
    exp_w = losses.filter_weights(terms.advantage, "exp", beta=1.0, clip=20.0)[:, 0, 0]
    torch.testing.assert_close(exp_w, torch.tensor([20.0, math.exp(-adv)]))
    assert terms.pg_loss.requires_grad == (objective == "amago")


def test_binary_filter_is_invariant_to_the_advantage_scale_and_exp_is_not():
    adv = torch.tensor([-2.0, -1e-3, 0.0, 1e-3, 0.3, 5.0])
    for scale in (1e-3, 1.0, 1e3):
        assert torch.equal(losses.filter_weights(scale * adv, "binary"), losses.filter_weights(adv, "binary"))
    assert not torch.equal(losses.filter_weights(1e3 * adv, "exp"), losses.filter_weights(adv, "exp"))


# ------------------------------------------------------------------------------------ tiny agents
def _agent(space: gym.Space, seed: int = 0, model_kw: dict | None = None, **agent_kw) -> Agent:
    torch.manual_seed(seed)
    obs_space = trial_observation_space(gym.spaces.Box(-1.0, 1.0, (3,), np.float32), space)
    model_kw = {"kind": "gru", **(model_kw or {})}
    model = ModelConfig(
        d_model=16, encoder_hidden=(16,), actor_hidden=(16,), critic_hidden=(16, 16), **model_kw
    )
    agent = AgentConfig(num_critics=3, critic_subset=2, num_action_samples=3, **agent_kw)
    return Agent(obs_space, space, model, agent, gammas=GAMMAS)


def _batch(space: gym.Space, seed: int = 0, reward_scale: float = 1.0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    adim = int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        action = torch.as_tensor(rng.integers(0, space.n, (B, L)))
    elif isinstance(space, gym.spaces.Box):
        action = torch.as_tensor(rng.uniform(-1, 1, (B, L, *space.shape)), dtype=torch.float32)
    else:
        action = torch.as_tensor(rng.integers(0, 2, (B, L, *space.shape)), dtype=torch.float32)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[2, 4:] = False
    terminated = torch.zeros(B, L)
    terminated[1, 3] = 1.0
    # rewards of magnitude 1 to 2 with random signs: the targets are dominated by them at initialisation
    reward = rng.choice([-1.0, 1.0], (B, L)) * rng.uniform(1.0, 2.0, (B, L))
    return {
        "obs": torch.as_tensor(rng.normal(size=(B, L + 1, 3)), dtype=torch.float32),
        "prev_action": torch.as_tensor(rng.uniform(-1, 1, (B, L + 1, adim)), dtype=torch.float32),
        "prev_reward": torch.as_tensor(rng.normal(size=(B, L + 1, 1)), dtype=torch.float32),
        "time": torch.arange(L + 1).expand(B, L + 1).clone(),
        "first": torch.zeros(B, L + 1, 1),
        "action": action,
        "reward": torch.as_tensor(reward_scale * reward, dtype=torch.float32),
        "terminated": terminated,
        "mask": mask,
    }


CASES = [
    (critic, objective, space)
    for critic in ("regression", "classification")
    for objective in ("amago", "imitation")
    for space in SPACES
]


@pytest.mark.parametrize(("critic", "objective", "space"), CASES)
def test_a_few_updates_are_finite_and_move_every_part(critic, objective, space):
    """Multi-gamma (3 discounts), 2-step targets, PopArt on for regression (refused for classification)."""
    agent = _agent(
        SPACES[space],
        critic=critic,
        actor_objective=objective,
        popart=critic == "regression",
        n_step=2,
        critic_bins=96,
    )
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    opt = torch.optim.AdamW(agent.trainable_parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(3):
        out = agent.loss(_batch(SPACES[space], seed=step), generator=gen)
        assert torch.isfinite(out.loss)
        assert all(np.isfinite(v) for v in out.metrics.values()), out.metrics
        opt.zero_grad()
        out.loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in agent.parameters())
        opt.step()
        agent.update_targets()
    assert (out.metrics["loss/pg"] == 0.0) == (objective == "imitation")
    for part in ("encoder", "seq", "actor", "critics", "target_critics", "target_actor"):
        params = getattr(agent, part).named_parameters()
        assert any(not torch.equal(p, before[f"{part}.{n}"]) for n, p in params), part
    assert all(not torch.equal(p, before[f"actor.{n}"]) for n, p in agent.actor.named_parameters())


@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize("objective", ["amago", "imitation"])
def test_classification_under_bfloat16_is_finite_and_close_to_float32(space, objective):
    kw = {**AMAGO2, "actor_objective": objective}
    low = _agent(SPACES[space], model_kw={"kind": "mlp", "precision": "bfloat16"}, **kw)
    full = _agent(SPACES[space], model_kw={"kind": "mlp", "precision": "float32"}, **kw)
    batch = _batch(SPACES[space])
    out_low = low.loss(batch, generator=torch.Generator().manual_seed(0))
    out_full = full.loss(batch, generator=torch.Generator().manual_seed(0))
    out_low.loss.backward()
    assert torch.isfinite(out_low.loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in low.parameters())
    # the same weights: bfloat16 hidden layers change the critic loss (~ log Kb) by well under 5%
    assert (
        abs(out_low.metrics["loss/critic"] - out_full.metrics["loss/critic"])
        < 0.05 * out_full.metrics["loss/critic"]
    )


@pytest.mark.parametrize("objective", ["amago", "imitation"])
def test_classification_terms_equal_those_read_from_the_full_critic_output(objective):
    """The discrete classification update reads the stored actions' logits and every action's values
    member-major (`taken_actions`, `all_actions`); what it returns, and the critic loss's gradient, must
    equal what the critics' full output (B, L, C, G, N, Kb) gives when indexed by hand."""
    agent = _agent(gym.spaces.Discrete(3), critic="classification", popart=False, actor_objective=objective)
    kind, batch = agent.action_kind, _batch(gym.spaces.Discrete(3))
    s = agent.encode(batch).detach()
    s_t, s_next, action, mask = s[:, :-1], s[:, 1:], batch["action"], batch["mask"]
    terms = kind.terms(agent.actor, agent.critics, s_t, action, mask, None)

    full = agent.critics(s_t)  # (B, L, C, G, N, Kb)
    index = action[:, :, None, None, None, None].expand(*full.shape[:4], 1, full.shape[-1])
    taken_ref = full.gather(4, index).squeeze(4)  # (B, L, C, G, Kb)
    rows = terms.taken_rows  # q_taken: member-major, the batch's positions flattened in this order
    torch.testing.assert_close(terms.q_taken, taken_ref.flatten(0, 1)[rows].transpose(0, 1))
    q_actor = kind.value(full.detach()).mean(2)  # (B, L, G, N)
    probs = torch.softmax(agent.actor(s_t), -1)
    advantage_ref = q_actor.gather(-1, action[:, :, None, None].expand(B, L, len(GAMMAS), 1)).squeeze(-1)
    advantage_ref = advantage_ref - (probs * q_actor).sum(-1)
    torch.testing.assert_close(terms.advantage, advantage_ref)

    target = torch.randn(B, L, len(GAMMAS))
    params = list(agent.critics.parameters())
    q_taken, critic_target, critic_mask = taken_layout(terms, target, mask)
    loss = losses.classification_critic_loss(q_taken, critic_target, kind.bins, critic_mask)
    loss_ref = losses.classification_critic_loss(taken_ref, target, kind.bins, mask)
    torch.testing.assert_close(loss, loss_ref)
    for g, g_ref in zip(
        torch.autograd.grad(loss, params), torch.autograd.grad(loss_ref, params), strict=True
    ):
        torch.testing.assert_close(g, g_ref)

    next_value = kind.next_value(agent.actor, agent.critics, s_next, kind.value, "mean", 2, None)
    next_probs = torch.softmax(agent.actor(s_next), -1)
    next_ref = losses.discrete_state_value(kind.value(agent.critics(s_next)), next_probs, "mean")
    torch.testing.assert_close(next_value, next_ref)


def test_classification_with_popart_is_refused_with_a_clear_error(agent_config):
    with pytest.raises(ValueError, match="agent.no-popart"):
        _agent(SPACES["discrete"], critic="classification", popart=True)
    with pytest.raises(ValueError, match="agent.popart False"):
        check_config(agent_config(agent={"critic": "classification"}))
    check_config(agent_config(agent={"critic": "classification", "popart": False}))


def test_classification_heads_emit_bins_and_regression_ones_do_not():
    for space in SPACES.values():
        kind = make_action_kind(space, AgentConfig(critic="classification", critic_bins=7, popart=False))
        assert kind.num_bins == 7 and kind.pg
        assert make_action_kind(space, AgentConfig()).bins is None
        assert not make_action_kind(space, AgentConfig(actor_objective="imitation")).pg
    agent = _agent(SPACES["discrete"], critic="classification", critic_bins=7, popart=False)
    assert agent.critics(torch.zeros(2, 4, 16)).shape == (2, 4, 3, len(GAMMAS), 3, 7)


# ----------------------------------------------------------------------------------- reward scale
def _flat_grads(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


def _update_at_scale(space: gym.Space, scale: float, **agent_kw) -> tuple[Agent, dict[str, float]]:
    agent = _agent(space, seed=3, filter="binary", **agent_kw)
    out = agent.loss(_batch(space, seed=5, reward_scale=scale), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    return agent, out.metrics


@pytest.mark.parametrize("space", list(SPACES))
def test_amago2_update_direction_survives_rewards_times_1000(space):
    """What this checks, precisely. Within one update the rewards enter only the critic targets: the
    actor's inputs from the critics (the filter's advantage A = Q(s, a_t) - V(s)) are read from the current
    critics, which have not seen these rewards. So the imitation actor's gradient is the same, bit for bit,
    at any reward scale (cosine 1 and allclose at 1e-6: float rounding is the only slack). Over training
    the binary filter keeps this when a critic fit to ×1000 rewards holds ×1000 values with the same
    advantage signs (it reads sign(A) only: see the test above); the exp filter would not.
    The classification critic's part is invariant only approximately: its gradient w.r.t. the logits is
    softmax - two_hot(symlog y), at most 2 in L1 norm whatever the scale, so its loss and gradient stay
    O(1) (asserted within a factor 5) while their direction changes (×1000 moves symlog targets by about
    log 1000 = 6.9 symlog units; measured cosines of the whole gradient range from -0.2 to 1). The
    regression critic's loss instead grows with the square of the scale and its gradient linearly, so
    without PopArt it swamps the actor's term."""
    small, m_small = _update_at_scale(SPACES[space], 1.0, **AMAGO2)
    large, m_large = _update_at_scale(SPACES[space], 1000.0, **AMAGO2)
    g_small, g_large = _flat_grads(small.actor), _flat_grads(large.actor)
    cosine = torch.nn.functional.cosine_similarity(g_small, g_large, dim=0)
    assert cosine > 1 - 1e-6 and torch.allclose(g_small, g_large, rtol=1e-6, atol=1e-9)
    assert m_small["loss/bc"] == m_large["loss/bc"]
    ratio = m_large["loss/critic"] / m_small["loss/critic"]
    assert 0.2 < ratio < 5.0, ratio
    norm_ratio = float(_flat_grads(large.critics).norm() / _flat_grads(small.critics).norm())
    assert 0.2 < norm_ratio < 5.0, norm_ratio
    assert 0.2 < float(_flat_grads(large).norm() / _flat_grads(small).norm()) < 5.0

    reg_small, r_small = _update_at_scale(SPACES[space], 1.0, popart=False, actor_objective="imitation")
    reg_large, r_large = _update_at_scale(SPACES[space], 1000.0, popart=False, actor_objective="imitation")
    reg_ratio = r_large["loss/critic"] / r_small["loss/critic"]
    assert 0.5e6 < reg_ratio < 2e6, reg_ratio  # targets ~ 1000 r dominate the squared error
    # the squared error's gradient is linear in the target: about 1000 times larger
    assert 300 < float(_flat_grads(reg_large.critics).norm() / _flat_grads(reg_small.critics).norm()) < 3000


# ------------------------------------------------------------------------------ checkpoints and eval
def test_classification_run_saves_loads_and_evaluates(tmp_path, agent_config):
    cfg = agent_config(
        tmp_path / "run",
        env={"id": "icrl/TMaze-v0", "kwargs": {"length": 5}, "num_actors": 2},
        agent={**AMAGO2, "critic_bins": 32},
        total_env_steps=100,
        learning_starts=20,
        checkpoint_every=0,
        eval_trials=2,
    )
    trainer = Trainer(cfg)
    trainer.run()
    assert trainer.updates > 0
    ckpt = latest_checkpoint(trainer.run_dir / "checkpoints")
    loaded_cfg, loaded, _ = load_run_agent(trainer.run_dir, ckpt, device="cpu")
    assert loaded_cfg.agent.critic == "classification" and loaded.action_kind.num_bins == 32
    live = trainer.agent.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value.cpu(), live[key].cpu()), key
    result = evaluate_run(trainer.run_dir, trials=2)
    assert np.isfinite(result["eval/return"])


# ---------------------------------------------------------------------------------------- data parallel
def _dp_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a two-rank run of the AMAGO-2 update; saves its final weights."""
    import os
    import sys
    from pathlib import Path

    from safetensors.torch import save_file

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_config

    from icrl.train.distributed import shutdown

    trainer = Trainer(make_tiny_config(Path(out) / "run", total_env_steps=120, agent=AMAGO2))
    trainer.run()
    weights = {k: v.detach().contiguous() for k, v in trainer.agent.state_dict().items()}
    save_file(weights, str(Path(out) / f"rank{rank}.safetensors"))
    (Path(out) / f"updates{rank}").write_text(str(trainer.updates))
    shutdown()


@pytest.mark.slow
def test_two_ranks_keep_identical_weights_with_the_amago2_update(tmp_path):
    """Nothing in the classification critic or the imitation objective is rank-specific: the averaged
    gradients keep both ranks' weights identical."""
    import socket

    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.start_processes(
        _dp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    for _ in range(300):
        if ctx.join(timeout=1):
            break
    else:
        for process in ctx.processes:
            process.kill()
        pytest.fail("two-rank training took over 5 minutes")
    a, b = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert all(int((tmp_path / f"updates{r}").read_text()) > 0 for r in range(2))
