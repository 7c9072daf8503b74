"""FPGA results for the bundled digits model: utilisation, Fmax and latency per target.

For each hardware configuration it compiles @digits, measures cycles per inference on the
simulated board top (the UART protocol and the core's own cycle counter, bit-exact against
the reference), and runs `hwgen synth` for each target. Latency per inference is
cycles / Fmax. docs/results.md quotes the table this prints.

    python benchmarks/fpga_results.py [--out /tmp/fpga-results] [--samples 50]
"""

import argparse
import json
from pathlib import Path

import numpy as np

from hwgen.errors import FitError, TimingError, ToolchainError
from hwgen.compiler.hardware_config import HardwareConfig
from hwgen.compiler.scheduler.program import compile_program
from hwgen.fpga import driver, flow
from hwgen.fpga.core import CoreSpec
from hwgen.fpga.simboard import SimulatedBoard
from hwgen import build_directory, bundled

# The default is 2 TPPEs and one LIF step per cycle; the others show what the two
# parameters that trade area and cycles for Fmax cost.
CONFIGS = {"default": {}, "tppes=4": {"tppes": 4}, "lif_steps=2": {"lif_steps": 2}}
# (config, target, requested MHz): each family at its Fmax goal (100 MHz ECP5, 40 MHz
# iCE40), so that every row says whether the goal is met and the configs compare
# (`hwgen synth` itself defaults to --frequency auto).
RUNS = [("default", "ulx3s-85f", 100), ("default", "ecp5-85k", 100),
        ("default", "icebreaker", 40), ("default", "ice40-up5k", 40),
        ("tppes=4", "ulx3s-85f", 100), ("tppes=4", "icebreaker", 40),
        ("lif_steps=2", "ulx3s-85f", 100), ("lif_steps=2", "icebreaker", 40)]


def cycles_on_simulated_board(build, samples):
    opened = build_directory.BuildDirectory(build)
    spec, model = CoreSpec.of(opened), opened.model()
    inputs, labels = bundled.digits_test_set()
    with SimulatedBoard(spec, work_dir=Path(build) / "simboard") as board:
        transport = driver.SerialTransport(board.port, 115200)
        try:
            link = driver.Board(transport)
            link.connect(spec)
            report = driver.run(link, spec, model, inputs[:samples], labels[:samples])
        finally:
            transport.close()
    assert report.bit_exact, report.mismatches
    return {"mean": float(np.mean(report.cycles)), "min": int(min(report.cycles)),
            "max": int(max(report.cycles)), "samples": samples, "bit_exact": True}


def synthesize(build, target, frequency_mhz=None):
    try:
        report = flow.synthesize(build, target, frequency_mhz=frequency_mhz)
    except (FitError, TimingError):
        report = json.loads((flow.output_directory(build, target) / "report.json").read_text())
    except ToolchainError as error:          # e.g. nextpnr finds no legal placement
        print(f"{build.name} on {target}: {str(error).split(';')[0]}", flush=True)
        return {"status": "tool_failure", "clock_mhz": frequency_mhz, "fmax_mhz": None,
                "resources": {}, "critical_path": None}
    rows = {row["resource"]: row for row in report.get("resources", [])}
    timing = report.get("timing") or {}
    return {"status": report["status"], "clock_mhz": report["clock"]["mhz"],
            "fmax_mhz": timing.get("fmax_mhz"),
            "resources": {name: [row["used"], row["available"]] for name, row in rows.items()},
            "critical_path": timing.get("critical_path")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/fpga-results")
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    out = Path(args.out)
    model = bundled.digits_model()
    results = {"configs": {}, "runs": []}
    for name, values in CONFIGS.items():
        program = compile_program(model, HardwareConfig(**values))
        build = out / name.replace("=", "").replace(",", "-")
        build_directory.write(program, model, build)
        results["configs"][name] = {"config": program.config.to_json(),
                                    "cycles": cycles_on_simulated_board(build, args.samples)}
        print(f"{name}: {results['configs'][name]['cycles']}", flush=True)
    for name, target, frequency in RUNS:
        build = out / name.replace("=", "").replace(",", "-")
        run = {"config": name, "target": target, **synthesize(build, target, frequency)}
        cycles = results["configs"][name]["cycles"]["mean"]
        if run["fmax_mhz"]:
            run["latency_us"] = round(cycles / run["fmax_mhz"], 2)
        results["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "critical_path"}), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| config | target | status | logic | FFs | BRAM | DSP | Fmax (MHz) | "
          "cycles | latency (us) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in results["runs"]:
        r = run["resources"]
        logic = r.get("LCs") or r.get("LUTs") or ["-", "-"]
        bram = r.get("BRAM") or r.get("BRAM (EBR)") or ["-", "-"]
        cycles = results["configs"][run["config"]]["cycles"]["mean"]
        print(f"| {run['config']} | {run['target']} | {run['status']} | "
              f"{logic[0]} / {logic[1]} | {r.get('FFs', ['-'])[0]} | {bram[0]} / {bram[1]} | "
              f"{r.get('DSP', ['-'])[0]} | {run['fmax_mhz'] or '-'} | {cycles:.0f} | "
              f"{run.get('latency_us', '-')} |")


if __name__ == "__main__":
    main()
