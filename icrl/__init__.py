"""icrl: in-context reinforcement learning (AMAGO-style agents) for memory, meta-RL and multi-task RL."""

from icrl import envs as envs  # registers the built-in environments with gymnasium

__version__ = "0.1.0"
