"""The bundled digits MLP with more time steps: the same ops and integer weights, a longer T.

    python benchmarks/digits_long_t.py -o digits_t16.hwgen            # T = 16
    python benchmarks/digits_long_t.py -o digits_t32.hwgen --timesteps 32

The bundled model (examples/digits/train.py) runs T = 8; a time chunk T_c must divide T, so
measuring T_c = 16 (docs/results.md, "Area of T_c and of the two joins") needs a model with
T = 16. This script copies every op of the bundled model unchanged (weights, biases,
thresholds, leak, widths, the integrate-and-fire pixel encoder with its threshold of 16) into
a model of ``--timesteps`` steps and saves it in the native format. Nothing is retrained:
the encoder spikes about x/16 of the steps for pixel value x at any T, so the rates the
network was trained on are kept and the spike counts the readout compares grow with T.

It prints the integer reference's accuracy on the bundled held-out split at the bundled T
and at the new one, so the longer model's accuracy is on record next to its area.
"""

import argparse
import sys

from hwgen import bundled
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import Model, reference


def lengthen(model, timesteps):
    """A copy of ``model`` with ``timesteps`` steps; ops, tensors and edges unchanged."""
    longer = Model(f"{model.name}_t{timesteps}", timesteps,
                   {**model.metadata,
                    "derived": f"{model.name} (T = {model.timesteps}) with T = {timesteps}, "
                               f"same ops and weights, not retrained "
                               f"(benchmarks/digits_long_t.py)"})
    for op in model.ops:
        longer.add(type(op).from_parts(op.name, op.attributes(), op.tensors()),
                   model.inputs_of(op.name))
    return longer.validate()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", required=True, help="the .hwgen file to write")
    parser.add_argument("--timesteps", type=int, default=16, help="T of the new model")
    args = parser.parse_args(argv)
    base = bundled.digits_model()
    longer = lengthen(base, args.timesteps)
    inputs, labels = bundled.digits_test_set()
    for model in (base, longer):
        trace = reference.run(model, inputs)
        print(f"{model.name}: T = {model.timesteps}, integer reference accuracy "
              f"{reference.accuracy(trace.predictions, labels):.2%} on {len(labels)} "
              f"held-out samples")
    native.save(longer, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
