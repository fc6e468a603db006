"""Run the fault suite (tests/faults, fast and slow cases) and print one table: probe, expected, observed.

    python benchmarks/faults.py            # every probe, slow ones included (about a minute on 2 cores)
    python benchmarks/faults.py --fast     # only the probes that `make test` runs
    python benchmarks/faults.py --markdown # Markdown: the summary (README), the table (docs/reliability.md)

Each test in tests/faults carries `@pytest.mark.fault(probe=..., expected=...)` and records what it saw
with `record_property("observed", ...)`. The cases of one parametrized probe make one row (held when all
held; the first case's observation). A probe that failed shows FAILED and the last line of its error in
place of the observation. Temporary paths are cut to the part inside the test's folder. The summary has a
row per test file (its docstring's first sentence). The exit status is pytest's (0 when every probe held).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "tests" / "faults"
TMP_PATH = re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s]+/")  # a test's own tmp_path


class FaultTable:
    """A pytest plugin that collects one row per fault-marked test."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("fault")
        if marker is None or report.when not in ("setup", "call"):
            return
        if report.when == "setup" and report.passed:
            return  # the call phase reports
        observed = TMP_PATH.sub("", str(dict(item.user_properties).get("observed", "")))
        if report.failed:
            message = str(report.longrepr).strip().splitlines()
            observed = "FAILED: " + (message[-1] if message else "?")
        elif report.skipped:
            observed = "SKIPPED"
        self.rows.append(
            {
                "probe": marker.kwargs.get("probe", item.name),
                "expected": marker.kwargs.get("expected", ""),
                "observed": observed,
                "held": report.passed,
                "seconds": report.duration,
                "test": item.nodeid,
                "file": item.nodeid.split("::")[0].rsplit("/", 1)[-1],
            }
        )

    def grouped(self) -> list[dict[str, Any]]:
        """One row per probe: its cases (parametrized) merged, held only when every case held."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.rows:
            key = (row["file"], row["probe"])
            if key not in rows:
                rows[key] = {**row, "cases": 1}
                continue
            merged = rows[key]
            merged["cases"] += 1
            if merged["held"] and not row["held"]:
                merged["observed"] = row["observed"]  # show the first failure
            merged["held"] = merged["held"] and row["held"]
        return list(rows.values())


def file_topic(name: str) -> str:
    """The first sentence of a test file's docstring: what its probes are about."""
    doc = ast.get_docstring(ast.parse((FAULTS / name).read_text())) or name
    sentence = " ".join(doc.split()).split(": ")[0].split(". ")[0]
    return sentence.rstrip(".")


def print_summary(rows: list[dict[str, Any]], markdown: bool) -> None:
    files = sorted({row["file"] for row in rows}, key=lambda f: [r["file"] for r in rows].index(f))
    if markdown:
        print("| what is probed | probes (cases) | held |")
        print("|---|---|---|")
    for name in files:
        mine = [row for row in rows if row["file"] == name]
        held, cases = sum(row["held"] for row in mine), sum(row["cases"] for row in mine)
        if markdown:
            topic = f"{file_topic(name)} (`tests/faults/{name}`)"
            print(f"| {topic} | {len(mine)} ({cases}) | {held} of {len(mine)} |")
        else:
            print(f"{file_topic(name)[:70]:70}  {len(mine):3d} probes ({cases:3d} cases)  {held:3d} held")


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: list[dict[str, Any]], markdown: bool) -> None:
    if markdown:
        print("| probe | expected | observed | held |")
        print("|---|---|---|---|")
        for row in rows:
            cells = [_cell(row[k], 200).replace("|", "\\|") for k in ("probe", "expected", "observed")]
            cases = f" ({row['cases']} cases)" if row["cases"] > 1 else ""
            print(f"| {cells[0]}{cases} | {cells[1]} | {cells[2]} | {'yes' if row['held'] else '**no**'} |")
        return
    widths = (38, 44, 60)
    header = ("probe", "expected", "observed")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  held")
    for row in rows:
        cells = [_cell(row[k], w).ljust(w) for k, w in zip(header, widths, strict=True)]
        print("  ".join(cells) + ("  yes" if row["held"] else "  NO"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="Only the fast probes (those `make test` runs).")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    args = parser.parse_args(argv)
    table = FaultTable()
    pytest_args = [str(ROOT / "tests" / "faults"), "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    pytest_args += ["-m", "not slow"] if args.fast else ["-m", "slow or not slow"]
    start = time.perf_counter()
    status = pytest.main(pytest_args, plugins=[table])
    elapsed = time.perf_counter() - start
    rows = table.grouped()
    print()
    print_summary(rows, args.markdown)
    print()
    print_table(rows, args.markdown)
    held = sum(row["held"] for row in rows)
    cases = sum(row["cases"] for row in rows)
    print(f"\n{held} of {len(rows)} probes held ({cases} cases, {elapsed:.0f} s)")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
