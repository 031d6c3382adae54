"""Shared by the benchmarks: timing, the machine line, and writing one section of
benchmarks/results.json (atomically, keeping the other sections)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def best_time(fn, repeats: int) -> float:
    """The smallest wall time of ``repeats`` calls: other load on a shared machine only adds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def save(section: str, numbers: dict, out: Path = RESULTS) -> None:
    """Store ``numbers`` (plus the machine and date) under ``section`` and print them."""
    numbers = dict(numbers)
    numbers["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores, "
                          f"{platform.processor() or platform.platform()}")
    numbers["measured"] = time.strftime("%Y-%m-%d")
    # the 1-minute load average when the numbers were saved: above the core count, other work
    # shared the machine and absolute times are inflated (ratios measured side by side less so)
    numbers["load_average_1min"] = round(os.getloadavg()[0], 2)
    all_results = json.loads(out.read_text()) if out.exists() else {}
    all_results[section] = numbers
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(all_results, indent=1, sort_keys=True) + "\n")
    tmp.replace(out)
    for k, v in numbers.items():
        print(f"{k:44s} {v}")
