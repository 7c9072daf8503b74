"""A small convolutional model whose output positions repeat, for address generation
(compiler/scheduler/blocks.py): its compiled programs have calls at ``call_groups=1``."""

import numpy as np

from hwgen.compiler.ir import LIF, Conv2d, Dense, Flatten, Input, Model


def cnn(seed, channels=3, side=6, out=16):
    """Input (C, side, side) -> conv 3x3 pad 1 -> LIF -> conv 3x3 pad 1 -> LIF -> dense."""
    rng = np.random.default_rng(seed)
    model = Model("cnn", 4)
    model.add(Input("input", (channels, side, side)))
    w1 = rng.integers(-3, 4, (out, channels, 3, 3)) * (rng.random((out, channels, 3, 3)) < 0.5)
    model.add(Conv2d("conv1", w1, padding=1, weight_bits=3, acc_bits=10), "input")
    # thresholds per channel, as a convolution's neurons have them
    model.add(LIF("lif1", np.repeat(rng.integers(1, 4, out), side * side), v_bits=8), "conv1")
    w2 = rng.integers(-3, 4, (8, out, 3, 3)) * (rng.random((8, out, 3, 3)) < 0.5)
    model.add(Conv2d("conv2", w2, padding=1, weight_bits=3, acc_bits=12), "lif1")
    model.add(LIF("lif2", np.repeat(rng.integers(1, 6, 8), side * side), v_bits=8), "conv2")
    model.add(Flatten("flat"), "lif2")
    model.add(Dense("fc", rng.integers(-2, 3, (5, 8 * side * side)), weight_bits=3,
                    acc_bits=12), "flat")
    model.add(LIF("out", np.full(5, 3), v_bits=8), "fc")
    spikes = (rng.random((2, 4, channels * side * side)) < 0.4).astype(np.uint8)
    return model.validate(), spikes
