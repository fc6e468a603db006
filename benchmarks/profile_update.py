"""Profile one learner update of a preset (default: config S) with torch.profiler; prints the top ops.

.venv/bin/python benchmarks/profile_update.py --preset bench-s --updates 5
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from icrl.bench import attach_loader
from icrl.presets import apply_overrides, preset_config
from icrl.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="bench-s")
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = apply_overrides(preset_config(args.preset), {"tensorboard": False, "progress": False})
        trainer = Trainer(cfg, tmp)
        try:
            attach_loader(trainer)
            for _ in range(2):
                trainer.update()
            with torch.profiler.profile(record_shapes=False) as prof:
                for _ in range(args.updates):
                    trainer.update()
        finally:
            trainer.close()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
