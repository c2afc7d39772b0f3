"""The long soak: ``python benchmarks/soak.py --days 7`` (``--full`` = 14 days).

Runs tests/dist/test_soak.py with ``YARNNN_SOAK_DAYS``: the sample users through the whole graph
for that many simulated days on a PostgreSQL Dagster instance with two Celery workers, with the
faults injected (worker SIGKILL mid-step, broker restart, PostgreSQL connections terminated), and
compares every table with a fault-free run's. Needs PostgreSQL on 127.0.0.1:5432 and redis-server.
Prints the test's summary line (runs, re-executions, faults) and the wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="simulated days (CI runs 1)")
    parser.add_argument("--full", action="store_true", help="the long run: 14 days")
    args = parser.parse_args()
    days = 14 if args.full else args.days
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/dist/test_soak.py",
         "-k", "faults", "-o", "log_cli=false"],
        cwd=REPO, env={**os.environ, "YARNNN_SOAK_DAYS": str(days), "YARNNN_SOAK_PLATFORMS": "all"},
        capture_output=True, text=True,
    )
    summary = [line for line in proc.stdout.splitlines() if line.startswith("soak:")]
    print("\n".join(summary) or proc.stdout[-3000:])
    print(f"soak {days} day(s): {'PASSED' if proc.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
