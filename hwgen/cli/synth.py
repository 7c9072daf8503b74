"""``hwgen synth``: Yosys + nextpnr on a build directory; utilisation, Fmax, bitstream."""

import json

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from hwgen.errors import ConfigError, FitError, TimingError
from hwgen.fpga import flow
from hwgen.fpga.targets import TARGETS

from .console import console, errors, print_json, table


def _progress():
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=errors, transient=False, disable=not errors.is_terminal)


def _frequency(value):
    if value == flow.AUTO:
        return value
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number of MHz nor 'auto'") from None


def _seeds(value):
    try:
        return flow.parse_seeds(value)
    except ConfigError as error:
        raise click.BadParameter(str(error).removeprefix(f"--seed {value!r}: ")) from None


def print_report(report, out_dir):
    """Resource and timing tables of a synthesis report."""
    rows = [(r["resource"], r["used"], r["available"], f"{r['percent']:.1f}%", r["meaning"])
            for r in report.get("resources", [])]
    if rows:
        console.print(table(f"{report['design']['name']} on {report['target']} "
                            f"({report['device']})",
                            ["resource", "used", "available", "use", "what"], rows,
                            justify={"used": "right", "available": "right", "use": "right"}))
    timing = report.get("timing")
    if timing:
        console.print(table("timing", ["clock", "Fmax (MHz)", "constraint (MHz)", "met"], [
            (c["clock"], f"{c['achieved_mhz']:.2f}", f"{c['constraint_mhz']:.2f}",
             "[green]yes[/green]" if c["met"] else "[red]NO[/red]")
            for c in timing["clocks"]], justify={"Fmax (MHz)": "right",
                                                 "constraint (MHz)": "right"}))
    for note in report.get("notes", []):
        console.print(f"note: {note}")
    console.print(f"report: {out_dir / 'report.json'} (and report.md, utilisation.png); "
                  f"logs in {out_dir}")


HELP = """Synthesise, place and route the build in DIR for a board or a bare device.

Runs Yosys and nextpnr (YoWASP unless $YOSYS, $NEXTPNR_ICE40, $NEXTPNR_ECP5, $ICEPACK,
$ECPPACK name other binaries) and writes DIR/fpga/TARGET/: report.json, report.md, the
tool logs and, for a board, the bitstream. Exits with status 1 if the design does not
fit or misses the requested frequency.

\b
Targets:
""" + "".join(f"  {name:11} {t.description}\n" for name, t in TARGETS.items())


@click.command("synth", help=HELP)
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--target", "-t", "target", required=True,
              type=click.Choice(list(TARGETS), case_sensitive=False),
              help="A board (writes a bitstream) or a bare device (out-of-context report "
                   "of the core alone).")
@click.option("--frequency", "frequency_mhz", default=flow.AUTO, show_default=True,
              metavar="MHZ|auto", callback=lambda ctx, param, value: _frequency(value),
              help="Requested clock frequency in MHz, or 'auto': the fastest clock the "
                   "design meets, up to the family's goal ("
                   + ", ".join(f"{n} {t.default_mhz:g}" for n, t in TARGETS.items())
                   + " MHz); it builds at an easy clock (a board's oscillator, else 25 MHz) "
                   "to measure Fmax, then just below it (two or three place-and-route "
                   "runs).")
@click.option("--baud", type=int, default=flow.DEFAULT_BAUD, show_default=True,
              help="UART baud rate of a board's link.")
@click.option("--allow-timing-failure", is_flag=True,
              help="Keep the result (and write the bitstream) even if timing is not met.")
@click.option("--seed", default="1", show_default=True, metavar="N|N-M|N,M,..",
              callback=lambda ctx, param, value: _seeds(value),
              help="nextpnr placer seed, or several: each build then places with one after "
                   "another until a placement meets the clock, and keeps the fastest if "
                   "none does (the report lists every seed tried).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(build_dir, target, frequency_mhz, baud, allow_timing_failure, seed, as_json):
    target = target.lower()
    out_dir = flow.output_directory(build_dir, target)
    tasks = {}
    with _progress() as bar:
        def progress(step):
            if not step.done:
                tasks[step.name] = bar.add_task(step.name, total=1)
            elif step.name in tasks:
                bar.update(tasks.pop(step.name), completed=1,
                           description=f"{step.name}: {step.seconds:.1f} s")
            else:                                         # a note (--frequency auto)
                bar.console.print(step.name)
        try:
            report = flow.synthesize(build_dir, target, frequency_mhz=frequency_mhz,
                                     baud=baud, allow_timing_failure=allow_timing_failure,
                                     seed=seed, progress=progress)
        except (FitError, TimingError):
            saved = out_dir / "report.json"
            if saved.is_file() and not as_json:
                bar.stop()
                print_report(json.loads(saved.read_text()), out_dir)
            raise
    if as_json:
        print_json(report)
        return
    print_report(report, out_dir)
    timing = report["timing"]
    verdict = ("[green]timing met[/green]" if timing["met"]
               else "[yellow]timing NOT met (accepted)[/yellow]")
    console.print(f"[bold]fits[/bold], {verdict}: Fmax {timing['fmax_mhz']:.2f} MHz, clock "
                  f"{report['clock']['mhz']:g} MHz"
                  + (" (--frequency auto)" if report["clock"].get("auto") else ""))
    if report["bitstream"]:
        console.print(f"bitstream: {out_dir / report['bitstream']}")
