"""Typed configuration: the single source of defaults.

Every field carries a one-line doc that `icrl train --help` shows, and a numeric field its allowed range
in its type (`Annotated[int, POSITIVE]`), which `check_config` enforces and the help shows too. Presets
(`icrl.presets`) are named configs built from these defaults; the resolved config is saved as `config.json`
in every run directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import tyro


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric field, declared in its type: `Annotated[int, Range(1, MAX_ACTORS)]`.
    A bound of None is unbounded; an open end excludes its bound; infinities and NaN are never in a range
    (`--agent.conservative-weight inf` would turn every loss into inf). `check_config` skips an optional
    field left at None and checks a tuple field element by element."""

    low: float | None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:  # as in the error messages: ">= 1", "in (0.0, 1.0]", "finite"
        if self.low is None and self.high is None:
            return "finite"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


FINITE = Range(None)  # any real number but inf and NaN
POSITIVE = Range(1)  # counts and sizes
NON_NEGATIVE = Range(0)  # 0 often means "off"
POSITIVE_REAL = Range(0.0, low_open=True)
UNIT = Range(0.0, 1.0)  # probabilities and fractions: [0, 1]
RATE = Range(0.0, 1.0, low_open=True)  # discounts and moving-average rates: (0, 1]
BELOW_ONE = Range(0.0, 1.0, high_open=True)  # [0, 1): dropout, decays
# The most actors a run may have. Each is a Python env stepped in turn, with per-actor bookkeeping in the
# collector: making 10,000 T-Mazes took 5 s and one step of them all 0.5 s on one core, so 100,000 stall a
# run for minutes before its first update. The presets use 8 to 24. Actor processes (env.asynchronous)
# are further limited by open files and processes (`icrl.train.budget.check_actors`).
MAX_ACTORS = 4096

# The context length when the env states no trial length, and the longest one derived from a trial length:
# the cost of an update grows with it (attention quadratically), and longer trials are seen through
# sliding windows of this many steps.
DEFAULT_CONTEXT_LEN = 256

T = TypeVar("T")


def range_of(hint: Any) -> Range | None:
    """The `Range` in a field's type hint (read with `include_extras=True`), or None."""
    return next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Range)), None)


def _default_and_range(bounds: Range) -> Callable[[str], str]:
    return lambda default: f"(default: {default}; {bounds})"


def show_ranges_in_help(cls: type[T]) -> type[T]:
    """Class decorator: `--help` shows each ranged field's range after its default, e.g.
    `(default: 8; in [1, 4096])`. It adds tyro's hint to the field's type; the range itself stays where it
    is declared, the field's `Annotated` type."""
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        bounds = range_of(hint)
        if bounds is not None:
            hint_text = _default_and_range(bounds)
            cls.__annotations__[name] = Annotated[hint, tyro.conf.arg(help_behavior_hint=hint_text)]
    return cls


