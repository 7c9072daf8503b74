"""The Dask engine's overhead: one sweep run three ways on the same machine.

    python benchmarks/sweep_overhead.py                       # 6 points of @digits, 8 samples
    python benchmarks/sweep_overhead.py --samples 32 --json out.json

The sweep is the issue's: @digits, tppes = 1, 2, 4 x chunk = 8, 16, co-simulation only. It
first runs it once to fill the Verilator cache (the builds are cached by design hash, so
every timed run does the same work: compile, reference, Verilator run of the cached
model), then times, each into a fresh directory: a local Dask cluster of 2 workers, one of
1 worker, and the same points one after another in this process without Dask. The goal
(issue 15): 2 workers take at most 0.6x the time of 1 worker on a 2-core machine. The
machine must be otherwise idle for that comparison to mean anything: with other jobs
running, the two workers share the same cores with them.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hwgen.sweep import SEQUENTIAL, sweep

GRID = ["tppes=1,2,4", "chunk=8,16"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--json", help="also write the timings here")
    args = parser.parse_args()
    results = {"cpus": os.cpu_count(), "samples": args.samples, "grid": GRID}
    with tempfile.TemporaryDirectory(prefix="hwgen-sweep-bench-") as folder:
        folder = Path(folder)
        warm = sweep("@digits", GRID, folder / "warm", samples=args.samples, workers=2)
        assert all(row["status"] == "ok" for row in warm.rows), warm.rows
        for name, options in (("dask_2_workers", {"workers": 2}),
                              ("dask_1_worker", {"workers": 1}),
                              ("sequential_no_dask", {"scheduler": SEQUENTIAL})):
            started = time.monotonic()
            result = sweep("@digits", GRID, folder / name, samples=args.samples, **options)
            seconds = time.monotonic() - started
            assert result.ran == 6 and all(row["status"] == "ok" for row in result.rows)
            # The points' own time (compile + co-simulation, as each point measured it):
            # wall time minus this over the worker count is the engine's overhead.
            work = sum(row["compile_s"] + row["simulate_s"] for row in result.rows)
            results[name] = round(seconds, 2)
            results[f"{name}_point_seconds"] = round(work, 2)
            print(f"{name:20} {seconds:7.2f} s wall, {work:7.2f} s in the points")
    ratio = results["dask_2_workers"] / results["dask_1_worker"]
    results["ratio_2_to_1"] = round(ratio, 3)
    print(f"2 workers / 1 worker: {ratio:.2f} (goal <= 0.6); "
          f"1 worker / sequential: "
          f"{results['dask_1_worker'] / results['sequential_no_dask']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
