"""Typed configuration: the single source of defaults.

Every field carries a one-line doc that `icrl train --help` shows. Presets (`PRESETS`) are named
overrides of these defaults; the resolved config is saved as `config.json` in every run directory.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro


@dataclass
class EnvConfig:
    """Which environment, how its trials are cut, and how many actors run it."""

    id: str = "icrl/TMaze-v0"
    """Gymnasium id of the environment (any registered id, e.g. `icrl/TMaze-v0` or `CartPole-v1`)."""
    kwargs: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)
    """Keyword arguments for `gymnasium.make` (set with `--env.KEY VALUE`)."""
    eval_kwargs: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)
    """Evaluation envs only: merged over `kwargs`, e.g. held-out tasks (set with `--eval-env.KEY VALUE`)."""
    trial_episodes: int | None = None
    """Episodes per trial (None: the env's own default, else 1)."""
    trial_steps: int | None = None
    """Steps per trial instead of a number of episodes (None: use episodes)."""
    trial_end: Literal["truncated", "terminated"] = "truncated"
    """A trial ended by its budget: truncated (bootstrapped) or terminated (no return after it)."""
    num_actors: int = 8
    """Parallel actors collecting experience."""
    asynchronous: bool = False
    """Run actors in subprocesses (gymnasium AsyncVectorEnv) instead of in-process."""


@dataclass
class ModelConfig:
    """Timestep encoder, sequence model and heads."""

    kind: Literal["transformer", "gru", "lstm", "ssm", "mlp"] = "transformer"
    """Sequence model; `ssm`: diagonal linear recurrences (LRU); `mlp` is the memory-free control."""
    d_model: int = 128
    """Width of the sequence model."""
    n_layers: int = 2
    """Sequence model layers."""
    n_heads: int = 8
    """Attention heads (transformer)."""
    d_ff: int | None = None
    """Feed-forward width (transformer; None: 4 * d_model)."""
    dropout: float = 0.0
    """Dropout inside the sequence model."""
    pos_emb: Literal["learned", "rope", "none"] = "learned"
    """Position embedding over the time index inside the trial (transformer)."""
    sigma_reparam: bool = True
    """σReparam spectral reparameterisation of the transformer's linear layers."""
    normformer: bool = True
    """Normformer's extra LayerNorms (after attention and inside the feed-forward)."""
    state_size: int | None = None
    """Complex state channels per layer (ssm; None: d_model)."""
    context_len: int = 256
    """Context length L: training windows hold L transitions; rollouts attend to the last L steps."""
    max_time: int | None = None
    """Learned positions: size of the table over the trial's time index (None: context_len + 1; later
    times share the last embedding). Set it to the longest trial when trials are longer than the context."""
    encoder_hidden: tuple[int, ...] = (128,)
    """Hidden widths of the timestep encoder MLP."""
    actor_hidden: tuple[int, ...] = (128,)
    """Hidden widths of the actor head."""
    critic_hidden: tuple[int, ...] = (128, 128)
    """Hidden widths of each critic."""
    box_policy: Literal["tanh_gaussian", "tanh_mixture", "beta"] = "tanh_gaussian"
    """Box actions: the policy family per discount (tanh-squashed Gaussian, mixture of those, or Beta)."""
    mixture_components: int = 4
    """Components of the `tanh_mixture` policy."""
    precision: Literal["float32", "bfloat16", "auto"] = "float32"
    """Compute dtype of the sequence model and critic hidden layers (bfloat16 autocast; Q values, losses,
    weights and rollouts stay float32). Pays on GPUs and on CPUs with AVX-512 BF16 / AMX; auto: bfloat16
    where the device has it in hardware, else float32."""


@dataclass
class AgentConfig:
    """The learning update (DESIGN §6)."""

    gamma: float = 0.999
    """Main discount: the one the rollout policy uses unless `acting_gamma` names another."""
    extra_gammas: tuple[float, ...] = (0.1, 0.9, 0.95, 0.97, 0.99, 0.995)
    """Additional discounts trained in parallel (multi-gamma)."""
    acting_gamma: float | None = None
    """Discount whose actor head acts in rollouts and evaluation, one of the trained ones (None: `gamma`)."""
    num_critics: int = 4
    """Critics in the ensemble."""
    critic_subset: int = 2
    """Targets take the minimum over a random subset of this many critics."""
    tau: float = 0.003
    """EMA rate of the target networks, per update."""
    pg_weight: float = 1.0
    """Weight of the -Q policy-gradient actor term (0 disables it)."""
    bc_weight: float = 0.1
    """Weight of the filtered behaviour-cloning actor term."""
    critic_weight: float = 10.0
    """Weight of the critic loss in the total loss."""
    filter: Literal["binary", "exp", "leaky"] = "binary"
    """Advantage filter of the behaviour-cloning term."""
    exp_filter_beta: float = 1.0
    """Temperature of the exponential filter."""
    reward_multiplier: float = 1.0
    """Rewards are multiplied by this inside the critic target."""
    n_step: int = 1
    """n of the n-step critic targets (1: one-step TD)."""
    popart: bool = True
    """PopArt normalisation of value targets."""
    popart_beta: float = 5e-4
    """EMA rate of PopArt's statistics."""
    num_action_samples: int = 4
    """Box/MultiBinary actions: actions sampled per discount for the critic target's value, -Q and filter."""
    action_bound_eps: float = 1e-3
    """Box actions: stored actions are clipped to ±(1 - this) before the BC log-likelihood (finite atanh)."""
    lr: float = 1e-4
    """AdamW learning rate."""
    warmup_updates: int = 200
    """Linear learning-rate warm-up length, in updates."""
    lr_decay_to: float = 1.0
    """After warm-up the learning rate falls linearly to lr x this at total_env_steps (1.0: constant)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""


@dataclass
class ExplorationConfig:
    """Exploration: epsilon-greedy for Discrete actions; for Box actions epsilon is the std of Gaussian noise
    added to the [-1, 1] action (then clipped); for MultiBinary each bit flips with probability epsilon."""

    eps_start: float = 1.0
    """Largest per-actor epsilon at the start of training."""
    eps_end: float = 0.05
    """Largest per-actor epsilon after annealing."""
    eps_min: float = 0.0
    """Smallest per-actor epsilon: each actor draws its epsilon in [eps_min, current max] per trial."""
    anneal_env_steps: int = 20_000
    """Env steps over which the largest epsilon goes from eps_start to eps_end."""
    late_trial_fraction: float = 0.2
    """Within-trial schedule: epsilon shrinks linearly to this fraction of itself by the trial's end."""
    sample_actions: bool = True
    """Sample from the policy (else take its greedy action) before applying epsilon."""


@dataclass
class ReplayConfig:
    """The replay buffer on disk and its sampler."""

    max_trials: int = 20_000
    """FIFO capacity in trials (protected trials don't count)."""
    batch_size: int = 24
    """Windows per training batch."""
    weight_by_length: bool = False
    """Sample trials proportionally to their length (else uniformly)."""
    cache_gb: float = 2.0
    """RAM cache of decoded trials."""
    prefetch: int = 2
    """Batches sampled ahead in a background thread (0: sample in the learner's thread; runs with the same
    seed, on CPU with one torch thread, are then reproducible bit for bit)."""
    relabel: float = 0.0
    """Fraction of sampled trials rewritten with goals they achieved (hindsight relabelling; goal-conditioned
    envs with a `relabel_spec`, one-episode trials)."""


@dataclass
class Config:
    """A full training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    explore: ExplorationConfig = field(default_factory=ExplorationConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    seed: int = 0
    """Random seed (networks, sampling, environments)."""
    total_env_steps: int = 50_000
    """Stop after this many environment steps (summed over actors)."""
    collect_steps: int = 64
    """Env steps per actor between two rounds of updates."""
    updates_per_collect: int = 8
    """Gradient updates per round (update-to-data ratio = this / (collect_steps * num_actors))."""
    learning_starts: int = 1_000
    """Env steps collected before the first update."""
    collectors: int = 0
    """Collector processes acting while the learner trains, num_actors / collectors actors each (0: none)."""
    async_lead_rounds: int = 1
    """With collectors: rounds of env steps the collectors may gather ahead of the learner's updates."""
    eval_every: int = 200
    """Evaluate every this many updates (0: only at the end)."""
    eval_trials: int = 16
    """Trials per evaluation."""
    eval_greedy: bool = True
    """Greedy actions during evaluation (else sampled)."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many updates (and at the end)."""
    checkpoint_keep_every: int = 0
    """Keep for good the checkpoints at multiples of this many updates (0: only the newest 3)."""
    weights_ema: float = 0.0
    """Per-update decay of a moving average of the weights, saved for `icrl eval --weights ema` (0: off)."""
    eval_ema: bool = False
    """Also evaluate that moving average at each evaluation, on the same trials (logged as eval_ema/...)."""
    target_return: float | None = None
    """Stop early once the evaluation return reaches this (None: never)."""
    run_dir: str | None = None
    """Run directory (default: runs/<env>__<exp>__<seed>__<time>)."""
    exp_name: str = "icrl"
    """Experiment name, part of the default run directory name."""
    device: str = "cpu"
    """Torch device of the learner and policy (`cpu`, `cuda`, `cuda:1`)."""
    threads: int | None = None
    """Torch CPU threads (None: torch's default)."""
    tensorboard: bool = True
    """Write TensorBoard event files."""
    wandb: bool = False
    """Also log every metrics row to Weights & Biases (needs `pip install 'icrl[wandb]'`)."""
    wandb_project: str = "icrl"
    """Weights & Biases project of the run (with --wandb)."""
    wandb_entity: str | None = None
    """Weights & Biases team or user (None: your default entity)."""
    wandb_mode: Literal["offline", "online"] = "offline"
    """offline: write to <run>/wandb only (upload later with `wandb sync`); online: stream to the server."""
    progress: bool = True
    """Show a progress bar (automatically off without a terminal)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @property
    def gammas(self) -> tuple[float, ...]:
        """All discounts, the main one last (its index is -1)."""
        extra = tuple(g for g in self.agent.extra_gammas if g != self.agent.gamma)
        return (*extra, self.agent.gamma)


def _coerce(path: str, value: Any, hint: Any) -> Any:
    """`value` checked against the field's type hint (and converted where that is lossless: a list for a
    tuple, an int for a float, a scalar for a one-element tuple as `--model.encoder-hidden 256` gives on
    the command line). Raises ValueError naming the field, so a bad `--set` or a hand-edited config.json
    fails here, not deep inside the network builder."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"config field {path} must be one of {list(args)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(path, value, option)
            except ValueError:
                continue
        names = " or ".join("None" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
        raise ValueError(f"config field {path} must be {names}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif origin is tuple:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return tuple(_coerce(f"{path}[{i}]", item, args[0]) for i, item in enumerate(items))
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a type this checker does not know: leave it to the consumer
    expected = getattr(hint, "__name__", str(hint))
    raise ValueError(f"config field {path} must be {expected}, got {value!r} ({type(value).__name__})")


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from `dataclasses.asdict` output (e.g. a run's config.json), checking each value
    against its field's type."""

    def build(cls: type, values: dict[str, Any], prefix: str) -> Any:
        if not isinstance(values, dict):
            section = prefix.rstrip(".") or "config"
            raise ValueError(f"config section {section} must be a dict, got {values!r}")
        kwargs: dict[str, Any] = {}
        fields = {f.name for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if key not in fields:
                raise ValueError(f"unknown config field {cls.__name__}.{key}")
            if dataclasses.is_dataclass(hints[key]):
                kwargs[key] = build(hints[key], value, f"{prefix}{key}.")
            else:
                kwargs[key] = _coerce(f"{prefix}{key}", value, hints[key])
        return cls(**kwargs)

    return build(Config, data, "")


# Ranges of the numeric fields, checked by `check_config`: (low, high, low is open, high is open); None is
# unbounded. Optional fields (None allowed) are checked only when set; tuple fields element by element.
_POSITIVE = (1, None, False, False)
_NON_NEGATIVE = (0, None, False, False)
_UNIT_OPEN_LOW = (0.0, 1.0, True, False)  # (0, 1]
_UNIT = (0.0, 1.0, False, False)  # [0, 1]
_POSITIVE_REAL = (0.0, None, True, False)
# The most actors a run may have. Each is a Python env stepped in turn, with per-actor bookkeeping in the
# collector: making 10,000 T-Mazes took 5 s and one step of them all 0.5 s on one core, so 100,000 stall a
# run for minutes before its first update. The presets use 8 to 24. Actor processes (env.asynchronous)
# are further limited by open files and processes (`icrl.train.budget.check_actors`).
MAX_ACTORS = 4096
FIELD_RANGES: dict[str, tuple[Any, Any, bool, bool]] = {
    "env.num_actors": (1, MAX_ACTORS, False, False),
    "env.trial_episodes": _POSITIVE,
    "env.trial_steps": _POSITIVE,
    "model.d_model": _POSITIVE,
    "model.n_layers": _POSITIVE,
    "model.n_heads": _POSITIVE,
    "model.d_ff": _POSITIVE,
    "model.dropout": (0.0, 1.0, False, True),
    "model.context_len": _POSITIVE,
    "model.max_time": _POSITIVE,
    "model.state_size": _POSITIVE,
    "model.encoder_hidden": _POSITIVE,
    "model.actor_hidden": _POSITIVE,
    "model.critic_hidden": _POSITIVE,
    "model.mixture_components": _POSITIVE,
    "agent.gamma": _UNIT_OPEN_LOW,
    "agent.extra_gammas": _UNIT_OPEN_LOW,
    "agent.num_critics": _POSITIVE,
    "agent.critic_subset": _POSITIVE,
    "agent.tau": _UNIT_OPEN_LOW,
    "agent.pg_weight": _NON_NEGATIVE,
    "agent.bc_weight": _NON_NEGATIVE,
    "agent.critic_weight": _NON_NEGATIVE,
    "agent.exp_filter_beta": _POSITIVE_REAL,
    "agent.n_step": _POSITIVE,
    "agent.popart_beta": _UNIT_OPEN_LOW,
    "agent.num_action_samples": _POSITIVE,
    "agent.action_bound_eps": (0.0, 1.0, False, True),
    "agent.lr": _POSITIVE_REAL,
    "agent.warmup_updates": _NON_NEGATIVE,
    "agent.weight_decay": _NON_NEGATIVE,
    "agent.grad_clip": _POSITIVE_REAL,
    "explore.eps_start": _UNIT,
    "explore.eps_end": _UNIT,
    "explore.eps_min": _UNIT,
    "explore.anneal_env_steps": _NON_NEGATIVE,
    "explore.late_trial_fraction": _UNIT,
    "replay.max_trials": _POSITIVE,
    "replay.batch_size": _POSITIVE,
    "replay.cache_gb": _NON_NEGATIVE,
    "replay.prefetch": _NON_NEGATIVE,
    "replay.relabel": _UNIT,
    "seed": _NON_NEGATIVE,
    "total_env_steps": _NON_NEGATIVE,
    "collect_steps": _POSITIVE,
    "updates_per_collect": _NON_NEGATIVE,
    "learning_starts": _NON_NEGATIVE,
    "collectors": _NON_NEGATIVE,
    "async_lead_rounds": _POSITIVE,
    "eval_every": _NON_NEGATIVE,
    "eval_trials": _POSITIVE,
    "checkpoint_every": _NON_NEGATIVE,
    "checkpoint_keep_every": _NON_NEGATIVE,
    "weights_ema": (0.0, 1.0, False, True),  # [0, 1)
    "threads": _POSITIVE,
}


def _in_range(value: float, low: Any, high: Any, low_open: bool, high_open: bool) -> bool:
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    return above and below


def _describe(low: Any, high: Any, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_config(cfg: Config) -> None:
    """Raise ValueError listing every numeric field outside its range (`FIELD_RANGES`) and the
    cross-field rules, so that e.g. `--replay.batch-size 0` or `--agent.gamma 1.5` fails before a run
    starts instead of deep in the data loader, or never."""
    problems = []
    for path, bounds in FIELD_RANGES.items():
        value: Any = cfg
        for part in path.split("."):
            value = getattr(value, part)
        for item in value if isinstance(value, tuple) else (value,):
            if item is not None and not _in_range(item, *bounds):
                problems.append(f"{path} must be {_describe(*bounds)}, got {value!r}")
                break
    subset, critics = cfg.agent.critic_subset, cfg.agent.num_critics
    if subset > critics:
        problems.append(f"agent.critic_subset ({subset}) must be <= agent.num_critics ({critics})")
    if cfg.collectors > 0 and cfg.env.num_actors % cfg.collectors:
        problems.append(
            f"env.num_actors ({cfg.env.num_actors}) must be a multiple of collectors ({cfg.collectors})"
        )
    if cfg.wandb and not cfg.wandb_project.strip():
        problems.append("wandb_project must not be empty")
    if cfg.eval_ema and cfg.weights_ema == 0.0:
        problems.append("eval_ema needs a moving average of the weights: set weights_ema (e.g. 0.999)")
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))


def load_config(path: str | Path) -> Config:
    return config_from_dict(json.loads(Path(path).read_text()))
