"""Named presets: one typed `Config` per benchmark setting, built from the defaults in `icrl.config`.

Each preset is a function that returns a fresh `Config`, registered under its name in `PRESETS`; a preset
derived from another one is that one with `dataclasses.replace`d fields. `icrl train --preset NAME` starts
from the preset; any option given on the command line wins.

`apply_overrides` and `build_config` apply nested override dicts (`icrl resume --set`, tests) to a config,
checking every value's type.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from icrl.config import (
    AgentConfig,
    Config,
    EnvConfig,
    ExplorationConfig,
    ModelConfig,
    ReplayConfig,
    config_from_dict,
)

PresetFn = Callable[[], Config]
PRESETS: dict[str, PresetFn] = {}
"""Every preset by name: a function that returns its config."""


def preset(name: str) -> Callable[[PresetFn], PresetFn]:
    """Register the decorated function as preset `name`; its docstring's first line describes it."""

    def register(build: PresetFn) -> PresetFn:
        PRESETS[name] = build
        return build

    return register


def preset_config(name: str | None) -> Config:
    """Preset `name`'s config (None: the plain defaults)."""
    if name is None:
        return Config()
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()


def preset_summaries() -> dict[str, str]:
    """Each preset's one-line description (the first line of its docstring), for `--help`."""
    return {name: (build.__doc__ or "").strip().splitlines()[0] for name, build in sorted(PRESETS.items())}


# ---- building blocks shared by several presets ----


def small_model(**changes: Any) -> ModelConfig:
    """The default model size, a small Transformer (on 2 CPU cores it solves T-Maze 50 in fewer wall-clock
    seconds than d_model 128: about the same number of updates, 2.4x more updates per second), with the
    learned positions the presets were measured with."""
    return replace(ModelConfig(pos_emb="learned"), **changes)


def wide_model(**changes: Any) -> ModelConfig:
    """d_model 128 with 8 heads and 128-wide heads and learned positions: the default model before
    2026-12-06, kept by the GPU and speed-benchmark presets whose results were measured with it."""
    wide = ModelConfig(
        d_model=128, n_heads=8, encoder_hidden=(128,), actor_hidden=(128,), critic_hidden=(128, 128),
        pos_emb="learned",
    )
    return replace(wide, **changes)


def continuous_agent(**changes: Any) -> AgentConfig:
    """Continuous control on CPU: two discounts (0.95 and the main 0.99), 2 critics and 2 sampled actions per
    discount (the critics run on B x L x G x K actions, the bulk of an update's cost on CPU)."""
    agent = AgentConfig(
        gamma=0.99, extra_gammas=(0.95,), num_critics=2, num_action_samples=2, lr=3e-4, warmup_updates=200,
        tau=0.005,
    )
    return replace(agent, **changes)


def tmaze_explore() -> ExplorationConfig:
    """AMAGO's T-Maze anneal (1.0 -> 0.01 over 100k steps), greedy actions plus epsilon. The env itself
    restricts exploration to the turn (`TMazeEnv.exploration_multiplier`): walking the corridor needs
    `length` deterministic moves, which sampled actions or epsilon in the corridor would break."""
    return ExplorationConfig(eps_end=0.01, anneal_env_steps=100_000, sample_actions=False)


def grid_meta(env: EnvConfig, context_len: int, **changes: Any) -> Config:
    """Meta-RL grid worlds: one trial fits in the context; epsilon decays within a trial (explore first)."""
    grid = Config(
        env=env,
        model=small_model(context_len=context_len),
        explore=ExplorationConfig(anneal_env_steps=30_000),
        collect_steps=50,
        updates_per_collect=40,
        total_env_steps=60_000,
        eval_every=300,
        eval_trials=32,
    )
    return replace(grid, **changes)


# ---- the presets ----


@preset("tmaze-50")
def tmaze_50() -> Config:
    """T-Maze 50 with the small model."""
    return Config(
        env=EnvConfig(id="icrl/TMaze-v0", kwargs={"length": 50}),
        model=small_model(context_len=51),
        explore=tmaze_explore(),
        collect_steps=64,
        updates_per_collect=64,
        total_env_steps=50_000,
        eval_every=128,
        exp_name="tmaze-50",
    )


