"""Train, prune and quantize the bundled digits SNN; write it in hwgen's native format.

    pip install -e ".[train]"
    python examples/digits/train.py            # writes hwgen/bundled/digits_mlp.hwgen
                                               # and examples/digits/digits.nir

The network is a spiking MLP, 64 inputs -> 128 LIF -> 10 LIF, over T = 8 steps, on
scikit-learn's digits (8x8 images, values 0..16; nothing is downloaded). Pixels become
spike trains through hwgen's integrate-and-fire encoder (threshold 16), the very function
the reference and the accelerator's host side use.

Training has three phases, all in plain PyTorch with a surrogate gradient:

1. float training;
2. magnitude pruning to the target weight sparsity, with fine-tuning;
3. quantization-aware fine-tuning, MINT-style: one scale per layer shared by weights, bias,
   threshold and membrane, so the neuron needs only add, compare and shift. Its forward
   pass *is* hwgen's integer semantics (integer weights, floor leak, delayed subtract
   reset, spike when v > theta), with straight-through gradients for the rounding.

The integer model is then checked with hwgen's own reference on the held-out split, and
saved with that split (hwgen/bundled/digits_test.npz) so ``hwgen quickstart`` needs no
training framework and no scikit-learn. Finally it is exported as NIR through snnTorch
(export_nir.py, which can also do that alone from the bundled model, without training).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import export_nir
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout
from hwgen.compiler.ir import reference

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "hwgen" / "bundled"

T = 8
ENCODER_THRESHOLD = 16
HIDDEN = 128
WEIGHT_BITS = 4
V_BITS = 10
# beta = 7/8 as (7 * v) >> 3: exact in integers, and what snnTorch computes with floor.
LEAK = Leak.by_multiply(7, 3)
SPARSITY = (0.75, 0.5)          # fraction of zero weights per layer after pruning
SPLIT_SEED, TEST_FRACTION = 0, 0.25


class SpikeFn(torch.autograd.Function):
    """Heaviside forward (spike when x > 0), fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1.0 + 4.0 * x.abs()) ** 2


def ste_round(x):
    return x + (torch.round(x) - x).detach()


def ste_floor(x):
    return x + (torch.floor(x) - x).detach()


class DigitsSNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, HIDDEN)
        self.fc2 = torch.nn.Linear(HIDDEN, 10)
        self.masks = [torch.ones_like(self.fc1.weight), torch.ones_like(self.fc2.weight)]
        self.quantized = False

    def layer_scale(self, fc, mask):
        """Integer units per float unit: the largest |weight| maps to the largest code."""
        return ((1 << (WEIGHT_BITS - 1)) - 1) / (fc.weight * mask).abs().max().detach()

    def lif(self, current, scale):
        """Delayed-reset LIF over T. In quantized mode this is hwgen's integer semantics
        (membrane in integer units, theta = round(scale))."""
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

    def dense(self, fc, mask, spikes):
        scale = self.layer_scale(fc, mask)
        weight, bias = fc.weight * mask, fc.bias
        if self.quantized:
            weight, bias = ste_round(weight * scale), ste_round(bias * scale)
        return spikes @ weight.T + bias, scale

    def forward(self, spikes):            # spikes: (T, batch, 64)
        current, scale = self.dense(self.fc1, self.masks[0], spikes)
        hidden = self.lif(current, scale)
        current, scale = self.dense(self.fc2, self.masks[1], hidden)
        return self.lif(current, scale)   # (T, batch, 10)

    def prune(self, fractions):
        for i, (fc, fraction) in enumerate(zip((self.fc1, self.fc2), fractions)):
            magnitude = fc.weight.detach().abs().flatten()
            cut = torch.quantile(magnitude, fraction)
            self.masks[i] = (fc.weight.detach().abs() > cut).float()

    def to_ir(self):
        """The trained network as an hwgen integer model."""
        model = Model("digits_mlp", T, metadata={
            "source": "examples/digits/train.py",
            "dataset": "scikit-learn load_digits",
            "readout": "spike count, ties to the lowest class"})
        model.add(Input("pixels", (64,), encoding="if", threshold=ENCODER_THRESHOLD))
        previous = "pixels"
        for index, (fc, mask) in enumerate(((self.fc1, self.masks[0]),
                                            (self.fc2, self.masks[1])), start=1):
            scale = self.layer_scale(fc, mask)
            weight = torch.round(fc.weight.detach() * mask * scale).numpy().astype(np.int64)
            bias = torch.round(fc.bias.detach() * scale).numpy().astype(np.int64)
            bound = int((np.abs(weight).sum(axis=1) + np.abs(bias)).max())
            model.add(Dense(f"fc{index}", weight, bias, weight_bits=WEIGHT_BITS,
                            acc_bits=bound.bit_length() + 1), previous)
            theta = np.full(weight.shape[0], int(torch.round(scale)), dtype=np.int64)
            model.add(LIF(f"lif{index}", theta, leak=LEAK, fire="gt", reset="subtract",
                          order="delayed", v_bits=V_BITS), f"fc{index}")
            previous = f"lif{index}"
        model.add(Readout("class", "spike_count"), previous)
        return model.validate()


