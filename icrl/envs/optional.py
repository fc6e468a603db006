"""Optional dependencies (mujoco, metaworld, popgym) are imported only when an env needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

import gymnasium as gym


def import_optional(module: str, message: str) -> ModuleType:
    """`import module`, or an ImportError that starts with `message` (which says what to install).

    gymnasium's own `DependencyNotInstalled` (raised by its MuJoCo envs) counts as missing too."""
    try:
        return importlib.import_module(module)
    except (ImportError, gym.error.DependencyNotInstalled) as err:
        raise ImportError(f"{message} ({err})") from err
