"""Datasets of trials for offline training: collected from a trained run, or imported from episode files."""

from icrl.data.dataset import (
    DATASET_FILE,
    DatasetError,
    check_dataset_spaces,
    copy_into_store,
    describe_space,
    read_dataset_info,
)

__all__ = [
    "DATASET_FILE",
    "DatasetError",
    "check_dataset_spaces",
    "copy_into_store",
    "describe_space",
    "read_dataset_info",
]
