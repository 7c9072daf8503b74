"""A sweep's tables and pictures: results.csv / .json, pareto.png / .svg, summary.md.

Latency is cycles per inference over Fmax when the sweep synthesised; without synthesis
there is no Fmax and no logic count, so the axes fall back to cycles per inference and
on-chip memory bits (and every caption says so).
"""

import csv
import io
import json

from hwgen.atomic import atomic_file

from .engine import FIGURES, OK, _json_default

# (key, axis label, short name) for the Pareto plot's axes, best first.
AREA = [("logic", "logic used ({kind})", "area"),
        ("memory_bits", "on-chip memory (bits; no synthesis in this sweep)", "memory")]
LATENCY = [("latency_us", "latency per inference (µs, cycles / Fmax)", "latency"),
           ("cycles_mean", "cycles per inference (mean; no Fmax without synthesis)",
            "cycles")]


def _header(name, unit):
    return f"{name} [{unit}]" if unit else name


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return value


def write_all(result):
    """Write every output of ``result`` (a SweepResult) into its directory; return paths."""
    out = result.directory
    files = {"csv": out / "results.csv", "json": out / "results.json",
             "png": out / "pareto.png", "svg": out / "pareto.svg",
             "summary": out / "summary.md"}
    units = dict(FIGURES)
    columns = result.columns
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([_header(c, units.get(c, "")) for c in columns])
    for row in result.rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    with atomic_file(files["csv"], "w") as f:
        f.write(text.getvalue())
    document = {"grid": result.grid,
                "columns": [{"name": c, "unit": units.get(c, "")} for c in columns],
                "rows": [{c: row.get(c) for c in columns} | {"config": row.get("config")}
                         for row in result.rows]}
    with atomic_file(files["json"], "w") as f:
        f.write(json.dumps(document, indent=1, default=_json_default) + "\n")
    axes = choose_axes(result.rows)
    front = pareto_front(result.rows, axes)
    for kind in ("png", "svg"):
        figure = plot_pareto(result, axes, front)
        with atomic_file(files[kind], "wb") as f:
            figure.savefig(f, format=kind, dpi=120)
    with atomic_file(files["summary"], "w") as f:
        f.write(summary(result, axes, front))
    return files


def choose_axes(rows):
    """((area key, label), (latency key, label)): the best figures every usable row has."""
    usable = [row for row in rows if row["status"] == OK]

    def pick(options):
        for key, label, short in options:
            if usable and all(row.get(key) is not None for row in usable):
                kinds = sorted({row.get("logic_kind") or "" for row in usable} - {""})
                return key, label.format(kind=" or ".join(kinds)), short
        return options[-1]
    return pick(AREA), pick(LATENCY)


def _points(rows, axes):
    (x, *_), (y, *_) = axes
    return [row for row in rows
            if row["status"] == OK and row.get(x) is not None and row.get(y) is not None]


def pareto_front(rows, axes):
    """Rows no other row beats on both area and latency (lower is better), by area."""
    (x, *_), (y, *_) = axes
    front, best = [], None
    for row in sorted(_points(rows, axes), key=lambda r: (r[x], r[y])):
        if best is None or row[y] < best:
            front.append(row)
            best = row[y]
    return front


def label(row, grid):
    return " ".join(f"{k}={row[k]}" for k in grid)


def plot_pareto(result, axes, front):
    """Latency against area: one colour per target, the front joined and labelled."""
    from matplotlib.figure import Figure          # no pyplot: no GUI backend, no globals

    (x, xlabel, _), (y, ylabel, _) = axes
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    plot = figure.add_subplot()
    points = _points(result.rows, axes)
    groups = {}
    for row in points:
        groups.setdefault(row.get("target") or "co-simulation only", []).append(row)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink"]
    for colour, (target, rows) in zip(colours * 4, sorted(groups.items())):
        plot.scatter([r[x] for r in rows], [r[y] for r in rows], s=36, color=colour,
                     alpha=0.8, label=target, zorder=2)
    if front:
        plot.step([r[x] for r in front], [r[y] for r in front], where="post", color="black",
                  linewidth=1, alpha=0.6, zorder=1, label="Pareto front")
        plot.scatter([r[x] for r in front], [r[y] for r in front], s=110,
                     facecolors="none", edgecolors="black", linewidths=1.4, zorder=3)
        for row in front:
            plot.annotate(label(row, result.grid), (row[x], row[y]), xytext=(6, 6),
                          textcoords="offset points", fontsize=8)
    failed = len(result.rows) - len(points)
    plot.set_xlabel(xlabel)
    plot.set_ylabel(ylabel)
    plot.set_title(f"{len(points)} configurations"
                   + (f" ({failed} failed, not shown)" if failed else "")
                   + "; lower left is better", fontsize=10)
    plot.grid(True, alpha=0.3)
    if not points:
        plot.text(0.5, 0.5, "no point completed", transform=plot.transAxes, ha="center")
    else:
        plot.legend(fontsize=8, loc="upper right")
    return figure


def _fmt(value, digits=4):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def summary(result, axes, front):
    """The Markdown summary: the best points and the whole table."""
    (x, xlabel, xshort), (y, ylabel, yshort) = axes
    points = _points(result.rows, axes)
    lines = [f"# Sweep: {len(result.rows)} points", "",
             f"Grid: {', '.join(f'{k} = {v}' for k, v in result.grid.items())}. "
             f"Area is {xlabel}; latency is {ylabel}.", ""]
    if points:
        best = [("latency", min(points, key=lambda r: (r[y], r[x]))),
                ("area", min(points, key=lambda r: (r[x], r[y]))),
                ("latency x area", min(points, key=lambda r: (r[x] * r[y], r[y])))]
        lines += ["| best for | configuration | " + f"{yshort} | {xshort} |", "|---|---|---:|---:|"]
        for what, row in best:
            lines.append(f"| {what} | {label(row, result.grid)} | {_fmt(row[y])} | "
                         f"{_fmt(row[x])} |")
        lines += ["", "Pareto front (no other point is better on both): "
                  + "; ".join(label(row, result.grid) for row in front) + ".", ""]
    else:
        lines += ["No point completed, so there is no best one.", ""]
    lines += ["![latency against area](pareto.png)", "",
              "| " + " | ".join([*result.grid, "status", "cycles", "Fmax (MHz)", "logic",
                                "memory bits", "latency (µs)", "reason"]) + " |",
              "|" + "---|" * (len(result.grid) + 7)]
    for row in result.rows:
        lines.append("| " + " | ".join([*(str(row[k]) for k in result.grid), row["status"],
                                        _fmt(row.get("cycles_mean")),
                                        _fmt(row.get("fmax_mhz")), _fmt(row.get("logic")),
                                        _fmt(row.get("memory_bits")),
                                        _fmt(row.get("latency_us")),
                                        (row.get("reason") or "").replace("|", "/")]) + " |")
    failed = result.failed
    lines += ["", f"{len(result.rows) - len(failed)} points ok, {len(failed)} failed. "
              f"Every figure with its unit: results.csv / results.json.", ""]
    return "\n".join(lines)