@show_ranges_in_help
@dataclass
class EnvConfig:
    """Which environment, how its trials are cut, and how many actors run it."""

    id: str = "icrl/TMaze-v0"
    """Gymnasium id of the environment (any registered id, e.g. `icrl/TMaze-v0` or `CartPole-v1`)."""
    kwargs: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)
    """Keyword arguments for `gymnasium.make` (set with `--env.KEY VALUE`)."""
    eval_kwargs: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)
    """Evaluation envs only: merged over `kwargs`, e.g. held-out tasks (set with `--eval-env.KEY VALUE`)."""
    trial_episodes: Annotated[int | None, POSITIVE] = None
    """Episodes per trial (None: the env's own default, else 1)."""
    trial_steps: Annotated[int | None, POSITIVE] = None
    """Steps per trial instead of a number of episodes (None: use episodes)."""
    trial_end: Literal["truncated", "terminated"] = "truncated"
    """A trial ended by its budget: truncated (bootstrapped) or terminated (no return after it)."""
    num_actors: Annotated[int, Range(1, MAX_ACTORS)] = 8
    """Parallel actors collecting experience."""
    asynchronous: bool = False
    """Run actors in subprocesses (gymnasium AsyncVectorEnv) instead of in-process."""
    ids: tuple[str, ...] = ()
    """Multi-task: train one agent on these env ids at once, a task drawn per trial (docs/multitask.md);
    `kwargs` go to every task. Empty: the single env `id`."""
    tasks: str | None = None
    """Multi-task: a JSON task list instead of `ids`: [{"id": ..., "kwargs": {...}, "name": ...,
    "random_return": ..., "best_return": ...}, ...] (docs/multitask.md). A run copies it into
    `task_list` when it starts and reads the file no more."""
    task_list: tyro.conf.Suppress[tuple[dict[str, Any], ...]] = ()
    """Multi-task: the task list itself (what a `tasks` file holds), as presets and config.json give it;
    it wins over the `tasks` file, which a run then names only as its origin."""
    eval_tasks: str | None = None
    """Multi-task: a JSON task list (the `tasks` format) that evaluation plays instead of the training tasks,
    e.g. held-out tasks; their spaces must match the training tasks'. A run copies it into
    `eval_task_list`."""
    eval_task_list: tyro.conf.Suppress[tuple[dict[str, Any], ...]] = ()
    """Multi-task: the evaluation task list itself (what an `eval_tasks` file holds; wins over the file)."""
    task_id: bool = False
    """Multi-task: append a one-hot task id to the observation (default: the agent infers the task)."""

    @property
    def multitask(self) -> bool:
        """Whether this trains one agent on several tasks (`ids`, `tasks` or `task_list`)."""
        return bool(self.ids or self.tasks or self.task_list)

    def describe_tasks(self) -> str:
        """The tasks in one line, for messages: the task file, else the listed tasks' names, else the ids."""
        listed = ",".join(str(task.get("name") or task.get("id")) for task in self.task_list)
        return self.tasks or listed or ",".join(self.ids)


@show_ranges_in_help
@dataclass
class ModelConfig:
    """Timestep encoder, sequence model and heads."""

    kind: Literal["transformer", "gru", "lstm", "ssm", "mlp"] = "transformer"
    """Sequence model; `ssm`: diagonal linear recurrences (LRU); `mlp` is the memory-free control."""
    d_model: Annotated[int, POSITIVE] = 64
    """Width of the sequence model (64: twice the updates per second of 128 on a CPU; a GPU affords more)."""
    n_layers: Annotated[int, POSITIVE] = 2
    """Sequence model layers."""
    n_heads: Annotated[int, POSITIVE] = 4
    """Attention heads (transformer)."""
    d_ff: Annotated[int | None, POSITIVE] = None
    """Feed-forward width (transformer; None: 4 * d_model)."""
    dropout: Annotated[float, BELOW_ONE] = 0.0
    """Dropout inside the sequence model."""
    pos_emb: Literal["learned", "rope", "none"] = "rope"
    """Position embedding over the time index inside the trial (transformer). rope: RepeatPreviousEasy solved
    at 15k env steps, where learned positions were still at -0.23 after 48k; T-Maze 20 and 50 alike."""
    sigma_reparam: bool = True
    """σReparam spectral reparameterisation of the transformer's linear layers."""
    normformer: bool = True
    """Normformer's extra LayerNorms (after attention and inside the feed-forward)."""
    state_size: Annotated[int | None, POSITIVE] = None
    """Complex state channels per layer (ssm; None: d_model)."""
    context_len: Annotated[int | None, POSITIVE] = None
    """Context length L: training windows hold L transitions; rollouts attend to the last L steps (None: the
    env's trial length when it states an episode limit, at most 256, else 256; set when the run starts)."""
    max_time: Annotated[int | None, POSITIVE] = None
    """Learned positions: size of the table over the trial's time index (None: context_len + 1; later
    times share the last embedding). Set it to the longest trial when trials are longer than the context."""
    small_image_cnn: Literal["grid", "deep"] = "grid"
    """CNN of uint8 images under 36 pixels a side (grid views such as MiniGrid's 7x7): grid = 2x2
    convolutions of 16-32-64 channels and one max-pool; deep = three 3x3 convolutions of 32-64 channels,
    140x the multiply-adds (runs recorded before 2026-12-07 have it). Larger images use the DQN stack."""
    encoder_hidden: Annotated[tuple[int, ...], POSITIVE] = (64,)
    """Hidden widths of the timestep encoder MLP."""
    actor_hidden: Annotated[tuple[int, ...], POSITIVE] = (64,)
    """Hidden widths of the actor head."""
    critic_hidden: Annotated[tuple[int, ...], POSITIVE] = (64, 64)
    """Hidden widths of each critic."""
    box_policy: Literal["tanh_gaussian", "tanh_mixture", "beta"] = "tanh_gaussian"
    """Box actions: the policy family per discount (tanh-squashed Gaussian, mixture of those, or Beta)."""
    mixture_components: Annotated[int, POSITIVE] = 4
    """Components of the `tanh_mixture` policy."""
    precision: Literal["float32", "bfloat16", "auto"] = "float32"
    """Compute dtype of the sequence model and critic hidden layers (bfloat16 autocast; Q values, losses,
    weights and rollouts stay float32). Pays on GPUs and on CPUs with AVX-512 BF16 / AMX; auto: bfloat16
    where the device has it in hardware, else float32."""

    @property
    def context(self) -> int:
        """`context_len`, or DEFAULT_CONTEXT_LEN while it is left to the env (an agent made outside a run)."""
        return DEFAULT_CONTEXT_LEN if self.context_len is None else self.context_len


