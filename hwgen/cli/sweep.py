"""``hwgen sweep``: a design-space sweep on Dask; tables, a Pareto plot and a summary."""

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn

from hwgen.fpga import flow
from hwgen.fpga.targets import TARGETS

from ..sweep import engine
from .compile import config_options
from .console import console, errors, note, table
from .frontend_options import frontend_options
from .models import MODEL_HELP, load_model, load_stimulus, model_argument
from .synth import _frequency


@click.command("sweep", help=f"""Compile, co-simulate and optionally synthesise every
configuration of a grid of hardware parameters, on Dask distributed.

Each --grid KEY=V1,V2,... is an axis (any parameter --set accepts); the sweep runs their
cross product. Writes DIR/results.csv and results.json (one row per point, units in the
header), DIR/pareto.png and .svg (latency against logic used, the Pareto front labelled)
and DIR/summary.md (the best point for latency, for area and for their product).

Points run as Dask tasks: by default on a local cluster with one worker per CPU; with
--scheduler tcp://HOST:PORT on an existing Dask cluster, whose workers need hwgen
installed (the same version). Each finished point is saved in DIR/points/, so running the
same command again skips the points already done (resume after a crash or Ctrl-C). A
failing point (refused by the compiler, mismatch, does not fit, timing, tool error) is a
row with its reason.

{MODEL_HELP}""")
@model_argument
@click.option("--grid", "grids", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="One axis of the sweep (repeatable), e.g. --grid tppes=1,2,4.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Sweep directory (created; reused to resume).")
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False),
              help="Inputs .npz (default for a bundled model: its held-out split).")
@click.option("--samples", type=int, help="Co-simulate only the first N samples.")
@click.option("--synth", "target", type=click.Choice(list(TARGETS), case_sensitive=False),
              help="Also synthesise each point for this target (as hwgen synth).")
@click.option("--frequency", "frequency_mhz", default=flow.AUTO, show_default=True,
              metavar="MHZ|auto", callback=lambda ctx, param, value: _frequency(value),
              help="Clock for --synth, as for hwgen synth.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Address of a running Dask scheduler (tcp://HOST:PORT); default: start "
                   "a local cluster. 'sequential' runs the points one after another "
                   "without Dask.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Workers of the local cluster (default: one per CPU).")
@config_options
@frontend_options
def command(model, grids, out, inputs_path, samples, target, frequency_mhz, scheduler,
            workers, config_path, overrides, frontend):
    from ..sweep import sweep

    if scheduler and workers:
        raise click.UsageError("--workers sizes the local cluster; it does not apply with "
                               "--scheduler")
    grid = engine.parse_grid(grids)
    stimulus = load_stimulus(model, inputs_path, samples)
    # --calibration quantizes a NIR model on import; the sweep's points are scheduled
    # without activity estimates, so it means nothing for other models.
    m = load_model(model, frontend)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=errors, transient=not errors.is_terminal)
    with bar:
        task = bar.add_task("sweep", total=None)

        def progress(done, running, failed, total):
            bar.update(task, total=total, completed=done,
                       description=f"sweep: {running} running, {failed} failed")
        result = sweep(m, grid, out, inputs=stimulus, config=config_path,
                       overrides=overrides, synth=target, frequency=frequency_mhz,
                       scheduler=scheduler, workers=workers, progress=progress, log=note)
    print_result(result)


def print_result(result):
    rows = []
    for row in result.rows:
        status = ("[green]ok[/green]" if row["status"] == engine.OK
                  else f"[red]{row['status']}[/red]")
        rows.append((*(row[k] for k in result.grid), status,
                     _fmt(row.get("cycles_mean")), _fmt(row.get("logic")),
                     _fmt(row.get("fmax_mhz")), _fmt(row.get("latency_us")),
                     row.get("reason") or ""))
    console.print(table(f"{len(result.rows)} points ({result.ran} run, {result.skipped} "
                        f"already done)",
                        [*result.grid, "status", "cycles", "logic", "Fmax (MHz)",
                         "latency (µs)", "reason"], rows,
                        justify={c: "right" for c in ("cycles", "logic", "Fmax (MHz)",
                                                      "latency (µs)")}))
    for kind in ("csv", "json", "png", "svg", "summary"):
        console.print(f"{kind}: {result.files[kind]}")


def _fmt(value):
    if value is None:
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)
