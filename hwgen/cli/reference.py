"""``hwgen reference``: run the integer reference model and report accuracy and activity."""

import click
import numpy as np

from hwgen.compiler.ir import reference
from hwgen.sim import statistics

from .console import console, print_json, table
from .frontend_options import frontend_options
from .models import MODEL_HELP, load_model, load_stimulus, model_argument


@click.command("reference", help=f"""Run MODEL on inputs with the integer reference (the
definition of correct). Prints per-layer activity (spike density, silent neurons, weight
density, matched pairs) and, if the inputs carry labels, the accuracy.

{MODEL_HELP}""")
@model_argument
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False),
              help="Inputs .npz ('inputs', optional 'labels'); defaults to the bundled "
                   "model's held-out split.")
@click.option("--samples", type=int, help="Run only the first N samples.")
@click.option("--outputs", "outputs_path", type=click.Path(dir_okay=False),
              help="Write every layer's spikes to this .npz.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@frontend_options
def command(model, inputs_path, samples, outputs_path, as_json, frontend):
    m = load_model(model, frontend)
    stimulus = load_stimulus(model, inputs_path, samples).check(m)
    trace = reference.run(m, stimulus.inputs)
    layers = statistics.layer_statistics(m, trace)
    result = {"model": m.name, "samples": len(stimulus),
              "layers": [layer.to_json() for layer in layers]}
    if stimulus.labels is not None and trace.predictions is not None:
        result["accuracy"] = reference.accuracy(trace.predictions, stimulus.labels)
    if outputs_path:
        from hwgen.atomic import atomic_file
        with atomic_file(outputs_path) as f:
            np.savez_compressed(f, **{f"spikes/{name}": s for name, s in trace.spikes.items()},
                                **({"predictions": trace.predictions}
                                   if trace.predictions is not None else {}))
    if as_json:
        print_json(result)
        return
    rows = []
    for layer in layers:
        if layer.spike_density is not None:
            rows.append((layer.name, layer.kind, layer.neurons,
                         f"{layer.spike_density.mean():.1%}", f"{layer.silent_fraction:.1%}",
                         "", ""))
        else:
            rows.append((layer.name, layer.kind, layer.neurons, "", "",
                         f"{layer.weight_density:.1%}", f"{layer.matched_pairs.mean():.1f}"))
    console.print(table(f"{m.name}: integer reference on {len(stimulus)} samples",
                        ["op", "type", "neurons", "spike density", "silent (all T)",
                         "weight density", "matched pairs / sample"], rows,
                        justify={c: "right" for c in ["neurons", "spike density",
                                                      "silent (all T)", "weight density",
                                                      "matched pairs / sample"]}))
    if "accuracy" in result:
        correct = int(np.sum(trace.predictions == stimulus.labels))
        console.print(f"accuracy: [bold]{result['accuracy']:.2%}[/bold] "
                      f"({correct} / {len(stimulus)})")