@show_ranges_in_help
@dataclass
class AgentConfig:
    """The learning update: critics, actor losses, optimiser."""

    gamma: Annotated[float, RATE] = 0.999
    """Main discount: the one the rollout policy uses unless `acting_gamma` names another."""
    extra_gammas: Annotated[tuple[float, ...] | None, RATE] = None
    """Additional discounts trained in parallel (multi-gamma). None: the action kind's: 0.1 0.9 0.95 0.97 0.99
    0.995 for Discrete actions, 0.95 alone for Box and MultiBinary (set when the run starts)."""
    acting_gamma: Annotated[float | None, RATE] = None
    """Discount whose actor head acts in rollouts and evaluation, one of the trained ones (None: `gamma`)."""
    num_critics: Annotated[int | None, POSITIVE] = None
    """Critics in the ensemble (None: the action kind's: 4 for Discrete actions, 2 for Box, MultiBinary)."""
    critic_subset: Annotated[int, POSITIVE] = 2
    """Targets take the minimum over a random subset of this many critics."""
    tau: Annotated[float, RATE] = 0.003
    """EMA rate of the target networks, per update."""
    pg_weight: Annotated[float, NON_NEGATIVE] = 1.0
    """Weight of the -Q policy-gradient actor term (0 disables it)."""
    bc_weight: Annotated[float, NON_NEGATIVE] = 0.1
    """Weight of the filtered behaviour-cloning actor term."""
    critic_weight: Annotated[float, NON_NEGATIVE] = 10.0
    """Weight of the critic loss in the total loss."""
    filter: Literal["binary", "exp", "leaky", "none"] = "binary"
    """Advantage filter of the behaviour-cloning term (none: every action imitated; with pg_weight 0 that is
    plain behaviour cloning)."""
    exp_filter_beta: Annotated[float, POSITIVE_REAL] = 1.0
    """Temperature of the exponential filter."""
    reward_multiplier: Annotated[float, FINITE] = 1.0
    """Rewards are multiplied by this inside the critic target."""
    n_step: Annotated[int, POSITIVE] = 1
    """n of the n-step critic targets (1: one-step TD)."""
    popart: bool = True
    """PopArt normalisation of value targets."""
    popart_beta: Annotated[float, RATE] = 5e-4
    """EMA rate of PopArt's statistics."""
    critic: Literal["regression", "classification"] = "regression"
    """regression: Q values fit by squared TD error (AMAGO). classification: each Q is a softmax over
    `critic_bins` symlog-return bins fit by two-hot cross entropy, read as symexp of the bins' expectation
    (AMAGO-2; needs `popart` False, since the bins already fix the scale)."""
    critic_bins: Annotated[int, Range(2, 1024)] = 128
    """classification critic: number of bins, evenly spaced in symlog space."""
    critic_bins_low: Annotated[float, Range(-30.0, 0.0, high_open=True)] = -10.0
    """classification critic: lowest bin, in symlog units (-10: returns down to about -2.2e4)."""
    critic_bins_high: Annotated[float, Range(0.0, 30.0, low_open=True)] = 10.0
    """classification critic: highest bin, in symlog units (10: returns up to about 2.2e4)."""
    conservative_weight: Annotated[float | None, NON_NEGATIVE] = None
    """Weight of a conservative (CQL-style) critic term, relative to the TD loss: the critics' soft maximum
    over actions minus the stored action's value (Box/MultiBinary: the policy's sampled actions). Offline,
    an unchecked critic overvalues actions the data lacks. None: 1 for an offline-only run (--offline-data
    with --total-env-steps 0), else 0 (off; online it kept T-Maze from learning at all)."""
    actor_objective: Literal["amago", "imitation"] = "amago"
    """amago: pg_weight x (-Q) + bc_weight x filtered BC. imitation: filtered BC only (AMAGO-2), no -Q term
    whatever pg_weight says, and the critic targets average the critics instead of a subset's minimum."""
    num_action_samples: Annotated[int | None, POSITIVE] = None
    """Box/MultiBinary actions: actions sampled per discount for the critic target's value, -Q and filter
    (None: the action kind's, 2)."""
    action_bound_eps: Annotated[float, BELOW_ONE] = 1e-3
    """Box actions: stored actions are clipped to ±(1 - this) before the BC log-likelihood (finite atanh)."""
    lr: Annotated[float, POSITIVE_REAL] = 1e-4
    """AdamW learning rate."""
    warmup_updates: Annotated[int, NON_NEGATIVE] = 200
    """Linear learning-rate warm-up length, in updates."""
    lr_decay_to: Annotated[float, NON_NEGATIVE] = 1.0
    """After warm-up the learning rate falls linearly to lr x this at total_env_steps (1.0: constant)."""
    weight_decay: Annotated[float, NON_NEGATIVE] = 1e-4
    """AdamW weight decay."""
    grad_clip: Annotated[float, POSITIVE_REAL] = 1.0
    """Gradient-norm clip."""


