"""Wall time of ``recgoat --help`` in a fresh process (goal: under 1 s), median of several runs.

    .venv/bin/python -m benchmarks.speed.cli_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    recgoat = Path(sys.executable).with_name("recgoat")
    command = [str(recgoat), "--help"] if recgoat.exists() else [sys.executable, "-m", "recgoat_cli", "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    seconds = []
    for _ in range(options.runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"benchmark": "recgoat --help", "median_seconds": round(statistics.median(seconds), 4),
                      "runs": [round(s, 4) for s in seconds], "loadavg": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
