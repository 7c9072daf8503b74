"""benchmarks/time_chunks.py: its work counts on a convolution (spikes of a C x H x W input,
the layer's unrolled matrix) against a brute-force count, and its workload set."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from hwgen.compiler.ir import LIF, Conv2d, Input, Model, reference
from hwgen.compiler.passes.legalise import legalise

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))         # time_chunks imports loas_conv_layers by name
spec = importlib.util.spec_from_file_location("time_chunks", BENCHMARKS / "time_chunks.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_work_counts_of_a_convolution():
    rng = np.random.default_rng(3)
    weight = rng.integers(-2, 3, (3, 2, 3, 3)) * (rng.random((3, 2, 3, 3)) < 0.5)
    model = Model("conv", 4)
    model.add(Input("input", (2, 5, 5)))
    model.add(Conv2d("c", weight, stride=2, padding=1, weight_bits=3, acc_bits=8), "input")
    model.add(LIF("lif", np.full(3 * 3 * 3, 2), v_bits=8), "c")
    model.validate()
    spikes = (rng.random((6, 4, 2, 5, 5)) < 0.3).astype(np.uint8)
    trace = reference.run(model, spikes)
    packed, per_step, _, _ = bench.layer_work(model, {"name": "lif"}, trace)
    matrix = legalise(model).layers[0].dense.dense_weight() != 0        # (neurons, inputs)
    flat = spikes.reshape(6, 4, -1)
    want_packed = np.mean([(matrix & flat[s].any(axis=0)).sum() for s in range(6)])
    want_per_step = np.mean([sum((matrix & flat[s, t]).sum() for t in range(4))
                             for s in range(6)])
    assert (packed, per_step) == (want_packed, want_per_step)
    assert packed > 0 and per_step > packed


def test_the_workload_set_has_the_convolutions():
    names = [name for name, *_ in bench.workloads(quick=False)]
    assert names[:2] == ["digits 64-128-10 (T=8)", "digits_cnn conv 1x8x8-16x4x4-32x2x2-10 (T=8)"]
    assert "loas conv vgg16-10 (T=4)" in names and "loas conv resnet19-16 (T=4)" in names
    assert [name for name, *_ in bench.workloads(quick=True)] == names[:1]