@preset("tmaze-quick")
def tmaze_quick() -> Config:
    """The `make train` job: T-Maze 50 with lr 3e-4, stopping once solved (about a minute on 2 cores).

    lr 3e-4 solves it in 10.8k-16.9k env steps (5 seeds; 39-63 s of training on 2 threads) where
    `tmaze-50`'s 1e-4 needs 18.9k-36.4k; 6e-4 was as fast on average but 1e-3 had not solved seed 0 after
    35k (benchmarks/RESULTS.md, T-Maze length 50)."""
    base = tmaze_50()
    return replace(base, agent=replace(base.agent, lr=3e-4), target_return=0.99, exp_name="tmaze-quick")


@preset("tmaze-200")
def tmaze_200() -> Config:
    """T-Maze 200: lr 3e-4 and bfloat16 matmuls where the device has them.

    lr 1e-4 had not turned at the junction after 6,400 updates on a GPU; 3e-4 solves 3 of 3 seeds in
    5,200-7,200 updates on the CPU."""
    base = tmaze_50()
    return replace(
        base,
        env=replace(base.env, kwargs={"length": 200}),
        model=replace(base.model, context_len=201, precision="auto"),
        agent=AgentConfig(lr=3e-4),
        collect_steps=201,
        updates_per_collect=200,
        total_env_steps=150_000,
        eval_every=400,
        exp_name="tmaze-200",
    )


@preset("tmaze-10k")
def tmaze_10k() -> Config:
    """The paper's longest memory task, for one GPU: T-Maze 10,000 with the whole trial in context.

    10,001 timesteps in context with the wide model (d_model 128; not tmaze-50's small one), bfloat16
    attention (flash kernels on GPUs), 16 windows of 10,002 timesteps per batch."""
    base = tmaze_50()
    return replace(
        base,
        env=replace(base.env, kwargs={"length": 10_000}),
        model=wide_model(context_len=10_001, precision="bfloat16"),
        replay=ReplayConfig(batch_size=16),
        collect_steps=1_000,
        updates_per_collect=20,
        learning_starts=80_008,
        total_env_steps=2_000_000,
        eval_every=200,
        eval_trials=8,
        checkpoint_every=200,
        device="cuda",
        exp_name="tmaze-10k",
    )


@preset("frozen-lake")
def frozen_lake() -> Config:
    """MetaFrozenLake 4x4, 5 attempts per trial, acting with the 0.97 discount's actor head.

    Under the main 0.999 a detour of a few steps costs almost nothing, and some runs' greedy policies stalled
    against a wall in the last attempt until its step limit (one history, replicated across many lakes); the
    0.97 head keeps the same knowledge and walks on (6 of 6 seeds >= 0.80 on 1000 trials, against 5 of 7
    with the main head)."""
    return grid_meta(
        EnvConfig(id="icrl/MetaFrozenLake-v0", kwargs={"size": 4, "attempts": 5}),
        context_len=128,
        agent=AgentConfig(acting_gamma=0.97),
        total_env_steps=100_000,
        exp_name="frozen-lake",
    )


@preset("dark-key-door")
def dark_key_door() -> Config:
    """Dark Key-To-Door 4x4, 100-step trials of 20-step episodes.

    3 of 3 seeds pass a mean trial return of 15 by 450k env steps (seed 0 already at 260k)."""
    return grid_meta(
        EnvConfig(id="icrl/DarkKeyToDoor-v0", kwargs={"size": 4, "episode_length": 20, "trial_length": 100}),
        context_len=100,
        total_env_steps=450_000,
        exp_name="dark-key-door",
    )


@preset("goal-grid")
def goal_grid() -> Config:
    """GoalGrid (goal-conditioned): visit three landmarks in a given order in a 5x5 room.

    Episodes of 30 steps, each a one-episode trial held whole in the context. Add --replay.relabel 0.5 for
    hindsight instruction relabelling (RESULTS.md: "Hindsight instruction relabelling (GoalGrid 8x8)")."""
    return grid_meta(EnvConfig(id="icrl/GoalGrid-v0"), context_len=30, exp_name="goal-grid")


