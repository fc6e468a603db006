"""The fault suite: one test per way a user, a crash or the machine can hurt a run.

Each test carries `@pytest.mark.fault(probe=..., expected=...)` and records what it saw with
`record_property("observed", ...)`; `make faults` (benchmarks/faults.py) runs them all and prints the
table probe / expected / observed. Tiny configs come from tests/conftest.py (`tiny_config`, `tiny_cli`)."""

import torch

torch.set_num_threads(1)  # tests share two cores; one thread keeps the tiny runs fast and repeatable