# The agent fields left to the action kind (None in AgentConfig), by whether actions are sampled to be
# judged (Box, MultiBinary) or all scored at once (Discrete). With sampled actions every critic judges each
# discount's samples at every timestep (batch x window x discounts x samples rows per critic, the bulk of
# an update on a CPU): Pendulum-v1 with the Discrete numbers trained at 0.5 updates/s on one core, with
# these at 5 (the continuous-control presets' numbers, measured on Pendulum, HalfCheetahVel and Meta-World).
ACTION_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "discrete": {
        "extra_gammas": (0.1, 0.9, 0.95, 0.97, 0.99, 0.995), "num_critics": 4, "num_action_samples": 4
    },
    "sampled": {"extra_gammas": (0.95,), "num_critics": 2, "num_action_samples": 2},
}


DATA_CONSERVATIVE_WEIGHT = 1.0
"""`agent.conservative_weight` of an offline-only run that leaves it unset. Measured with the offline
benchmark (`benchmarks/offline.py`, 3 seeds): without it the critic overvalues the actions a dataset lacks
and the actor follows them (T-Maze 50 from greedy + epsilon-0.3 trials: 0.00 / 0.505 / 0.495 on 200
trials; with it 1.0 on each). Offline-to-online runs keep it off: with it on, T-Maze 50 from random data
never succeeded in 60k env steps."""


