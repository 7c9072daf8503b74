"""Pictures beside the everyday commands' reports (matplotlib, Agg, no screen needed).

Each chart repeats numbers that the command's JSON and Markdown reports already hold, so
the reports stay complete without it: ``hwgen simulate`` writes DIR/sim/cycles.png (per
layer: measured cycles against the ideal bound, input and output spike densities);
``hwgen synth`` writes DIR/fpga/TARGET/utilisation.png beside report.md.
"""

import numpy as np

from hwgen.atomic import atomic_file


def _figure(width, height, columns=1):
    from matplotlib.figure import Figure             # no pyplot: no GUI, no global state
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, columns)


def save(figure, path):
    with atomic_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=110)


def layer_densities(program, model, trace):
    """Per layer of ``program``: (input spike density, output spike density), each the
    fraction of (neuron, step) bits that are spikes, averaged over the samples."""
    from hwgen.compiler.passes.legalise import legalise_for

    return [(float(layer.input_spikes(trace.spikes).mean()),
             float(trace.spikes[layer.name].mean()))
            for layer in legalise_for(model, program["config"]).layers]


def cycles_chart(report, densities, title):
    """Two panels: cycles (mean per sample) and the ideal bound per layer; spike densities
    into and out of each layer."""
    names = [layer["name"] for layer in report["layers"]]
    x = np.arange(len(names))
    figure, (cycles, activity) = _figure(max(6.0, 1.6 * len(names) + 4), 3.8, columns=2)
    measured = [layer["cycles_mean"] for layer in report["layers"]]
    bound = [layer["ideal_bound_mean"] for layer in report["layers"]]
    cycles.bar(x - 0.2, measured, 0.4, label="measured (mean)", color="tab:blue")
    cycles.bar(x + 0.2, bound, 0.4, label="ideal bound (mean)", color="tab:gray")
    for i, (m, b) in enumerate(zip(measured, bound)):
        if b:
            cycles.annotate(f"{m / b:.2f}x", (i - 0.2, m), ha="center", va="bottom",
                            fontsize=8)
    cycles.set_xticks(x, names)
    cycles.set_ylabel("cycles per inference")
    cycles.set_title("cycles per layer (label: measured / bound)", fontsize=10)
    cycles.legend(fontsize=8)
    inputs = [100 * d[0] for d in densities]
    outputs = [100 * d[1] for d in densities]
    activity.bar(x - 0.2, inputs, 0.4, label="input spikes", color="tab:orange")
    activity.bar(x + 0.2, outputs, 0.4, label="output spikes", color="tab:green")
    activity.set_xticks(x, names)
    activity.set_ylabel("spike density (% of neuron-steps)")
    activity.set_title("activity per layer", fontsize=10)
    activity.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    return figure


def utilisation_chart(report):
    """Horizontal bars: percent of the device each resource uses, with used / available."""
    rows = [r for r in report.get("resources", []) if r["available"]]
    figure, plot = _figure(6.5, 0.45 * len(rows) + 1.6)
    labels = [r["resource"] for r in rows]
    percent = [r["percent"] for r in rows]
    colours = ["tab:red" if p > 100 else "tab:orange" if p > 80 else "tab:blue"
               for p in percent]
    y = np.arange(len(rows))
    plot.barh(y, percent, color=colours)
    for i, r in enumerate(rows):
        plot.annotate(f"{r['used']} / {r['available']}", (min(r["percent"], 100), i),
                      xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    plot.set_yticks(y, labels)
    plot.invert_yaxis()
    plot.set_xlim(0, max(125, *(p + 25 for p in percent)) if percent else 125)
    plot.axvline(100, color="black", linewidth=0.8)
    plot.set_xlabel("% of the device")
    timing = report.get("timing") or {}
    fmax = f", Fmax {timing['fmax_mhz']:.2f} MHz" if timing.get("fmax_mhz") else ""
    plot.set_title(f"{report['design']['name']} on {report['target']} ({report['device']})"
                   f"{fmax}: {report.get('status', '').replace('_', ' ')}", fontsize=10)
    return figure
