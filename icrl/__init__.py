"""icrl: in-context reinforcement learning (AMAGO-style agents) for memory, meta-RL and multi-task RL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icrl import envs as envs  # registers the built-in environments with gymnasium

if TYPE_CHECKING:
    from icrl.policy import Policy, load_policy

__version__ = "0.1.0"
__all__ = ["Policy", "envs", "load_policy"]

# Imported on first use, so that `import icrl` (which registers the envs) does not load the trainer.
_LAZY = {"load_policy": "icrl.policy", "Policy": "icrl.policy"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'icrl' has no attribute {name!r}")
