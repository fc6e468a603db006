"""Profile one learner update of a preset (default: config S) with torch.profiler; prints the top ops.

.venv/bin/python benchmarks/profile_update.py --preset bench-s --updates 5
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--shapes", action="store_true", help="Group the table by input shapes.")
    parser.add_argument(
        "--set", default="{}", help='JSON config overrides, e.g. {"model": {"precision": "bfloat16"}}'
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"tensorboard": False, "progress": False, **json.loads(args.set)}
        cfg = apply_overrides(preset_config(args.preset), overrides)
        trainer = Trainer(cfg, tmp)
        try:
            attach_loader(trainer)
            for _ in range(2):
                trainer.update()
            with torch.profiler.profile(record_shapes=args.shapes) as prof:
                for _ in range(args.updates):
                    trainer.update()
        finally:
            trainer.close()
    table = prof.key_averages(group_by_input_shape=args.shapes)
    print(table.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