@preset("goal-grid-relabel")
def goal_grid_relabel() -> Config:
    """GoalGrid 8x8, 6 landmarks, instructions of 4, with hindsight relabelling of half the sampled episodes.

    60-step episodes: 23-43% of instructions completed after 120k env steps on 3 seeds, against 0.4-1.2%
    without relabelling (RESULTS.md)."""
    return grid_meta(
        EnvConfig(id="icrl/GoalGrid-v0", kwargs={"size": 8, "landmarks": 6, "goals": 4, "max_steps": 60}),
        context_len=60,
        replay=ReplayConfig(relabel=0.5),
        total_env_steps=120_000,
        exp_name="goal-grid-relabel",
    )


@preset("popgym-paper")
def popgym_paper() -> Config:
    """POPGym with the paper's agent settings (for a GPU: add --device cuda).

    d_model 256, 3 layers, a timestep MLP 512-512-200 (hidden widths 512, 512, 200, then the projection to
    d_model), 18 discounts (17 extra + the main 0.999), reward multiplier 100, lr 1e-4, gradient clip 1, and a
    context that holds the longest non-navigation episode whole (RepeatFirstHard: 832 timesteps)."""
    return Config(
        env=EnvConfig(id="popgym-RepeatPreviousEasy-v0", num_actors=24),
        model=ModelConfig(
            pos_emb="learned",
            d_model=256,
            n_layers=3,
            n_heads=8,
            d_ff=1024,
            encoder_hidden=(512, 512, 200),
            actor_hidden=(256, 256),
            critic_hidden=(256, 256),
            context_len=1024,
        ),
        agent=AgentConfig(
            extra_gammas=(
                0.1, 0.7, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.992,
                0.994, 0.995, 0.996, 0.997, 0.998, 0.9985, 0.9992, 0.9995,
            ),
            reward_multiplier=100.0,
            lr=1e-4,
            grad_clip=1.0,
        ),
        updates_per_collect=8,
        total_env_steps=15_000_000,
        exp_name="popgym-paper",
    )


@preset("popgym-cpu")
def popgym_cpu() -> Config:
    """POPGym on 2 CPU cores: a small Transformer, one episode per trial, 64-step windows.

    The Easy diagnostic episodes (52 timesteps) fit whole; longer episodes are seen through sliding windows.
    Rotary position embeddings: RepeatPreviousEasy is solved (return 1.0) after ~8k env steps with them and
    still at -0.1 after 30k with learned ones (the task is "recall the card 4 steps back", a relative
    offset)."""
    return Config(
        env=EnvConfig(id="popgym-RepeatPreviousEasy-v0", num_actors=8),
        model=small_model(n_layers=2, context_len=64, pos_emb="rope"),
        agent=AgentConfig(reward_multiplier=100.0, lr=3e-4, warmup_updates=100),
        explore=ExplorationConfig(eps_end=0.02, anneal_env_steps=30_000),
        collect_steps=64,
        updates_per_collect=32,
        learning_starts=2_000,
        total_env_steps=100_000,
        eval_every=200,
        eval_trials=32,
        checkpoint_every=1_000,
        exp_name="popgym-cpu",
    )


@preset("pendulum")
def pendulum() -> Config:
    """Pendulum-v1 (a plain MDP, one 200-step episode per trial) with the memory-free model.

    16-step windows, the continuous-control agent, Gaussian action noise annealed to std 0.1 and kept flat
    within a trial, one update per env step."""
    return Config(
        env=EnvConfig(id="Pendulum-v1", num_actors=8),
        model=small_model(kind="mlp", n_layers=2, context_len=16),
        agent=continuous_agent(warmup_updates=100),
        explore=ExplorationConfig(
            eps_start=1.0, eps_end=0.1, anneal_env_steps=10_000, late_trial_fraction=1.0
        ),
        replay=ReplayConfig(batch_size=32),
        collect_steps=25,
        updates_per_collect=200,
        learning_starts=2_000,
        total_env_steps=30_000,
        eval_every=1_000,
        eval_trials=8,
        checkpoint_every=2_000,
        exp_name="pendulum",
    )


