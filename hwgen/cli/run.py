"""``hwgen run``: inference on a board (or the simulated board) over its UART, checked
bit for bit against the integer reference."""

import click
import numpy as np

from hwgen.errors import MismatchError
from hwgen.build_directory import BuildDirectory
from hwgen.fpga import driver
from hwgen.fpga.core import CoreSpec
from hwgen.sim.stimulus import load_inputs

from .console import console, note, print_json, progress, table
from .params import PositiveFinite


@click.command("run")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--port", help="Serial port of the board (e.g. /dev/ttyUSB1), or a pyserial URL.")
@click.option("--simulate", is_flag=True,
              help="Run on the simulated board top (Verilator) through a pseudo-terminal "
                   "instead of a board.")
@click.option("--inputs", "inputs_path", required=True, type=click.Path(dir_okay=False),
              help="Inputs .npz ('inputs', optional 'labels'), see docs/formats.md.")
@click.option("--samples", type=int, help="Run only the first N samples.")
@click.option("--baud", type=click.IntRange(1), default=115200, show_default=True,
              help="Baud rate the bitstream was built with.")
@click.option("--timeout", type=PositiveFinite(maximum=3600), default=2.0, show_default=True,
              help="Seconds to wait for each response from the board.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(build_dir, port, simulate, inputs_path, samples, baud, timeout, as_json):
    """Run the inputs on the board programmed with DIR and compare with the reference.

    Sends each sample's spike words over the UART protocol (docs/protocol.md), reads the
    output spikes, final membranes and cycle counts, and checks them bit for bit against
    the integer reference of DIR/model.hwgen. Exits with status 1 on any difference.
    """
    if bool(port) == bool(simulate):
        raise click.UsageError("give exactly one of --port PORT and --simulate")
    build = BuildDirectory(build_dir)
    spec = CoreSpec.of(build)
    model = build.model()
    driver.check_model(spec, model)
    stimulus = load_inputs(inputs_path).head(samples).check(model)  # before the port opens

    def execute(port_name):
        transport = driver.SerialTransport(port_name, baud, timeout=timeout)
        try:
            board = driver.Board(transport)
            board.connect(spec)
            with progress() as bar:
                task = bar.add_task("inference", total=len(stimulus))
                return driver.run(board, spec, model, stimulus.inputs, stimulus.labels,
                                  progress=lambda done: bar.update(task, completed=done))
        finally:
            transport.close()

    if simulate:
        from hwgen.fpga.simboard import SimulatedBoard
        with SimulatedBoard(spec, log=note) as board:
            report = execute(board.port)
        where = "simulated board"
    else:
        report = execute(port)
        where = port
    result = {"build": str(build_dir), "board": where, **report.to_json()}
    if as_json:
        print_json(result)
    else:
        cycles = np.array(report.cycles)
        rows = [("samples", report.samples),
                ("bit-exact vs reference", "[green]yes[/green]" if report.bit_exact else
                 f"[red]no: {len(report.mismatched_samples)} samples differ[/red]"),
                ("cycles per inference", f"{cycles.mean():.1f} (min {cycles.min()}, "
                                         f"max {cycles.max()})"),
                ("host time per inference", f"{1e3 * report.seconds / report.samples:.1f} ms")]
        if report.accuracy is not None:
            rows.append(("accuracy", f"{report.accuracy:.2%}"))
        console.print(table(f"{spec.name} on {where}", ["", ""], rows))
    if not report.bit_exact:
        raise MismatchError(f"{len(report.mismatched_samples)} of {report.samples} samples "
                            f"differ from the reference; first: "
                            f"{report.mismatches[0].describe()}")
