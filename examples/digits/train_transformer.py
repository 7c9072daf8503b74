"""Train the bundled spiking transformer for the digits and ship it quantized, through hwgen's
PyTorch frontend and post-training quantization.

    pip install -e ".[test]"       # torch, scikit-learn and (for its tests) SpikingJelly
    python examples/digits/train_transformer.py   # writes hwgen/bundled/digits_transformer.hwgen
                                                  # and hwgen/bundled/digits_transformer.json

The network is a Spike-driven Transformer v1 (SDSA) built from
``hwgen.compiler.frontends.torch_transformer``'s modules, whose forward pass is the float
model (SpikingJelly's blocks in plain PyTorch, sigmoid surrogate gradients):

    8x8 digit, 1 channel -> patch embedding: 2x2 patches, 16 tokens of DIM features, and
    SDT's relative position embedding (a 3x3 convolution over the 4x4 grid of tokens)
    -> DEPTH x (SDSA + MLP DIM -> HIDDEN -> DIM), membrane shortcuts
    -> head: LIF on every token -> Linear 16 DIM -> 10, summed over the T steps

(The paper's head averages the tokens before its LIF; on 16 tokens with one block that
loses where each patch was, and the float model stayed at 46 to 64 %, so the head here reads
every token: ``head="flatten"``.)

Inputs, encoder and split are those of the bundled MLP and CNN (train.py): pixel values
0..16 through hwgen's integrate-and-fire encoder (threshold 16), T = 8, scikit-learn's
digits split by ``train_test_split(test_size=0.25, random_state=0, stratify=labels)``; the
held-out split is the bundled digits_test.npz (checked, not rewritten).

After float training, the model is exported in evaluation mode (batch norms folded into the
convolutions) and quantized by ``hwgen.compiler.passes.quantize`` with 8-bit weights,
calibrated on training samples; the shipped accuracy is the integer reference's on the
held-out split. Deterministic (seeds, one thread); a few minutes on one core.
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from train import ENCODER_THRESHOLD, SPLIT_SEED, T, TEST_FRACTION, bundled_split
from hwgen.compiler.frontends import native
from hwgen.compiler.frontends import torch_transformer as tt
from hwgen.compiler.ir import reference
from hwgen.compiler.passes.quantize import QuantizeOptions

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "hwgen" / "bundled"

PATCH, DIM, HEADS, DEPTH, HIDDEN = 2, 32, 2, 1, 64
WEIGHT_BITS = 8
CALIBRATION_SAMPLES = 256
LEARNING_RATE = 1e-3


def build():
    net = tt.SpikeDrivenTransformer(1, 8, PATCH, DIM, HEADS, DEPTH, HIDDEN, 10,
                                    head="flatten", rpe=True)
    # Batch norms start with bias 0.5 rather than 0, so that every LIF (threshold 1, tau 2)
    # spikes from the first batch on: with zero-mean currents the head's neurons start
    # almost silent and their surrogate gradients almost 0.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.constant_(module.bias, 0.5)
    return net


def encode(x):
    """Pixels (samples, 64) -> hwgen's IF-encoded spikes, time first (T, samples, 1, 8, 8)."""
    spikes = reference.if_encode(x, ENCODER_THRESHOLD, T)
    return torch.tensor(spikes, dtype=torch.float32).permute(1, 0, 2).reshape(T, len(x), 1, 8, 8)


def fit(net, x, y, epochs, log):
    optimiser = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    spikes, labels = encode(x), torch.tensor(y)
    generator = torch.Generator().manual_seed(1)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 64):
            batch = order[start:start + 64]
            loss = torch.nn.functional.cross_entropy(net(spikes[:, batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        if log and (epoch + 1) % 5 == 0:
            log(f"  epoch {epoch + 1}: loss {loss.item():.3f}")
    net.eval()


def torch_accuracy(net, x, y):
    with torch.no_grad():
        return float(np.mean(np.argmax(net(encode(x)).numpy(), axis=1) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE, help="folder for the model files")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x_train, x_test, y_train, y_test = bundled_split()

    net = build()
    print("float training")
    fit(net, x_train, y_train, args.epochs, print)
    float_accuracy = torch_accuracy(net, x_test, y_test)
    print(f"float model (evaluation mode), held-out accuracy {float_accuracy:.4f}")

    calibration = x_train[:CALIBRATION_SAMPLES].reshape(-1, 1, 8, 8)
    model = tt.export(net, T, name="digits_transformer", encoding="if",
                      threshold=ENCODER_THRESHOLD,
                      options=QuantizeOptions(weight_bits=WEIGHT_BITS),
                      calibration=calibration,
                      metadata={"trained_by": "examples/digits/train_transformer.py",
                                "dataset": "scikit-learn load_digits",
                                "readout": "final membrane of the summed logits, ties to the "
                                           "lowest class"})
    trace = reference.run(model, x_test)
    integer_accuracy = reference.accuracy(trace.predictions, y_test)
    print(f"hwgen integer reference, held-out accuracy {integer_accuracy:.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "digits_transformer.hwgen"
    native.save(model, path)
    summary = {"split": {"function": "sklearn.model_selection.train_test_split",
                         "test_size": TEST_FRACTION, "random_state": SPLIT_SEED,
                         "stratify": "labels", "train": len(y_train), "test": len(y_test),
                         "file": "digits_test.npz"},
               "architecture": f"{PATCH}x{PATCH} patches -> {64 // PATCH ** 2} tokens x {DIM}, RPE "
                               f"-> {DEPTH} x (SDSA, {HEADS} heads + MLP {DIM}->{HIDDEN}->"
                               f"{DIM}) -> LIF per token -> Linear {16 * DIM}->10",
               "timesteps": T, "epochs": args.epochs, "weight_bits": WEIGHT_BITS,
               "calibration_samples": CALIBRATION_SAMPLES,
               "float_accuracy": round(float_accuracy, 4),
               "integer_accuracy": round(integer_accuracy, 4),
               "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (args.out / "digits_transformer.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