@preset("half-cheetah-vel")
def half_cheetah_vel() -> Config:
    """HalfCheetahVel on 2 CPU cores (needs icrl[mujoco]), evaluated on held-out target velocities.

    A hidden target velocity per trial of 3 x 200 steps, trained on the train velocities and evaluated on
    the held-out band (1.25-1.75). A small Transformer over 100-step windows with rotary positions (the
    trial is seen through sliding windows; the reward of a few steps already tells |v - v*|), the
    continuous-control agent. For a GPU, a longer context and budget will do better."""
    return Config(
        env=EnvConfig(
            id="icrl/HalfCheetahVel-v0",
            kwargs={"split": "train"},
            eval_kwargs={"split": "test"},
            num_actors=8,
        ),
        model=small_model(n_layers=2, context_len=100, pos_emb="rope"),
        agent=continuous_agent(),
        explore=ExplorationConfig(
            eps_start=0.5, eps_end=0.1, anneal_env_steps=50_000, late_trial_fraction=1.0
        ),
        replay=ReplayConfig(batch_size=16),
        collect_steps=50,
        updates_per_collect=50,
        learning_starts=5_000,
        total_env_steps=150_000,
        eval_every=2_000,
        eval_trials=8,
        checkpoint_every=1_000,
        exp_name="half-cheetah-vel",
    )


@preset("metaworld-reach")
def metaworld_reach() -> Config:
    """Meta-World ML1 reach on 2 CPU cores (needs icrl[metaworld]), evaluated on held-out goals.

    k-shot trials of 3 episodes of 50 steps (a scripted reach succeeds in ~20) with a hidden goal per trial;
    a small Transformer holds the whole 150-step trial. Trains on the 50 ML1 train goals, evaluates on the
    50 held-out test goals."""
    return Config(
        env=EnvConfig(
            id="icrl/MetaWorldML1-v0",
            kwargs={"task": "reach-v3", "split": "train", "episode_steps": 50, "episodes_per_trial": 3},
            eval_kwargs={"split": "test"},
            num_actors=8,
        ),
        model=small_model(n_layers=2, context_len=150),
        agent=continuous_agent(),
        explore=ExplorationConfig(eps_start=0.5, eps_end=0.1, anneal_env_steps=40_000),
        replay=ReplayConfig(batch_size=16),
        collect_steps=50,
        updates_per_collect=40,
        learning_starts=4_000,
        total_env_steps=200_000,
        eval_every=500,
        eval_trials=16,
        checkpoint_every=500,
        exp_name="metaworld-reach",
    )


@preset("metaworld-reach-w16")
def metaworld_reach_w16() -> Config:
    """Meta-World ML1 reach: a sliding 16-step window, HalfCheetahVel's learner settings, 5x the updates.

    Filtered BC off, 3-step targets, 256-256 heads, d_model 128, batch 32, a 16-step window instead of the
    whole 150-step trial (38,200 updates in 80k env steps, ~70 min on one CPU core). It reached 59-67%
    success on held-out goals on 3 seeds, +42 points above its memory-free control, with the rise from
    episode 1 to 3 owed to memory (RESULTS.md); the plain metaworld-reach preset is unstable."""
    base = metaworld_reach()
    return replace(
        base,
        model=replace(
            base.model,
            context_len=16,
            d_model=128,
            encoder_hidden=(256,),
            actor_hidden=(256, 256),
            critic_hidden=(256, 256),
        ),
        agent=replace(base.agent, bc_weight=0.0, n_step=3),
        replay=replace(base.replay, batch_size=32),
        updates_per_collect=200,
        total_env_steps=80_000,
        eval_every=2_000,
        checkpoint_keep_every=5_000,
        exp_name="metaworld-reach-w16",
    )