def encode(x):
    spikes = reference.if_encode(x, ENCODER_THRESHOLD, T)        # (samples, T, 64)
    return torch.tensor(spikes, dtype=torch.float32).permute(1, 0, 2)


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
            with torch.no_grad():
                net.fc1.weight *= net.masks[0]
                net.fc2.weight *= net.masks[1]
        if log and (epoch + 1) % 10 == 0:
            log(f"  epoch {epoch + 1}: loss {loss.item():.3f}")


def torch_accuracy(net, x, y):
    with torch.no_grad():
        counts = net(encode(x)).sum(0).numpy()
    return float(np.mean(np.argmax(counts, axis=1) == y))


def split():
    """(x_train, x_test, y_train, y_test): the train / held-out split of scikit-learn's
    digits every example here uses (the held-out part is hwgen/bundled/digits_test.npz)."""
    digits = load_digits()
    return train_test_split(digits.data.astype(np.int64), digits.target,
                            test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                            stratify=digits.target)


def bundled_split():
    """:func:`split`, checked against the held-out digits hwgen ships."""
    from hwgen import bundled
    x_train, x_test, y_train, y_test = split()
    inputs, labels = bundled.digits_test_set()
    if not (np.array_equal(inputs, x_test) and np.array_equal(labels, y_test)):
        raise SystemExit("the split differs from hwgen/bundled/digits_test.npz")
    return x_train, x_test, y_train, y_test


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE, help="folder for the model files")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--nir", type=Path, default=Path(__file__).resolve().parent / "digits.nir",
                        help="where to write the model as NIR (through snnTorch)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x_train, x_test, y_train, y_test = split()

    net = DigitsSNN()
    print("float training")
    fit(net, x_train, y_train, args.epochs, 2e-3, print)
    float_accuracy = torch_accuracy(net, x_test, y_test)
    print(f"float model, held-out accuracy {float_accuracy:.4f}")

    print(f"pruning to {SPARSITY} sparsity")
    net.prune(SPARSITY)
    fit(net, x_train, y_train, args.epochs // 2, 1e-3, print)
    pruned_accuracy = torch_accuracy(net, x_test, y_test)
    print(f"pruned float model, held-out accuracy {pruned_accuracy:.4f}")

    print("quantization-aware fine-tuning")
    net.quantized = True
    fit(net, x_train, y_train, args.epochs // 2, 5e-4, print)
    qat_accuracy = torch_accuracy(net, x_test, y_test)

    model = net.to_ir()
    trace = reference.run(model, x_test)
    integer_accuracy = reference.accuracy(trace.predictions, y_test)
    print(f"QAT torch model {qat_accuracy:.4f}; hwgen integer reference {integer_accuracy:.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    native.save(model, args.out / "digits_mlp.hwgen")
    np.savez_compressed(args.out / "digits_test.npz", inputs=x_test.astype(np.uint8),
                        labels=y_test.astype(np.uint8))
    summary = {"split": {"function": "sklearn.model_selection.train_test_split",
                         "test_size": TEST_FRACTION, "random_state": SPLIT_SEED,
                         "stratify": "labels", "train": len(y_train), "test": len(y_test)},
               "float_accuracy": round(float_accuracy, 4),
               "pruned_float_accuracy": round(pruned_accuracy, 4),
               "integer_accuracy": round(integer_accuracy, 4),
               "weight_sparsity": list(SPARSITY)}
    (args.out / "digits_mlp.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    export_nir.export(model, args.nir, x_test)
    print(f"wrote {args.nir}")


if __name__ == "__main__":
    main()
