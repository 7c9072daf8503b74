"""Cycles against logic of T_c and of the two joins, from finished `hwgen sweep` directories.

    python benchmarks/area_plot.py SWEEP_DIR... -o docs/time_chunks_area.png

Each SWEEP_DIR is the output of a sweep over ``time_chunk`` and ``join`` with ``--synth``
(docs/results.md, "Area of T_c and of the two joins", has the commands); of a sweep that
was stopped, the points it finished (DIR/points). The points of all directories are
grouped by synthesis target, one panel per target: logic used on x (ECP5: LUT4s after
placement; iCE40: logic cells, each a LUT4, a flip-flop and carry), mean cycles per
inference on y (log scale), colour by join, marker by the model's T, each point labelled
with its T_c (and T and ``lif_steps`` where they are not 8 and 1). A point that was placed
but missed its clock is drawn hollow; one that nextpnr could not place is a cross at the
logic count nextpnr packed, with the device's limit as a dashed line; any other failure is
only in the printed table (it has no area). The script also prints one Markdown table per
target with every row, failures included, so the numbers in docs/results.md come from the
same files as the plot.
"""

import argparse
import json
import sys
from pathlib import Path

from hwgen import charts

UNPLACEABLE = "Unable to find legal placement"   # nextpnr's words, in a tool_error's reason
JOIN_COLOURS = {"dual": "tab:blue", "laggy": "tab:orange"}
T_MARKERS = {8: "o", 16: "s"}


def load_rows(directories):
    rows = []
    for directory in directories:
        path = Path(directory) / "results.json"
        if path.is_file():
            found = json.loads(path.read_text())["rows"]
        else:
            # A sweep stopped before its end has only the points it finished.
            points = sorted(Path(directory).glob("points/*.json"))
            if not points:
                raise SystemExit(f"{path}: no results.json and no points/; is {directory} "
                                 f"a sweep directory?")
            found = sorted((json.loads(p.read_text()) for p in points),
                           key=lambda r: r["point"])
            print(f"{directory}: no results.json (the sweep was stopped); "
                  f"{len(found)} finished points from {directory}/points", file=sys.stderr)
        for row in found:
            if "time_chunk" not in row or "join" not in row:
                raise SystemExit(f"{path}: the sweep's grid must have time_chunk and join")
            config = row.get("config") or {}
            row["timesteps"], row["lif_steps"] = config.get("timesteps"), config.get("lif_steps")
            rows.append(row)
    return rows


def _number(value, digits=0):
    if value is None or value == "":
        return "-"
    return f"{value:,.{digits}f}"


