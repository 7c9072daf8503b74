"""``hwgen doctor``: which external tools hwgen found, their versions and origins."""

import sys

import click

from .. import toolchain
from .console import console, print_json, table


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the survey as JSON.")
def command(as_json):
    """Check the toolchain: Verilator, C++ compiler, make, perl, Yosys, nextpnr, programmers.

    Exits with status 1 if a required tool is missing, naming it and how to install it.
    """
    tools = toolchain.survey()
    rows = [tool.as_row() for tool in tools]
    missing = [tool for tool in tools if tool.required and not tool.ok]
    if as_json:
        print_json({"tools": rows, "ok": not missing})
    else:
        styles = {"ok": "[green]ok[/green]", "missing": "[red]missing[/red]",
                  "unusable": "[red]unusable[/red]"}
        console.print(table("hwgen toolchain", ["tool", "status", "version", "from", "path"], [
            (row["tool"], styles[row["status"]] if row["required"] or row["status"] == "ok"
             else "[yellow]not installed[/yellow] (optional)" if row["status"] == "missing"
             else f"[yellow]unusable[/yellow] (optional): {row['problem']}",
             row["version"], row["origin"], row["path"] or row["hint"]) for row in rows]))
    if missing:
        for tool in missing:
            reason = tool.problem or "not found"
            click.echo(f"Error: {tool.name} ({tool.purpose}): {reason}; install: {tool.hint}",
                       err=True)
        sys.exit(1)
    optional = [tool for tool in tools if not tool.required and not tool.ok]
    if optional and not as_json:
        # The optional tools are the board programmers: one that runs is enough.
        usable = [tool.name for tool in tools if not tool.required and tool.ok]
        why = (f"not needed: hwgen flash uses {usable[0]} here" if usable
               else "needed only to flash a board")
        console.print(f"Optional tools missing or unusable ({why}): "
                      + ", ".join(f"{t.name} ({t.problem + '; ' if t.problem else ''}"
                                  f"install: {t.hint})" for t in optional))