def amago2_agent(base: AgentConfig | None = None, **changes: Any) -> AgentConfig:
    """The AMAGO-2 update for many tasks at once: a classification critic over symlog return bins and a
    filtered-imitation actor, both blind to each task's reward scale (PopArt off: the bins fix the scale);
    the other fields from `base` (default: the defaults)."""
    agent = replace(base or AgentConfig(), critic="classification", actor_objective="imitation", popart=False)
    return replace(agent, **changes)


MULTITASK_GRID_TASKS: tuple[dict[str, Any], ...] = (
    {"id": "icrl/TMaze-v0", "kwargs": {"length": 20}, "name": "tmaze-20"},
    {"id": "icrl/MetaFrozenLake-v0", "kwargs": {"size": 4}, "name": "frozen-lake"},
    {"id": "icrl/DarkKeyToDoor-v0", "kwargs": {"size": 4, "episode_length": 20}, "name": "dark-key-door"},
    {"id": "icrl/GoalGrid-v0", "name": "goal-grid"},
)
"""The grid tasks of `multitask-grid`, in trials of 100 steps each (as many episodes as fit)."""


@preset("multitask-grid")
def multitask_grid() -> Config:
    """One agent over T-Maze 20, MetaFrozenLake 4x4, DarkKeyToDoor 4x4 and GoalGrid 5x5 (AMAGO-2 update).

    A task drawn per trial of 100 steps, the whole trial in context; the agent is not told the task and
    must infer it from the trial. The tasks' single-env presets' grid settings. At a quarter of the budget
    (100k env steps, one seed) it had learned none of the tasks; no full-budget run is recorded."""
    return grid_meta(
        EnvConfig(task_list=copy.deepcopy(MULTITASK_GRID_TASKS), trial_steps=100),
        context_len=100,
        agent=amago2_agent(),
        total_env_steps=400_000,
        exp_name="multitask-grid",
    )


@preset("multitask-popgym")
def multitask_popgym() -> Config:
    """One agent over the six POPGym Easy envs of the POPGym benchmark (AMAGO-2 update, popgym-cpu's model).

    A task drawn per episode; observations padded to the widest, actions masked per task (27 actions:
    CountRecall's). 300k env steps, 50k per env on average (the POPGym benchmark's budget per env). The
    critic is sized for 2 CPU cores: 2 critics x 2 discounts (0.9, 0.999) x 64 bins per action run 7.3
    updates/s on one thread where 4 x 7 x 128 ran 0.31 (the bins' output layer is most of an update).
    popgym-cpu's reward multiplier of 100 matters with the bins: without it RepeatPreviousEasy ended at -0.40
    and -0.26 after 300k env steps (2 seeds; random -0.51), with it seed 0 was at 0.72 after 50k.
    Evaluations every 1,000 updates (each plays 32 episodes of every env)."""
    base = popgym_cpu()
    ids = tuple(
        f"popgym-{name}-v0"
        for name in (
            "RepeatPreviousEasy", "RepeatFirstEasy", "AutoencodeEasy",
            "CountRecallEasy", "PositionOnlyCartPoleEasy", "MineSweeperEasy",
        )
    )  # fmt: skip
    # popgym-cpu's agent (its reward multiplier of 100 included) with the AMAGO-2 update
    agent = amago2_agent(base.agent, num_critics=2, extra_gammas=(0.9,), critic_bins=64)
    return replace(
        base,
        env=EnvConfig(ids=ids, num_actors=12),
        agent=agent,
        total_env_steps=300_000,
        eval_every=1_000,
        exp_name="multitask-popgym",
    )


ML10_TRAIN = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-close-v3", "button-press-topdown-v3",
    "peg-insert-side-v3", "window-open-v3", "sweep-v3", "basketball-v3",
)  # fmt: skip
"""Meta-World ML10's 10 training task families (metaworld.ML10().train_classes)."""
ML10_TEST = ("drawer-open-v3", "door-close-v3", "shelf-place-v3", "sweep-into-v3", "lever-pull-v3")
"""ML10's 5 held-out task families (metaworld.ML10().test_classes)."""


