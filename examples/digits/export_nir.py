"""Write the digits SNN as a NIR file, through snnTorch, from the bundled integer model.

    pip install -e ".[train]"
    python examples/digits/export_nir.py       # writes examples/digits/digits.nir
    python examples/digits/export_nir.py --cnn # writes examples/digits/digits_cnn.nir

The bundled model (hwgen/bundled/digits_mlp.hwgen, trained by train.py) already holds
integer weights and thresholds. This script puts them into the snnTorch network they
stand for -- Linear + Leaky(beta=7/8, reset_mechanism="subtract", reset_delay=True,
state_quant=torch.floor), which computes exactly hwgen's integer semantics -- checks with
snnTorch's own simulation that it spikes exactly as the hwgen reference does on the
held-out split, and exports it with hwgen's snnTorch helper
(hwgen.compiler.frontends.snntorch_export), recording T = 8 and the IF input encoder. So

    hwgen inspect examples/digits/digits.nir --source-framework snntorch

reads back the bundled model. train.py calls :func:`export` too, after training. The
bundled CNN (digits_cnn.hwgen, trained by train_cnn.py, which also calls :func:`export`)
goes the same way, its convolutions as Conv2d and its flatten as Flatten.
"""

import argparse
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import snntorch as snn
from snntorch import utils

from hwgen.compiler.frontends import snntorch_export
from hwgen.compiler.ir import LIF, Conv2d, Dense, Flatten
from hwgen import bundled
from hwgen.compiler.ir import reference

HERE = Path(__file__).resolve().parent


def to_snntorch(model):
    """The snnTorch nn.Sequential that computes ``model`` (dense or conv2d -> delayed-subtract
    LIF, flatten)."""
    layers = OrderedDict()
    types = model.infer()
    for op in model.ops:
        if isinstance(op, Conv2d):
            conv = torch.nn.Conv2d(op.in_channels, op.out_channels, op.kernel, stride=op.stride,
                                   padding=op.padding, dilation=op.dilation, groups=op.groups,
                                   bias=op.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.tensor(op.weight, dtype=torch.float32))
                if op.bias is not None:
                    conv.bias.copy_(torch.tensor(op.bias, dtype=torch.float32))
            layers[op.name] = conv
        elif isinstance(op, Flatten):
            # the IR flattens one sample's dimensions; torch's tensors carry a batch first
            start = op.start_dim + 1 if op.start_dim >= 0 else op.start_dim
            end = op.end_dim + 1 if op.end_dim >= 0 else op.end_dim
            layers[op.name] = torch.nn.Flatten(start, end)
        elif isinstance(op, Dense):
            linear = torch.nn.Linear(op.inputs, op.outputs, bias=op.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(op.weight, dtype=torch.float32))
                if op.bias is not None:
                    linear.bias.copy_(torch.tensor(op.bias, dtype=torch.float32))
            layers[op.name] = linear
        elif isinstance(op, LIF):
            if op.leak.kind != "multiply" or op.fire != "gt" or op.reset != "subtract" \
                    or op.order != "delayed":
                raise ValueError(f"{op.where}: not a default snnTorch Leaky")
            # one threshold per neuron, in the shape of the current it integrates
            shape = types[op.name].shape
            layers[op.name] = snn.Leaky(
                beta=op.leak.beta,
                threshold=torch.tensor(op.threshold.reshape(shape), dtype=torch.float32),
                reset_mechanism="subtract", reset_delay=True, init_hidden=True,
                state_quant=torch.floor)
    return torch.nn.Sequential(layers)


def snntorch_spikes(net, spikes, shape=None):
    """snnTorch's own simulation of input ``spikes`` (samples, T, inputs), each step shaped
    ``shape`` (default: flat) for the first module: {Leaky name: uint8 (samples, T, neurons)}."""
    shape = (spikes.shape[2],) if shape is None else tuple(shape)
    utils.reset(net)
    records, hooks = {}, []
    for name, module in net.named_children():
        if isinstance(module, snn.Leaky):
            records[name] = []
            hooks.append(module.register_forward_hook(
                lambda m, i, out, name=name: records[name].append(out)))
    with torch.no_grad():
        for t in range(spikes.shape[1]):
            net(torch.tensor(spikes[:, t].reshape(len(spikes), *shape), dtype=torch.float32))
    for hook in hooks:
        hook.remove()
    # the reference numbers neurons in C order, one flat vector per step
    return {name: torch.stack(out, 1).flatten(2).numpy().astype(np.uint8)
            for name, out in records.items()}


def export(model, path, inputs=None):
    """Export integer ``model`` through snnTorch to ``path``; if ``inputs`` are given, first
    check that snnTorch spikes exactly like the hwgen reference on them."""
    net = to_snntorch(model)
    if inputs is not None:
        trace = reference.run(model, inputs)
        ours = snntorch_spikes(net, trace.spikes[model.input.name], model.input.shape)
        for name, spikes in ours.items():
            if not np.array_equal(spikes, trace.spikes[name]):
                raise AssertionError(f"snnTorch and the hwgen reference disagree on {name}")
        print(f"snnTorch's simulation matches the hwgen reference on {len(inputs)} samples")
    source = model.input
    return snntorch_export.export(
        net, path, source.shape, timesteps=model.timesteps,
        input_encoding=("if", source.threshold) if source.encoding == "if" else None,
        input_name=source.name, output_name=model.outputs[0].name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnn", action="store_true",
                        help="export the bundled CNN (@digits_cnn) instead of the MLP")
    parser.add_argument("--out", type=Path,
                        help="default: digits.nir, or digits_cnn.nir with --cnn, next to this "
                             "script")
    args = parser.parse_args(argv)
    out = args.out or HERE / ("digits_cnn.nir" if args.cnn else "digits.nir")
    inputs, _ = bundled.digits_test_set()
    export(bundled.digits_cnn_model() if args.cnn else bundled.digits_model(), out, inputs)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
