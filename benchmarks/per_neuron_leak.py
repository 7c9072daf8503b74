"""Per-neuron decays: snnTorch's spikes against hwgen's, one leak per neuron vs one per layer.

    python benchmarks/per_neuron_leak.py [--epochs 10]

The snnTorch tutorials' pattern for learnable decays, ``Leaky(beta=torch.rand(n),
learn_beta=True)``, trained on scikit-learn's digits (64 -> 128 -> 10, T = 8, the bundled
model's split and IF input encoding). Two versions of the trained network are compared
with snnTorch's own simulation on the held-out split:

- ``float``: the trained network as is (float weights and betas; hwgen quantizes it, so
  weight rounding differs too), read through hwgen's snnTorch helper;
- ``integer``: its integer twin (weights and thresholds scaled and rounded, every beta
  rounded to a/256, ``state_quant=torch.floor``), which hwgen must reproduce exactly.

For each, hwgen's integer reference runs the imported model as it is now (a
``per_neuron`` leak) and as hwgen used to build it (one leak per layer from the median
beta, the rest unchanged). Reported per layer: the fraction of (sample, neuron) spike
counts equal to snnTorch's and of spike bits equal, and the prediction agreement.
Measures; asserts nothing.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import snntorch as snn
import torch
from snntorch import utils
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.frontends import native, snntorch_export
from hwgen.compiler.ir import reference
from hwgen.compiler.passes.quantize import quantize_leak

T, THRESHOLD, HIDDEN = 8, 16, 128


def data():
    digits = load_digits()
    return train_test_split(digits.data.astype(np.int64), digits.target, test_size=0.25,
                            random_state=0, stratify=digits.target)


def encode(x):
    return reference.if_encode(x, THRESHOLD, T)


def train(x, y, epochs):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN),
        snn.Leaky(beta=0.5 + 0.45 * torch.rand(HIDDEN), learn_beta=True, init_hidden=True),
        torch.nn.Linear(HIDDEN, 10),
        snn.Leaky(beta=0.5 + 0.45 * torch.rand(10), learn_beta=True, init_hidden=True))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    spikes, labels = torch.tensor(encode(x), dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 64):
            batch = order[start:start + 64]
            utils.reset(net)
            counts = sum(net(spikes[batch, t]) for t in range(T))
            loss = torch.nn.functional.cross_entropy(counts * 2.0, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return net


def integer_twin(net, scale=16.0):
    """The same network in integers: weights, biases and thresholds times ``scale``,
    rounded; betas rounded to a/256; snnTorch floors its membrane."""
    layers = []
    for module in net:
        if isinstance(module, torch.nn.Linear):
            linear = torch.nn.Linear(module.in_features, module.out_features)
            with torch.no_grad():
                linear.weight.copy_(torch.round(module.weight * scale))
                linear.bias.copy_(torch.round(module.bias * scale))
            layers.append(linear)
        else:
            beta = torch.round(module.beta.detach().clamp(0, 1) * 256) / 256
            layers.append(snn.Leaky(beta=beta, threshold=float(round(scale)),
                                    init_hidden=True, state_quant=torch.floor))
    return torch.nn.Sequential(*layers)


def snntorch_spikes(net, spikes):
    utils.reset(net)
    records = {name: [] for name, m in net.named_children() if isinstance(m, snn.Leaky)}
    with torch.no_grad():
        for t in range(T):
            x = torch.tensor(spikes[:, t], dtype=torch.float32)
            for name, module in net.named_children():
                x = module(x)
                if name in records:
                    records[name].append(x.numpy().astype(np.uint8))
    return {name: np.stack(r, axis=1) for name, r in records.items()}


def median_leak(model, path_options):
    """``model`` with every per-neuron leak replaced by the one hwgen used to choose: the
    supported leak nearest the layer's median beta."""
    old = native.loads(native.dumps(model))
    for op in old.ops:
        leak = getattr(op, "leak", None)
        if leak is not None and leak.kind == "per_neuron":
            op.leak, _ = quantize_leak(float(np.median(leak.betas)), **path_options)
    return old


def compare(theirs, trace, labels):
    result = {}
    for name, spikes in theirs.items():
        ours = trace.spikes[name]
        result[name] = {"counts_equal": float(np.mean(ours.sum(1) == spikes.sum(1))),
                        "bits_equal": float(np.mean(ours == spikes))}
    predictions = theirs["3"].sum(1).argmax(1)
    result["prediction_agreement"] = float(np.mean(trace.predictions == predictions))
    result["snntorch_accuracy"] = float(np.mean(predictions == labels))
    result["hwgen_accuracy"] = float(np.mean(trace.predictions == labels))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = data()
    started = time.time()
    net = train(x_train, y_train, args.epochs)
    print(f"trained in {time.time() - started:.0f} s")
    spikes = encode(x_test)
    report = {"held_out": len(y_test), "epochs": args.epochs}
    folder = Path(tempfile.mkdtemp())
    for label, version in (("float", net), ("integer", integer_twin(net))):
        path = folder / f"{label}.nir"
        snntorch_export.export(version, path, (64,), timesteps=T,
                               input_encoding=("if", THRESHOLD))
        model = frontend.load(path)
        theirs = snntorch_spikes(version, spikes)
        leaks = {op.name: op.leak for op in model.ops if getattr(op, "leak", None)}
        entry = {"leaks": {name: leak.describe() for name, leak in leaks.items()},
                 "per_neuron": compare(theirs, reference.run(model, x_test), y_test),
                 "median": compare(theirs, reference.run(
                     median_leak(model, {"form": "multiply", "frac_bits": 8}), x_test),
                     y_test)}
        report[label] = entry
        for how in ("per_neuron", "median"):
            r = entry[how]
            print(f"{label:>7} {how:>10}: spike counts equal to snnTorch's: layer 1 "
                  f"{r['1']['counts_equal']:.2%}, layer 3 {r['3']['counts_equal']:.2%}; "
                  f"spike bits {r['1']['bits_equal']:.2%} / {r['3']['bits_equal']:.2%}; "
                  f"predictions {r['prediction_agreement']:.2%}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
