"""RepeatPreviousEasy (preset popgym-cpu, 30k env steps, seed 0) with the SSM's initial decay ring and phase
range set by hand: how the initialisation decides whether a diagonal recurrence recalls "4 steps ago".

    .venv/bin/python benchmarks/seq_s26/rpe_init.py R_MIN MAX_PHASE [RUN_DIR]
    .venv/bin/python benchmarks/seq_s26/rpe_init.py 0.9 0.3141593   # the LRU's long-range setting (pi/10)
    .venv/bin/python benchmarks/seq_s26/rpe_init.py 0.9 3.14159     # the committed default (pi)
"""

from __future__ import annotations

import sys

import icrl.nets.ssm as ssm
from icrl.cli import main

r_min, max_phase = float(sys.argv[1]), float(sys.argv[2])
run_dir = sys.argv[3] if len(sys.argv) > 3 else f"runs/rpe-ssm-r{r_min}-p{max_phase}"
default_init = ssm.LinearRecurrence.__init__


def init_with(self, d_model, state_size, r_min_=None, r_max=0.999, max_phase_=None):  # noqa: ANN001
    default_init(self, d_model, state_size, r_min=r_min, r_max=r_max, max_phase=max_phase)


ssm.LinearRecurrence.__init__ = init_with
main(
    [
        "train", "popgym-RepeatPreviousEasy-v0", "--preset", "popgym-cpu", "--model.kind", "ssm",
        "--threads", "1", "--total-env-steps", "30000", "--no-progress", "--run-dir", run_dir,
    ]
)  # fmt: skip