def conservative_weight(agent: AgentConfig) -> float:
    """The conservative critic term's weight, 0 while it is left unset (an agent made outside a run)."""
    return agent.conservative_weight or 0.0


def agent_for_action_kind(agent: AgentConfig, sampled_actions: bool) -> AgentConfig:
    """`agent` with its fields left to the action kind (None) filled in from ACTION_KIND_DEFAULTS."""
    defaults = ACTION_KIND_DEFAULTS["sampled" if sampled_actions else "discrete"]
    unset = {name: value for name, value in defaults.items() if getattr(agent, name) is None}
    return dataclasses.replace(agent, **unset) if unset else agent


@show_ranges_in_help
@dataclass
class ExplorationConfig:
    """Exploration: epsilon-greedy for Discrete actions; for Box actions epsilon is the std of Gaussian noise
    added to the [-1, 1] action (then clipped); for MultiBinary each bit flips with probability epsilon."""

    eps_start: Annotated[float, UNIT] = 1.0
    """Largest per-actor epsilon at the start of training."""
    eps_end: Annotated[float, UNIT] = 0.05
    """Largest per-actor epsilon after annealing."""
    eps_min: Annotated[float, UNIT] = 0.0
    """Smallest per-actor epsilon: each actor draws its epsilon in [eps_min, current max] per trial."""
    anneal_env_steps: Annotated[int, NON_NEGATIVE] = 20_000
    """Env steps over which the largest epsilon goes from eps_start to eps_end."""
    late_trial_fraction: Annotated[float, UNIT] = 0.2
    """Within-trial schedule: epsilon shrinks linearly to this fraction of itself by the trial's end."""
    sample_actions: bool = True
    """Sample from the policy (else take its greedy action) before applying epsilon."""


@show_ranges_in_help
@dataclass
class ReplayConfig:
    """The replay buffer on disk and its sampler."""

    max_trials: Annotated[int, POSITIVE] = 20_000
    """FIFO capacity in trials (protected trials don't count)."""
    batch_size: Annotated[int, POSITIVE] = 24
    """Windows per training batch."""
    weight_by_length: bool = False
    """Sample trials proportionally to their length (else uniformly)."""
    cache_gb: Annotated[float, NON_NEGATIVE] = 2.0
    """RAM cache of decoded trials."""
    prefetch: Annotated[int, NON_NEGATIVE] = 2
    """Batches sampled ahead in a background thread (0: sample in the learner's thread; runs with the same
    seed, on CPU with one torch thread, are then reproducible bit for bit)."""
    relabel: Annotated[float, UNIT] = 0.0
    """Fraction of sampled trials rewritten with goals they achieved (hindsight relabelling; goal-conditioned
    envs with a `relabel_spec`, one-episode trials)."""
    offline_fraction: Annotated[float | None, UNIT] = None
    """With --offline-data: share of each batch's windows drawn from the dataset's trials (the protected
    area), the rest from collected ones (None: in proportion to their counts, uniform over all trials)."""


