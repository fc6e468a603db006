"""Some analysis tests train tiny runs (checkpoint selection, averaging) on two shared cores: one intra-op
thread, as for the training-stack tests. Their fixtures (`tiny_config`, ...) live in tests/conftest.py."""

import torch

torch.set_num_threads(1)
