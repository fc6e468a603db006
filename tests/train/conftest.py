"""The training-stack tests share two cores with other work: one intra-op thread, and fewer threads also
mean bit-exact reproducibility of the determinism checks. Their fixtures (`tiny_config`, ...) live in
tests/conftest.py, shared with tests/faults."""

import torch

torch.set_num_threads(1)