@show_ranges_in_help
@dataclass
class Config:
    """A full training run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    explore: ExplorationConfig = field(default_factory=ExplorationConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    seed: Annotated[int, NON_NEGATIVE] = 0
    """Random seed (networks, sampling, environments)."""
    total_env_steps: Annotated[int, NON_NEGATIVE] = 50_000
    """Stop after this many environment steps (summed over actors)."""
    collect_steps: Annotated[int, POSITIVE] = 64
    """Env steps per actor between two rounds of updates."""
    updates_per_collect: Annotated[int, NON_NEGATIVE] = 64
    """Gradient updates per round (update-to-data ratio = this / (collect_steps * num_actors): 1/8 with the
    default 8 actors; 1/64 left T-Maze 20 unsolved after 60k env steps)."""
    learning_starts: Annotated[int, NON_NEGATIVE] = 1_000
    """Env steps collected before the first update."""
    offline_data: tuple[str, ...] = ()
    """Dataset directories (`icrl collect`, `icrl dataset import`) copied into the run's protected replay
    area; with total_env_steps 0 the run trains on them only (offline), else offline-to-online."""
    offline_updates: Annotated[int, NON_NEGATIVE] = 0
    """With --offline-data: updates on the data before any env step (all of an offline-only run's updates)."""
    collectors: Annotated[int, NON_NEGATIVE] = 0
    """Collector processes acting while the learner trains, num_actors / collectors actors each (0: none)."""
    async_lead_rounds: Annotated[int, POSITIVE] = 1
    """With collectors: rounds of env steps the collectors may gather ahead of the learner's updates."""
    eval_every: Annotated[int, NON_NEGATIVE] = 200
    """Evaluate every this many updates (0: only at the end)."""
    eval_trials: Annotated[int, POSITIVE] = 16
    """Trials per evaluation."""
    eval_greedy: bool = True
    """Greedy actions during evaluation (else sampled)."""
    checkpoint_every: Annotated[int, NON_NEGATIVE] = 500
    """Save a checkpoint every this many updates (and at the end)."""
    checkpoint_keep_every: Annotated[int, NON_NEGATIVE] = 0
    """Keep for good the checkpoints at multiples of this many updates (0: only the newest 3)."""
    weights_ema: Annotated[float, BELOW_ONE] = 0.0
    """Per-update decay of a moving average of the weights, saved for `icrl eval --weights ema` (0: off)."""
    eval_ema: bool = False
    """Also evaluate that moving average at each evaluation, on the same trials (logged as eval_ema/...)."""
    target_return: Annotated[float | None, FINITE] = None
    """Stop early once the evaluation return reaches this (None: never)."""
    run_dir: str | None = None
    """Run directory (default: runs/<env>__<exp>__<seed>__<time>)."""
    exp_name: str = "icrl"
    """Experiment name, part of the default run directory name."""
    device: str = "cpu"
    """Torch device of the learner and policy (`cpu`, `cuda`, `cuda:1`)."""
    threads: Annotated[int | None, POSITIVE] = None
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
        """All discounts, the main one last (its index is -1); extra ones left to the action kind (None)
        count as the Discrete kind's until the trainer resolves them (`agent_for_action_kind`)."""
        extra_gammas = self.agent.extra_gammas
        if extra_gammas is None:
            extra_gammas = ACTION_KIND_DEFAULTS["discrete"]["extra_gammas"]
        extra = tuple(g for g in extra_gammas if g != self.agent.gamma)
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


def field_ranges(cls: type | None = None) -> dict[str, Range]:
    """Every ranged field of the config, by dotted path (`{"env.num_actors": Range(1, 4096), ...}`), in
    declaration order."""
    return dict(_walk_ranges(cls or Config, ""))


def _walk_ranges(cls: type, prefix: str) -> Iterator[tuple[str, Range]]:
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        bare = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
        if dataclasses.is_dataclass(bare):
            yield from _walk_ranges(bare, f"{prefix}{name}.")
        elif (bounds := range_of(hint)) is not None:
            yield f"{prefix}{name}", bounds


def check_config(cfg: Config) -> None:
    """Raise ValueError listing every numeric field outside its declared `Range` and the cross-field
    rules, so that e.g. `--replay.batch-size 0` or `--agent.gamma 1.5` fails before a run starts instead of
    deep in the data loader, or never."""
    problems = []
    for path, bounds in field_ranges().items():
        value: Any = cfg
        for part in path.split("."):
            value = getattr(value, part)
        items = value if isinstance(value, tuple) else (value,)
        if any(item is not None and item not in bounds for item in items):
            infinite = any(isinstance(item, float) and not math.isfinite(item) for item in items)
            finite = "finite and " if infinite and str(bounds) != "finite" else ""
            problems.append(f"{path} must be {finite}{bounds}, got {value!r}")
    subset, critics = cfg.agent.critic_subset, cfg.agent.num_critics
    if critics is None:  # left to the action kind: the fewest it may get
        critics = min(kind["num_critics"] for kind in ACTION_KIND_DEFAULTS.values())
    if subset > critics:
        problems.append(f"agent.critic_subset ({subset}) must be <= agent.num_critics ({critics})")
    if cfg.agent.critic == "classification" and cfg.agent.popart:
        problems.append(
            "agent.popart normalises regression values only: with agent.critic classification set "
            "agent.popart False (--agent.no-popart)"
        )
    if cfg.collectors > 0 and cfg.env.num_actors % cfg.collectors:
        problems.append(
            f"env.num_actors ({cfg.env.num_actors}) must be a multiple of collectors ({cfg.collectors})"
        )
    if cfg.wandb and not cfg.wandb_project.strip():
        problems.append("wandb_project must not be empty")
    if cfg.eval_ema and cfg.weights_ema == 0.0:
        problems.append("eval_ema needs a moving average of the weights: set weights_ema (e.g. 0.999)")
    if cfg.env.ids and (cfg.env.tasks or cfg.env.task_list):
        problems.append("give the tasks either as env.ids or as an env.tasks file, not both")
    if (cfg.env.eval_tasks or cfg.env.eval_task_list) and not cfg.env.multitask:
        problems.append(
            "env.eval_tasks replaces the training tasks of a multi-task run: give env.ids or env.tasks"
        )
    problems += _offline_problems(cfg)
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))


