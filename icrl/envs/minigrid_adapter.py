"""MiniGrid ids (`MiniGrid-*`) for `icrl train`, through minigrid's image-observation wrapper.

`icrl train MiniGrid-MemoryS7-v0` needs no registration step: the `minigrid` package (`icrl[minigrid]`) is
imported when such an id is first made, and the env observes its egocentric image only (minigrid's
`ImgObsWrapper`, uint8 (7, 7, 3), read by the timestep encoder's CNN). The mission text, which no encoder
reads, is left out: MiniGrid's rooms state a fixed mission each. For other observation keys, register a
wrapped env of your own (examples/minigrid_images.py keeps the agent's direction too).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from icrl.envs.optional import import_optional

MINIGRID_PREFIX = "MiniGrid-"


def is_minigrid_id(env_id: str) -> bool:
    """Whether `env_id` names a MiniGrid env (`MiniGrid-...`)."""
    return env_id.startswith(MINIGRID_PREFIX)


def make_minigrid_env(env_id: str, **kwargs: Any) -> gym.Env:
    """The MiniGrid env `env_id` (its keyword arguments as `gym.make` takes them) observing its image only;
    ImportError naming the extra when minigrid is not installed."""
    # Importing minigrid.wrappers imports minigrid, which registers the MiniGrid-* ids.
    missing = "MiniGrid envs need the minigrid extra: pip install 'icrl[minigrid]'"
    wrappers = import_optional("minigrid.wrappers", missing)
    return wrappers.ImgObsWrapper(gym.make(env_id, **kwargs))
