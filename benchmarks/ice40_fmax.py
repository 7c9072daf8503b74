"""Fmax of the bundled models on the iCE40UP5K over nextpnr placer seeds.

The iCE40 goal (40 MHz, issue 12) sits at the edge of what placement gives: on the same
netlist nextpnr's Fmax moves by several MHz from one placer seed to the next, so a single
run says little. This compiles each bundled model with its default configuration, runs
`hwgen synth` at 40 MHz for each seed (out of context, the core alone, unless --target
names the board) and prints, per model, every seed's Fmax, logic cells and critical path,
then the median, the best and how many seeds meet the goal.

    python benchmarks/ice40_fmax.py [--models digits digits_cnn] [--seeds 1 2 3]
        [--target ice40-up5k|icebreaker] [--set fetch_width=4] [--jobs 2]
        [--out /tmp/ice40-fmax]

Each (model, seed) runs in its own copy of the build directory, --jobs at a time (one
nextpnr each); the out-of-context runs take about a minute each, a board's longer.
"""

import argparse
import shutil
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hwgen import build_directory, bundled
from hwgen.compiler import hardware_config
from hwgen.errors import ConfigError, FitError, TimingError, ToolchainError
from hwgen.fpga import flow

GOAL_MHZ = 40.0


def compile_model(name, config, overrides, out):
    """The build directory of bundled model ``name`` with ``config`` (what `hwgen compile
    @name --set ...` writes for ``overrides``, which name the directory), compiled once per
    configuration."""
    build = out / "-".join([name, *(o.replace("=", "") for o in overrides)])
    if not (build / "manifest.json").exists():
        build_directory.compile_model(bundled.MODELS[f"@{name}"][0](), config, build)
    return build


def place(build, target, seed):
    """One placement of ``build`` (a copy per seed) at the goal; its report's figures."""
    work = build.parent / f"{build.name}-seed{seed}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(build, work, ignore=shutil.ignore_patterns("fpga"))
    try:
        report = flow.synthesize(work, target, frequency_mhz=GOAL_MHZ, seed=seed,
                                 allow_timing_failure=True)
    except (FitError, TimingError, ToolchainError) as error:
        return {"seed": seed, "error": str(error).split(";")[0]}
    lcs = next(r["used"] for r in report["resources"] if r["resource"] == "LCs")
    path = report["timing"]["critical_path"] or {}
    return {"seed": seed, "fmax": report["timing"]["fmax_mhz"], "lcs": lcs,
            "path": f"{path.get('start', '?')} -> {path.get('end', '?')}",
            "delay": path.get("delay_ns", 0.0), "routing": path.get("routing_ns", 0.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["digits", "digits_cnn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--target", default="ice40-up5k", choices=["ice40-up5k", "icebreaker"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="hardware parameter (repeatable)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="/tmp/ice40-fmax")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    try:
        config = hardware_config.load(None, args.overrides)
    except ConfigError as error:
        parser.error(str(error))
    builds = {model: compile_model(model, config, args.overrides, out)
              for model in args.models}
    runs = [(model, seed) for model in args.models for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {run: pool.submit(place, builds[run[0]], args.target, run[1]) for run in runs}
        results = {run: future.result() for run, future in futures.items()}

    setting = ", ".join(args.overrides) or "default configuration"
    print(f"{args.target}, {GOAL_MHZ:g} MHz requested, {setting}")
    for model in args.models:
        print(f"\n@{model}")
        print(f"  {'seed':>4} {'Fmax':>7} {'LCs':>5} {'path ns':>7} {'routing':>7}  critical path")
        fmax = []
        for seed in args.seeds:
            r = results[(model, seed)]
            if "error" in r:
                print(f"  {seed:>4} {'-':>7} {'-':>5} {'-':>7} {'-':>7}  {r['error']}")
                continue
            fmax.append(r["fmax"])
            print(f"  {seed:>4} {r['fmax']:7.2f} {r['lcs']:5d} {r['delay']:7.1f} "
                  f"{r['routing']:7.1f}  {r['path']}")
        if fmax:
            met = sum(f >= GOAL_MHZ for f in fmax)
            print(f"  median {statistics.median(fmax):.2f} MHz, best {max(fmax):.2f} MHz; "
                  f"goal {GOAL_MHZ:g} MHz met by {met} of {len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