def _offline_problems(cfg: Config) -> list[str]:
    """The cross-field rules of training from a dataset (`offline_data`)."""
    problems = []
    if not cfg.offline_data:
        if cfg.offline_updates:
            problems.append("offline_updates needs offline_data (a dataset directory: --offline-data DIR)")
        if cfg.replay.offline_fraction is not None:
            problems.append("replay.offline_fraction needs offline_data (--offline-data DIR)")
        return problems
    if cfg.total_env_steps == 0 and cfg.offline_updates == 0:
        problems.append("an offline-only run (total_env_steps 0) needs offline_updates > 0")
    if cfg.collectors:
        problems.append("offline_data does not combine with collectors (asynchronous collection)")
    return problems


RECORDED_BEFORE = (("agent", "conservative_weight", 0.0), ("model", "small_image_cnn", "deep"))
"""(section, field, value) of the settings a run's config.json may lack because it predates them: the
value such a run was trained with (the term off, the image CNN of the time)."""


def load_config(path: str | Path) -> Config:
    """A run's recorded config (its config.json). A run recorded before a setting existed was trained
    without it: such settings are read as what it had then, not as today's defaults (`RECORDED_BEFORE`)."""
    from icrl.envs.minigrid_adapter import SPREAD_CODES, is_minigrid_id

    data = json.loads(Path(path).read_text())
    for section, key, then in RECORDED_BEFORE:
        if isinstance(data.get(section), dict) and key not in data[section]:
            data[section] = {**data[section], key: then}
    env = data.get("env")
    if isinstance(env, dict) and isinstance(env.get("id"), str) and is_minigrid_id(env["id"]):
        kwargs = env.get("kwargs") if isinstance(env.get("kwargs"), dict) else {}
        if SPREAD_CODES not in kwargs:  # trained on MiniGrid's raw image codes
            data["env"] = {**env, "kwargs": {**kwargs, SPREAD_CODES: False}}
    return config_from_dict(data)
