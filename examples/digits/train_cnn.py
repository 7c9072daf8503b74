"""Train and quantize the bundled spiking CNN for the digits; write it in hwgen's native format.

    pip install -e ".[train]"
    python examples/digits/train_cnn.py        # writes hwgen/bundled/digits_cnn.hwgen,
                                               # hwgen/bundled/digits_cnn.json
                                               # and examples/digits/digits_cnn.nir

The network sees the 8x8 digit as one channel and uses only what a spiking accelerator
runs on binary spikes: strided convolutions instead of pooling, LIF neurons, a flatten and
a dense layer, and a spike-count readout, over T = 8 steps:

    conv 1 -> C1, 3x3, stride 2, pad 1 (8x8 -> 4x4) -> LIF
    conv C1 -> C2, 3x3, stride 2, pad 1 (4x4 -> 2x2) -> LIF -> flatten
    dense C2*4 -> 10 -> LIF -> spike count

Inputs, encoder and split are those of the bundled MLP (train.py): pixel values 0..16
through hwgen's integrate-and-fire encoder (threshold 16), scikit-learn's digits split by
``train_test_split(test_size=0.25, random_state=0, stratify=labels)``; the held-out split
is the bundled digits_test.npz, so this script checks it is the same and does not rewrite it.

Training is train.py's recipe without the pruning: float training with a surrogate
gradient, then quantization-aware fine-tuning whose forward pass is hwgen's integer
semantics (one scale per layer shared by weights, bias, threshold and membrane; floor
leak beta = 7/8; delayed subtract reset; spike when v > theta). The integer model is
checked with hwgen's own reference on the held-out split, and exported as NIR through
snnTorch after snnTorch's own simulation has been checked to spike exactly like it
(export_nir.py). Deterministic (seeds, one thread); a few minutes on one core.
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

import export_nir
from train import LEAK, SPLIT_SEED, T, TEST_FRACTION, ENCODER_THRESHOLD, SpikeFn, bundled_split, \
    ste_floor, ste_round
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LIF, Conv2d, Dense, Flatten, Input, Model, Readout
from hwgen.compiler.ir import reference

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "hwgen" / "bundled"

CHANNELS = (16, 32)
WEIGHT_BITS = 4
V_BITS = 10


class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, CHANNELS[0], 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(CHANNELS[1] * 4, 10)
        self.quantized = False

    @property
    def layers(self):
        return (self.conv1, self.conv2, self.fc)

    @staticmethod
    def layer_scale(layer):
        """Integer units per float unit: the largest |weight| maps to the largest code."""
        return ((1 << (WEIGHT_BITS - 1)) - 1) / layer.weight.abs().max().detach()

    def lif(self, current, scale):
        """Delayed-reset LIF over T; in quantized mode hwgen's integer semantics (membrane in
        integer units, theta = round(scale))."""
        theta = torch.round(scale) if self.quantized else torch.tensor(1.0)
        v = torch.zeros_like(current[0])
        fired = torch.zeros_like(current[0])
        spikes = []
        for t in range(T):
            leaked = LEAK.beta * v
            if self.quantized:
                leaked = ste_floor(leaked)
            v = leaked + current[t] - fired.detach() * theta
            fired = SpikeFn.apply((v - theta) / theta)
            spikes.append(fired)
        return torch.stack(spikes)

    def synapse(self, layer, spikes):
        """The layer's current for every step: spikes (T, batch, ...) folded into the batch."""
        scale = self.layer_scale(layer)
        weight, bias = layer.weight, layer.bias
        if self.quantized:
            weight, bias = ste_round(weight * scale), ste_round(bias * scale)
        flat = spikes.reshape(-1, *spikes.shape[2:])
        if isinstance(layer, torch.nn.Conv2d):
            out = torch.nn.functional.conv2d(flat, weight, bias, layer.stride, layer.padding)
        else:
            out = torch.nn.functional.linear(flat, weight, bias)
        return out.reshape(*spikes.shape[:2], *out.shape[1:]), scale

    def forward(self, spikes):            # spikes: (T, batch, 1, 8, 8)
        x = spikes
        for layer in self.layers:
            if isinstance(layer, torch.nn.Linear):
                x = x.flatten(2)
            x = self.lif(*self.synapse(layer, x))
        return x                          # (T, batch, 10)

    def to_ir(self):
        """The trained network as an hwgen integer model."""
        model = Model("digits_cnn", T, metadata={
            "source": "examples/digits/train_cnn.py",
            "dataset": "scikit-learn load_digits",
            "readout": "spike count, ties to the lowest class"})
        model.add(Input("pixels", (1, 8, 8), encoding="if", threshold=ENCODER_THRESHOLD))
        previous, shape = "pixels", (1, 8, 8)
        for index, layer in enumerate(self.layers, start=1):
            scale = self.layer_scale(layer)
            weight = torch.round(layer.weight.detach() * scale).numpy().astype(np.int64)
            bias = torch.round(layer.bias.detach() * scale).numpy().astype(np.int64)
            bound = int((np.abs(weight).reshape(len(weight), -1).sum(axis=1)
                         + np.abs(bias)).max())
            acc_bits = bound.bit_length() + 1
            if isinstance(layer, torch.nn.Conv2d):
                name = f"conv{index}"
                op = Conv2d(name, weight, bias, stride=layer.stride, padding=layer.padding,
                            weight_bits=WEIGHT_BITS, acc_bits=acc_bits)
                shape = (op.out_channels, *op.output_spatial(shape[1:]))
            else:
                model.add(Flatten("flatten"), previous)
                previous, name = "flatten", f"fc{index}"
                op = Dense(name, weight, bias, weight_bits=WEIGHT_BITS, acc_bits=acc_bits)
                shape = (op.outputs,)
            model.add(op, previous)
            theta = np.full(int(np.prod(shape)), int(torch.round(scale)), dtype=np.int64)
            model.add(LIF(f"lif{index}", theta, leak=LEAK, fire="gt", reset="subtract",
                          order="delayed", v_bits=V_BITS), name)
            previous = f"lif{index}"
        model.add(Readout("class", "spike_count"), previous)
        return model.validate()


