"""``hwgen simulate``: the generated Verilog on Verilator against the integer reference."""

import sys

import click

from hwgen.sim.results import cosimulate_into
from hwgen.sim.stimulus import load_inputs

from ..build_directory import BuildDirectory
from .console import console, note, progress, table


def run_cosimulation(build, stimulus, *, waves=False, jobs=None):
    """:func:`hwgen.sim.results.cosimulate_into` with a progress bar and notes."""
    with progress() as bar:
        task = bar.add_task("co-simulating on Verilator", total=len(stimulus))
        return cosimulate_into(build, stimulus, waves=waves, jobs=jobs,
                               progress=lambda done: bar.update(task, completed=done),
                               log=note)


def print_report(result, report, build):
    rows = []
    for layer in report["layers"]:
        ratio = (layer["cycles_mean"] / layer["ideal_bound_mean"]
                 if layer["ideal_bound_mean"] else float("nan"))
        rows.append((layer["name"], layer["neurons"],
                     "[green]0[/green]" if not layer["mismatching_neurons"]
                     else f"[red]{layer['mismatching_neurons']}[/red]",
                     f"{layer['cycles_mean']:.1f}", f"{layer['ideal_bound_mean']:.1f}",
                     f"{ratio:.2f}"))
    console.print(table(f"{report['samples']} samples, layer by layer",
                        ["layer", "neurons", "mismatching neuron-samples", "cycles (mean)",
                         "ideal bound (mean)", "cycles / bound"], rows,
                        justify={c: "right" for c in ("neurons", "mismatching neuron-samples",
                                                      "cycles (mean)", "ideal bound (mean)",
                                                      "cycles / bound")}))
    if report["bit_exact"]:
        console.print(f"bit-exact: [bold green]yes[/bold green], all {report['samples']} "
                      f"samples match the integer reference in every layer")
    else:
        console.print(f"bit-exact: [bold red]no[/bold red], {report['mismatching_samples']} of "
                      f"{report['samples']} samples differ; first: "
                      f"{result.verdict.first_mismatch[result.verdict.mismatching_samples[0]].describe()}")
    console.print(f"cycles per inference: {report['cycles_mean']:.1f} mean "
                  f"({min(report['cycles_per_sample'])}..{max(report['cycles_per_sample'])}), "
                  f"plus {report['load_cycles_per_sample'][0]} cycles to stream the inputs in")
    timesteps = result.program["timesteps"]
    if report["steps_mean"] < timesteps:
        console.print(f"early exit: {report['steps_mean']:.2f} of {timesteps} steps run on "
                      f"average ({min(report['steps_per_sample'])}.."
                      f"{max(report['steps_per_sample'])})")
    if "reference_accuracy" in report:
        console.print(f"accuracy: reference {report['reference_accuracy']:.2%}, "
                      f"RTL {report['rtl_accuracy']:.2%}")
    console.print(f"results: {build.path / 'sim' / 'results.json'} (chart: cycles.png)")
    for path in report.get("waves", []):
        console.print(f"waves: {path}")


@click.command("simulate")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--inputs", "inputs_path", required=True, type=click.Path(dir_okay=False),
              help="Inputs .npz: 'inputs' (samples x inputs integers, or samples x T x inputs "
                   "spikes) and optionally 'labels'.")
@click.option("--samples", type=int, help="Simulate only the first N samples.")
@click.option("--waves", is_flag=True, help="Write a VCD waveform (use with few samples).")
@click.option("--jobs", type=int, help="Parallel simulator processes (default: CPU count).")
def command(directory, inputs_path, samples, waves, jobs):
    """Co-simulate the build in DIR against the integer reference, layer by layer.

    Exits with status 1 if any layer of any sample differs from the reference. Results
    go to DIR/sim (replaced as a whole); a DIR that cannot be written is refused before
    simulating.
    """
    build = BuildDirectory(directory)
    stimulus = load_inputs(inputs_path).head(samples).check(build.model())
    result, report = run_cosimulation(build, stimulus, waves=waves, jobs=jobs)
    print_report(result, report, build)
    if not report["bit_exact"]:
        sys.exit(1)