def metaworld_tasks(families: tuple[str, ...], split: str) -> tuple[dict[str, Any], ...]:
    """A task list of Meta-World ML1 families, each with its hidden goals of `split`."""
    return tuple(
        {"id": "icrl/MetaWorldML1-v0", "kwargs": {"task": name, "split": split}, "name": name[: -len("-v3")]}
        for name in families
    )


@preset("metaworld-ml10")
def metaworld_ml10() -> Config:
    """Meta-World ML10 (needs icrl[metaworld]): one agent over 10 task families, scored on 5 held-out ones.

    A family and a hidden goal per trial of 3 episodes of 150 steps, the whole trial in context; the agent
    is not told the family. Evaluation plays the 5 held-out families (`env.eval_task_list`). The AMAGO-2
    update, the continuous-control critic settings. Sized for a GPU: it builds and runs on a CPU, but its
    budget there is days; no learning run recorded."""
    return Config(
        env=EnvConfig(
            task_list=metaworld_tasks(ML10_TRAIN, "train"),
            eval_task_list=metaworld_tasks(ML10_TEST, "test"),
            kwargs={"episode_steps": 150, "episodes_per_trial": 3},
            num_actors=20,
        ),
        model=wide_model(d_model=256, n_layers=3, d_ff=1024, context_len=450),
        agent=amago2_agent(continuous_agent()),
        explore=ExplorationConfig(eps_start=0.5, eps_end=0.1, anneal_env_steps=500_000),
        replay=ReplayConfig(batch_size=32),
        collect_steps=50,
        updates_per_collect=100,
        learning_starts=20_000,
        total_env_steps=10_000_000,
        eval_every=2_000,
        eval_trials=10,
        checkpoint_every=2_000,
        exp_name="metaworld-ml10",
    )


@preset("bench-s")
def bench_s() -> Config:
    """The speed benchmark's config S: T-Maze 255, 256 timesteps of context, d_model 128, 3 layers.

    255 transitions per window (the window length is context_len + 1), 8 heads, feed-forward 512, batch 24,
    4 critics, 7 discounts, 8 actors. Precision auto: bfloat16 matmuls (2-3x the float32 GEMM rate) on CPUs
    with AVX-512 BF16 / AMX and on GPUs, float32 elsewhere (attention stays float32 on CPUs, see
    icrl.nets.transformer.attend)."""
    return Config(
        env=EnvConfig(id="icrl/TMaze-v0", kwargs={"length": 255}, num_actors=8),
        model=wide_model(n_layers=3, d_ff=512, context_len=255, precision="auto"),
        agent=AgentConfig(num_critics=4),
        replay=ReplayConfig(batch_size=24),
        updates_per_collect=8,
        exp_name="bench-s",
    )


# ---- override dicts (`icrl resume --set`, tests) ----


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update; an env's `kwargs` and `eval_kwargs` are replaced whole (they belong to one env)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        whole = key in ("kwargs", "eval_kwargs")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not whole:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """`config` with a nested override dict applied, e.g. `{"model": {"d_model": 64}, "seed": 1}`; every
    value is checked against its field's type (`config_from_dict`)."""
    return config_from_dict(_merge(dataclasses.asdict(config), overrides))


def build_config(*layers: Config | PresetFn | dict[str, Any], run_dir: Any = None) -> Config:
    """The defaults with the layers applied in order (later ones win): a nested override dict changes the
    fields it names; a `Config`, or a preset (`PRESETS[name]`), replaces the whole config so far. E.g.
    `build_config(PRESETS["tmaze-50"], {"seed": 3}, run_dir="runs/x")`."""
    cfg = Config()
    for layer in layers:
        if isinstance(layer, Config):
            cfg = copy.deepcopy(layer)
        elif callable(layer):
            cfg = layer()
        elif layer:
            cfg = apply_overrides(cfg, layer)
    if run_dir is not None:
        cfg = apply_overrides(cfg, {"run_dir": str(run_dir)})
    return cfg
