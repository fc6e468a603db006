"""Replay: trials on disk (ARCHITECTURE §2) and batches of padded windows (ARCHITECTURE §3)."""

from icrl.replay.format import (
    TRANSITION_KEYS,
    is_observation_key,
    load_trial,
    save_trial,
    trial_length,
    validate_trial,
)
from icrl.replay.loader import BatchLoader
from icrl.replay.sampler import TrialSampler, batch_dtype
from icrl.replay.store import ReplayStore, TrialInfo, parse_trial_file_name, trial_file_name

__all__ = [
    "TRANSITION_KEYS",
    "BatchLoader",
    "ReplayStore",
    "TrialInfo",
    "TrialSampler",
    "batch_dtype",
    "is_observation_key",
    "load_trial",
    "parse_trial_file_name",
    "save_trial",
    "trial_file_name",
    "trial_length",
    "validate_trial",
]
