"""Soak test: many generated designs co-simulated against the integer reference.

    python benchmarks/soak.py --designs 1000 --jobs 2 [--seed S] [--out DIR]

Draws whole models, hardware configurations and inputs from tests/support/model_strategies.py (needs
hypothesis, a test dependency: ``pip install -e .[test]``), compiles each, builds it with
Verilator and co-simulates it, in ``--jobs`` worker processes. A case with a deliberate
flaw must be refused with a one-line message naming the parameter; every other case must
be bit-exact. At the first failure the other workers stop, hypothesis shrinks the failing
case (at most a few minutes; each try is a Verilator build) and the smallest failing case
is written to DIR/failure-<worker>/ with model.hwgen, inputs.npz, case.txt and
reproduce.sh (one command). Prints designs / refused / failures / cycles simulated at the
end; exits 1 if anything failed. Ctrl-C stops early and still prints the tally. Builds
go through ccache when it is installed (``apt-get install ccache``: 3-4x faster builds).
"""

import argparse
import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

# The whole-model strategies are test code (they need hypothesis, a test dependency) and
# live with the tests; the soak runs them at scale.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))


def use_ccache():
    """Let Verilator's make compile through ccache if it is installed: every build compiles
    the same Verilator runtime sources, and caching them cuts a small design's build by
    about three quarters."""
    if shutil.which("ccache") and "OBJCACHE" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} OBJCACHE=ccache".strip()


def worker_process(*args):
    os.setpgrp()        # its own process group, so that stopping it stops its Verilator too
    use_ccache()
    worker(*args)


