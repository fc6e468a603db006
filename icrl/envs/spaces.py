"""Space helpers shared by the trial wrapper, the collector and the replay code.

The agent never sees raw gymnasium action objects: the previous action enters every timestep as a flat
float vector (`prev_action`, see docs/ARCHITECTURE.md §1). The functions here define that encoding once,
so the wrapper (one action at a time, in the rollout hot path) and the collector or relabelling code
(whole batches at once) can never disagree about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

SUPPORTED_ACTION_SPACES = (spaces.Discrete, spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)
SUPPORTED_LEAF_OBS_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)

OBS_KEY = "obs"


def check_action_space(space: gym.Space) -> None:
    """Raise a ValueError naming the problem if `space` cannot be a TrialWrapper action space."""
    if not isinstance(space, SUPPORTED_ACTION_SPACES):
        raise ValueError(
            f"unsupported action space {space!r}: the trial wrapper supports "
            "Discrete, Box, MultiBinary and MultiDiscrete actions"
        )
    if isinstance(space, spaces.Box):
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(
                f"unsupported action space {space!r}: Box actions need finite bounds to be rescaled "
                "to [-1, 1]; clip them in a wrapper first"
            )
        if not np.issubdtype(space.dtype, np.floating):
            raise ValueError(f"unsupported action space {space!r}: Box actions must have a float dtype")


def action_feature_dim(space: gym.Space) -> int:
    """Length A of the flat `prev_action` vector for an action space.

    Discrete(n) -> n (one-hot); MultiDiscrete(nvec) -> sum(nvec) (concatenated one-hots);
    Box -> number of elements; MultiBinary -> number of bits.
    """
    check_action_space(space)
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(np.prod(space.shape))


def _multidiscrete_offsets(space: spaces.MultiDiscrete) -> tuple[np.ndarray, np.ndarray]:
    """Start column of each sub-action's one-hot block, and each sub-action's `start` value (flat)."""
    nvec = np.asarray(space.nvec, dtype=np.int64).reshape(-1)
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.int64)
    start = np.asarray(space.start, dtype=np.int64).reshape(-1)
    return offsets, start


def make_action_encoder(space: gym.Space) -> Callable[[Any], np.ndarray]:
    """Return a fast function mapping one agent-facing action to its float32 `prev_action` vector.

    The dispatch on the space type and all index tables are done here, once, so the returned function
    does only the per-step arithmetic. Box actions are expected in the agent's [-1, 1] scale (the
    TrialWrapper's action space) and are clipped to it. Every call returns a fresh array.
    """
    dim = action_feature_dim(space)
    if isinstance(space, spaces.Discrete):
        start = int(space.start)

        def encode_discrete(action: Any) -> np.ndarray:
            out = np.zeros(dim, dtype=np.float32)
            out[int(action) - start] = 1.0
            return out

        return encode_discrete
    if isinstance(space, spaces.MultiDiscrete):
        offsets, start = _multidiscrete_offsets(space)
        columns_base = offsets - start

        def encode_multidiscrete(action: Any) -> np.ndarray:
            out = np.zeros(dim, dtype=np.float32)
            out[columns_base + np.asarray(action, dtype=np.int64).reshape(-1)] = 1.0
            return out

        return encode_multidiscrete
    if isinstance(space, spaces.Box):

        def encode_box(action: Any) -> np.ndarray:
            return _clip_unit(np.asarray(action, dtype=np.float32).reshape(dim))

        return encode_box

    def encode_multibinary(action: Any) -> np.ndarray:
        return np.asarray(action, dtype=np.float32).reshape(dim).copy()

    return encode_multibinary


def encode_action(space: gym.Space, action: Any) -> np.ndarray:
    """Encode one action of the agent-facing `space` as the float32 `(A,)` `prev_action` vector.

    Convenience form of `make_action_encoder`; prefer the latter inside loops.
    """
    return make_action_encoder(space)(action)


def encode_actions(space: gym.Space, actions: Any) -> np.ndarray:
    """Encode a batch of actions `(B, *space.shape)` into `(B, A)` float32 `prev_action` rows at once.

    Used by the collector and by replay relabelling, which hold actions as arrays and must not loop in
    Python over the batch.
    """
    dim = action_feature_dim(space)
    if isinstance(space, spaces.Discrete):
        index = np.asarray(actions, dtype=np.int64).reshape(-1) - int(space.start)
        out = np.zeros((index.shape[0], dim), dtype=np.float32)
        out[np.arange(index.shape[0]), index] = 1.0
        return out
    if isinstance(space, spaces.MultiDiscrete):
        offsets, start = _multidiscrete_offsets(space)
        values = np.asarray(actions, dtype=np.int64).reshape(-1, offsets.shape[0])
        out = np.zeros((values.shape[0], dim), dtype=np.float32)
        rows = np.arange(values.shape[0])[:, None]
        out[rows, offsets[None, :] + values - start[None, :]] = 1.0
        return out
    flat = np.asarray(actions, dtype=np.float32).reshape(-1, dim)
    if isinstance(space, spaces.Box):
        return _clip_unit(flat)
    return flat.copy()


def _clip_unit(values: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1]; two ufuncs are about twice as fast as np.clip on the tiny per-step arrays."""
    return np.minimum(np.maximum(values, -1.0), 1.0)