def encode(x):
    spikes = reference.if_encode(x, ENCODER_THRESHOLD, T)        # (samples, T, 64)
    return torch.tensor(spikes, dtype=torch.float32).permute(1, 0, 2).reshape(
        T, len(x), 1, 8, 8)


def fit(net, x, y, epochs, lr, log):
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    spikes, labels = encode(x), torch.tensor(y)
    generator = torch.Generator().manual_seed(1)
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 64):
            batch = order[start:start + 64]
            counts = net(spikes[:, batch]).sum(0)
            loss = torch.nn.functional.cross_entropy(counts, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if log and (epoch + 1) % 10 == 0:
            log(f"  epoch {epoch + 1}: loss {loss.item():.3f}")


def torch_accuracy(net, x, y):
    with torch.no_grad():
        counts = net(encode(x)).sum(0).numpy()
    return float(np.mean(np.argmax(counts, axis=1) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE, help="folder for the model files")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--nir", type=Path,
                        default=Path(__file__).resolve().parent / "digits_cnn.nir",
                        help="where to write the model as NIR (through snnTorch)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x_train, x_test, y_train, y_test = bundled_split()

    net = DigitsCNN()
    print("float training")
    fit(net, x_train, y_train, args.epochs, 2e-3, print)
    float_accuracy = torch_accuracy(net, x_test, y_test)
    print(f"float model, held-out accuracy {float_accuracy:.4f}")

    print("quantization-aware fine-tuning")
    net.quantized = True
    fit(net, x_train, y_train, args.epochs // 2, 5e-4, print)
    qat_accuracy = torch_accuracy(net, x_test, y_test)

    model = net.to_ir()
    trace = reference.run(model, x_test)
    integer_accuracy = reference.accuracy(trace.predictions, y_test)
    print(f"QAT torch model {qat_accuracy:.4f}; hwgen integer reference {integer_accuracy:.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    native.save(model, args.out / "digits_cnn.hwgen")
    summary = {"split": {"function": "sklearn.model_selection.train_test_split",
                         "test_size": TEST_FRACTION, "random_state": SPLIT_SEED,
                         "stratify": "labels", "train": len(y_train), "test": len(y_test),
                         "file": "digits_test.npz"},
               "architecture": f"conv 1->{CHANNELS[0]} 3x3/2 -> LIF -> conv {CHANNELS[0]}->"
                               f"{CHANNELS[1]} 3x3/2 -> LIF -> flatten -> dense "
                               f"{CHANNELS[1] * 4}->10 -> LIF -> spike count",
               "epochs": args.epochs,
               "float_accuracy": round(float_accuracy, 4),
               "qat_accuracy": round(qat_accuracy, 4),
               "integer_accuracy": round(integer_accuracy, 4),
               "model_sha256": hashlib.sha256(
                   (args.out / "digits_cnn.hwgen").read_bytes()).hexdigest()}
    (args.out / "digits_cnn.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    export_nir.export(model, args.nir, x_test)
    print(f"wrote {args.nir}")


if __name__ == "__main__":
    main()
