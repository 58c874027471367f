"""Run every benchmark, one after another, and print every figure.

Run as ``python bench/run.py [NAME ...]`` (default: every script of :data:`BENCHMARKS`,
a quarter of an hour or more on two cores). Each script runs in its own process with
this interpreter; their ``FIGURE: measured=… baseline=… ratio=… min=… max=…`` lines are
passed through as they come and repeated together at the end, with any script that could
not measure. Exit status 1 when one of them failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("journal", "broadcast", "freeze", "intake", "batching", "rumours", "drill", "console")
TIMEOUT = 900.0
"""Seconds one script may take before it is stopped and reported as failed."""


def run(name: str) -> tuple[list[str], str | None]:
    """Run ``bench/NAME.py``; its figure lines, and why it failed (None when it did not)."""
    started = time.perf_counter()
    print(f"# bench/{name}.py", flush=True)
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"bench/{name}.py: stopped after {TIMEOUT:.0f} s"
    figures = [line for line in done.stdout.splitlines() if " measured=" in line]
    for line in done.stdout.splitlines():
        print(line, flush=True)
    for line in done.stderr.splitlines():
        if line.startswith("#") or done.returncode != 0:
            print(f"  {line}", flush=True)
    print(f"# bench/{name}.py: {time.perf_counter() - started:.0f} s", flush=True)
    if done.returncode != 0:
        return figures, f"bench/{name}.py: exit status {done.returncode}"
    return figures, None


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    figures: list[str] = []
    failures: list[str] = []
    for name in names or BENCHMARKS:
        lines, failure = run(name)
        figures += lines
        if failure is not None:
            failures.append(failure)
    print("\n# every figure", flush=True)
    for line in figures:
        print(line)
    for failure in failures:
        print(f"# FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
