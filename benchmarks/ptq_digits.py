"""Post-training quantization of a float snnTorch model: accuracy and spike agreement.

    python benchmarks/ptq_digits.py [--epochs 20]

Trains a float spiking MLP (64 -> 128 Leaky -> 10 Leaky, snnTorch defaults: beta 0.875,
threshold 1, subtract reset one step late) on scikit-learn's digits, the split and IF input
encoding of the bundled model; exports it with hwgen's snnTorch helper; imports it with
hwgen at several weight widths, with and without calibration on 200 training samples;
and reports, on the held-out split, snnTorch's float accuracy, the integer reference's
accuracy, and the agreement between the float model and the integer model (spike bits per
layer, predictions). Measures; asserts nothing.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import snntorch as snn
from snntorch import utils
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.frontends import snntorch_export
from hwgen.compiler.ir import float_reference, reference

T, THRESHOLD = 8, 16


def data():
    digits = load_digits()
    return train_test_split(digits.data.astype(np.int64), digits.target, test_size=0.25,
                            random_state=0, stratify=digits.target)


def encode(x):
    return reference.if_encode(x, THRESHOLD, T)                   # (samples, T, 64)


def train(x, y, epochs):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), snn.Leaky(beta=0.875, init_hidden=True),
                              torch.nn.Linear(128, 10), snn.Leaky(beta=0.875, init_hidden=True))
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


def snntorch_predictions(net, x):
    utils.reset(net)
    spikes = torch.tensor(encode(x), dtype=torch.float32)
    with torch.no_grad():
        counts = sum(net(spikes[:, t]) for t in range(T))
    return counts.argmax(1).numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = data()
    started = time.time()
    net = train(x_train, y_train, args.epochs)
    float_accuracy = float(np.mean(snntorch_predictions(net, x_test) == y_test))
    print(f"float snnTorch model: held-out accuracy {float_accuracy:.4f} "
          f"(trained in {time.time() - started:.0f} s)")
    path = Path(tempfile.mkdtemp()) / "digits_float.nir"
    snntorch_export.export(net, path, (64,), timesteps=T, input_encoding=("if", THRESHOLD))
    network = frontend.to_float(path)
    float_trace = float_reference.run(network, encode(x_test))
    rng = np.random.default_rng(0)
    calibration = x_train[rng.choice(len(x_train), 200, replace=False)]
    rows = []
    for bits in (8, 6, 4, 3):
        for calibrated in (False, True):
            started = time.time()
            model = frontend.load(path, weight_bits=bits,
                                  calibration=calibration if calibrated else None)
            seconds = time.time() - started
            trace = reference.run(model, x_test)
            layers = model.metadata["quantization"]["layers"]
            rows.append({
                "weight_bits": bits, "calibrated": calibrated,
                "integer_accuracy": float(np.mean(trace.predictions == y_test)),
                "prediction_agreement": float(np.mean(trace.predictions
                                                      == float_trace.predictions)),
                "spike_agreement": {name: float(np.mean(trace.spikes[name]
                                                        == float_trace.spikes[name]))
                                    for name in ("1", "3")},
                "clip": [round(((1 << (bits - 1)) - 1)
                               / (layer["scale"] * layer["max_abs_weight"]), 3)
                         for layer in layers],
                "clipped_weights": [layer["clipped_weights"] for layer in layers],
                "v_bits": [layer["v_bits"] for layer in layers],
                "import_seconds": round(seconds, 2)})
    print(f"{'bits':>4} {'calib':>5} {'int acc':>8} {'pred agree':>10} "
          f"{'spikes l1':>9} {'spikes l2':>9} {'clip':>12} {'clipped':>9} {'v bits':>7}")
    for r in rows:
        print(f"{r['weight_bits']:>4} {str(r['calibrated']):>5} {r['integer_accuracy']:>8.4f} "
              f"{r['prediction_agreement']:>10.4f} {r['spike_agreement']['1']:>9.4f} "
              f"{r['spike_agreement']['3']:>9.4f} {str(r['clip']):>12} "
              f"{str(r['clipped_weights']):>9} {str(r['v_bits']):>7}")
    print(json.dumps({"float_accuracy": float_accuracy, "held_out": len(y_test),
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