def markdown(rows):
    """One Markdown table per target, largest T first, dual before laggy, largest T_c first.
    An iCE40 row also gives its logic cells (nextpnr's LCs: a LUT4, a flip-flop and carry
    each, what the device's 5,280 count), beside Yosys's LUT4s and flip-flops."""
    out = []
    for target in sorted({row["target"] for row in rows if row.get("target")}):
        chosen = sorted((r for r in rows if r.get("target") == target),
                        key=lambda r: (-(r["timesteps"] or 0), r["join"], -r["time_chunk"],
                                       r["lif_steps"] or 0))
        cells = any(r.get("logic_kind") == "LCs" for r in chosen)
        lif = any(r["lif_steps"] not in (None, 1) for r in chosen)
        out.append(f"{target}\n")
        out.append("| T | T_c | join |" + (" lif_steps |" if lif else "")
                   + (" LCs |" if cells else "") + " LUT4s | FFs | BRAM "
                   "| DSP | Fmax (MHz) | cycles (mean) | ideal bound | latency | status |")
        out.append("|---:|---:|---|" + ("---:|" if lif else "") + ("---:|" if cells else "")
                   + "---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in chosen:
            reason = (r.get("reason") or "").split(";")[0]
            status = f"{r['status']}: {reason}" if reason else r["status"]
            if unplaced(r) and ("no legal placement" in reason or UNPLACEABLE in reason):
                status = "not placed: nextpnr (seed 1) found no legal placement"
            elif unplaced(r):
                status = "does not fit: more cells than the device has"
            elif r["status"] == "ok" and r.get("timing_met") is False:
                status = f"timing missed (clock {r['clock_mhz']:g} MHz)"
            elif r["status"] == "ok" and r.get("clock_mhz"):
                status = f"ok at {r['clock_mhz']:g} MHz"          # the clock it was placed for
            latency = f"{r['latency_us']:.1f} us" if r.get("latency_us") else "-"
            logic = (f" {r['lif_steps']} |" if lif else "") \
                + (f" {_number(r.get('logic'))} |" if cells else "")
            out.append(f"| {r['timesteps']} | {r['time_chunk']} | {r['join']} |{logic} "
                       f"{_number(r.get('luts'))} | {_number(r.get('ffs'))} "
                       f"| {_number(r.get('bram'))} | {_number(r.get('dsp'))} "
                       f"| {_number(r.get('fmax_mhz'), 1)} | {_number(r.get('cycles_mean'))} "
                       f"| {_number(r.get('ideal_bound'))} | {latency} | {status} |")
        out.append("")
    return "\n".join(out)


def unplaced(row):
    """Whether synthesis reached placement and nextpnr could not place the design: its
    logic count (after packing) is known, the design is over the device's limit."""
    return row["status"] in ("does_not_fit", "tool_error") and bool(row.get("logic")) \
        and (row["status"] == "does_not_fit" or UNPLACEABLE in (row.get("reason") or ""))


def available_logic(row):
    """The device's count of the row's logic resource, from its synthesis report."""
    report = Path(row.get("build") or "") / "fpga" / row["target"] / "report.json"
    if not report.is_file():
        return None
    for resource in json.loads(report.read_text()).get("resources", []):
        if resource["resource"] in ("LCs", "LUTs") \
                and resource["resource"][:2] == row["logic_kind"][:2]:
            return resource["available"]
    return None


def plot(rows, path):
    from matplotlib.figure import Figure             # no pyplot: no GUI, no global state
    from matplotlib.lines import Line2D
    from matplotlib.ticker import ScalarFormatter

    targets = sorted({row["target"] for row in rows if row.get("target")})
    figure = Figure(figsize=(5.4 * len(targets), 4.6), layout="constrained")
    axes = figure.subplots(1, len(targets), squeeze=False)[0]
    kinds_drawn = set()
    for ax, target in zip(axes, targets):
        kinds, limit = set(), None
        for r in rows:
            if r.get("target") != target or not r.get("logic") or not r.get("cycles_mean"):
                continue
            placed = r["status"] == "ok"
            if not placed and not unplaced(r):
                continue
            kinds.add(r["logic_kind"])
            colour = JOIN_COLOURS.get(r["join"], "tab:gray")
            if not placed:
                kind = "not placed"
                ax.scatter(r["logic"], r["cycles_mean"], marker="x", s=46, color=colour,
                           linewidths=1.4, zorder=3)
                limit = limit or available_logic(r)
            else:
                kind = "timing missed" if r.get("timing_met") is False else "placed"
                ax.scatter(r["logic"], r["cycles_mean"],
                           marker=T_MARKERS.get(r["timesteps"], "^"), s=46,
                           color=colour if kind == "placed" else "none", edgecolors=colour,
                           linewidths=1.4, zorder=3)
            kinds_drawn.add(kind)
            notes = ([f"T={r['timesteps']}"] if r["timesteps"] != 8 else []) \
                + ([f"lif_steps={r['lif_steps']}"] if r["lif_steps"] not in (None, 1) else [])
            ax.annotate(f"{r['time_chunk']}" + (f" ({', '.join(notes)})" if notes else ""),
                        (r["logic"], r["cycles_mean"]), textcoords="offset points",
                        # laggy labels below their points: the joins' points sit close
                        xytext=(6, 3) if r["join"] != "laggy" else (6, -11), fontsize=8)
        if limit:
            ax.axvline(limit, color="black", linestyle="--", linewidth=1)
            ax.annotate(f"device: {limit:,}", (limit, 0), xycoords=("data", "axes fraction"),
                        xytext=(-4, 4), textcoords="offset points", ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlabel("logic used (" + ", ".join(sorted(kinds)) + ")")
        ax.set_ylabel("cycles per inference (mean of the samples, log)")
        ax.set_title(target, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"join={j}")
               for j, c in JOIN_COLOURS.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="gray", label=f"model T = {t}")
                for t, m in T_MARKERS.items() if any(r["timesteps"] == t for r in rows)]
    if "timing missed" in kinds_drawn:
        handles.append(Line2D([], [], marker="o", linestyle="", color="gray",
                              markerfacecolor="none", label="timing missed"))
    if "not placed" in kinds_drawn:
        handles.append(Line2D([], [], marker="x", linestyle="", color="gray",
                              label="does not fit or cannot be placed"))
    figure.legend(handles=handles, fontsize=8, loc="outside lower center",
                  ncol=len(handles))
    figure.suptitle("bundled digits MLP: cycles against logic (label: T_c)", fontsize=10)
    charts.save(figure, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR")
    parser.add_argument("-o", "--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    rows = load_rows(args.sweeps)
    plot(rows, args.out)
    print(markdown(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