def worker(index, count, seed, out, events, stop, options):
    """Run ``count`` designs; put progress on ``events``; stop early once ``stop`` is set."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fix_seed

    from model_strategies import Outcome, cases, run_case, write_reproducer

    failing, seen = {}, set()

    @fix_seed(seed * 1000 + index)
    @settings(max_examples=count, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False, print_blob=False)
    @given(cases(**options))
    def soak(case):
        if stop.is_set() and not failing:
            return      # another worker failed: finish quickly without simulating
        if not failing:
            # Hypothesis draws some small cases many times; a case that passed once passes
            # again (while shrinking, everything runs, so the verdicts stay consistent).
            if repr(case) in seen:
                events.put(("duplicate", index))
                return
            seen.add(repr(case))
        started = time.monotonic()
        try:
            outcome = run_case(case)
        except Exception as error:      # not a HwgenError: a bug in hwgen, shrink it too
            outcome = Outcome("failed", f"crash: {type(error).__name__}: {error}")
        events.put(("design", index, outcome.kind, outcome.cycles,
                    time.monotonic() - started, bool(failing), case.describe(),
                    outcome.message))
        if not outcome.ok:
            if not failing:
                events.put(("failing", index, outcome.message, case.describe()))
                stop.set()
            # Hypothesis replays the smallest failing case last, so this ends up holding it.
            failing["case"], failing["outcome"] = case, outcome
            raise AssertionError(outcome.message)

    try:
        soak()
    except AssertionError:
        pass
    except Exception as error:      # a crash in hwgen itself (not a HwgenError): report it
        events.put(("crash", index, f"{type(error).__name__}: {error}"))
        return
    if failing:
        command = write_reproducer(failing["case"], failing["outcome"],
                                   Path(out) / f"failure-{index}")
        events.put(("reproducer", index, failing["outcome"].message,
                    failing["case"].describe(), command))
    events.put(("finished", index))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", type=int, default=100, help="designs to draw")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (each runs one Verilator build at a time)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (per run)")
    parser.add_argument("--out", default="soak-out", help="where reproducers are written")
    parser.add_argument("--max-tppes", type=int, default=32)
    parser.add_argument("--max-size", type=int, default=70,
                        help="largest layer width drawn")
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--flaws", type=float, default=0.1,
                        help="fraction of cases with a deliberate flaw (must be refused)")
    parser.add_argument("--shared", action="store_true",
                        help="only designs with activation_memory=shared and the settings "
                             "it needs (no flaws; a model it cannot share is refused)")
    args = parser.parse_args(argv)
    if args.designs < 1 or args.jobs < 1:
        parser.error("--designs and --jobs must be at least 1")
    # Every design is new, so its simulator build is never used again: the builds go to a
    # cache of the soak's own, removed at the end (a 1,000-design soak left 1.1 GB of them
    # in the user's cache). ccache, which caches what the builds share, stays.
    cache = tempfile.mkdtemp(prefix="hwgen-soak-cache-")
    os.environ["HWGEN_CACHE"] = cache
    try:
        return soak(args)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def soak(args):
    """Run the soak ``args`` ask for; the exit status."""
    # A background job may inherit SIGINT ignored; and let `kill PID` stop it cleanly too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    jobs = min(args.jobs, args.designs)
    shares = [args.designs // jobs + (i < args.designs % jobs) for i in range(jobs)]
    options = {"max_tppes": args.max_tppes, "max_size": args.max_size,
               "max_layers": args.max_layers, "flaw_weight": 0 if args.shared else args.flaws,
               "shared": args.shared}
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    workers = [context.Process(target=worker_process, args=(i, share, args.seed, args.out, events,
                                                    stop, options), daemon=True)
               for i, share in enumerate(shares)]
    for process in workers:
        process.start()

    start = time.monotonic()
    counts = {"exact": 0, "refused": 0, "failed": 0}
    shrink_runs, duplicates, cycles, finished, problems = 0, 0, 0, 0, []
    interrupted = False
    while finished < len(workers):
        try:
            event = events.get(timeout=5)
        except queue.Empty:
            if not any(p.is_alive() for p in workers):
                problems.append("a worker died without reporting (see its stderr)")
                break
            continue
        except KeyboardInterrupt:
            # Ctrl-C or kill: report what ran so far; a design in flight is dropped.
            interrupted = True
            stop.set()
            for process in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            break
        kind, index = event[:2]
        if kind == "duplicate":
            duplicates += 1
        elif kind == "design":
            _, _, outcome, design_cycles, seconds, shrinking, description, message = event
            if shrinking:
                shrink_runs += 1
                print(f"  [worker {index} shrinking] {outcome}: {description}", flush=True)
                continue
            counts[outcome] += 1
            cycles += design_cycles
            done = sum(counts.values())
            note = f" ({message})" if outcome == "refused" else ""
            print(f"[{done}/{args.designs} {time.monotonic() - start:.0f}s] {outcome} "
                  f"{seconds:.1f}s {description}{note}", flush=True)
        elif kind == "failing":
            print(f"FAILURE in worker {index}: {event[2]}\n  {event[3]}\n"
                  f"  stopping the other workers; shrinking...", flush=True)
        elif kind == "reproducer":
            _, _, message, description, command = event
            problems.append(f"{message}\n  smallest case: {description}\n  re-run: {command}")
        elif kind == "crash":
            problems.append(f"worker {index} crashed: {event[2]}")
            finished += 1
        elif kind == "finished":
            finished += 1
    for process in workers:
        try:
            process.join(timeout=30)
        except KeyboardInterrupt:
            # A second Ctrl-C (or a kill) while the workers wind down: stop waiting for
            # them, but still print what ran.
            interrupted = True
            for late in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(late.pid, signal.SIGKILL)
            break
    if interrupted:
        problems.append("interrupted: fewer designs ran than asked")

    designs = sum(counts.values())
    print(f"\ndesigns: {designs} (bit-exact {counts['exact']}, refused {counts['refused']}), "
          f"mismatches/failures: {counts['failed']}, shrink runs: {shrink_runs}, "
          f"duplicate draws skipped: {duplicates}, "
          f"cycles simulated: {cycles}, wall time: {time.monotonic() - start:.0f}s")
    for problem in problems:
        print(problem)
    return 1 if counts["failed"] or problems else 0


if __name__ == "__main__":
    sys.exit(main())
