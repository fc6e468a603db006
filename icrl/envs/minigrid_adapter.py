"""MiniGrid ids (`MiniGrid-*`) for `icrl train`, through minigrid's image-observation wrapper.

`icrl train MiniGrid-MemoryS7-v0` needs no registration step: the `minigrid` package (`icrl[minigrid]`) is
imported when such an id is first made, and the env observes its egocentric image only (minigrid's
`ImgObsWrapper`, uint8 (7, 7, 3), read by the timestep encoder's CNN). The mission text, which no encoder
reads, is left out: MiniGrid's rooms state a fixed mission each. For other observation keys, register a
wrapped env of your own (examples/minigrid_images.py keeps the agent's direction too).

MiniGrid's "image" holds small integer codes, not intensities: per cell the object (0-10), its colour (0-5)
and its state (0-2). The encoder divides images by 255, so a key (5) and a ball (6), the very cue of
MiniGrid-Memory, would differ by 0.004 while the first convolution's biases are about 0.3. Each channel's
codes are therefore multiplied by 255 // its largest code (25, 51, 127): a key and a ball then differ by 0.1.
A run records this as the env kwarg `spread_codes` (true); runs trained before 2026-12-07 saw the raw codes
and load with `spread_codes` false. Acting with `icrl.load_policy` in your own loop, feed the same:
`make_minigrid_env(id)`, or minigrid's `ImgObsWrapper` image times `code_scale()`.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from icrl.envs.optional import import_optional

MINIGRID_PREFIX = "MiniGrid-"
SPREAD_CODES = "spread_codes"  # the adapter's own kwarg (not minigrid's): multiply the codes, as above


def is_minigrid_id(env_id: str) -> bool:
    """Whether `env_id` names a MiniGrid env (`MiniGrid-...`)."""
    return env_id.startswith(MINIGRID_PREFIX)


def make_minigrid_env(env_id: str, spread_codes: bool = True, **kwargs: Any) -> gym.Env:
    """The MiniGrid env `env_id` (its keyword arguments as `gym.make` takes them) observing its image only,
    its codes spread over 0..255 unless `spread_codes` is false; ImportError naming the extra when minigrid
    is not installed."""
    # Importing minigrid.wrappers imports minigrid, which registers the MiniGrid-* ids.
    missing = "MiniGrid envs need the minigrid extra: pip install 'icrl[minigrid]'"
    wrappers = import_optional("minigrid.wrappers", missing)
    env = wrappers.ImgObsWrapper(gym.make(env_id, **kwargs))
    return ReportSuccess(SpreadCodes(env) if spread_codes else env)


class ReportSuccess(gym.Wrapper):
    """`info["success"]` at the end of an episode, as icrl's envs report it (evaluations log eval/success):
    MiniGrid ends an episode with a positive reward exactly when its mission is done (a wrong object in
    MiniGrid-Memory, lava or a time-out end it with 0)."""

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": bool(terminated and float(reward) > 0)}
        return obs, reward, terminated, truncated, info


def code_scale() -> np.ndarray:
    """Per channel (object, colour, state), 255 // MiniGrid's largest code: uint8 (3,), (25, 51, 127)."""
    constants = import_optional("minigrid.core.constants", "MiniGrid envs need the minigrid extra")
    largest = [max(table.values()) for table in
               (constants.OBJECT_TO_IDX, constants.COLOR_TO_IDX, constants.STATE_TO_IDX)]  # fmt: skip
    return np.array([255 // code for code in largest], dtype=np.uint8)


class SpreadCodes(gym.ObservationWrapper):
    """MiniGrid's (H, W, 3) object / colour / state codes, each channel multiplied so that its largest code
    comes near 255 (the space, Box(0, 255) uint8, stays as it is)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.scale = code_scale()

    def observation(self, observation: np.ndarray) -> np.ndarray:
        # The largest known code x its scale is <= 255; a code beyond MiniGrid's tables saturates, not wraps.
        return np.minimum(observation.astype(np.uint16) * self.scale, 255).astype(np.uint8)
