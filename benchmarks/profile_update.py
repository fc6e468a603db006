"""Profile one learner update of a preset (default: config S) with torch.profiler; prints the top ops.

.venv/bin/python benchmarks/profile_update.py --preset bench-s --updates 5
.venv/bin/python benchmarks/profile_update.py --args-file benchmarks/hcv_recipe.args --updates 20 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from icrl.bench import attach_loader
from icrl.cli import build_train_config
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
    parser.add_argument("--args-file", help="`icrl train` arguments to profile instead of --preset")
    parser.add_argument("--threads", type=int, default=None, help="Torch threads (default: torch's).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"tensorboard": False, "progress": False, **json.loads(args.set)}
        base = build_train_config(open(args.args_file).read().split()) if args.args_file else None
        cfg = apply_overrides(base or preset_config(args.preset), overrides)
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