def make_box_action_adapter(inner: spaces.Box) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """Return a function mapping an agent action in [-1, 1]^shape to `(inner_action, prev_action)`.

    The action is clipped to [-1, 1] once; the clipped value is both rescaled to the inner bounds (in the
    inner dtype) and, flattened, used as the `prev_action` feature. Doing both in one pass keeps the
    continuous-control hot path short.
    """
    check_action_space(inner)
    low = inner.low.astype(np.float64)
    half_range = (inner.high.astype(np.float64) - low) / 2.0
    center = low + half_range
    dtype = inner.dtype
    shape = inner.shape
    dim = int(np.prod(shape))

    def adapt(action: Any) -> tuple[np.ndarray, np.ndarray]:
        unit = _clip_unit(np.asarray(action, dtype=np.float32).reshape(shape))
        return (center + half_range * unit).astype(dtype), unit.reshape(dim)

    return adapt


def agent_action_space(inner: gym.Space) -> gym.Space:
    """The action space the agent sees: the inner one, except Box becomes Box(-1, 1, shape, float32)."""
    check_action_space(inner)
    if isinstance(inner, spaces.Box):
        return spaces.Box(-1.0, 1.0, inner.shape, np.float32)
    return inner


def flatten_obs_space(space: gym.Space, prefix: str = OBS_KEY) -> dict[str, gym.Space]:
    """Map the inner observation space to flat keys: `obs` for a leaf space, `obs.<k>` for Dict entries.

    Nested Dicts are flattened with "." (`obs.outer.inner`). Raises ValueError for spaces the agent's
    timestep encoder cannot read (Tuple, Text, Graph, Sequence, ...).
    """
    if isinstance(space, spaces.Dict):
        if len(space.spaces) == 0:
            raise ValueError("unsupported observation space: an empty Dict")
        flat: dict[str, gym.Space] = {}
        for key, sub_space in space.spaces.items():
            flat.update(flatten_obs_space(sub_space, f"{prefix}.{key}"))
        return flat
    if not isinstance(space, SUPPORTED_LEAF_OBS_SPACES):
        raise ValueError(
            f"unsupported observation space {space!r} at key {prefix!r}: the trial wrapper supports "
            "Box, Discrete, MultiDiscrete, MultiBinary and (nested) Dict observations"
        )
    return {prefix: space}


def dict_obs_paths(space: gym.Space) -> list[tuple[str, tuple[str, ...]]]:
    """For a Dict observation space, each flat key with the path of nested keys that reaches its value."""
    paths: list[tuple[str, tuple[str, ...]]] = []

    def walk(sub: gym.Space, path: tuple[str, ...]) -> None:
        if isinstance(sub, spaces.Dict):
            for key, child in sub.spaces.items():
                walk(child, (*path, key))
        else:
            paths.append((".".join((OBS_KEY, *path)), path))

    walk(space, ())
    return paths


def trial_observation_space(inner_obs_space: gym.Space, inner_action_space: gym.Space) -> spaces.Dict:
    """The TrialWrapper's flat Dict observation space (docs/ARCHITECTURE.md §1), built without an env.

    Lets the replay and network code build matching shapes from the two inner spaces alone.
    """
    entries = flatten_obs_space(inner_obs_space)
    entries["prev_action"] = spaces.Box(-1.0, 1.0, (action_feature_dim(inner_action_space),), np.float32)
    entries["prev_reward"] = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    entries["time"] = spaces.Box(0, 2**31 - 1, (), np.int64)
    entries["first"] = spaces.Box(0.0, 1.0, (1,), np.float32)
    return spaces.Dict(entries)
